"""Alert.title and Alert.facts: the words every notifier shows for an alert."""

from datetime import UTC, datetime

from wafermon import Alert


def test_title_and_facts_of_a_firing_then_resolved_alert():
    start = datetime(2026, 12, 4, 9, 30, tzinfo=UTC)
    alert = Alert(
        rule="monitor-late",
        severity="warning",
        summary="nightly   did not\nstart",
        labels={"site_id": "fab1", "app": "nightly", "monitor": "nightly-etl"},
        starts_at=start,
    )
    assert alert.title() == "[FIRING] warning: nightly did not start"
    assert alert.facts() == [
        ("Status", "firing"),
        ("Severity", "warning"),
        ("Site", "fab1"),
        ("App", "nightly"),
        ("Key", "nightly-etl"),
        ("Rule", "monitor-late"),
        ("Started", "2026-12-04T09:30:00Z"),
    ]
    done = Alert(rule="r", severity="info", summary="x" * 300, status="resolved", ends_at=start)
    assert done.title() == "[RESOLVED] info: " + "x" * 199 + "…"
    assert ("Resolved", "2026-12-04T09:30:00Z") in done.facts()
