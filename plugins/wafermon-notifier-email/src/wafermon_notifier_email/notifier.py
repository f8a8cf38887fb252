"""EmailNotifier: one e-mail per alert over SMTP, with STARTTLS or implicit TLS and AUTH.

Why aiosmtplib: an asyncio client with STARTTLS, TLS and AUTH built in, so the gateway's event
loop never waits on a slow mail server (the stdlib ``smtplib`` blocks) and no SMTP dialogue is
written by hand here.

Secure by default: the server's certificate is verified (system store, or ``ca_file``);
``verify_tls: false`` is for test servers. ``start_tls`` has no default on purpose: aiosmtplib's
own default upgrades only when the server offers it, which a man in the middle can suppress.
AUTH without TLS is refused by the settings (the password would cross the network in clear).

One ``notify`` is one SMTP session; the alert engine retries. Outcomes:
- refused connection, timeout, dropped session, a 4xx reply: RetryableError;
- a refused login (535), a 5xx reply, STARTTLS or AUTH not offered, a certificate that does not
  verify: PermanentError with the server's answer.
The password is a ``Secret``: never in a message, a log or ``config show``.
"""

from __future__ import annotations

import hashlib
import html
import ssl
from email.message import EmailMessage
from email.utils import formatdate, make_msgid, parseaddr
from pathlib import Path

import aiosmtplib
import attrs

from wafermon import (
    Alert,
    EmitterError,
    FieldValueError,
    Health,
    Notifier,
    PermanentError,
    RetryableError,
    Seconds,
    Secret,
)

SEVERITY_COLOURS = {"critical": "#d64545", "warning": "#e08a00", "info": "#2f6fdf"}
RESOLVED_COLOUR = "#2e9e5b"


def _address(_inst: object, attribute: attrs.Attribute, value: str) -> None:
    if not _is_address(value):
        raise FieldValueError(attribute.name, f"not an e-mail address: {value!r}")


def _addresses(_inst: object, attribute: attrs.Attribute, value: list[str]) -> None:
    if not value:
        raise FieldValueError(attribute.name, "name at least one recipient")
    bad = [v for v in value if not _is_address(v)]
    if bad:
        raise FieldValueError(attribute.name, f"not e-mail addresses: {', '.join(map(repr, bad))}")


def _is_address(value: str) -> bool:
    _name, addr = parseaddr(value)
    local, at, domain = addr.rpartition("@")
    return bool(at and local and "." in domain.strip(".") and not any(c.isspace() for c in addr))


def _port(_inst: object, attribute: attrs.Attribute, value: int) -> None:
    if not 1 <= value <= 65535:
        raise FieldValueError(attribute.name, f"must be between 1 and 65535, got {value}")


def _readable(_inst: object, attribute: attrs.Attribute, value: Path | None) -> None:
    if value is not None and not value.is_file():
        raise FieldValueError(attribute.name, f"no such file: {value}")


@attrs.frozen(kw_only=True)
class EmailSettings:
    """``config:`` of a ``type: email`` notifier."""

    host: str
    start_tls: bool  # required: upgrade with STARTTLS (true) or not (false)
    sender: str = attrs.field(validator=_address)  # the From: address
    to: list[str] = attrs.field(validator=_addresses)
    port: int = attrs.field(default=587, validator=_port)
    tls: bool = False  # implicit TLS from the first byte (port 465); excludes start_tls
    username: str | None = None
    password: Secret | None = None
    ca_file: Path | None = attrs.field(default=None, validator=_readable)
    verify_tls: bool = True  # false only for a test server with a self-signed certificate
    timeout: Seconds = Seconds(15.0)
    subject_prefix: str = "[wafermon]"

    def __attrs_post_init__(self) -> None:
        if self.tls and self.start_tls:
            raise FieldValueError(
                "tls", "tls (implicit, port 465) and start_tls exclude each other"
            )
        if (self.username is None) != (self.password is None):
            missing = "password" if self.password is None else "username"
            raise FieldValueError(missing, "username and password go together for SMTP AUTH")
        if self.username is not None and not (self.tls or self.start_tls):
            raise FieldValueError(
                "start_tls",
                "SMTP AUTH needs TLS (start_tls: true or tls: true); "
                "the password would cross the network in clear",
            )
        if self.ca_file is not None and not self.verify_tls:
            raise FieldValueError("verify_tls", "ca_file is set but verify_tls is false")


