"""Chat presets: turn a batch into readable Slack or Microsoft Teams incoming-webhook messages.

Only failures are worth a person's attention, so a preset posts nothing for started, progress
or finished events. Each failed job or subjob becomes one message naming site, app, business
key and error; when one batch holds more failures than ``digest_after``, a single digest
message lists the first few and counts the rest, so a burst (a tool going down mid-lot) is one
notification, not a hundred. Builders return plain JSON-ready dicts and never see secrets.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from wafermon import Event

MESSAGE_CHARS = 500  # an error message longer than this is cut in chat


def _short(text: str, limit: int = MESSAGE_CHARS) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _key(event: Event) -> str:
    entity = event.entity
    key = entity.business_key or entity.id
    return f"{key} / {entity.sub_key}" if entity.sub_key else key


def _facts(event: Event) -> list[tuple[str, str]]:
    error = event.error
    assert error is not None  # a failed event always has one (the model checks it)
    facts = [
        ("Site", event.site_id),
        ("App", event.app.name + (f" {event.app.version}" if event.app.version else "")),
        ("Key", _key(event)),
        ("Error", f"{error.type}: {_short(error.message)}" if error.message else error.type),
        ("Time", event.time.isoformat(timespec="seconds").replace("+00:00", "Z")),
    ]
    if event.entity.type == "subjob":
        facts.insert(3, ("Job", event.entity.parent_id or ""))
    return facts


def _title(event: Event) -> str:
    what = event.entity.type.capitalize()
    return f"{what} failed: {_key(event)} ({event.app.name}, {event.site_id})"


def _digest_title(events: Sequence[Event]) -> str:
    sites = sorted({e.site_id for e in events})
    first, last = min(e.time for e in events), max(e.time for e in events)
    span = (
        f"{first:%H:%M:%S} to {last:%H:%M:%SZ}" if first.date() == last.date() else "several days"
    )
    return (
        f"{len(events)} failures at {', '.join(sites[:3])}{' …' if len(sites) > 3 else ''} ({span})"
    )


def _digest_line(event: Event) -> str:
    error = event.error
    assert error is not None
    return f"{event.app.name} · {_key(event)} · {error.type}: {_short(error.message, 120)}"


# -- Slack: https://api.slack.com/messaging/webhooks (text + Block Kit) ----------------------


def _slack_escape(text: str) -> str:
    """Slack's mrkdwn treats &, < and > as control characters."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_message(event: Event) -> dict[str, Any]:
    title = _slack_escape(_title(event))
    lines = "\n".join(f"*{name}:* {_slack_escape(value)}" for name, value in _facts(event))
    return {
        "text": title,  # what notifications and clients without blocks show
        "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": f"*{title}*\n{lines}"}}],
    }


def slack_digest(events: Sequence[Event], max_lines: int) -> dict[str, Any]:
    title = _slack_escape(_digest_title(events))
    lines = [f"• {_slack_escape(_digest_line(e))}" for e in events[:max_lines]]
    if len(events) > max_lines:
        lines.append(f"… and {len(events) - max_lines} more")
    return {
        "text": title,
        "blocks": [
            {
                "type": "section",
                "text": {"type": "mrkdwn", "text": f"*{title}*\n" + "\n".join(lines)},
            }
        ],
    }


# -- Microsoft Teams: an Adaptive Card in a message (Workflows and connector webhooks) --------


def _teams_card(title: str, body: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "type": "message",
        "attachments": [
            {
                "contentType": "application/vnd.microsoft.card.adaptive",
                "content": {
                    "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                    "type": "AdaptiveCard",
                    "version": "1.4",
                    "body": [
                        {"type": "TextBlock", "text": title, "weight": "Bolder", "wrap": True},
                        *body,
                    ],
                },
            }
        ],
    }


def teams_message(event: Event) -> dict[str, Any]:
    facts = [{"title": name, "value": value} for name, value in _facts(event)]
    return _teams_card(_title(event), [{"type": "FactSet", "facts": facts}])


def teams_digest(events: Sequence[Event], max_lines: int) -> dict[str, Any]:
    lines = [_digest_line(e) for e in events[:max_lines]]
    if len(events) > max_lines:
        lines.append(f"… and {len(events) - max_lines} more")
    blocks = [
        {"type": "TextBlock", "text": line, "wrap": True, "spacing": "None"} for line in lines
    ]
    return _teams_card(_digest_title(events), blocks)


#: preset name -> (one message per failure, digest of a burst)
PRESETS = {
    "slack": (slack_message, slack_digest),
    "teams": (teams_message, teams_digest),
}


# -- alerts: one message per alert, firing or resolved (the notifiers) -------------------------

SEVERITY_MARKS = {"critical": "🔴", "warning": "🟠", "info": "🔵"}
RESOLVED_MARK = "✅"


def slack_alert(alert: Any) -> dict[str, Any]:
    mark = RESOLVED_MARK if alert.status == "resolved" else SEVERITY_MARKS.get(alert.severity, "")
    title = _slack_escape(alert.title())
    lines = [f"*{name}:* {_slack_escape(value)}" for name, value in alert.facts()]
    if alert.description:
        lines.append(_slack_escape(_short(alert.description, 1500)))
    if alert.url:
        lines.append(f"<{alert.url}|Open in wafermon>")
    return {
        "text": f"{mark} {title}".strip(),
        "blocks": [
            {
                "type": "section",
                "text": {"type": "mrkdwn", "text": f"{mark} *{title}*\n" + "\n".join(lines)},
            }
        ],
    }


def teams_alert(alert: Any) -> dict[str, Any]:
    facts = [{"title": name, "value": value} for name, value in alert.facts()]
    body: list[dict[str, Any]] = [{"type": "FactSet", "facts": facts}]
    if alert.description:
        body.append({"type": "TextBlock", "text": _short(alert.description, 1500), "wrap": True})
    card = _teams_card(alert.title(), body)
    if alert.url:
        content = card["attachments"][0]["content"]
        content["actions"] = [
            {"type": "Action.OpenUrl", "title": "Open in wafermon", "url": alert.url}
        ]
    return card


#: notifier type -> the message of one alert
ALERT_PRESETS = {"slack": slack_alert, "teams": teams_alert}
