"""Alert notifiers: ``webhook`` (the alert as signed JSON), ``slack`` and ``teams`` (one
readable message per alert, firing or resolved).

    notifiers:
      - name: oncall-hook
        type: webhook
        config:
          url: ${ALERT_HOOK_URL}
          secret: ${ALERT_HOOK_SECRET}     # HMAC-SHA256, the same signature as the backend's
          headers: {Authorization: "Bearer ${HOOK_TOKEN}"}
      - {name: chat, type: slack, config: {url: "${SLACK_WEBHOOK_URL}"}}
      - {name: ops, type: teams, config: {url: "${TEAMS_WEBHOOK_URL}"}}

Each ``notify`` makes exactly one POST: the gateway's alert engine owns retries, backoff and
the record of attempts. A 408/429/5xx answer, a timeout or a refused connection raises
RetryableError (with the receiver's Retry-After as ``retry_after``); any other answer raises
PermanentError with the receiver's answer (``posting.post_once``). The URL and header values
are secrets: never in a message, a log or ``config show``.
"""

from __future__ import annotations

import hashlib
from typing import Any

import attrs
import httpx
import orjson

from wafermon import Alert, Notifier, RetryableError, Seconds, Secret

from .emitter import _check_url
from .posting import HttpClientPart, post_once
from .presets import ALERT_PRESETS
from .signing import signature_headers

#: Same header the webhook backend sends; the same alert transition has the same id on every
#: attempt, so a receiver can drop a repeat.
DELIVERY_HEADER = "X-Wafermon-Delivery"
ALERT_FORMAT = "wafermon.alert.v1"


@attrs.frozen
class ChatSettings:
    """``config:`` of a ``type: slack`` or ``type: teams`` notifier: the incoming-webhook URL
    (a bearer credential, so a secret)."""

    url: Secret = attrs.field(validator=_check_url)
    timeout: Seconds = Seconds(10.0)
    verify_tls: bool = True


@attrs.frozen
class WebhookNotifierSettings:
    """``config:`` of a ``type: webhook`` notifier."""

    url: Secret = attrs.field(validator=_check_url)
    secret: Secret | None = None  # HMAC-SHA256 signing key (signing.py); no signature if unset
    headers: dict[str, Secret] = attrs.field(factory=dict)  # e.g. an Authorization header
    timeout: Seconds = Seconds(10.0)
    verify_tls: bool = True


def alert_json(alert: Alert) -> dict[str, Any]:
    """The alert as the webhook notifier posts it (``format`` names this shape's version)."""

    def when(value: Any) -> str | None:
        return value.isoformat().replace("+00:00", "Z") if value else None

    return {
        "format": ALERT_FORMAT,
        "fingerprint": alert.fingerprint,
        "status": alert.status,
        "rule": alert.rule,
        "severity": alert.severity,
        "summary": alert.summary,
        "description": alert.description,
        "site_id": alert.site_id,
        "labels": dict(alert.labels),
        "starts_at": when(alert.starts_at),
        "ends_at": when(alert.ends_at),
        "time": when(alert.time),
        "url": alert.url,
        "event_ids": [str(e) for e in alert.event_ids],
        "details": alert.details,
    }


def delivery_id(alert: Alert) -> str:
    """One id per alert transition (fingerprint, status, start), the same on every retry."""
    raw = f"{alert.fingerprint}|{alert.status}|{alert.starts_at}|{alert.ends_at}"
    return hashlib.sha256(raw.encode()).hexdigest()[:32]


class _PostingNotifier(HttpClientPart, Notifier):
    """What the three types share: an HTTP client, one POST per notify, health, stats."""

    def __init__(self, name: str, settings: Any) -> None:
        super().__init__(name, settings)
        self._client: httpx.AsyncClient | None = None
        self._stats = {"notifications": 0.0, "failures": 0.0}
        self._last_error = ""

    def body(self, alert: Alert) -> bytes:
        raise NotImplementedError

    def headers(self, alert: Alert, body: bytes) -> dict[str, str]:
        return {"Content-Type": "application/json"}

    async def notify(self, alert: Alert) -> None:
        if self._client is None:
            raise RetryableError(f"notifier {self.name!r} is not started")
        body = self.body(alert)
        try:
            await post_once(
                self._client,
                self.settings.url.reveal(),
                body,
                self.headers(alert, body),
                self.name,
            )
        except Exception as exc:
            self._stats["failures"] += 1
            self._last_error = str(exc)
            raise
        self._stats["notifications"] += 1
        self._last_error = ""


class WebhookNotifier(_PostingNotifier):
    """The alert as JSON (``alert_json``), signed like the webhook backend's batches."""

    Settings = WebhookNotifierSettings
    settings: WebhookNotifierSettings

    def body(self, alert: Alert) -> bytes:
        return orjson.dumps(alert_json(alert), default=str)  # details may hold anything

    def headers(self, alert: Alert, body: bytes) -> dict[str, str]:
        headers = {name: value.reveal() for name, value in self.settings.headers.items()}
        headers["Content-Type"] = "application/json"
        headers[DELIVERY_HEADER] = delivery_id(alert)
        if self.settings.secret:  # a fresh timestamp per attempt, inside the replay window
            headers.update(signature_headers(self.settings.secret.reveal(), body))
        return headers


class SlackNotifier(_PostingNotifier):
    """One Slack incoming-webhook message per alert (``presets.slack_alert``)."""

    Settings = ChatSettings

    def body(self, alert: Alert) -> bytes:
        return orjson.dumps(ALERT_PRESETS["slack"](alert))


class TeamsNotifier(_PostingNotifier):
    """One Microsoft Teams Adaptive Card per alert (``presets.teams_alert``)."""

    Settings = ChatSettings

    def body(self, alert: Alert) -> bytes:
        return orjson.dumps(ALERT_PRESETS["teams"](alert))
