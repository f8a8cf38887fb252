"""CloudWatchEmitter: events to CloudWatch Logs, metrics to CloudWatch, jobs to X-Ray.

Order within ``emit``: logs, then metrics, then traces. A failure after some parts succeeded
makes the router resend the batch: log lines may then repeat (the query adapter drops repeated
event ids), while metrics and trace documents are remembered per event id (bounded) and not
sent twice by this process; X-Ray ids are derived from the job, so even a resend from another
process replaces rather than duplicates a segment. Events CloudWatch Logs will never take (too
large, too old, too far ahead, or refused in ``rejectedLogEventsInfo``) are a PermanentError
naming exactly them, once everything else of the batch is stored.
"""

from __future__ import annotations

import logging
from collections import OrderedDict, defaultdict
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from uuid import UUID

import attrs
from botocore.exceptions import BotoCoreError, ClientError

from wafermon import (
    Emitter,
    Event,
    FieldValueError,
    Health,
    PermanentError,
    encode_event,
    ndjson_of,
)

from . import logs, metrics, xray
from .aws import (
    AwsSettings,
    Clients,
    delivery_error,
    error_code,
    log_group_name,
    log_stream_name,
    logs_health,
)

log = logging.getLogger(__name__)
REMEMBERED = 100_000  # event ids whose metrics / trace documents this process has sent


@attrs.frozen(kw_only=True)
class CloudWatchSettings(AwsSettings):
    """``config:`` of a ``type: cloudwatch`` backend."""

    logs: bool = True
    metrics: bool = True
    xray: bool = False
    xray_origin: str | None = None  # e.g. AWS::EC2::Instance, AWS::ECS::Container
    retention_days: int | None = attrs.field(default=None, validator=lambda *a: _retention(*a))


#: The values CloudWatch Logs accepts for a log group's retention (PutRetentionPolicy).
RETENTION_DAYS = (
    1,
    3,
    5,
    7,
    14,
    30,
    60,
    90,
    120,
    150,
    180,
    365,
    400,
    545,
    731,
    1096,
    1827,
    2192,
    2557,
    2922,
    3288,
    3653,
)


def _retention(_inst: object, attribute: attrs.Attribute, value: int | None) -> None:
    if value is not None and value not in RETENTION_DAYS:
        allowed = ", ".join(map(str, RETENTION_DAYS))
        raise FieldValueError(attribute.name, f"CloudWatch accepts only {allowed}; got {value}")


class _Remembered:
    """A bounded set of event ids, oldest forgotten first."""

    def __init__(self, size: int) -> None:
        self._ids: OrderedDict[UUID, None] = OrderedDict()
        self._size = size

    def new(self, events: Iterable[Event]) -> list[Event]:
        return [e for e in events if e.event_id not in self._ids]

    def add(self, events: Iterable[Event]) -> None:
        for event in events:
            self._ids[event.event_id] = None
        while len(self._ids) > self._size:
            self._ids.popitem(last=False)


