"""Every operation the sidecar documents, called on a live sidecar (real socket, real spool, a
backend that delivers and one that cannot): each answer matches the schema its own
/openapi.json gives for the status, with no field the document does not name
(``tests.helpers.openapi.Answers``); an operation without a checked success fails the test."""

from __future__ import annotations

import json

import httpx

from tests.helpers.central import serve_app
from tests.helpers.gateway import FUZZ_TOKENS
from tests.helpers.openapi import Answers
from tests.helpers.sidecar import ndjson_batch, wait_for


async def test_every_documented_answer_matches_its_schema(build_sidecar_app, tmp_path):
    (tmp_path / "file").write_text("a regular file where a directory should be")
    backends = [
        {"name": "a", "type": "collect"},
        {"name": "blocked", "type": "filesystem", "config": {"root": str(tmp_path / "file")}},
    ]
    app = build_sidecar_app(sidecar={"tokens": FUZZ_TOKENS}, backends=backends)
    async with serve_app(app) as url, httpx.AsyncClient(base_url=url, timeout=10) as http:
        answers = await Answers.of(http, FUZZ_TOKENS)
        call = answers.call

        await call("GET", "/openapi.json")
        await call("GET", "/metrics")
        await call("GET", "/-/plugins")
        answers.check("/v1/healthz", await http.get("/v1/healthz"))  # the status only
        answers.check("/v1/ingest/events", await http.post("/v1/ingest/events"))  # 401

        ndjson = {"Content-Type": "application/x-ndjson"}
        for path in ("/v1/ingest/events", "/v1/ingest/events:batch"):
            accepted = await call("POST", path, content=ndjson_batch(3), headers=ndjson)
            assert accepted.json()["accepted"] == 3
            mixed = ndjson_batch(1) + b'{"kind": "started"}\n'
            await call("POST", path, content=mixed, headers=ndjson)
            junk = json.dumps([{"kind": "started"}]).encode()
            await call("POST", path, content=junk, headers={"Content-Type": "application/json"})
            await call("POST", path, content=b"x", headers={"Content-Type": "text/plain"})

        read = {"Authorization": f"Bearer {FUZZ_TOKENS['read']}"}

        async def blocked_failed() -> bool:
            body = (await call("GET", "/v1/healthz", headers=read)).json()
            return body["backends"]["blocked"]["consecutive_failures"] > 0

        await wait_for(blocked_failed, timeout=10)  # degraded: a backend's error shown

    assert answers.uncovered() == [], "call these operations here"
