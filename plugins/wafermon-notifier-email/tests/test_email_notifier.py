"""EmailNotifier against real aiosmtpd servers (smtp_sink.py), read back through their Maildir."""

from __future__ import annotations

import logging
import textwrap
import uuid
from datetime import UTC, datetime, timedelta

import attrs
import pytest
import wafermon_notifier_email.plugin
from email_helpers import PASSWORD, USER, free_port
from wafermon_notifier_email.notifier import EmailNotifier, EmailSettings

from wafermon import Alert, PermanentError, RetryableError, Secret
from wafermon.config import load_config
from wafermon.plugins import Plugins

STARTED = datetime(2026, 12, 4, 9, 30, tzinfo=UTC)


def make_alert(**changes) -> Alert:
    alert = Alert(
        rule="monitor-failed",
        severity="critical",
        summary="etch LOT-7 failed 3 times in a row",
        description="ChamberFault <pressure> & drop",
        site_id="fab1",
        fingerprint="fp-" + uuid.uuid4().hex,
        labels={"site_id": "fab1", "app": "etch", "business_key": "LOT-7"},
        starts_at=STARTED,
        url="http://dash.example/alerts",
    )
    return attrs.evolve(alert, **changes)


def notifier(port: int, **settings) -> EmailNotifier:
    settings.setdefault("start_tls", False)
    settings.setdefault("sender", "wafermon <alerts@wafermon.test>")
    settings.setdefault("to", ["oncall@example.org"])
    return EmailNotifier("mail", EmailSettings(host="127.0.0.1", port=port, timeout=5, **settings))


async def send(mail: EmailNotifier, alert: Alert) -> None:
    await mail.start()
    try:
        await mail.notify(alert)
    finally:
        await mail.close()


def delivered(server, alert: Alert):
    found = [m for m in server.messages() if m["X-Wafermon-Fingerprint"] == alert.fingerprint]
    return found


async def test_plain_smtp_delivers_text_and_html_to_every_recipient(plain_smtp):
    alert = make_alert()
    to = ["oncall@example.org", "Shift Lead <lead@example.org>"]
    await send(notifier(plain_smtp.port, to=to), alert)
    [message] = delivered(plain_smtp, alert)
    assert message["Subject"] == "[wafermon] [FIRING] critical: etch LOT-7 failed 3 times in a row"
    assert message["From"] == "wafermon <alerts@wafermon.test>"
    assert message["X-RcptTo"] == "oncall@example.org, lead@example.org"  # the envelope
    assert message["X-Wafermon-Status"] == "firing"
    assert message.get_content_type() == "multipart/alternative"
    text, page = message.get_payload()
    assert text.get_content_type() == "text/plain"
    assert page.get_content_type() == "text/html"
    body = text.get_payload(decode=True).decode()
    for line in ("Severity: critical", "Site: fab1", "App: etch", "Key: LOT-7", "Status: firing",
                 "ChamberFault <pressure> & drop", "Open in wafermon: http://dash.example/alerts"):  # fmt: skip
        assert line in body
    markup = page.get_payload(decode=True).decode()
    assert "ChamberFault &lt;pressure&gt; &amp; drop" in markup  # escaped in HTML
    assert '<a href="http://dash.example/alerts">' in markup


async def test_resolved_mail_threads_with_the_firing_one(plain_smtp):
    alert = make_alert()
    await send(notifier(plain_smtp.port), alert)
    done = attrs.evolve(alert, status="resolved", ends_at=STARTED + timedelta(minutes=5))
    await send(notifier(plain_smtp.port), done)
    firing, resolved = sorted(delivered(plain_smtp, alert), key=lambda m: m["X-Wafermon-Status"])
    assert resolved["Subject"].startswith("[wafermon] [RESOLVED] critical")
    assert firing["References"] == resolved["References"]
    assert firing["Message-ID"] != resolved["Message-ID"]
    assert (
        "Resolved: 2026-12-04T09:35:00Z"
        in resolved.get_payload()[0].get_payload(decode=True).decode()
    )


async def test_starttls_with_the_servers_ca_file(tls_smtp, certificate):
    alert = make_alert()
    await send(notifier(tls_smtp.port, start_tls=True, ca_file=certificate[0]), alert)
    assert len(delivered(tls_smtp, alert)) == 1


async def test_starttls_with_verification_off_for_a_test_server(tls_smtp):
    alert = make_alert()
    await send(notifier(tls_smtp.port, start_tls=True, verify_tls=False), alert)
    assert len(delivered(tls_smtp, alert)) == 1


async def test_an_unknown_certificate_is_permanent_and_says_what_to_set(tls_smtp):
    with pytest.raises(PermanentError, match=r"certificate does not verify.*set ca_file"):
        await send(notifier(tls_smtp.port, start_tls=True), make_alert())


