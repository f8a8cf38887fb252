"""The AWS limits the backend enforces itself (moto enforces almost none of them), and the
pure builders: log batches, metric datums, X-Ray documents, filter patterns."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from wafermon_backend_cloudwatch import logs, metrics, xray
from wafermon_backend_cloudwatch.adapter import filter_pattern
from wafermon_backend_cloudwatch.aws import AwsSettings, log_group_name, log_stream_name

from wafermon import Query

NOW_MS = 1_764_320_400_000


def items(count: int, size: int = 10, step_ms: int = 1, start: int = NOW_MS) -> list[logs.LogItem]:
    return [logs.item(start + i * step_ms, b"x" * size, uuid.uuid4()) for i in range(count)]


def within_limits(batch: list[logs.LogItem]) -> bool:
    stamps = [i.timestamp for i in batch]
    return (
        len(batch) <= logs.MAX_BATCH_EVENTS
        and sum(i.size for i in batch) <= logs.MAX_BATCH_BYTES
        and stamps == sorted(stamps)
        and stamps[-1] - stamps[0] < 24 * 3600 * 1000
    )


def test_count_limit_splits_at_10000():
    cut = list(logs.batches(items(25_001)))
    assert [len(b) for b in cut] == [10_000, 10_000, 5_001]
    assert all(within_limits(b) for b in cut)


def test_byte_limit_counts_utf8_plus_26():
    # 11 messages of 100,000 bytes: 1,100,286 counted bytes do not fit one call (moto took it).
    cut = list(logs.batches(items(11, size=100_000)))
    assert [len(b) for b in cut] == [10, 1]
    # exactly at the limit still fits: 1,048,576 = 4 * (262,118 + 26) + 0
    exact = [logs.item(NOW_MS, b"y" * 262_118, uuid.uuid4()) for _ in range(4)]
    assert [len(b) for b in logs.batches(exact)] == [4]


def test_24_hour_span_and_order():
    hour = 3600 * 1000
    stamps = [NOW_MS + 30 * hour, NOW_MS, NOW_MS + 23 * hour, NOW_MS + 25 * hour]
    cut = list(logs.batches([logs.item(t, b"m", uuid.uuid4()) for t in stamps]))
    assert [[i.timestamp for i in b] for b in cut] == [
        [NOW_MS, NOW_MS + 23 * hour],
        [NOW_MS + 25 * hour, NOW_MS + 30 * hour],
    ]
    assert all(within_limits(b) for b in cut)


def test_refusals_for_size_age_and_future():
    big = logs.item(NOW_MS, b"z" * (logs.MAX_EVENT_BYTES - 25), uuid.uuid4())
    assert "bytes" in logs.refusal(big, NOW_MS)
    ok = logs.item(NOW_MS, b"z" * (logs.MAX_EVENT_BYTES - 26), uuid.uuid4())
    assert logs.refusal(ok, NOW_MS) is None
    old = logs.item(NOW_MS - 14 * 86_400_000, b"m", uuid.uuid4())
    assert "14 days" in logs.refusal(old, NOW_MS)
    ahead = logs.item(NOW_MS + 2 * 3_600_000, b"m", uuid.uuid4())
    assert "future" in logs.refusal(ahead, NOW_MS)


def test_names_are_made_valid_for_cloudwatch():
    assert log_group_name("/wafermon/{site_id}", "fab1") == "/wafermon/fab1"
    assert log_group_name("/w/{site_id}/{app}", "fab1", "etch main*") == "/w/fab1/etch_main_"
    assert log_stream_name("{app}", "fab1", "a:b*c") == "a_b_c"


def test_unknown_placeholder_and_too_many_dimensions_are_config_errors():
    with pytest.raises(ValueError, match="unknown placeholder host"):
        AwsSettings(log_group="/w/{host}")
    with pytest.raises(ValueError, match="at most 28 dimensions"):
        AwsSettings(dimensions={f"d{i}": "v" for i in range(29)})


def test_metric_datums_aggregate_per_minute_with_two_dimension_sets(make_event):
    t = datetime(2026, 12, 1, 10, 0, 5, tzinfo=UTC)
    events = [
        make_event("finished", time=t, duration_s=10),
        make_event("failed", time=t + timedelta(seconds=20), duration_s=30),
        make_event("finished", time=t + timedelta(seconds=40), duration_s=20),
        make_event("finished", time=t + timedelta(seconds=50), parent_id="job-x", duration_s=1),
    ]
    datums, skipped = metrics.metric_data(events, {"Line": "L3"}, now=t + timedelta(minutes=5))
    assert skipped == 0
    by = {
        (d["MetricName"], tuple((x["Name"], x["Value"]) for x in d["Dimensions"])): d
        for d in datums
    }
    site_app = (("Site", "fab1"), ("App", "etch"), ("Line", "L3"))
    duration = by[("JobDuration", site_app)]["StatisticValues"]
    assert duration == {"SampleCount": 3, "Sum": 60.0, "Minimum": 10.0, "Maximum": 30.0}
    assert by[("JobsFailed", (("Site", "fab1"), ("Line", "L3")))]["StatisticValues"]["Sum"] == 1
    assert by[("SubjobsFinished", site_app)]["StatisticValues"]["SampleCount"] == 1
    assert all(d["Timestamp"] == t.replace(second=0) for d in datums)
    assert all(len(d["Dimensions"]) <= 30 for d in datums)


def test_metrics_skip_events_beyond_two_weeks_and_chunk_at_1000(make_event):
    now = datetime(2026, 12, 1, tzinfo=UTC)
    old = make_event("finished", time=now - timedelta(days=15))
    datums, skipped = metrics.metric_data([old], {}, now=now)
    assert (datums, skipped) == ([], 1)
    many = [
        make_event("finished", app=f"app{i}", time=now - timedelta(minutes=1), duration_s=1)
        for i in range(700)
    ]
    datums, _ = metrics.metric_data(many, {}, now=now)
    # two metrics (JobsFinished, JobDuration) x (700 per-app cells + 1 per-site cell)
    assert [len(c) for c in metrics.chunks(datums)] == [1000, 402]


def test_xray_ids_derive_from_the_job(make_event):
    started = make_event("started", entity_id="lot-7")
    finished = make_event("failed", entity_id="lot-7", duration_s=2)
    sub = make_event("finished", entity_id="w1", parent_id="lot-7", sub_key="W01", duration_s=1)
    job_doc = xray.document(started)
    done_doc = xray.document(finished)
    sub_doc = xray.document(sub)
    assert job_doc["id"] == done_doc["id"]  # the complete segment replaces the in-progress one
    assert job_doc["trace_id"] == done_doc["trace_id"] == sub_doc["trace_id"]
    assert job_doc["in_progress"] is True
    assert done_doc["end_time"] - done_doc["start_time"] == pytest.approx(2)
    assert done_doc["fault"] is True
    assert done_doc["cause"]["exceptions"][0]["type"] == "ChamberFault"
    assert sub_doc["type"] == "subsegment"
    assert sub_doc["parent_id"] == job_doc["id"]
    assert sub_doc["name"] == "W01"
    # a second build (a retry, another process) gives identical documents
    assert xray.documents([started, finished, sub]) == xray.documents([sub, finished, started])
    [trace_epoch] = {int(d["trace_id"].split("-")[1], 16) for d in (job_doc, sub_doc)}
    assert started.time.timestamp() - trace_epoch < 30 * 86400
    assert json.loads(xray.documents([finished])[0])["id"] == done_doc["id"]
    assert xray.document(make_event("progress")) is None


def test_a_late_started_never_reopens_a_finished_segment(make_event):
    started = make_event("started", entity_id="lot-8")
    finished = make_event("finished", entity_id="lot-8", duration_s=1)
    [done] = xray.documents([finished])
    [segment] = xray.completed_ids([done])
    assert xray.documents([started], completed={segment}) == []
    assert len(xray.documents([started])) == 1


def test_filter_pattern_pushes_down_only_plain_values():
    pattern = filter_pattern(Query(site_id="fab1", app="etch", status="running"))
    assert pattern == (
        '{ $.site_id = "fab1" && $.app.name = "etch" && '
        '($.kind = "progress" || $.kind = "started") }'
    )
    assert filter_pattern(Query(business_key='LOT "7" }')) is None
    assert filter_pattern(Query()) is None


def test_rejected_log_events_info_names_exactly_the_refused_events():
    from wafermon_backend_cloudwatch.emitter import _rejected

    chunk = items(6)
    ids = [i.event_id for i in chunk]
    # AWS: tooOld/expired end indexes are exclusive, tooNew's start index inclusive.
    refused = _rejected({"tooOldLogEventEndIndex": 2, "tooNewLogEventStartIndex": 5}, chunk)
    assert set(refused) == {ids[0], ids[1], ids[5]}
    assert "too old" in refused[ids[0]]
    assert "future" in refused[ids[5]]
    assert set(_rejected({"expiredLogEventEndIndex": 1}, chunk)) == {ids[0]}
    assert _rejected({}, chunk) == {}
