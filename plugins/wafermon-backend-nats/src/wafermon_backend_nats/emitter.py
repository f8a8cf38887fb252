"""NatsEmitter: each event a JetStream message, acknowledged by the server before emit returns.

Every event goes to ``<subject_prefix>.<site>.<app>`` (tokens made safe by ``subject_token``)
with the header ``Nats-Msg-Id`` = its event_id, so the server drops a copy published again
inside the stream's ``duplicate_window`` (a batch the router retries after a timeout) and
answers it with the first copy's sequence. Publishes are pipelined: at most ``max_in_flight``
wait for their PubAck at a time (nats-py's publish_async semaphore), and ``emit`` returns only
when every event of the batch has its PubAck. A PubAck missing after ``ack_timeout``, an error
answer (no stream for the subject, the stream full) or a lost connection is RetryableError:
the router sends the whole batch again, and de-duplication keeps the stream to one copy of
each event (beyond the window, the gateway's store drops the copy by event_id).

The message body is the event's JSON line as the sidecar received and spooled it
(``ndjson_of``): msgspec reads only event_id, site_id and app.name; no Event is built.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import attrs
import msgspec
from nats.js import JetStreamContext

from wafermon import (
    Emitter,
    Event,
    FieldValueError,
    Health,
    PermanentError,
    Seconds,
    describe,
    ndjson_of,
)

from .connection import ConnectionSettings, Link, ensure_stream, subject_token

MSG_ID = "Nats-Msg-Id"


def _at_least_one(_inst: object, attribute: attrs.Attribute, value: int) -> None:
    if value < 1:
        raise FieldValueError(attribute.name, f"must be at least 1, got {value}")


@attrs.frozen(kw_only=True)
class EmitterSettings(ConnectionSettings):
    """``config:`` of a ``type: nats`` backend."""

    max_in_flight: int = attrs.field(default=1000, validator=_at_least_one)  # unacked publishes
    ack_timeout: Seconds = Seconds(10.0)  # for the batch's last PubAck, then RetryableError


class _App(msgspec.Struct):
    name: str


class _Key(msgspec.Struct):
    """What places a message: msgspec reads these and skips the rest of the line."""

    event_id: str
    site_id: str
    app: _App


_keys = msgspec.json.Decoder(_Key).decode_lines


class NatsEmitter(Emitter):
    Settings = EmitterSettings
    settings: EmitterSettings

    def __init__(self, name: str, settings: EmitterSettings) -> None:
        super().__init__(name, settings)
        self._link = Link(
            settings,
            f"wafermon {name}",
            self._prepare,
            publish_async_max_pending=settings.max_in_flight,
        )
        self._subjects: dict[tuple[str, str], str] = {}
        self._stats = dict.fromkeys(("published", "duplicates", "failed"), 0.0)

    async def _prepare(self, js: JetStreamContext) -> None:
        if self.settings.create_stream:
            await ensure_stream(js, self.settings.stream_config())

    async def start(self) -> None:
        await self._link.jetstream()

    async def close(self) -> None:
        await self._link.close()

    async def health(self) -> Health:
        return self._link.health()

    def stats(self) -> dict[str, float]:
        stats = {**self._stats, "connects": float(self._link.connects)}
        if self._link.js is not None:
            stats["in_flight"] = float(self._link.js.publish_async_pending())
        return stats

    def _subject(self, site_id: str, app: str) -> str:
        subject = self._subjects.get((site_id, app))
        if subject is None:
            if len(self._subjects) > 10_000:
                self._subjects.clear()
            subject = (
                f"{self.settings.subject_prefix}.{subject_token(site_id)}.{subject_token(app)}"
            )
            self._subjects[(site_id, app)] = subject
        return subject

    async def emit(self, batch: Sequence[Event]) -> None:
        ndjson = ndjson_of(batch)
        if not ndjson:
            return
        js = await self._link.jetstream()
        assert self._link.nc is not None
        limit = self._link.nc.max_payload
        lines = ndjson.split(b"\n")[:-1]  # each line ends in a newline
        too_large = []
        futures: list[asyncio.Future] = []
        wait = float(self.settings.ack_timeout)
        try:
            async with asyncio.timeout(wait):
                for key, line in zip(_keys(ndjson), lines, strict=True):
                    if len(line) > limit:
                        too_large.append(key.event_id)
                        continue
                    futures.append(
                        await js.publish_async(
                            self._subject(key.site_id, key.app.name),
                            line,
                            headers={MSG_ID: key.event_id},
                        )
                    )
                acks = await asyncio.gather(*futures, return_exceptions=True)
        except TimeoutError:
            self._fail(f"no PubAck within {wait:g} s for {len(batch)} events")
        except Exception as exc:  # noqa: BLE001 - a lost connection, a closed client
            self._fail(f"publishing failed: {describe(exc)}", exc)
        finally:
            for future in futures:
                future.cancel()  # one still waiting (timeout, cancelled emit) frees its slot
        failed = [a for a in acks if isinstance(a, BaseException)]
        self._stats["duplicates"] += sum(
            1 for a in acks if not isinstance(a, BaseException) and a.duplicate
        )
        self._stats["published"] += len(acks) - len(failed)
        if failed:
            self._fail(f"{len(failed)} of {len(acks)} events got no PubAck: {describe(failed[0])}")
        self._link.last_error = ""
        if too_large:
            raise PermanentError(
                f"{self.name}: {len(too_large)} events exceed the server's max_payload of "
                f"{limit} bytes",
                too_large,
            )

    def _fail(self, problem: str, cause: BaseException | None = None) -> None:
        self._stats["failed"] += 1
        raise self._link.failed(problem) from cause