async def test_start_tls_against_a_server_without_it_is_permanent(plain_smtp):
    with pytest.raises(PermanentError, match=r"STARTTLS"):
        await send(notifier(plain_smtp.port, start_tls=True, verify_tls=False), make_alert())


async def test_auth_with_the_right_password_delivers(auth_smtp, certificate):
    alert = make_alert()
    mail = notifier(auth_smtp.port, start_tls=True, ca_file=certificate[0], username=USER,
                    password=Secret(PASSWORD))  # fmt: skip
    await send(mail, alert)
    assert len(delivered(auth_smtp, alert)) == 1


async def test_auth_with_a_wrong_password_is_permanent_and_never_shows_it(
    auth_smtp, certificate, caplog
):
    caplog.set_level(logging.DEBUG)
    wrong = "not-the-Pa55word"
    mail = notifier(auth_smtp.port, start_tls=True, ca_file=certificate[0], username=USER,
                    password=Secret(wrong))  # fmt: skip
    with pytest.raises(PermanentError, match=r"login refused: 535") as info:
        await send(mail, make_alert())
    assert wrong not in str(info.value)
    assert wrong not in repr(mail.settings)
    assert wrong not in caplog.text
    assert not (await mail.health()).ok


async def test_no_login_where_the_server_requires_one_is_permanent(auth_smtp, certificate):
    mail = notifier(auth_smtp.port, start_tls=True, ca_file=certificate[0])
    with pytest.raises(PermanentError, match=r"530"):
        await send(mail, make_alert())


async def test_connection_refused_is_retryable():
    with pytest.raises(RetryableError, match=r"SMTP 127.0.0.1"):
        await send(notifier(free_port()), make_alert())


async def test_a_temporary_recipient_refusal_is_retryable(plain_smtp):
    with pytest.raises(RetryableError, match=r"451 4.3.0 mailbox busy"):
        await send(notifier(plain_smtp.port, to=["tempfail@example.org"]), make_alert())


async def test_a_permanent_recipient_refusal_is_permanent_with_the_answer(plain_smtp):
    with pytest.raises(PermanentError, match=r"550 5.1.1 no such user"):
        await send(notifier(plain_smtp.port, to=["nouser@example.org"]), make_alert())


async def test_a_partial_refusal_delivers_to_the_others_and_says_who_was_refused(plain_smtp):
    alert = make_alert()
    mail = notifier(plain_smtp.port, to=["oncall@example.org", "nouser@example.org"])
    with pytest.raises(PermanentError, match=r"delivered, but refused for nouser@example.org: 550"):
        await send(mail, alert)
    [message] = delivered(plain_smtp, alert)
    assert message["X-RcptTo"] == "oncall@example.org"


def test_settings_errors_name_the_keys(tmp_path):
    site = tmp_path / "site.yaml"
    site.write_text(
        textwrap.dedent(
            """\
            site_id: fab1
            notifiers:
              - name: a
                type: email
                config: {host: smtp.example.org, sender: alerts@example.org, to: [x@example.org]}
              - name: b
                type: email
                config: {host: h, start_tls: false, sender: "nobody", to: [x@example.org]}
              - name: c
                type: email
                config: {host: h, start_tls: false, sender: a@example.org, to: [x@example.org],
                         username: u, password: pw}
              - name: d
                type: email
                config: {host: h, start_tls: true, sender: a@example.org, to: [x@example.org],
                         username: u}
              - name: e
                type: email
                config: {host: h, start_tls: true, sender: a@example.org, to: [], pasword: x}
              - name: f
                type: email
                config: {host: h, start_tls: true, sender: a@example.org, to: [x@example.org, "y"]}
            """
        )
    )
    plugins = Plugins()
    plugins.register(wafermon_notifier_email.plugin, "email")
    problems = "\n".join(load_config(site).check(plugins))
    assert "notifiers[0].config.start_tls (line 5): required field missing" in problems
    assert "notifiers[1].config.sender (line 8): not an e-mail address: 'nobody'" in problems
    assert "notifiers[5].config.to (line 22): not e-mail addresses: 'y'" in problems
    assert "notifiers[2].config.start_tls (line 11): SMTP AUTH needs TLS" in problems
    assert "notifiers[3].config.password (line 15): username and password go together" in problems
    assert (
        "notifiers[4].config.pasword (line 19): unknown field; did you mean 'password'?" in problems
    )


def test_the_password_is_masked_by_config_show(tmp_path):
    site = tmp_path / "site.yaml"
    site.write_text(
        "site_id: fab1\nnotifiers:\n  - name: m\n    type: email\n    config:\n"
        "      {host: h, start_tls: true, sender: a@example.org, to: [x@example.org],"
        " username: u, password: hunter2-pw}\n"
    )
    plugins = Plugins()
    plugins.register(wafermon_notifier_email.plugin, "email")
    shown = load_config(site).masked(plugins)
    assert shown["notifiers"][0]["config"]["password"] == "***"
