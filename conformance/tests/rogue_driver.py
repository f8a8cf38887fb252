"""A driver that builds and posts events itself, with one flaw chosen by ROGUE_FLAW.

Used by test_conf_engine.py to prove the runner catches each kind of wire fault: it speaks the
protocol like a real driver, but instead of an SDK it writes NDJSON to the sidecar with
urllib. ``ROGUE_FLAW=none`` behaves correctly (so a failure is the flaw's, not the fake's).
"""

from __future__ import annotations

import json
import os
import socket
import sys
import time
import urllib.error
import urllib.request
import uuid
from datetime import UTC, datetime

FLAW = os.environ.get("ROGUE_FLAW", "none")
SDK = {"sdk": "rogue", "sdk_version": "0.0.1"}


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class Rogue:
    def __init__(self) -> None:
        self.env: dict[str, str] = {}
        self.handles: dict[str, dict] = {}
        self.pending: list[dict] = []

    def event(self, job: dict, kind: str, **extra) -> dict:
        event_id = str(uuid.uuid1() if FLAW == "uuid_v1" else uuid.uuid4())
        pid = os.getpid() + (1 if FLAW == "wrong_pid" else 0)
        source = {"host": socket.gethostname(), "pid": pid, **SDK}
        event = {"schema_version": 1, "event_id": event_id, "kind": kind, "time": now()}
        event |= {"site_id": self.env.get("WAFERMON_SITE_ID"), "app": job["app"]}
        event |= {"entity": job["entity"], "source": source, **extra}
        if job["metadata"]:
            event["metadata"] = job["metadata"]
        return event

    def post(self, events: list[dict]) -> bool:
        url = self.env["WAFERMON_SIDECAR_URL"] + "/v1/ingest/events"
        kind = "application/json" if FLAW == "wrong_content_type" else "application/x-ndjson"
        body = "".join(json.dumps(e) + "\n" for e in events).encode()
        for _attempt in range(5):
            request = urllib.request.Request(
                url, data=body, method="POST", headers={"Content-Type": kind}
            )
            try:
                with urllib.request.urlopen(request, timeout=5):
                    return True
            except urllib.error.HTTPError as exc:
                wait = float(exc.headers.get("Retry-After") or 0.05)
                time.sleep(0.05 if FLAW == "ignore_retry_after" else wait)
            except OSError:
                time.sleep(0.1)
        return False

    def answer(self, request: dict) -> dict:
        op = request["op"]
        if op == "hello":
            return {"language": "rogue", "protocol": 1, **SDK}
        if op == "init":
            self.env = request["env"]
            return {}
        if op == "start":
            entity = {"type": request["entity_type"], "id": str(uuid.uuid4())}
            if request.get("business_key"):
                entity["business_key"] = request["business_key"]
            job = {"app": request["app"], "entity": entity, "metadata": request.get("metadata")}
            self.handles[request["handle"]] = job
            self.pending.append(self.event(job, "started"))
            return {"entity_id": entity["id"]}
        if op == "finish":
            metrics = {"duration_s": 0.1, "cpu_user_s": 0, "cpu_system_s": 0, "mem_max_mb": 9.0}
            event = self.event(self.handles[request["handle"]], "finished", metrics=metrics)
            if FLAW != "lose_finished":
                self.pending.append(event)
            return {}
        if op in ("flush", "close"):
            events, self.pending = self.pending, []
            if FLAW == "reorder":
                events.reverse()
            delivered = self.post(events) if events else True
            if FLAW == "duplicate" and events:
                self.post(events)
            return {"delivered": delivered} if op == "flush" else {}
        if op == "stats":
            return {"stats": {"pending": len(self.pending)}}
        if op == "quit":
            return {}
        return {"_error": f"unknown op {op!r}"}


def main() -> None:
    rogue = Rogue()
    for line in sys.stdin:
        request = json.loads(line)
        answer = rogue.answer(request)
        if "_error" in answer:
            response = {
                "seq": request["seq"],
                "ok": False,
                "error": {"kind": "protocol", "message": answer["_error"]},
            }
        else:
            response = {"seq": request["seq"], "ok": True, **answer}
        sys.stdout.write(json.dumps(response) + "\n")
        sys.stdout.flush()
        if request["op"] == "quit":
            return


if __name__ == "__main__":
    main()
