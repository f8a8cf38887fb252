"""A real gateway process's alert engine delivering through the notifier plugins: an e-mail to
a real aiosmtpd server (read back from its Maildir) and a Slack message to the webhook
package's real receiver, for an alert that fires and then resolves from real events."""

from __future__ import annotations

import asyncio
import socket
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [
    str(ROOT / "plugins/wafermon-backend-webhook/tests"),
    str(ROOT / "plugins/wafermon-notifier-email/tests"),
]

from email_helpers import start_sink  # noqa: E402
from webhook_receiver import running_receiver  # noqa: E402

from wafermon import App, Entity, ErrorInfo, Event, encode_array  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(job: str, start: datetime, *, ok: bool) -> list[Event]:
    entity = Entity(type="job", id=job, business_key=job.upper())
    return [
        Event(event_id=uuid.uuid4(), kind="started", time=start, site_id="fab1",
              app=App(name="etch"), entity=entity),
        Event(event_id=uuid.uuid4(), kind="finished" if ok else "failed",
              time=start + timedelta(minutes=2), site_id="fab1", app=App(name="etch"),
              entity=entity, error=None if ok else ErrorInfo(type="ChamberFault", message="x")),
    ]  # fmt: skip


async def until(predicate, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for the notifications")
        await asyncio.sleep(0.2)


async def test_the_engine_mails_and_posts_to_slack_when_firing_and_resolved(tmp_path):
    (tmp_path / "smtp").mkdir()
    sink = start_sink(tmp_path / "smtp")
    smtp = next(sink)
    port = free_port()
    gateway_url = f"http://127.0.0.1:{port}"
    process = None
    try:
        async with running_receiver(secret=None) as chat:
            config = {
                "site_id": "fab1",
                "backends": [{"name": "managed", "type": "sql",
                              "config": {"url": f"sqlite+aiosqlite:///{tmp_path}/fab1.db"}}],
                "notifiers": [
                    {"name": "mail", "type": "email",
                     "config": {"host": "127.0.0.1", "port": smtp.port, "start_tls": False,
                                "sender": "alerts@wafermon.test", "to": ["oncall@example.org"]}},
                    {"name": "chat", "type": "slack", "config": {"url": chat.url + "/hook"}},
                ],
                "gateway": {"listen": f"127.0.0.1:{port}", "alerting": {
                    "enabled": True, "interval": "1s", "notifiers": ["mail", "chat"],
                    "group_interval": "0s",  # the resolved message at once
                    "monitors": [{"name": "etch-lots", "app": "etch",
                                  "schedule": {"every": "1h"}}],
                }},
            }  # fmt: skip
            site = tmp_path / "site.yaml"
            site.write_text(yaml.safe_dump(config))
            process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "wafermon.cli", "gateway", "-c", str(site),
                stdout=asyncio.subprocess.DEVNULL, stderr=(tmp_path / "gateway.log").open("wb"),
            )  # fmt: skip
            async with httpx.AsyncClient(timeout=10) as http:
                for _ in range(600):
                    try:
                        if (await http.get(gateway_url + "/v1/healthz")).status_code == 200:
                            break
                    except httpx.TransportError:
                        pass
                    await asyncio.sleep(0.1)
                else:
                    raise AssertionError((tmp_path / "gateway.log").read_text()[-3000:])
                now = datetime.now(UTC)
                ingest = gateway_url + "/v1/ingest/managed"
                headers = {"Content-Type": "application/json"}
                failed = encode_array(run("lot-1", now - timedelta(minutes=20), ok=False))
                assert (await http.post(ingest, content=failed, headers=headers)).is_success

                await until(lambda: len(smtp.messages()) == 1 and len(chat.accepted) == 1)
                ok = encode_array(run("lot-2", now - timedelta(minutes=10), ok=True))
                assert (await http.post(ingest, content=ok, headers=headers)).is_success
                await until(lambda: len(smtp.messages()) == 2 and len(chat.accepted) == 2)
                [alert] = (await http.get(gateway_url + "/v1/alerts?status=resolved")).json()[
                    "alerts"
                ]
    finally:
        if process is not None and process.returncode is None:
            process.terminate()
            await process.wait()
        sink.close()
    by_status = {m["X-Wafermon-Status"]: m for m in smtp.messages()}
    subject = " ".join(by_status["firing"]["Subject"].split())
    assert subject.startswith("[wafermon] [FIRING] critical: ")
    assert by_status["resolved"]["X-Wafermon-Fingerprint"] == alert["fingerprint"]
    assert by_status["firing"]["References"] == by_status["resolved"]["References"]
    firing, resolved = (r["body"] for r in chat.accepted)
    assert firing["text"].startswith("🔴 [FIRING] critical")
    assert "*Site:* fab1" in firing["blocks"][0]["text"]["text"]
    assert resolved["text"].startswith("✅ [RESOLVED] critical")
    sent = [n for n in alert["notifications"] if n["ok"]]
    assert sorted(n["notifier"] for n in sent) == ["chat", "chat", "mail", "mail"]
