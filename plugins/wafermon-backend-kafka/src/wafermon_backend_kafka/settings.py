"""Connection settings shared by the emitter and the consumer, the client options they give,
and creating the topics a site names (when missing).

Credentials are ``Secret``: they go into the client and nowhere else (no log, no repr).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import ssl
from pathlib import Path
from typing import Any

import attrs
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError

from wafermon import (
    ConfigError,
    FieldValueError,
    Problem,
    RetryableError,
    Seconds,
    Secret,
    describe,
)

#: Kafka's own rule for topic names.
TOPIC_PATTERN = re.compile(r"[a-zA-Z0-9._-]{1,249}")
PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")


def _topic(_inst: object, attribute: attrs.Attribute, value: str) -> None:
    if not TOPIC_PATTERN.fullmatch(value) or value in (".", ".."):
        raise FieldValueError(
            attribute.name, f"must be 1-249 letters, digits, '.', '_' or '-', got {value!r}"
        )


def _one_of(allowed: tuple[str, ...]):
    def check(_inst: object, attribute: attrs.Attribute, value: str) -> None:
        if value not in allowed:
            raise FieldValueError(attribute.name, f"must be one of {', '.join(allowed)}")

    return check


def _at_least_one(_inst: object, attribute: attrs.Attribute, value: int) -> None:
    if value < 1:
        raise FieldValueError(attribute.name, "must be at least 1")


@attrs.frozen(kw_only=True)
class ConnectionSettings:
    """How to reach the cluster, and the topic the events go through."""

    bootstrap_servers: list[str] = attrs.field(factory=lambda: ["127.0.0.1:9092"])
    topic: str = attrs.field(default="wafermon-events", validator=_topic)
    #: Where undecodable/rejected messages go, with the reason in a header (consumer side).
    dead_letter_topic: str = attrs.field(default="wafermon-events-dead", validator=_topic)
    #: Create the topics with these when missing (partitions bound the consumers that share work).
    create_topics: bool = True
    partitions: int = attrs.field(default=6, validator=_at_least_one)
    replication_factor: int = attrs.field(default=1, validator=_at_least_one)
    security_protocol: str = attrs.field(default="PLAINTEXT", validator=_one_of(PROTOCOLS))
    sasl_mechanism: str = attrs.field(default="PLAIN", validator=_one_of(MECHANISMS))
    username: str | None = None
    password: Secret | None = None
    ca_file: Path | None = None  # PEM bundle that signed the brokers' certificates (SSL)
    request_timeout: Seconds = Seconds(10.0)

    def __attrs_post_init__(self) -> None:
        problems = []
        if not self.bootstrap_servers:
            problems.append(Problem("$.bootstrap_servers", "at least one host:port is needed"))
        if (self.username is None) != (self.password is None):
            problems.append(Problem("$.password", "username and password go together"))
        if self.security_protocol.startswith("SASL") and self.username is None:
            problems.append(Problem("$.username", f"{self.security_protocol} needs a username"))
        if self.ca_file is not None and not self.ca_file.is_file():
            problems.append(Problem("$.ca_file", f"no such file: {self.ca_file}"))
        if self.topic == self.dead_letter_topic:
            problems.append(Problem("$.dead_letter_topic", "must differ from topic"))
        if problems:
            raise ConfigError(problems)

    def client_options(self) -> dict[str, Any]:
        """Keyword arguments every aiokafka client here takes."""
        options: dict[str, Any] = {
            "bootstrap_servers": list(self.bootstrap_servers),
            "security_protocol": self.security_protocol,
            "request_timeout_ms": int(self.request_timeout * 1000),
            "client_id": "wafermon",
        }
        if self.security_protocol in ("SSL", "SASL_SSL"):
            context = ssl.create_default_context(cafile=str(self.ca_file) if self.ca_file else None)
            options["ssl_context"] = context
        if self.username is not None and self.password is not None:
            options["sasl_mechanism"] = self.sasl_mechanism
            options["sasl_plain_username"] = self.username
            options["sasl_plain_password"] = self.password.reveal()
        return options


async def ensure_topics(settings: ConnectionSettings, topics: list[str]) -> None:
    """Create the topics that are missing (no-op when ``create_topics`` is off).

    RetryableError when the cluster cannot be reached; an existing topic is left as it is (its
    partition count is the operator's).
    """
    if not settings.create_topics:
        return
    admin = AIOKafkaAdminClient(**settings.client_options())
    try:
        await admin.start()
        missing = set(topics) - set(await admin.list_topics())
        if missing:
            new = [NewTopic(t, settings.partitions, settings.replication_factor) for t in missing]
            with contextlib.suppress(TopicAlreadyExistsError):  # another process was first
                await admin.create_topics(new)
            await _leaders_elected(admin, sorted(missing), settings.request_timeout)
    except KafkaError as exc:
        raise RetryableError(f"cannot create topics {sorted(topics)}: {describe(exc)}") from exc
    finally:
        await admin.close()


async def _leaders_elected(admin: AIOKafkaAdminClient, topics: list[str], timeout: float) -> None:
    """Wait (up to ``timeout``) until every partition of new topics has a leader, so the first
    sends do not bounce off NotLeaderForPartition while the controller elects them."""
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        described = await admin.describe_topics(topics)
        if all(
            t["error_code"] == 0
            and t["partitions"]
            and all(p["leader"] >= 0 for p in t["partitions"])
            for t in described
        ):
            return
        await asyncio.sleep(0.1)


async def started(client: Any, what: str) -> Any:
    """``await client.start()`` for any aiokafka client; a cluster that cannot be reached is
    RetryableError (naming ``what``), and the half-started client is stopped."""
    try:
        await client.start()
    except KafkaError as exc:
        with contextlib.suppress(Exception):
            await client.stop()
        raise RetryableError(f"{what}: {describe(exc)}") from exc
    return client
