"""``wafermon alerts test-notification`` as a user runs it: a real process, a real site config,
real receivers (the webhook package's signed Starlette receiver, the e-mail package's aiosmtpd
sink). Their helper modules are imported from those packages' test folders."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [
    str(ROOT / "plugins/wafermon-backend-webhook/tests"),
    str(ROOT / "plugins/wafermon-notifier-email/tests"),
]

from email_helpers import start_sink  # noqa: E402
from webhook_receiver import SECRET, running_receiver  # noqa: E402


async def wafermon(*args: str) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "wafermon.cli", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(process.communicate(), 60)
    return process.returncode, out.decode(), err.decode()


def site(tmp_path: Path, notifiers: list[dict]) -> str:
    path = tmp_path / "site.yaml"
    path.write_text(yaml.safe_dump({"site_id": "fab1", "notifiers": notifiers}))
    return str(path)


def hook(url: str, **config) -> dict:
    return {"name": "oncall", "type": "webhook", "config": {"url": url, "secret": SECRET, **config}}


async def test_a_delivered_test_notification_exits_0(tmp_path):
    async with running_receiver() as receiver:
        config = site(tmp_path, [hook(receiver.url + "/hook")])
        code, out, err = await wafermon(
            "alerts", "test-notification", "--config", config, "--notifier", "oncall"
        )
    assert code == 0, err
    assert out == "notifier 'oncall' (type webhook): test notification delivered (firing, info)\n"
    [request] = receiver.requests
    assert request["signed"] is True
    body = request["body"]
    assert body["rule"] == "test-notification"
    assert body["status"] == "firing"
    assert body["summary"] == "Test notification from wafermon site fab1"
    assert body["fingerprint"].startswith("test-notification-")


async def test_a_server_error_exits_1_saying_the_engine_would_retry(tmp_path):
    async with running_receiver() as receiver:
        await receiver.command(plan=[{"status": 429, "retry_after": "30", "body": "slow down"}])
        config = site(tmp_path, [hook(receiver.url + "/hook")])
        code, out, err = await wafermon(
            "alerts", "test-notification", "-c", config, "--notifier", "oncall"
        )
    assert code == 1
    assert out == ""
    assert "error: notifier 'oncall' (type webhook): test notification failed: " in err
    assert "answered 429: slow down" in err
    assert "retryable: the alert engine would try again, the receiver asked to wait 30s" in err


async def test_a_refusal_exits_1_with_the_answer_and_never_the_secret(tmp_path):
    async with running_receiver() as receiver:
        await receiver.command(plan=[{"status": 404, "body": "no such hook"}])
        url = receiver.url + "/hook?token=tok-s3cr3t"
        config = site(tmp_path, [hook(url, headers={"Authorization": "Bearer hdr-s3cr3t"})])
        code, _out, err = await wafermon(
            "alerts", "test-notification", "-c", config, "--notifier", "oncall",
            "--status", "resolved",
        )  # fmt: skip
    assert code == 1
    assert "answered 404: no such hook (permanent: the alert engine would not retry)" in err
    assert receiver.requests[0]["body"]["status"] == "resolved"
    for secret in ("tok-s3cr3t", "hdr-s3cr3t", SECRET):
        assert secret not in err


async def test_nobody_listening_is_retryable(tmp_path):
    config = site(tmp_path, [hook("http://127.0.0.1:9/hook")])
    code, _out, err = await wafermon(
        "alerts", "test-notification", "-c", config, "--notifier", "oncall"
    )
    assert code == 1
    assert "ConnectError posting to the webhook (retryable" in err


async def test_an_email_notifier_through_a_real_smtp_server(tmp_path):
    sink = start_sink(tmp_path)
    server = next(sink)
    try:
        mail = {"host": "127.0.0.1", "port": server.port, "start_tls": False,
                "sender": "alerts@wafermon.test", "to": ["oncall@example.org"]}  # fmt: skip
        config = site(tmp_path, [{"name": "mail", "type": "email", "config": mail}])
        code, out, err = await wafermon(
            "alerts", "test-notification", "-c", config, "--notifier", "mail",
            "--severity", "critical",
        )  # fmt: skip
        assert code == 0, err
        assert "notifier 'mail' (type email): test notification delivered" in out
        [message] = server.messages()
        assert " ".join(message["Subject"].split()) == (  # unfolded
            "[wafermon] [FIRING] critical: Test notification from wafermon site fab1"
        )
    finally:
        sink.close()


@pytest.mark.parametrize(
    ("notifiers", "name", "expected"),
    [
        ([], "oncall", "no notifier named 'oncall' under notifiers: (have: none)"),
        (
            [{"name": "chat", "type": "slack", "config": {"url": "ftp://x"}}],
            "chat",
            "notifiers[0].config.url (line 3): must be an http:// or https:// URL",
        ),
        (
            [{"name": "pager", "type": "pagerduty", "config": {}}],
            "pager",
            "no installed plugin provides notifier type 'pagerduty'",
        ),
    ],
)
async def test_config_problems_exit_1_naming_the_key(tmp_path, notifiers, name, expected):
    config = site(tmp_path, notifiers)
    code, _out, err = await wafermon(
        "alerts", "test-notification", "-c", config, "--notifier", name
    )
    assert code == 1
    assert expected in err
