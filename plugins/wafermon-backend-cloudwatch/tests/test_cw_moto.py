"""The emitter and the query adapter against moto_server over HTTP (see conftest)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import orjson
import pytest
import wafermon_backend_cloudwatch.plugin
from aiobotocore.session import get_session
from wafermon_backend_cloudwatch import xray
from wafermon_backend_cloudwatch.adapter import (
    CloudWatchQueryAdapter,
    CloudWatchSourceSettings,
    QueryTooBroad,
)
from wafermon_backend_cloudwatch.emitter import CloudWatchEmitter, CloudWatchSettings

from wafermon import (
    EventBatch,
    FieldValueError,
    PermanentError,
    Query,
    Secret,
    TrendQuery,
    encode_event,
    to_json_dict,
)
from wafermon.config import load_config
from wafermon.plugins import Plugins


def _secrets(aws: dict) -> dict:
    return dict(
        aws,
        access_key_id=Secret(aws["access_key_id"]),
        secret_access_key=Secret(aws["secret_access_key"]),
    )


def emitter(aws: dict, **settings) -> CloudWatchEmitter:
    return CloudWatchEmitter("aws", CloudWatchSettings(**_secrets(aws), **settings))


def adapter(aws: dict, **settings) -> CloudWatchQueryAdapter:
    return CloudWatchQueryAdapter("aws", CloudWatchSourceSettings(**_secrets(aws), **settings))


def client(aws: dict, service: str):
    return get_session().create_client(
        service,
        endpoint_url=aws["endpoint_url"],
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


async def emit(aws: dict, events, **settings) -> CloudWatchEmitter:
    em = emitter(aws, **settings)
    await em.start()
    try:
        await em.emit(events)
    finally:
        await em.close()
    return em


async def test_one_json_line_per_event_in_a_group_per_site_and_stream_per_app(aws, make_event):
    events = [
        make_event(site_id=site, app=app) for site in ("fab1", "fab2") for app in ("etch", "litho")
    ] * 1
    events += [make_event(site_id="fab1", app="etch") for _ in range(3)]
    await emit(aws, list(reversed(events)), metrics=False)  # out of order on purpose
    group = aws["log_group"].format(site_id="fab1")
    async with client(aws, "logs") as logs:
        streams = await logs.describe_log_streams(logGroupName=group)
        assert sorted(s["logStreamName"] for s in streams["logStreams"]) == ["etch", "litho"]
        got = await logs.get_log_events(
            logGroupName=group, logStreamName="etch", startFromHead=True
        )
    wanted = [e for e in events if e.site_id == "fab1" and e.app.name == "etch"]
    assert [g["message"] for g in got["events"]] == [encode_event(e).decode() for e in wanted]
    assert [g["timestamp"] for g in got["events"]] == [
        int(e.time.timestamp() * 1000) for e in wanted
    ]


async def test_events_cloudwatch_would_refuse_are_permanent_and_the_rest_stored(aws, make_event):
    now = datetime.now(UTC)
    good = [make_event(), make_event()]
    old = make_event(time=now - timedelta(days=20))
    ahead = make_event(time=now + timedelta(hours=3))
    em = emitter(aws, metrics=False)
    await em.start()
    with pytest.raises(PermanentError, match="refused 2 event") as info:
        await em.emit([good[0], old, ahead, good[1]])
    await em.close()
    assert sorted(map(str, info.value.event_ids)) == sorted(
        [str(old.event_id), str(ahead.event_id)]
    )
    got = await adapter(aws).query(Query(site_id="fab1"))
    assert [e.event_id for e in got.events] == [e.event_id for e in good]


async def test_adapter_filters_what_moto_does_not(aws, make_event):
    events = [
        make_event("started", entity_id="lot-1", business_key="LOT-1"),
        make_event("failed", entity_id="lot-1", business_key="LOT-1"),
        make_event("started", entity_id="lot-2", business_key="LOT-2"),
        make_event("finished", entity_id="lot-2", business_key="LOT-2"),
        make_event("failed", app="litho", entity_id="lot-3"),
        make_event("failed", site_id="fab2", entity_id="lot-4"),
    ]
    await emit(aws, events, metrics=False)
    source = adapter(aws)
    query = Query(site_id="fab1", app="etch", status="failed")
    # moto returns every event of the stream for this pattern: the filtering below is ours.
    async with client(aws, "logs") as logs:
        raw = await logs.filter_log_events(
            logGroupName=aws["log_group"].format(site_id="fab1"),
            logStreamNames=["etch"],
            filterPattern='{ $.kind = "failed" }',
        )
    assert len(raw["events"]) == 4, "moto now applies JSON patterns: tighten this test"
    got = await source.query(query)
    assert [e.event_id for e in got.events] == [events[1].event_id]
    got = await source.query(Query(business_key="LOT-2"))  # no site: every group, per event
    assert [e.event_id for e in got.events] == [events[2].event_id, events[3].event_id]
    got = await source.query(Query(status="failed"))
    assert {e.event_id for e in got.events} == {events[i].event_id for i in (1, 4, 5)}
    got = await source.query(Query(start=events[2].time, end=events[4].time))
    assert [e.event_id for e in got.events] == [events[2].event_id, events[3].event_id]
    await source.close()


async def test_pages_and_duplicates(aws, make_event):
    events = [make_event(entity_id=f"lot-{i}") for i in range(25)]
    await emit(aws, events[:15], metrics=False)
    await emit(aws, events[10:], metrics=False)  # a resend: 10..14 stored twice
    source = adapter(aws)
    pages, cursor = [], None
    while True:
        result = await source.query(Query(site_id="fab1", limit=10, cursor=cursor))
        pages.append([e.event_id for e in result.events])
        if result.next_cursor is None:
            break
        cursor = result.next_cursor
    await source.close()
    assert [len(p) for p in pages] == [10, 10, 5]
    assert [i for p in pages for i in p] == [e.event_id for e in events]


async def test_a_too_broad_query_says_so(aws, make_event):
    await emit(aws, [make_event() for _ in range(5)], metrics=False)
    with pytest.raises(QueryTooBroad, match="more than 3 log events"):
        await adapter(aws, max_scan_events=3).query(Query(site_id="fab1"))


async def test_metrics_and_trends(aws, make_event):
    t = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=20)
    events = [
        make_event("finished", time=t + timedelta(seconds=1), duration_s=10),
        make_event("failed", time=t + timedelta(seconds=2), duration_s=30),
        make_event("failed", time=t + timedelta(minutes=5, seconds=1), duration_s=5),
        make_event("failed", app="litho", time=t + timedelta(minutes=5, seconds=2)),
    ]
    # moto's GetMetricData ignores the namespace once dimensions are given: a dimension unique
    # to this test keeps other tests' data out.
    dims = {"Line": "L3", "Run": aws["namespace"]}
    em = await emit(aws, events, dimensions=dims)
    assert em.stats()["metric_calls"] == 1
    source = adapter(aws, dimensions=dims)
    # minute periods from a whole minute: every event's minute is one bucket
    window = {"site_id": "fab1", "start": t, "end": t + timedelta(minutes=15), "period": 60}
    [failed] = await source.trends(TrendQuery(metric="JobsFailed", **window))
    assert (failed.name, failed.app) == ("fab1", None)
    assert [(p - t, v) for p, v in failed.points] == [
        (timedelta(0), 1.0),
        (timedelta(minutes=5), 2.0),
    ]
    [etch] = await source.trends(TrendQuery(metric="JobsFailed", app="etch", **window))
    assert [v for _, v in etch.points] == [1.0, 1.0]
    [duration] = await source.trends(TrendQuery(metric="JobDuration", stat="max", **window))
    assert [v for _, v in duration.points] == [30.0, 5.0]
    [average] = await source.trends(TrendQuery(metric="JobDuration", stat="avg", **window))
    assert [v for _, v in average.points] == [20.0, 5.0]  # (10 + 30) / 2 from StatisticValues
    # One series per app, found through ListMetrics; litho has a failure but no duration.
    by_app = await source.trends(TrendQuery(metric="JobsFailed", by_app=True, **window))
    assert [(s.name, [v for _, v in s.points]) for s in by_app] == [
        ("etch", [1.0, 1.0]),
        ("litho", [1.0]),
    ]
    by_app = await source.trends(TrendQuery(metric="JobDuration", by_app=True, **window))
    assert [s.name for s in by_app] == ["etch"]
    with pytest.raises(FieldValueError, match="unknown metric"):
        await source.trends(TrendQuery(metric="Nope", **window))
    await source.close()


async def test_trends_by_app_keep_only_the_exact_dimension_set(aws, make_event):
    """ListMetrics matches dimension subsets; a series with one more dimension (another
    deployment's Line) is not this source's and must not become an app line."""
    t = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=10)
    run = {"Run": aws["namespace"]}
    await emit(aws, [make_event("failed", time=t)], dimensions=run)
    await emit(aws, [make_event("failed", app="cmp", time=t)], dimensions={**run, "Line": "L9"})
    async with client(aws, "cloudwatch") as cw:  # the service does return both
        listed = await cw.list_metrics(
            Namespace=aws["namespace"],
            MetricName="JobsFailed",
            Dimensions=[{"Name": "Site", "Value": "fab1"}, {"Name": "Run", "Value": run["Run"]}],
        )
    apps = {d["Value"] for m in listed["Metrics"] for d in m["Dimensions"] if d["Name"] == "App"}
    assert apps == {"etch", "cmp"}
    source = adapter(aws, dimensions=run)
    window = {"site_id": "fab1", "start": t, "end": t + timedelta(minutes=5), "period": 60}
    series = await source.trends(TrendQuery(metric="JobsFailed", by_app=True, **window))
    assert [s.name for s in series] == ["etch"]
    await source.close()


async def test_a_retried_batch_sends_metrics_once_per_process(aws, make_event):
    t = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=10)
    events = [make_event("failed", time=t + timedelta(seconds=i)) for i in range(3)]
    dims = {"Run": aws["namespace"]}  # see test_metrics_and_trends
    em = emitter(aws, dimensions=dims)
    await em.start()
    await em.emit(events)
    await em.emit(events)  # the router's resend after a later part failed
    await em.close()
    source = adapter(aws, dimensions=dims)
    [series] = await source.trends(
        TrendQuery(
            metric="JobsFailed", site_id="fab1", start=t, end=t + timedelta(minutes=5), period=60
        )
    )
    assert [v for _, v in series.points] == [3.0]
    await source.close()


async def test_xray_segments_and_subsegments_without_duplicates(aws, make_event):
    lot = f"lot-{aws['namespace']}"  # unique: moto keeps traces of earlier runs
    job = dict(entity_id=lot, business_key="LOT-9")
    events = [
        make_event("started", **job),
        make_event("started", entity_id="w1", parent_id=lot, sub_key="W01"),
        make_event("finished", entity_id="w1", parent_id=lot, sub_key="W01", duration_s=1),
        make_event("failed", duration_s=5, **job),
    ]
    em = await emit(aws, events, metrics=False, logs=False, xray=True)
    await emit(aws, events, metrics=False, logs=False, xray=True)  # another process resends
    assert em.stats()["trace_documents"] == 2  # one per entity: the last state of each
    trace = xray.trace_id(events[0], lot)
    async with client(aws, "xray") as x:
        traces = (await x.batch_get_traces(TraceIds=[trace]))["Traces"]
    [found] = traces
    # moto keeps every document it was sent; X-Ray replaces by id. Same ids both times:
    ids = {s["Id"] for s in found["Segments"]}
    assert ids == {xray.segment_id(events[0], lot), xray.segment_id(events[1], "w1")}
    assert len(found["Segments"]) == 4


def test_plugin_registers_both_kinds_by_name_and_config_builds(tmp_path, moto_endpoint):
    plugins = Plugins()
    plugins.register(wafermon_backend_cloudwatch.plugin, "cloudwatch")
    site = tmp_path / "site.yaml"
    site.write_text(
        "site_id: fab1\n"
        "backends:\n  - name: aws\n    type: cloudwatch\n"
        f"    config: {{endpoint_url: '{moto_endpoint}', region: us-east-1, xray: true,"
        " secret_access_key: sekrit, dimensions: {Line: L3}}\n"
        "sources:\n  - {name: aws, type: cloudwatch, config: {log_group: '/w/{host}'}}\n"
    )
    loaded = load_config(site)
    [built] = loaded.build("backends", plugins)
    assert type(built).__name__ == "CloudWatchEmitter"
    assert "sekrit" not in repr(built.settings)
    with pytest.raises(Exception, match=r"sources\[0\].config.log_group.*unknown placeholder"):
        loaded.build("sources", plugins)


async def test_health_reports_an_unreachable_endpoint(aws):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    em = emitter(dict(aws, endpoint_url=f"http://127.0.0.1:{port}"), max_attempts=1, timeout=2)
    health = await em.health()
    await em.close()
    assert not health.ok
    assert "DescribeLogGroups" in health.detail
    assert "testing" not in health.detail
    await asyncio.sleep(0)


async def test_created_groups_get_the_configured_retention(aws, make_event):
    await emit(aws, [make_event()], metrics=False, retention_days=30)
    async with client(aws, "logs") as logs:
        prefix = aws["log_group"].format(site_id="")
        groups = (await logs.describe_log_groups(logGroupNamePrefix=prefix))["logGroups"]
    assert [g.get("retentionInDays") for g in groups] == [30]
    with pytest.raises(ValueError, match="retention_days: CloudWatch accepts only 1, 3"):
        CloudWatchSettings(retention_days=10)


async def test_a_spooled_line_is_the_log_message_as_received(aws, make_event):
    events = [make_event(), make_event()]
    # As a client may have sent them: other key order, spaces. Stored exactly so.
    lines = [orjson.dumps(to_json_dict(e), option=orjson.OPT_SORT_KEYS) for e in events]
    lines = [line.replace(b'":', b'": ') for line in lines]
    await emit(aws, EventBatch.from_ndjson(b"\n".join(lines) + b"\n"), metrics=False)
    async with client(aws, "logs") as logs:
        got = await logs.get_log_events(
            logGroupName=aws["log_group"].format(site_id="fab1"),
            logStreamName="etch",
            startFromHead=True,
        )
    assert [g["message"].encode() for g in got["events"]] == lines
    read = await adapter(aws).query(Query(site_id="fab1"))
    assert read.events == events


async def test_a_site_that_never_wrote_has_no_events_and_a_deleted_stream_is_recreated(
    aws, make_event
):
    source = adapter(aws)
    assert (await source.query(Query(site_id="fab9"))).events == []
    first, second = make_event(), make_event()
    em = emitter(aws, metrics=False)
    await em.start()
    await em.emit([first])
    async with client(aws, "logs") as logs:  # someone deletes the stream while we run
        await logs.delete_log_stream(
            logGroupName=aws["log_group"].format(site_id="fab1"), logStreamName="etch"
        )
    await em.emit([second])
    await em.close()
    got = await source.query(Query(site_id="fab1"))
    assert [e.event_id for e in got.events] == [second.event_id]
    await source.close()
