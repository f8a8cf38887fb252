"""ElasticsearchEmitter: bulk-indexes event batches into daily indices, exactly once in effect.

Each event is a ``create`` with ``_id`` = ``event_id`` in the index of its UTC day, so a batch
the router sends again (after a timeout, a restart) finds its events there already: ES answers
409 for those, which counts as stored. Per-item results decide what happens to each event:

- 201 created, or 409 already there: stored;
- 429 (queue full, disk flood stage) and 5xx: sent again, only those, after a short backoff,
  a few times within one ``emit``; if some still fail, ``emit`` raises RetryableError and the
  router sends the batch later. Items ES already took are remembered (bounded), so the retry
  does not send them again;
- any other 4xx (a mapping or parsing error: ES will refuse this document every time): the
  event goes to the dead-letter path with ES's reason (PermanentError naming just those events).

A failure of the whole request (connection refused, timeout, 5xx, auth) is RetryableError:
nothing is dropped for a server problem, and the router's breaker shows it.

The documents are the batch's NDJSON lines as the sidecar received and spooled them
(``ndjson_of``): only ``event_id`` and ``time`` are read from each line, and no Event is built.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import OrderedDict
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta

import attrs
import msgspec
from elasticsearch import ApiError, TransportError

from wafermon import (
    ByteSize,
    Emitter,
    Event,
    Health,
    PermanentError,
    RetryableError,
    Seconds,
    ndjson_of,
)

from .indices import day_of_index, index_for, template_body
from .settings import ConnectionSettings, cluster_health, make_client

log = logging.getLogger(__name__)

#: Event ids whose outcome ES already gave (stored, or refused with a reason) are remembered
#: this many at a time, so a batch sent again sends only what is still open.
SETTLED_MEMORY = 200_000


@attrs.frozen(kw_only=True)
class EmitterSettings(ConnectionSettings):
    """``config:`` of a ``type: elasticsearch`` backend."""

    install_template: bool = True  # put the index template at start (needs manage_index_templates)
    shards: int = 1
    replicas: int = 1
    metadata_depth: int = 20  # deeper metadata is refused by the mapping (dead-lettered)
    retention_days: int | None = None  # delete daily indices older than this, hourly
    max_bulk_bytes: ByteSize = ByteSize(5 * 2**20)  # one _bulk request body at most
    item_attempts: int = 4  # tries per 429/5xx item inside one emit, before RetryableError
    item_backoff: Seconds = Seconds(0.2)  # first pause between them; doubles each time


def _reason(result: dict) -> str:
    """ES's per-item error as one line: type and reason, and the cause when there is one."""
    error = result.get("error") or {}
    if not isinstance(error, dict):
        return f"{result.get('status')}: {error}"
    text = f"{result.get('status')} {error.get('type')}: {error.get('reason')}"
    cause = error.get("caused_by")
    if isinstance(cause, dict):
        text += f" (caused by {cause.get('type')}: {cause.get('reason')})"
    return text


def _retryable(status: int) -> bool:
    return status == 429 or status >= 500


class _Key(msgspec.Struct):
    """What places a document: msgspec reads these two fields and skips the rest of the line."""

    event_id: str
    time: str  # validated wire time: YYYY-MM-DDThh:mm:ss[.ffffff]Z, always UTC


_keys = msgspec.json.Decoder(_Key).decode_lines


