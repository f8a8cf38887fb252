"""A host's /openapi.json against the host itself: every answer of a live host validated
against the document it serves (``Answers``), and the schemathesis fuzz setup the host tests
share (``fuzz_schema``, ``stop_fuzz_apps``, ``fuzz_test``)."""

from __future__ import annotations

import copy
import json
import re
import shutil
from collections.abc import Callable, Collection, Iterator
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.python.asgi import shutdown_lifespans

from tests.helpers.gateway import call_with_token

REF = "#/components/schemas/"

# -- every documented answer, validated -----------------------------------------------------------


def close(node: Any, *, part: bool = False) -> Any:
    """``node`` (a schema, changed in place) with every object schema closed to the properties
    it names, so an answer field the document does not list fails validation (JSON Schema
    objects are open by default). The parts of an ``allOf`` stay open and the composite is
    closed with ``unevaluatedProperties``, which sees through them."""
    if isinstance(node, dict):
        if "allOf" in node:
            node.setdefault("unevaluatedProperties", False)
        elif "properties" in node and "additionalProperties" not in node and not part:
            node["additionalProperties"] = False
        for key, value in node.items():
            if key == "allOf":
                for item in value:
                    close(item, part=True)
            else:
                close(value)
    elif isinstance(node, list):
        for value in node:
            close(value)
    return node


def closed(doc: dict[str, Any]) -> dict[str, Any]:
    """The document's components closed (``close``), but those used as parts of an ``allOf``
    and the core's event schema, which is the wire contract as it is."""
    components = copy.deepcopy(doc["components"]["schemas"])
    parts: set[str] = set()

    def find_parts(node: Any) -> None:
        if isinstance(node, dict):
            for item in node.get("allOf", []):
                parts.add(item.get("$ref", "").removeprefix(REF))
            for value in node.values():
                find_parts(value)
        elif isinstance(node, list):
            for value in node:
                find_parts(value)

    find_parts(components)
    for name, schema in components.items():
        if name not in parts and not (name == "Event" or name.startswith("Event_")):
            close(schema)
    return components


class Answers:
    """Checks each answer a live host gives against the host's own document: the status is
    documented for that operation, the content type is one it lists and a JSON body validates
    against its schema (objects closed: ``closed``). ``uncovered()`` names the documented
    operations no checked answer succeeded for, so a new route needs a call here."""

    def __init__(
        self,
        doc: dict[str, Any],
        http: httpx.AsyncClient | None = None,
        tokens: dict[str, str] | None = None,
    ) -> None:
        self.doc = doc
        missing = sorted(
            set(re.findall(r'"#/components/schemas/([^"]+)"', json.dumps(doc)))
            - set(doc["components"]["schemas"])
        )
        assert not missing, f"$ref to components the document does not have: {missing}"
        self.http = http  # for ``call``: a client of the host
        self.tokens = tokens or {}  # scope -> token
        self.components = closed(doc)
        self.succeeded: set[tuple[str, str]] = set()
        self.checked = 0

    def check(self, template: str, response: httpx.Response, *, body: bool = True) -> None:
        method = response.request.method
        where = f"{method} {template} -> {response.status_code}"
        op = self.doc["paths"][template][method.lower()]
        documented = op["responses"].get(str(response.status_code)) or op["responses"].get(
            "default"
        )
        assert documented is not None, f"{where}: status not documented ({response.text[:300]})"
        content = documented.get("content")
        if content is None:
            assert not response.content, f"{where}: a body the document does not describe"
        else:
            kind = response.headers.get("content-type", "").split(";")[0].strip()
            assert kind in content, f"{where}: content type {kind!r}, documented {list(content)}"
            if body and kind == "application/json":
                schema = close(copy.deepcopy(content[kind]["schema"]))
                schema["components"] = {"schemas": self.components}
                errors = [
                    f"{'/'.join(map(str, e.absolute_path)) or '$'}: {e.message}"
                    for e in jsonschema.Draft202012Validator(
                        schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
                    ).iter_errors(response.json())
                ]
                assert not errors, f"{where}: the answer does not match its schema: {errors[:5]}"
        self.checked += 1
        if response.is_success:
            self.succeeded.add((template, method))

    @classmethod
    async def of(cls, http: httpx.AsyncClient, tokens: dict[str, str] | None = None) -> Answers:
        """For the host ``http`` is a client of, with its own /openapi.json."""
        return cls((await http.get("/openapi.json")).json(), http, tokens)

    async def call(
        self, method: str, template: str, path: str | None = None, **kwargs: Any
    ) -> httpx.Response:
        """Send ``method`` to ``path`` (default: the template itself) with the token of the
        scope the document gives the operation, and ``check`` the answer."""
        assert self.http is not None, "Answers.of(client) to call the host"
        scope = self.doc["paths"][template][method.lower()].get("x-wafermon-scope")
        headers = dict(kwargs.pop("headers", None) or {})
        if scope and scope in self.tokens:
            headers.setdefault("Authorization", f"Bearer {self.tokens[scope]}")
        response = await self.http.request(method, path or template, headers=headers, **kwargs)
        self.check(template, response)
        return response

    def uncovered(self, *, skip: Collection[tuple[str, str]] = ()) -> list[str]:
        """``METHOD /path`` of each documented operation without a checked success
        (but ``skip``: (path, METHOD) pairs a test cannot call, with its reason)."""
        return sorted(
            f"{method.upper()} {path}"
            for path, ops in self.doc["paths"].items()
            for method in ops
            if (path, method.upper()) not in {*self.succeeded, *skip}
        )


# -- fuzzing ---------------------------------------------------------------------------------------


@schemathesis.serializer("application/x-ndjson")
def _ndjson(_ctx: Any, value: Any) -> bytes:
    """The schema says "a string, one event per line"; send it as the raw body."""
    return value.encode() if isinstance(value, str) else json.dumps(value).encode()


def fuzz_schema(app: Any, *, exclude_path: str | None = None) -> Any:
    """Schemathesis' schema of an app built at import (``schema.parametrize`` needs it then;
    its lazy ``from_fixture`` does not work with pytest 9). Schemathesis runs the app's
    lifespan on its own event-loop thread; ``stop_fuzz_apps`` ends it."""
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    return schema.exclude(path=exclude_path) if exclude_path else schema


def stop_fuzz_apps(root: Path) -> Callable[[], Iterator[None]]:
    """A module fixture (autouse) ending the fuzzed apps' lifespans and removing ``root``."""

    @pytest.fixture(scope="module", autouse=True)
    def stop_fuzz_app() -> Iterator[None]:
        yield
        shutdown_lifespans()
        shutil.rmtree(root, ignore_errors=True)

    return stop_fuzz_app


def fuzz_test(schema: Any, max_examples: int) -> Callable[..., None]:
    """The fuzz test of a host: each generated request, sent with the token its operation
    needs, never gets a server error."""

    @schema.parametrize()
    @settings(
        max_examples=max_examples,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    )
    def test_fuzzed_requests_never_get_a_server_error(case: Any) -> None:
        call_with_token(case, not_a_server_error)

    return test_fuzzed_requests_never_get_a_server_error
