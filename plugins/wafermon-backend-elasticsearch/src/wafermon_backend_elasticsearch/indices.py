"""Index names, the index template the emitter installs, and how documents are laid out.

One index per UTC day of the event's ``time``: ``<prefix>-YYYY.MM.DD``. Retention deletes whole
indices (cheap, and the only kind available everywhere: no ILM, no delete-by-query needed).
Reads use the wildcard ``<prefix>-*``.

The document is the wire event as is (so Kibana shows the same field names as the API), with
``_id`` = ``event_id``: a re-sent event hits the same id and is refused as a duplicate (``create``),
never stored twice.
"""

from __future__ import annotations

import re
from datetime import date, datetime

INDEX_PREFIX_PATTERN = re.compile(r"[a-z][a-z0-9_-]{0,199}")
_DAY = "%Y.%m.%d"


def index_for(prefix: str, day: date) -> str:
    return f"{prefix}-{day.strftime(_DAY)}"


def day_of_index(prefix: str, index: str) -> date | None:
    """The day a daily index holds, or None for an index this plugin did not name."""
    rest = index.removeprefix(prefix + "-")
    if rest == index:
        return None
    try:
        return datetime.strptime(rest, _DAY).date()
    except ValueError:
        return None


_KEYWORD = {"type": "keyword", "ignore_above": 1024}
_DOUBLE = {"type": "double"}


def template_body(prefix: str, *, shards: int, replicas: int, metadata_depth: int) -> dict:
    """The composable index template for ``<prefix>-*``.

    - ``dynamic: strict`` at the top: the wire schema is closed, so an unknown field is a bug
      to see, not a field to invent.
    - ``time`` is ``date_nanos``: events carry microseconds, and ``date`` would round them to
      milliseconds and break the (time, event_id) order pages are cut by.
    - ``metadata`` is ``flattened``: free-form keys cannot blow up the mapping (one field for
      the whole object; a dynamic object would add a field per key, and two events using one
      key with different types would conflict), and its leaves stay searchable as keywords
      (``metadata.tool: etch-07`` in Kibana). What it refuses is nesting deeper than
      ``metadata_depth``: that event is dead-lettered with ES's reason.
    - error message and stack are ``text`` (searchable words), not keywords.
    """
    keyword = _KEYWORD
    return {
        "index_patterns": [f"{prefix}-*"],
        "priority": 200,
        "_meta": {"managed_by": "wafermon-backend-elasticsearch", "schema_version": 1},
        "template": {
            "settings": {"number_of_shards": shards, "number_of_replicas": replicas},
            "mappings": {
                "dynamic": "strict",
                "properties": {
                    "schema_version": {"type": "short"},
                    "event_id": keyword,
                    "kind": keyword,
                    "time": {"type": "date_nanos"},
                    "site_id": keyword,
                    "app": {"properties": {"name": keyword, "version": keyword, "app_id": keyword}},
                    "entity": {
                        "properties": {
                            "type": keyword,
                            "id": keyword,
                            "parent_id": keyword,
                            "business_key": keyword,
                            "sub_key": keyword,
                        }
                    },
                    "metrics": {
                        "properties": {
                            "duration_s": _DOUBLE,
                            "cpu_user_s": _DOUBLE,
                            "cpu_system_s": _DOUBLE,
                            "mem_max_mb": _DOUBLE,
                            "progress": _DOUBLE,
                        }
                    },
                    "metadata": {"type": "flattened", "depth_limit": metadata_depth},
                    "error": {
                        "properties": {
                            "type": keyword,
                            "message": {"type": "text"},
                            "stack": {"type": "text", "index": False},
                        }
                    },
                    "source": {
                        "properties": {
                            "host": keyword,
                            "pid": {"type": "long"},
                            "sdk": keyword,
                            "sdk_version": keyword,
                        }
                    },
                },
            },
        },
    }
