"""The Python SDK's conformance driver: JSON lines over stdin/stdout (conformance/PROTOCOL.md).

The runner writes one request per line; this answers each with exactly one line, in order.
Every request is carried out through the public ``wafermon_sdk`` API only, the way an
application would use it: ``Client()`` configured from the environment, ``Monitored`` entered
and left by hand (a job's steps arrive as separate requests), ``emit_event``/``emit_batch``
with events in wire form (dicts), ``flush``, ``close``, ``stats``. It never writes wire JSON
itself. Logs go to stderr; stdout carries responses and nothing else, so anything that prints
is redirected to stderr. A bad request is answered ``ok: false``; the driver reads on.
"""

from __future__ import annotations

import builtins
import json
import logging
import os
import sys
import traceback
from typing import Any

import wafermon_sdk
from wafermon import ConfigError
from wafermon_sdk import AppRef, Client, Monitored

PROTOCOL_VERSION = 1
#: What the SDK writes as ``source.sdk`` (docs/sdk-python.md).
SDK_NAME = "python"


class Refused(Exception):
    """A request answered ``ok: false`` with this kind and message."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


def need(request: dict[str, Any], name: str, kind: type) -> Any:
    value = request.get(name)
    if not isinstance(value, kind):
        raise Refused("protocol", f"{name}: expected {kind.__name__}, got {value!r}")
    return value


def exception_named(type_name: str, message: str) -> BaseException:
    """An exception whose class the SDK reports as ``type_name``.

    The SDK reports ``module.Class`` (builtins without module): a builtin exception name gives
    the builtin itself, ``a.b.Name`` a class ``Name`` of module ``a.b``, and a bare unknown
    name a class that claims to be a builtin, so the reported type is exactly the name asked.
    """
    module, _, name = type_name.rpartition(".")
    builtin = getattr(builtins, type_name, None)
    if not module and isinstance(builtin, type) and issubclass(builtin, Exception):
        return builtin(message)
    cls = type(name or type_name, (Exception,), {"__module__": module or "builtins"})
    cls.__qualname__ = name or type_name
    return cls(message)


class Driver:
    def __init__(self) -> None:
        self.client: Client | None = None
        self.handles: dict[str, Monitored] = {}

    # -- requests ---------------------------------------------------------------------------------

    def hello(self, _request: dict[str, Any]) -> dict[str, Any]:
        return {
            "language": "python",
            "sdk": SDK_NAME,
            "sdk_version": wafermon_sdk.__version__,
            "protocol": PROTOCOL_VERSION,
        }

    def init(self, request: dict[str, Any]) -> dict[str, Any]:
        env = need(request, "env", dict)
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in env.items()):
            raise Refused("protocol", "env: expected an object of string to string")
        self._close_client(timeout=None)
        for name in [n for n in os.environ if n.startswith("WAFERMON_")]:
            del os.environ[name]
        os.environ.update(env)
        try:
            self.client = Client()
        except ConfigError as exc:
            raise Refused("config", str(exc)) from None
        return {}

    def start(self, request: dict[str, Any]) -> dict[str, Any]:
        client = self._client()
        handle = need(request, "handle", str)
        if handle in self.handles:
            raise Refused("usage", f"handle {handle!r} is in use")
        app = need(request, "app", dict)
        parent_id = None
        if request.get("parent") is not None:
            parent_id = self._handle(need(request, "parent", str)).entity_id
        try:
            job = client.monitored(
                app=AppRef(
                    name=app.get("name"), version=app.get("version"), app_id=app.get("app_id")
                ),
                entity_type=request.get("entity_type", "job"),
                business_key=request.get("business_key"),
                sub_key=request.get("sub_key"),
                parent_id=parent_id,
                metadata=request.get("metadata"),
            )
            job.__enter__()
        except (ValueError, TypeError) as exc:
            raise Refused("usage", str(exc)) from None
        self.handles[handle] = job
        return {"entity_id": job.entity_id}

    def progress(self, request: dict[str, Any]) -> dict[str, Any]:
        job = self._handle(need(request, "handle", str))
        progress = request.get("progress")
        if progress is not None and (
            isinstance(progress, bool) or not isinstance(progress, int | float)
        ):
            raise Refused("protocol", f"progress: expected a number, got {progress!r}")
        try:
            job.tick(extra_meta=request.get("metadata"), progress=progress)
        except (RuntimeError, TypeError) as exc:
            raise Refused("usage", str(exc)) from None
        return {}

    def finish(self, request: dict[str, Any]) -> dict[str, Any]:
        job = self._handle(need(request, "handle", str))
        job.__exit__(None, None, None)
        return {}

    def fail(self, request: dict[str, Any]) -> dict[str, Any]:
        job = self._handle(need(request, "handle", str))
        error = need(request, "error", dict)
        type_name = error.get("type")
        if not isinstance(type_name, str) or not type_name:
            raise Refused("protocol", f"error.type: expected a non-empty string, got {type_name!r}")
        try:  # raised and caught, as in an application: the SDK records a real traceback
            raise exception_named(type_name, str(error.get("message", "")))
        except Exception as exc:  # noqa: BLE001 - the exception made just above
            job.__exit__(type(exc), exc, exc.__traceback__)
        return {}

    def emit_event(self, request: dict[str, Any]) -> dict[str, Any]:
        event = need(request, "event", dict)
        return {"queued": self._client().emit_event(event)}

    def emit_batch(self, request: dict[str, Any]) -> dict[str, Any]:
        events = need(request, "events", list)
        if not all(isinstance(e, dict) for e in events):
            raise Refused("protocol", "events: expected an array of objects")
        return {"queued": self._client().emit_batch(events)}

    def flush(self, request: dict[str, Any]) -> dict[str, Any]:
        timeout = request.get("timeout")
        return {"delivered": self._client().flush(timeout)}

    def close(self, request: dict[str, Any]) -> dict[str, Any]:
        self._close_client(timeout=request.get("timeout"))
        return {}

    def stats(self, _request: dict[str, Any]) -> dict[str, Any]:
        return {"stats": self._client().stats()}

    def quit(self, _request: dict[str, Any]) -> dict[str, Any]:
        self._close_client(timeout=None)
        return {}

    # -- helpers ----------------------------------------------------------------------------------

    def _client(self) -> Client:
        if self.client is None:
            raise Refused("usage", "no client: send a successful init first")
        return self.client

    def _handle(self, name: str) -> Monitored:
        try:
            return self.handles[name]
        except KeyError:
            raise Refused("usage", f"unknown handle {name!r}") from None

    def _close_client(self, timeout: float | None) -> None:
        client, self.client = self.client, None
        self.handles.clear()
        if client is not None:
            client.close(timeout)

    def answer(self, request: Any) -> dict[str, Any]:
        if not isinstance(request, dict):
            return {"seq": None, "ok": False, "error": _error("protocol", "expected an object")}
        seq = request.get("seq")
        op = request.get("op")
        method = getattr(self, op, None) if op in OPS else None
        if method is None:
            return {"seq": seq, "ok": False, "error": _error("protocol", f"unknown op {op!r}")}
        try:
            return {"seq": seq, "ok": True, **method(request)}
        except Refused as exc:
            return {"seq": seq, "ok": False, "error": _error(exc.kind, str(exc))}
        except Exception as exc:  # a driver never dies on a request: logged, answered
            logging.getLogger("driver").exception("op %s failed", op)
            message = "".join(traceback.format_exception_only(exc)).strip()
            return {"seq": seq, "ok": False, "error": _error("internal", message)}


OPS = frozenset(
    {"hello", "init", "start", "progress", "finish", "fail", "emit_event", "emit_batch"}
    | {"flush", "close", "stats", "quit"}
)


def _error(kind: str, message: str) -> dict[str, str]:
    return {"kind": kind, "message": message}


def main() -> int:
    responses = sys.stdout
    sys.stdout = sys.stderr  # stray prints must not corrupt the response stream
    logging.basicConfig(
        stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(name)s %(message)s"
    )
    driver = Driver()
    for line in sys.stdin:
        if not line.strip():
            continue
        try:
            request = json.loads(line)
        except ValueError as exc:
            response = {"seq": None, "ok": False, "error": _error("protocol", f"not JSON: {exc}")}
        else:
            response = driver.answer(request)
        responses.write(json.dumps(response, default=str, ensure_ascii=False) + "\n")
        responses.flush()
        if isinstance(request, dict) and request.get("op") == "quit" and response["ok"]:
            return 0
    driver.quit({})
    return 0


if __name__ == "__main__":
    sys.exit(main())