class ElasticsearchEmitter(Emitter):
    Settings = EmitterSettings
    settings: EmitterSettings

    def __init__(self, name: str, settings: EmitterSettings) -> None:
        super().__init__(name, settings)
        self._client = make_client(settings)
        self._settled: OrderedDict[str, str | None] = OrderedDict()  # id -> None | refusal
        self._retention: asyncio.Task | None = None
        self._stats = dict.fromkeys(
            ("stored", "duplicates", "rejected", "item_retries", "bulk_requests"), 0.0
        )

    async def start(self) -> None:
        if self.settings.install_template:
            body = template_body(
                self.settings.index_prefix,
                shards=self.settings.shards,
                replicas=self.settings.replicas,
                metadata_depth=self.settings.metadata_depth,
            )
            try:
                await self._client.indices.put_index_template(
                    name=self.settings.index_prefix, **body
                )
            except (ApiError, TransportError) as exc:
                raise RetryableError(f"cannot install the index template: {exc}") from exc
        if self.settings.retention_days is not None:
            self._retention = asyncio.create_task(self._retention_loop())

    async def close(self) -> None:
        if self._retention is not None:
            self._retention.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._retention
        await self._client.close()

    async def health(self) -> Health:
        return await cluster_health(self._client)

    def stats(self) -> dict[str, float]:
        return dict(self._stats)

    # -- emit -------------------------------------------------------------------------------

    async def emit(self, batch: Sequence[Event]) -> None:
        refused: dict[str, str] = {}
        pending: list[tuple[str, bytes]] = []
        ndjson = ndjson_of(batch)
        lines = ndjson.split(b"\n")[:-1]  # each line ends in a newline
        actions: dict[str, bytes] = {}  # day -> the action's start, per distinct day
        prefix = self.settings.index_prefix
        for key, line in zip(_keys(ndjson), lines, strict=True):
            event_id = key.event_id
            if event_id in self._settled:
                outcome = self._settled[event_id]
                if outcome is not None:
                    refused[event_id] = outcome
                continue
            day = key.time[:10]
            start = actions.get(day)
            if start is None:
                index = index_for(prefix, date.fromisoformat(day))
                start = actions[day] = b'{"create":{"_index":"%s","_id":"' % index.encode()
            pending.append((event_id, start + event_id.encode() + b'"}}\n' + line + b"\n"))
        delay = float(self.settings.item_backoff)
        last_problem = ""
        for attempt in range(self.settings.item_attempts):
            if attempt:
                self._stats["item_retries"] += len(pending)
                await asyncio.sleep(delay)
                delay *= 2
            again: list[tuple[str, bytes]] = []
            for chunk in self._chunks(pending):
                results = await self._bulk(chunk)
                for (event_id, line), result in zip(chunk, results, strict=True):
                    status = int(result.get("status", 0))
                    if status in (200, 201, 409):
                        self._stats["duplicates" if status == 409 else "stored"] += 1
                        self._settle(event_id, None)
                    elif _retryable(status):
                        again.append((event_id, line))
                        last_problem = _reason(result)
                    else:
                        refused[event_id] = _reason(result)
                        self._stats["rejected"] += 1
                        self._settle(event_id, refused[event_id])
            pending = again
            if not pending:
                break
        if pending:
            raise RetryableError(
                f"Elasticsearch did not take {len(pending)} of {len(batch)} events "
                f"after {self.settings.item_attempts} tries: {last_problem}"
            )
        if refused:
            reasons = "; ".join(f"{i}: {r}" for i, r in list(refused.items())[:5])
            more = f" (and {len(refused) - 5} more)" if len(refused) > 5 else ""
            raise PermanentError(
                f"Elasticsearch refused {len(refused)} events: {reasons}{more}", list(refused)
            )

    def _chunks(self, lines: list[tuple[str, bytes]]):
        chunk: list[tuple[str, bytes]] = []
        size = 0
        for item in lines:
            if chunk and size + len(item[1]) > self.settings.max_bulk_bytes:
                yield chunk
                chunk, size = [], 0
            chunk.append(item)
            size += len(item[1])
        if chunk:
            yield chunk

    async def _bulk(self, chunk: list[tuple[str, bytes]]) -> list[dict]:
        """One _bulk request; the per-item results in request order."""
        self._stats["bulk_requests"] += 1
        try:
            answer = await self._client.bulk(
                operations=b"".join(line for _, line in chunk),
                filter_path="items.*.status,items.*.error",
            )
        except (ApiError, TransportError) as exc:
            raise RetryableError(f"bulk request failed: {exc}") from exc
        items = answer.body.get("items") or []
        if len(items) != len(chunk):
            raise RetryableError(f"bulk answered {len(items)} results for {len(chunk)} events")
        return [next(iter(item.values())) for item in items]

    def _settle(self, event_id: str, outcome: str | None) -> None:
        self._settled[event_id] = outcome
        if len(self._settled) > SETTLED_MEMORY:
            self._settled.popitem(last=False)

    # -- retention --------------------------------------------------------------------------

    async def _retention_loop(self) -> None:
        while True:
            try:
                await self.apply_retention()
            except (ApiError, TransportError) as exc:
                log.warning("%s: retention failed, tried again in an hour: %s", self.name, exc)
            await asyncio.sleep(3600)

    async def apply_retention(self, now: datetime | None = None) -> list[str]:
        """Delete the daily indices older than ``retention_days``; returns their names.

        Whole indices by exact name: no delete-by-query, and no wildcard deletes (clusters
        refuse those by default, ``action.destructive_requires_name``).
        """
        assert self.settings.retention_days is not None
        prefix = self.settings.index_prefix
        oldest_kept = (now or datetime.now(UTC)).date() - timedelta(
            days=self.settings.retention_days
        )
        listed = await self._client.cat.indices(index=f"{prefix}-*", h="index", format="json")
        old = sorted(
            row["index"]
            for row in listed.body
            if (day := day_of_index(prefix, row["index"])) is not None and day < oldest_kept
        )
        for start in range(0, len(old), 50):
            await self._client.indices.delete(index=",".join(old[start : start + 50]))
        if old:
            log.info("%s: retention deleted %d indices: %s", self.name, len(old), ", ".join(old))
        return old