class EmailNotifier(Notifier):
    Settings = EmailSettings
    settings: EmailSettings

    def __init__(self, name: str, settings: EmailSettings) -> None:
        super().__init__(name, settings)
        self._tls_context: ssl.SSLContext | None = None
        self._stats = {"notifications": 0.0, "failures": 0.0}
        self._last_error = ""

    async def start(self) -> None:
        if self.settings.ca_file is not None:
            self._tls_context = ssl.create_default_context(cafile=str(self.settings.ca_file))

    async def health(self) -> Health:
        # An SMTP probe would log in for nothing; report the last notification's outcome.
        return Health(not self._last_error, self._last_error)

    def stats(self) -> dict[str, float]:
        return dict(self._stats)

    async def notify(self, alert: Alert) -> None:
        s = self.settings
        message = build_message(alert, s)
        try:
            refused, _reply = await aiosmtplib.send(
                message,
                hostname=s.host,
                port=s.port,
                use_tls=s.tls,
                start_tls=s.start_tls,
                validate_certs=s.verify_tls,
                tls_context=self._tls_context,
                username=s.username,
                password=s.password.reveal() if s.password else None,
                timeout=s.timeout,
            )
        except Exception as exc:  # noqa: BLE001 - every failure is classified for the engine
            error = self._classify(exc)
            self._stats["failures"] += 1
            self._last_error = str(error)
            raise error from None
        self._stats["notifications"] += 1
        self._last_error = ""
        if refused:  # some recipients took it: sending again would repeat it to them
            rejected = "; ".join(f"{who}: {r.code} {r.message}" for who, r in refused.items())
            raise PermanentError(f"{self.name}: delivered, but refused for {rejected}")

    def _classify(self, exc: BaseException) -> EmitterError:
        """The error the engine acts on, with the server's answer and never the password."""
        where = f"{self.name}: SMTP {self.settings.host}:{self.settings.port}"
        if isinstance(exc, aiosmtplib.SMTPAuthenticationError):
            return PermanentError(f"{where}: login refused: {exc.code} {exc.message}")
        if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
            answers = [f"{r.recipient}: {r.code} {r.message}" for r in exc.recipients]
            text = f"{where}: every recipient refused: {'; '.join(answers)}"
            if any(400 <= r.code < 500 for r in exc.recipients):
                return RetryableError(text)
            return PermanentError(text)
        if isinstance(exc, aiosmtplib.SMTPResponseException):
            text = f"{where}: the server answered {exc.code} {exc.message}"
            return RetryableError(text) if 400 <= exc.code < 500 else PermanentError(text)
        if isinstance(exc, aiosmtplib.SMTPNotSupported) or (
            type(exc) is aiosmtplib.SMTPException and "not supported" in str(exc)
        ):  # STARTTLS or AUTH not offered: the settings and the server disagree
            return PermanentError(f"{where}: {exc}")
        if isinstance(exc, ssl.SSLCertVerificationError) or isinstance(
            exc.__cause__ or exc.__context__, ssl.SSLCertVerificationError
        ):
            return PermanentError(
                f"{where}: the server's certificate does not verify ({exc}); set ca_file to its CA"
            )
        if isinstance(exc, aiosmtplib.SMTPException | OSError | TimeoutError):
            return RetryableError(f"{where}: {type(exc).__name__}: {exc}")
        return PermanentError(f"{where}: {type(exc).__name__}: {exc}")


def build_message(alert: Alert, settings: EmailSettings) -> EmailMessage:
    """The e-mail for one alert: text and HTML parts with the same facts.

    Each message gets its own Message-ID (a repeated notification must not be dropped as a
    duplicate) and ``References`` to one id per alert, so mail clients thread firing and
    resolved together.
    """
    domain = parseaddr(settings.sender)[1].rpartition("@")[2] or "wafermon"
    thread = hashlib.sha256(f"{alert.fingerprint}|{alert.starts_at}".encode()).hexdigest()[:24]
    message = EmailMessage()
    message["Subject"] = f"{settings.subject_prefix} {alert.title()}".strip()
    message["From"] = settings.sender
    message["To"] = ", ".join(settings.to)
    message["Date"] = formatdate(localtime=False, usegmt=True)
    message["Message-ID"] = make_msgid("wafermon", domain=domain)
    message["References"] = f"<alert-{thread}@{domain}>"
    message["X-Wafermon-Fingerprint"] = alert.fingerprint or "-"
    message["X-Wafermon-Status"] = alert.status
    message.set_content(text_body(alert))
    message.add_alternative(html_body(alert), subtype="html")
    return message


def text_body(alert: Alert) -> str:
    lines = [alert.title(), ""]
    lines += [f"{name}: {value}" for name, value in alert.facts()]
    if alert.description:
        lines += ["", alert.description]
    if alert.url:
        lines += ["", f"Open in wafermon: {alert.url}"]
    if alert.fingerprint:
        lines += ["", f"Fingerprint: {alert.fingerprint}"]
    return "\n".join(lines) + "\n"


def html_body(alert: Alert) -> str:
    colour = (
        RESOLVED_COLOUR
        if alert.status == "resolved"
        else SEVERITY_COLOURS.get(alert.severity, "#555")
    )
    rows = "".join(
        f'<tr><th align="left" style="padding:2px 12px 2px 0">{html.escape(name)}</th>'
        f"<td>{html.escape(value)}</td></tr>"
        for name, value in alert.facts()
    )
    parts = [
        f'<h2 style="color:{colour};font-family:sans-serif">{html.escape(alert.title())}</h2>',
        f'<table style="font-family:sans-serif;border-collapse:collapse">{rows}</table>',
    ]
    if alert.description:
        parts.append(f'<p style="font-family:sans-serif">{html.escape(alert.description)}</p>')
    if alert.url:
        href = html.escape(alert.url, quote=True)
        parts.append(f'<p><a href="{href}">Open in wafermon</a></p>')
    return "<html><body>" + "".join(parts) + "</body></html>\n"
