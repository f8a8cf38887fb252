"""The health view lists a gateway's streams (gateway.streams) with their lag per partition."""

from __future__ import annotations

from types import SimpleNamespace

from wafermon_dashboard.views.health import _target


def _texts(component) -> list[str]:
    """Every string in a Dash component tree."""
    if isinstance(component, str | int | float):
        return [str(component)]
    if isinstance(component, list | tuple):
        return [t for c in component for t in _texts(c)]
    return _texts(getattr(component, "children", None) or [])


def test_streams_table_shows_lag_dead_letters_and_state():
    body = {
        "status": "degraded",
        "store": {"name": "managed", "type": "sql", "ok": True, "detail": ""},
        "sources": {},
        "streams": {
            "events": {
                "type": "KafkaConsumer",
                "ok": False,
                "detail": "RetryableError: Kafka fetch failed",
                "lag": {"wm/0": 0, "wm/3": 1200},
                "lag_total": 1200,
                "dead_lettered": 2,
            }
        },
    }
    out = _target(SimpleNamespace(api=SimpleNamespace(central=False)), body)
    (streams,) = [c for c in out if getattr(c, "id", None) == "health-streams"]
    texts = _texts(streams)
    assert "events" in texts
    assert "1,200" in texts
    assert "wm/3: 1200" in texts  # partitions with nothing waiting are left out
    assert "RetryableError: Kafka fetch failed" in texts


def test_no_streams_no_table():
    body = {"status": "ok", "store": {"ok": True}, "sources": {}}
    out = _target(SimpleNamespace(api=SimpleNamespace(central=False)), body)
    assert not [c for c in out if getattr(c, "id", None) == "health-streams"]
