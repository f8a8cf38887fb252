"""Connection settings shared by the emitter and the query adapter, and the client they build.

Credentials are ``Secret``: they go into the client's headers and nowhere else (no log, no repr).
"""

from __future__ import annotations

from pathlib import Path

import attrs
from elasticsearch import ApiError, AsyncElasticsearch, TransportError

from wafermon import ConfigError, FieldValueError, Health, Problem, Seconds, Secret

from .indices import INDEX_PREFIX_PATTERN


def _prefix(_inst: object, attribute: attrs.Attribute, value: str) -> None:
    if not INDEX_PREFIX_PATTERN.fullmatch(value):
        raise FieldValueError(
            attribute.name,
            f"must be 1-200 lower-case letters, digits, '_' or '-' starting with a letter, "
            f"got {value!r}",
        )


@attrs.frozen(kw_only=True)
class ConnectionSettings:
    """How to reach the cluster. Use either ``api_key`` or ``username`` + ``password``."""

    hosts: list[str] = attrs.field(factory=lambda: ["http://127.0.0.1:9200"])
    api_key: Secret | None = None
    username: str | None = None
    password: Secret | None = None
    ca_certs: Path | None = None  # PEM bundle that signed the cluster's HTTPS certificate
    verify_certs: bool = True
    index_prefix: str = attrs.field(default="wafermon-events", validator=_prefix)
    request_timeout: Seconds = Seconds(30.0)

    def __attrs_post_init__(self) -> None:
        problems = []
        if self.api_key is not None and (self.username or self.password):
            problems.append(Problem("$.api_key", "give api_key or username/password, not both"))
        if (self.username is None) != (self.password is None):
            problems.append(Problem("$.password", "username and password go together"))
        if not self.hosts:
            problems.append(Problem("$.hosts", "at least one host URL is needed"))
        if problems:
            raise ConfigError(problems)


def make_client(settings: ConnectionSettings) -> AsyncElasticsearch:
    """An async client on aiohttp (the client's ``[async]`` extra, its default and fastest node).

    The client retries a request on a connection error or timeout on another node; wafermon's
    router retries whole batches on top, so one retry here is enough.
    """
    auth: dict = {}
    if settings.api_key is not None:
        auth["api_key"] = settings.api_key.reveal()
    elif settings.username is not None and settings.password is not None:
        auth["basic_auth"] = (settings.username, settings.password.reveal())
    try:
        return _client(settings, auth)
    except (OSError, ValueError) as exc:  # ssl.SSLError is an OSError
        where = "$.ca_certs" if settings.ca_certs else "$.hosts"
        raise ConfigError([Problem(where, f"cannot set up the client: {exc}")]) from None


async def cluster_health(client: AsyncElasticsearch) -> Health:
    """The emitter's and the adapter's health: the cluster answers, green or yellow."""
    try:
        answer = await client.cluster.health(timeout="2s")
    except (ApiError, TransportError) as exc:
        return Health(False, f"cluster health: {type(exc).__name__}")
    status = answer.get("status")
    return Health(status in ("green", "yellow"), f"cluster {status}")


def _client(settings: ConnectionSettings, auth: dict) -> AsyncElasticsearch:
    return AsyncElasticsearch(
        settings.hosts,
        ca_certs=str(settings.ca_certs) if settings.ca_certs else None,
        verify_certs=settings.verify_certs,
        request_timeout=settings.request_timeout,
        max_retries=1,
        retry_on_timeout=True,
        **auth,
    )