class CloudWatchEmitter(Emitter):
    Settings = CloudWatchSettings
    settings: CloudWatchSettings

    def __init__(self, name: str, settings: CloudWatchSettings) -> None:
        super().__init__(name, settings)
        self._clients = Clients(settings)
        self._metered = _Remembered(REMEMBERED)
        self._traced = _Remembered(REMEMBERED)
        self._completed: OrderedDict[str, None] = OrderedDict()  # finished segment ids
        self._stats = {
            "log_calls": 0.0,
            "log_events": 0.0,
            "metric_calls": 0.0,
            "metrics_skipped_old": 0.0,
            "trace_documents": 0.0,
            "refused_events": 0.0,
            "metrics_refused": 0.0,
            "trace_documents_refused": 0.0,
        }

    async def close(self) -> None:
        await self._clients.close()

    def stats(self) -> dict[str, float]:
        return dict(self._stats)

    async def health(self) -> Health:
        return await logs_health(self._clients)

    async def emit(self, batch: Sequence[Event]) -> None:
        events = list(batch)
        refused: dict[UUID, str] = {}
        if self.settings.logs:
            refused = await self._put_logs(events, _lines(batch, events))
        kept = [e for e in events if e.event_id not in refused]
        if self.settings.metrics:
            await self._put_metrics(self._metered.new(kept))
        if self.settings.xray:
            await self._put_traces(self._traced.new(kept))
        if refused:
            self._stats["refused_events"] += len(refused)
            reasons = "; ".join(f"{i}: {why}" for i, why in list(refused.items())[:3])
            raise PermanentError(
                f"CloudWatch Logs refused {len(refused)} event(s): {reasons}", list(refused)
            )

    # -- logs -----------------------------------------------------------------------------------

    async def _put_logs(self, events: list[Event], lines: list[bytes]) -> dict[UUID, str]:
        """Each event's line as the sidecar spooled it is its log message (not re-encoded)."""
        s = self.settings
        now_ms = int(datetime.now(UTC).timestamp() * 1000)
        streams: dict[tuple[str, str], list[logs.LogItem]] = defaultdict(list)
        refused: dict[UUID, str] = {}
        known: dict[tuple[str, str], tuple[str, str]] = {}  # (site, app) -> (group, stream)
        for event, line in zip(events, lines, strict=True):
            entry = logs.item(int(event.time.timestamp() * 1000), line, event.event_id)
            why = logs.refusal(entry, now_ms)
            if why:
                refused[event.event_id] = why
                continue
            key = (event.site_id, event.app.name)
            names = known.get(key)
            if names is None:
                names = known[key] = (
                    log_group_name(s.log_group, *key),
                    log_stream_name(s.log_stream, *key),
                )
            streams[names].append(entry)
        client = await self._clients.get("logs")
        for (group, stream), items in streams.items():
            for chunk in logs.batches(items):
                refused.update(await self._put_chunk(client, group, stream, chunk))
        return refused

    async def _put_chunk(
        self, client: object, group: str, stream: str, chunk: list[logs.LogItem]
    ) -> dict[UUID, str]:
        request = {
            "logGroupName": group,
            "logStreamName": stream,
            "logEvents": [{"timestamp": i.timestamp, "message": i.message} for i in chunk],
        }
        try:
            try:
                answer = await client.put_log_events(**request)  # type: ignore[attr-defined]
            except ClientError as exc:
                if error_code(exc) != "ResourceNotFoundException":
                    raise
                # New, or deleted behind our back: create and send once more. Still missing
                # then is retryable (RETRYABLE_CODES): never a reason to drop events.
                await self._create(client, group, stream)
                answer = await client.put_log_events(**request)  # type: ignore[attr-defined]
        except (ClientError, BotoCoreError) as exc:
            error = delivery_error(f"PutLogEvents {group} {stream}", exc)
            if isinstance(error, PermanentError):  # this call's events only; others are stored
                return {entry.event_id: str(error) for entry in chunk}
            raise error from exc
        self._stats["log_calls"] += 1
        self._stats["log_events"] += len(chunk)
        return _rejected(answer.get("rejectedLogEventsInfo") or {}, chunk)

    async def _create(self, client: object, group: str, stream: str) -> None:
        """Create the group (with its retention) and the stream; existing ones are fine."""
        for call, kwargs in (
            ("create_log_group", {"logGroupName": group}),
            ("create_log_stream", {"logGroupName": group, "logStreamName": stream}),
        ):
            try:
                await getattr(client, call)(**kwargs)
            except ClientError as exc:
                if error_code(exc) != "ResourceAlreadyExistsException":
                    raise
            else:
                if call == "create_log_group" and self.settings.retention_days:
                    await client.put_retention_policy(  # type: ignore[attr-defined]
                        logGroupName=group, retentionInDays=self.settings.retention_days
                    )

    def _derived_failure(self, call: str, exc: Exception, stat: str) -> None:
        """Metrics and traces are derived from events the logs (or the other backends) keep:
        a call AWS refuses for good is logged and counted, never a reason to dead-letter the
        events. A transient failure raises, and the batch is retried."""
        error = delivery_error(call, exc)
        if not isinstance(error, PermanentError):
            raise error from exc
        self._stats[stat] += 1
        log.error("%s: %s (the events are kept; only this derived data is lost)", self.name, error)

    # -- metrics ---------------------------------------------------------------------------------

    async def _put_metrics(self, events: list[Event]) -> None:
        datums, skipped = metrics.metric_data(events, self.settings.dimensions)
        self._stats["metrics_skipped_old"] += skipped
        if datums:
            client = await self._clients.get("cloudwatch")
            for chunk in metrics.chunks(datums):
                try:
                    await client.put_metric_data(
                        Namespace=self.settings.namespace, MetricData=chunk
                    )
                except (ClientError, BotoCoreError) as exc:
                    self._derived_failure("PutMetricData", exc, "metrics_refused")
                    continue
                self._stats["metric_calls"] += 1
        self._metered.add(events)

    # -- X-Ray -----------------------------------------------------------------------------------

    async def _put_traces(self, events: list[Event]) -> None:
        docs = xray.documents(events, self.settings.xray_origin, self._completed)
        if docs:
            client = await self._clients.get("xray")
            for chunk in xray.chunks(docs):
                try:
                    answer = await client.put_trace_segments(TraceSegmentDocuments=chunk)
                except (ClientError, BotoCoreError) as exc:
                    self._derived_failure("PutTraceSegments", exc, "trace_documents_refused")
                    continue
                unprocessed = answer.get("UnprocessedTraceSegments") or []
                if unprocessed:
                    first = unprocessed[0]
                    raise delivery_error(
                        "PutTraceSegments",
                        ClientError(
                            {
                                "Error": {
                                    "Code": "ServiceUnavailable",
                                    "Message": f"{len(unprocessed)} unprocessed, e.g. {first}",
                                }
                            },
                            "PutTraceSegments",
                        ),
                    )
                self._stats["trace_documents"] += len(chunk)
                for segment in xray.completed_ids(chunk):
                    self._completed[segment] = None
                while len(self._completed) > REMEMBERED:
                    self._completed.popitem(last=False)
        self._traced.add(events)


def _lines(batch: Sequence[Event], events: list[Event]) -> list[bytes]:
    """Each event's NDJSON line as spooled; encoded afresh if the bytes do not line up."""
    lines = ndjson_of(batch).split(b"\n")[:-1]
    if len(lines) != len(events):
        lines = [encode_event(e) for e in events]
    return lines


def _rejected(info: dict, chunk: list[logs.LogItem]) -> dict[UUID, str]:
    """Map PutLogEvents' rejectedLogEventsInfo (index bounds) to the refused events."""
    refused: dict[UUID, str] = {}
    if "tooNewLogEventStartIndex" in info:
        for entry in chunk[info["tooNewLogEventStartIndex"] :]:
            refused[entry.event_id] = "CloudWatch Logs: too far in the future"
    if "tooOldLogEventEndIndex" in info:
        for entry in chunk[: info["tooOldLogEventEndIndex"]]:
            refused[entry.event_id] = "CloudWatch Logs: too old"
    if "expiredLogEventEndIndex" in info:
        for entry in chunk[: info["expiredLogEventEndIndex"]]:
            refused[entry.event_id] = "CloudWatch Logs: older than the group's retention"
    return refused
