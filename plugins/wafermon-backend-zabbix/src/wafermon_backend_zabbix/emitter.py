"""ZabbixEmitter: sends each event's values to trapper items over the sender protocol.

Values are sent in requests of ``chunk_size``. Zabbix answers each request only with counts
(``processed``/``failed``), so when some but not all of a request failed, its halves are sent
again until every refused value is known by itself (sending a value twice is harmless: each
carries its event's clock and ns, and Zabbix keeps one value per item, clock and ns).

A refused value means: unknown host, unknown or disabled item, not a trapper item, or this
address not allowed for it. A new item is refused until the server's configuration cache has
it (CacheUpdateFrequency, 60 s by default), so refusals are retried (RetryableError) for
``refused_grace``; after that the events with refused values go to the dead-letter path with
each refused host and key named (PermanentError). Accepted values are remembered (bounded) and
not sent again when the router repeats the batch.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict, defaultdict
from collections.abc import Sequence

import attrs
import orjson
from zabbix_utils import AsyncSender, ItemValue
from zabbix_utils.exceptions import ModuleBaseException

from wafermon import (
    ConfigError,
    Emitter,
    Event,
    Health,
    PermanentError,
    Problem,
    RetryableError,
    Seconds,
)

from .api import ApiSettings, ZabbixApi
from .keys import APP_MACRO, DISCOVERY_KEY, clock_ns, host_name, values
from .provision import provision_site

log = logging.getLogger(__name__)
MEMORY = 200_000  # accepted values / first refusals remembered


@attrs.frozen(kw_only=True)
class EmitterSettings:
    """``config:`` of a ``type: zabbix`` backend."""

    server: str = "127.0.0.1"  # Zabbix server or proxy, trapper port
    port: int = 10051
    host_prefix: str = "wafermon-"  # the Zabbix host of site S is <host_prefix>S
    chunk_size: int = 250  # values per sender request
    timeout: Seconds = Seconds(10.0)
    send_events: bool = True  # the whole event as text too: what the query adapter reads back
    discovery: bool = True  # announce new apps to the LLD rule
    refused_grace: Seconds = Seconds(300.0)  # retry refused values this long, then dead-letter
    provision: bool = False  # create host, LLD rule and prototypes through the API
    api: ApiSettings | None = None  # needed for provision
    host_group: str = "wafermon"
    trapper_hosts: str = ""  # "Allowed hosts" on provisioned items; empty = any address

    def __attrs_post_init__(self) -> None:
        if self.provision and self.api is None:
            raise ConfigError([Problem("$.api", "provision: true needs the api settings")])
        if not 1 <= self.chunk_size <= 10_000:
            raise ConfigError([Problem("$.chunk_size", "must be between 1 and 10000")])


class ZabbixEmitter(Emitter):
    Settings = EmitterSettings
    settings: EmitterSettings

    def __init__(self, name: str, settings: EmitterSettings) -> None:
        super().__init__(name, settings)
        # One request per send() call: this class cuts the chunks itself, to know which
        # request a count belongs to.
        self._sender = AsyncSender(
            server=settings.server,
            port=settings.port,
            timeout=int(settings.timeout),
            chunk_size=10_000,
        )
        self._api = ZabbixApi(settings.api) if settings.api is not None else None
        self._provisioned: set[str] = set()
        self._apps: dict[str, set[str]] = defaultdict(set)  # host -> apps seen
        self._announced: dict[str, frozenset[str]] = {}  # host -> apps Zabbix took in LLD
        self._accepted: OrderedDict[tuple[str, str], None] = OrderedDict()
        self._refused_since: OrderedDict[str, float] = OrderedDict()
        self._stats = dict.fromkeys(
            ("values_sent", "values_refused", "requests", "events_rejected", "lld_sent"), 0.0
        )

    async def start(self) -> None:
        if self._api is not None and self.settings.provision:
            await self._api.connect()

    async def close(self) -> None:
        if self._api is not None:
            await self._api.close()

    async def health(self) -> Health:
        try:
            async with asyncio.timeout(2):
                _reader, writer = await asyncio.open_connection(
                    self.settings.server, self.settings.port
                )
            writer.close()
        except (OSError, TimeoutError) as exc:
            return Health(False, f"trapper {self.settings.server}:{self.settings.port}: {exc}")
        return Health(True)

    def stats(self) -> dict[str, float]:
        return dict(self._stats)

    # -- emit -------------------------------------------------------------------------------

    async def emit(self, batch: Sequence[Event]) -> None:
        prefix = self.settings.host_prefix
        hosts = {}
        for event in batch:
            host = host_name(prefix, event.site_id)
            hosts[str(event.event_id)] = host
            self._apps[host].add(event.app.name)
        if self.settings.provision:
            for host in sorted(set(hosts.values()) - self._provisioned):
                assert self._api is not None
                report = await provision_site(
                    self._api,
                    host,
                    self.settings.host_group,
                    trapper_hosts=self.settings.trapper_hosts,
                )
                if report.created or report.updated:
                    log.info("%s: provisioned %s: %s", self.name, host, report)
                self._provisioned.add(host)
        if self.settings.discovery:
            await self._announce(set(hosts.values()))
        pending: list[tuple[str, ItemValue]] = []
        for event in batch:
            event_id, host = str(event.event_id), hosts[str(event.event_id)]
            clock, ns = clock_ns(event)
            for item_key, value in values(event, host, with_event=self.settings.send_events):
                if (event_id, item_key) not in self._accepted:
                    pending.append((event_id, ItemValue(host, item_key, value, clock, ns)))
        refused: list[tuple[str, ItemValue]] = []
        size = self.settings.chunk_size
        for start in range(0, len(pending), size):
            chunk = pending[start : start + size]
            chunk_refused = await self._send(chunk)
            # Remembered per request: if a later one fails, the retry skips what this one took.
            refused_ids = {id(v) for _, v in chunk_refused}
            for event_id, value in chunk:
                if id(value) not in refused_ids:
                    self._remember_accepted((event_id, value.key))
            self._stats["values_sent"] += len(chunk) - len(chunk_refused)
            self._stats["values_refused"] += len(chunk_refused)
            refused.extend(chunk_refused)
        refused_events = {event_id for event_id, _ in refused}
        for event_id in hosts.keys() - refused_events:
            self._refused_since.pop(event_id, None)
        if refused:
            self._refused(refused)

    def _refused(self, refused: list[tuple[str, ItemValue]]) -> None:
        now = time.monotonic()
        by_event: dict[str, list[ItemValue]] = defaultdict(list)
        for event_id, value in refused:
            by_event[event_id].append(value)
        for event_id in by_event:
            self._refused_since.setdefault(event_id, now)
            while len(self._refused_since) > MEMORY:
                self._refused_since.popitem(last=False)
        what = "; ".join(
            f"{event_id}: " + ", ".join(f"host {v.host!r} key {v.key!r}" for v in vals)
            for event_id, vals in list(by_event.items())[:5]
        )
        more = f" (and {len(by_event) - 5} more events)" if len(by_event) > 5 else ""
        reason = (
            f"Zabbix refused {len(refused)} values of {len(by_event)} events "
            f"(unknown host or item, not a trapper item, or this address not allowed): "
            f"{what}{more}"
        )
        waiting = [
            e for e in by_event if now - self._refused_since[e] < self.settings.refused_grace
        ]
        if waiting:
            raise RetryableError(reason + f"; retried for up to {self.settings.refused_grace:g}s")
        for event_id in by_event:
            self._refused_since.pop(event_id, None)
        self._stats["events_rejected"] += len(by_event)
        raise PermanentError(reason, list(by_event))

    async def _send(self, chunk: list[tuple[str, ItemValue]]) -> list[tuple[str, ItemValue]]:
        """Send ``chunk``; returns the values Zabbix refused, each found by halving."""
        answer = await self._request([v for _, v in chunk])
        if answer.failed == 0:
            return []
        if answer.failed >= len(chunk) or len(chunk) == 1:
            return chunk
        mid = len(chunk) // 2
        return await self._send(chunk[:mid]) + await self._send(chunk[mid:])

    async def _request(self, items: list[ItemValue]):
        self._stats["requests"] += 1
        try:
            return await self._sender.send(items)
        except (ModuleBaseException, OSError, TimeoutError, asyncio.IncompleteReadError) as exc:
            raise RetryableError(
                f"Zabbix trapper {self.settings.server}:{self.settings.port}: {exc}"
            ) from exc

    async def _announce(self, hosts: set[str]) -> None:
        """Send the LLD rule every app seen so far, for hosts with apps it has not taken yet.

        The whole set each time: LLD treats an app missing from a discovery as lost.
        """
        for host in sorted(hosts):
            apps = frozenset(self._apps[host])
            if self._announced.get(host) == apps:
                continue
            data = orjson.dumps([{APP_MACRO: app} for app in sorted(apps)]).decode()
            answer = await self._request([ItemValue(host, DISCOVERY_KEY, data)])
            self._stats["lld_sent"] += 1
            if answer.failed == 0:
                self._announced[host] = apps
            else:  # no rule (yet): the app's values are refused and retried, and so is this
                log.info(
                    "%s: discovery for %s refused (no rule %s yet?)", self.name, host, DISCOVERY_KEY
                )

    def _remember_accepted(self, value_key: tuple[str, str]) -> None:
        self._accepted[value_key] = None
        if len(self._accepted) > MEMORY:
            self._accepted.popitem(last=False)
