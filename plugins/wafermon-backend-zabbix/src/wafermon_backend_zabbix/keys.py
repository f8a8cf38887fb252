"""What an event becomes in Zabbix: one host per site, items per app, values per event.

- host ``<host_prefix><site_id>`` (e.g. ``wafermon-fab1``);
- a trapper LLD rule ``wafermon.apps`` discovers ``{#APP}``; its item prototypes are
  ``wafermon.status[{#APP}]`` (0 started, 1 progress, 2 finished, 3 failed),
  ``wafermon.duration[{#APP}]`` (s), ``wafermon.cpu[{#APP}]`` (user + system s),
  ``wafermon.mem[{#APP}]`` (MB) and ``wafermon.event[{#APP}]`` (the event's JSON, text);
- every value of an event carries the event's own time as ``clock`` and ``ns``, with the last
  three digits of ``ns`` taken from the event_id: Zabbix keeps one value per (item, clock, ns),
  so an event sent twice is stored once.
"""

from __future__ import annotations

from typing import Any

import orjson

from wafermon import Event, encode_event
from wafermon.events import Kind

DISCOVERY_KEY = "wafermon.apps"
APP_MACRO = "{#APP}"
STATUS_CODES = {Kind.STARTED: 0, Kind.PROGRESS: 1, Kind.FINISHED: 2, Kind.FAILED: 3}
#: Zabbix stores at most this many characters in a text value (and cuts silently).
TEXT_MAX = 65_535

# Zabbix item value types
FLOAT, TEXT, UNSIGNED = 0, 4, 3
#: item key base -> (name, value type, units)
ITEMS: dict[str, tuple[str, int, str]] = {
    "wafermon.status": (
        "Job status of {#APP} (0 started 1 progress 2 finished 3 failed)",
        UNSIGNED,
        "",
    ),
    "wafermon.duration": ("Job duration of {#APP}", FLOAT, "s"),
    "wafermon.cpu": ("Job CPU time of {#APP}", FLOAT, "s"),
    "wafermon.mem": ("Job peak memory of {#APP}", FLOAT, "MB"),
    "wafermon.event": ("Last wafermon event of {#APP}", TEXT, ""),
}
EVENT_ITEM = "wafermon.event"


def quote(param: str) -> str:
    """A key parameter, quoted by the rule Zabbix applies when LLD puts {#APP} in a key
    (``quote_key_param``): only when it starts with a quote or space or holds ``,`` or ``]``."""
    if not param.startswith(('"', " ")) and "," not in param and "]" not in param:
        return param
    return '"' + param.replace('"', '\\"') + '"'


def key(base: str, app: str) -> str:
    return f"{base}[{quote(app)}]"


def host_name(prefix: str, site_id: str) -> str:
    return prefix + site_id


def clock_ns(event: Event) -> tuple[int, int]:
    seconds = int(event.time.timestamp())
    return seconds, event.time.microsecond * 1000 + event.event_id.int % 1000


def event_text(event: Event) -> str:
    """The event's JSON, within Zabbix's text limit: a too-long stack is shortened to fit."""
    text = encode_event(event).decode()
    if len(text) <= TEXT_MAX or event.error is None or not event.error.stack:
        return text
    doc: dict[str, Any] = orjson.loads(text)
    excess = len(text) - TEXT_MAX + 32
    doc["error"]["stack"] = doc["error"]["stack"][: max(0, len(event.error.stack) - excess)]
    return orjson.dumps(doc).decode()


def values(event: Event, host: str, *, with_event: bool) -> list[tuple[str, str]]:
    """(key, value) pairs one event sends, numbers as text as the protocol wants them."""
    app, metrics = event.app.name, event.metrics
    found = [(key("wafermon.status", app), str(STATUS_CODES[Kind(event.kind)]))]
    if metrics.duration_s is not None:
        found.append((key("wafermon.duration", app), repr(float(metrics.duration_s))))
    if metrics.cpu_user_s is not None or metrics.cpu_system_s is not None:
        cpu = (metrics.cpu_user_s or 0.0) + (metrics.cpu_system_s or 0.0)
        found.append((key("wafermon.cpu", app), repr(float(cpu))))
    if metrics.mem_max_mb is not None:
        found.append((key("wafermon.mem", app), repr(float(metrics.mem_max_mb))))
    if with_event:
        found.append((key(EVENT_ITEM, app), event_text(event)))
    return found
