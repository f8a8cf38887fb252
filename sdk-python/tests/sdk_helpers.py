"""Helpers shared by the SDK tests (a uniquely named module, imported as ``sdk_helpers``).

- ``Proc`` (from wafermon.testing, the plugin authors' kit): a real ``wafermon gateway`` /
  ``wafermon sidecar`` process on a free port, restartable on the same port, its log in a file.
- ``stack``: a gateway on a SQLite store in a folder, and a sidecar whose only backend is
  ``{type: gateway, config: {url: <gateway>}}`` — the path the SDK's events travel in
  production; ``job_detail`` / ``wait_for_job`` read what arrived through GET /v1/jobs/{id}.
- ``filesystem_events``: every event a filesystem backend wrote under a root, decoded.
"""

from __future__ import annotations

import contextlib
import gzip
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from wafermon.testing import FAST_RETRY, Proc, free_port, write_yaml

#: The hosts' logs at warning: the SDK tests read only what goes wrong.
QUIET = ("--log-level", "warning")


class Stack:
    """A gateway and a sidecar in front of it, in ``folder``."""

    def __init__(self, folder: Path, *, otlp_endpoint: str | None = None) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.folder = folder
        # Both hosts export their spans to ``otlp_endpoint`` when given.
        self.tracing = {"enabled": True, "otlp_endpoint": otlp_endpoint} if otlp_endpoint else None
        gateway_config = write_yaml(
            folder / "gateway.yaml",
            {
                "site_id": "fab1",
                **({"gateway": {"tracing": self.tracing}} if self.tracing else {}),
                "backends": [
                    {
                        "name": "managed",
                        "type": "sql",
                        "config": {"url": f"sqlite+aiosqlite:///{folder / 'managed.db'}"},
                    }
                ],
            },
        )
        self.gateway = Proc("gateway", gateway_config, log_dir=folder, args=QUIET, ready=(200,))
        self.sidecar_port = free_port()
        self.sidecar_url = f"http://127.0.0.1:{self.sidecar_port}"
        self._sidecar_config: Path | None = None
        self.sidecar: Proc | None = None

    def start_gateway(self) -> Stack:
        self.gateway.start()
        config = write_yaml(
            self.folder / "sidecar.yaml",
            {
                "site_id": "fab1",
                "sidecar": {
                    "spool": {"dir": str(self.folder / "sidecar-spool")},
                    "retry": FAST_RETRY,
                    **({"tracing": self.tracing} if self.tracing else {}),
                },
                "backends": [
                    {"name": "gw", "type": "gateway", "config": {"url": self.gateway.url}}
                ],
            },
        )
        self.sidecar = Proc(
            "sidecar", config, log_dir=self.folder, port=self.sidecar_port, args=QUIET, ready=(200,)
        )
        return self

    def start_sidecar(self) -> Stack:
        assert self.sidecar is not None, "start the gateway first"
        self.sidecar.start()
        return self

    def close(self) -> None:
        if self.sidecar is not None:
            self.sidecar.kill9()
        self.gateway.kill9()

    # -- reading back through the gateway -------------------------------------------------------

    def job_detail(self, entity_id: str) -> dict[str, Any] | None:
        response = httpx.get(f"{self.gateway.url}/v1/jobs/{entity_id}", timeout=10)
        if response.status_code == 404:
            return None
        response.raise_for_status()
        return response.json()

    def wait_for_job(
        self,
        entity_id: str,
        done: Callable[[dict[str, Any]], bool],
        timeout: float = 30.0,
    ) -> dict[str, Any]:
        """Poll GET /v1/jobs/{id} until ``done(detail)``; fails the test with the last answer."""
        deadline = time.monotonic() + timeout
        detail = None
        while time.monotonic() < deadline:
            detail = self.job_detail(entity_id)
            if detail is not None and done(detail):
                return detail
            time.sleep(0.1)
        pytest.fail(f"job {entity_id} incomplete after {timeout}s: {detail}")


@contextlib.contextmanager
def running_stack(
    folder: Path, *, sidecar: bool = True, otlp_endpoint: str | None = None
) -> Iterator[Stack]:
    stack = Stack(folder, otlp_endpoint=otlp_endpoint)
    try:
        stack.start_gateway()  # inside: a gateway that never got ready is killed too
        if sidecar:
            stack.start_sidecar()
        yield stack
    finally:
        stack.close()


def finished_with(subjobs: int, status: str = "finished") -> Callable[[dict[str, Any]], bool]:
    """A ``done`` test: the job has reached ``status`` and so have ``subjobs`` subjobs."""

    def done(detail: dict[str, Any]) -> bool:
        return (
            detail["job"]["status"] == status
            and len(detail["subjobs"]) == subjobs
            and all(s["status"] in ("finished", "failed") for s in detail["subjobs"])
        )

    return done


def filesystem_events(root: Path) -> list[dict[str, Any]]:
    """Every event a filesystem backend wrote under ``root``, in file order."""
    found = []
    for path in sorted(root.rglob("events*.jsonl*")):
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rb") as file:
            found.extend(orjson.loads(line) for line in file if line.strip())
    return found


def wait_until(condition: Callable[[], Any], timeout: float = 20.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"{what} not met within {timeout}s")
        time.sleep(0.05)


def sdk_env(**settings: Any) -> dict[str, str]:
    """os.environ plus WAFERMON_<SETTING> for each keyword (for child processes)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("WAFERMON_")}
    env.update({f"WAFERMON_{k.upper()}": str(v) for k, v in settings.items()})
    env["WAFERMON_TEST_PG_URL"] = os.environ.get("WAFERMON_TEST_PG_URL", "")
    return env
