"""The ``central:`` section of a central host's config file.

A central config is a site config whose ``site_id`` names the central itself (``central``) and
whose ``central:`` section lists the sites it aggregates. Problems are reported like every
other config problem: all at once, each with its key path and line, raised as ConfigError.

```yaml
site_id: central
central:
  listen: 127.0.0.1:19000
  tokens: {read: "${WAFERMON_CENTRAL_READ_TOKEN}"}
  site_timeout: 3s
  cache_ttl: 2s
  sites:
    - {name: fab1, url: "http://fab1-gw:18000", token: "${FAB1_READ_TOKEN}"}
    - {name: fab2, url: "https://fab2-gw:18443", ca_file: ca.pem,
       client_cert: central.pem, client_key: central-key.pem, token: {file: fab2.token}}
```
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

import attrs

from wafermon import ByteSize, ConfigError, Problem, Seconds, Secret
from wafermon.config import LoadedConfig
from wafermon.errors import FieldValueError
from wafermon.events import SITE_ID_PATTERN

from ..common.auth import READ, Tokens
from ..common.health import HEALTH_TTL
from ..common.settings import (
    TlsSettings,
    TracingSettings,
    auth_problems,
    check_listen,
    host_settings,
    not_negative,
    positive,
    tls_problems,
)

#: Token scopes central's routes need.
SERVED_SCOPES = (READ,)


def _site_name(_inst: object, attribute: attrs.Attribute, value: str) -> None:
    if not SITE_ID_PATTERN.fullmatch(value):
        raise FieldValueError(attribute.name, f"not a valid site name: {value!r}")


def _http_url(_inst: object, attribute: attrs.Attribute, value: str) -> None:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise FieldValueError(
            attribute.name, f"expected an http:// or https:// URL of a gateway, got {value!r}"
        )
    if parts.query or parts.fragment or parts.username or parts.password:
        raise FieldValueError(
            attribute.name, "must not hold a query, fragment or credentials (use token)"
        )


@attrs.frozen
class SiteSettings:
    """One gateway the central host reads."""

    name: str = attrs.field(validator=_site_name)
    url: str = attrs.field(validator=_http_url, converter=lambda u: str(u).rstrip("/"))
    token: Secret | None = None  # the gateway's read token (its ingest token works too)
    timeout: Seconds | None = None  # overrides central.site_timeout for this site
    verify_tls: bool = True  # false: warned at every start (anyone in between reads the token)
    ca_file: Path | None = None  # a CA bundle for a gateway with a private certificate
    client_cert: Path | None = None  # central's certificate for a gateway asking mutual TLS
    client_key: Path | None = None


@attrs.frozen
class CentralSettings:
    """Everything under ``central:``."""

    sites: list[SiteSettings]
    listen: str = attrs.field(default="127.0.0.1:19000", validator=check_listen)
    tokens: Tokens = Tokens()
    insecure: bool = False  # accept a non-loopback listen without tokens, on purpose
    site_timeout: Seconds = attrs.field(default=Seconds(3.0), validator=positive)
    cache_ttl: Seconds = attrs.field(default=Seconds(2.0), validator=not_negative)
    cache_max_entries: int = attrs.field(default=2000, validator=positive)
    max_concurrency: int = attrs.field(default=32, validator=positive)  # requests per site
    #: A site answer larger than this is refused (failed), never held whole in memory.
    max_answer_bytes: ByteSize = attrs.field(default=ByteSize(32 * 2**20), validator=positive)
    #: How long the sites' health answers are reused by /v1/healthz.
    health_ttl: Seconds = attrs.field(default=Seconds(HEALTH_TTL), validator=not_negative)
    tls: TlsSettings | None = None
    tracing: TracingSettings = TracingSettings()

    def warnings(self) -> list[str]:
        """Logged at every start."""
        return [
            f"central.sites {s.name}: verify_tls is false: the gateway's certificate is not "
            "checked, so anyone in between can read central's token and answers"
            for s in self.sites
            if not s.verify_tls
        ]

    def timeout_of(self, site: SiteSettings) -> float:
        return float(site.timeout if site.timeout is not None else self.site_timeout)


def build_central(loaded: LoadedConfig, *, listen: str | None = None) -> CentralSettings:
    """Structure ``central:`` and check it; ConfigError lists every fault with its line."""
    if not loaded.site.central:
        raise ConfigError(
            [loaded.problem("central", "missing: a central host needs a central: section")],
            str(loaded.path),
        )
    settings = host_settings(loaded, CentralSettings, "central", listen)
    problems: list[Problem] = tls_problems(loaded, "central", settings.tls)
    problems += auth_problems(loaded, "central", settings, SERVED_SCOPES)
    if not settings.sites:
        problems.append(loaded.problem("$.central.sites", "list at least one site"))
    seen: set[str] = set()
    for i, site in enumerate(settings.sites):
        if site.name in seen:
            problems.append(
                loaded.problem(f"$.central.sites[{i}].name", f"site {site.name!r} is listed twice")
            )
        seen.add(site.name)
        for key in ("ca_file", "client_cert", "client_key"):
            path = getattr(site, key)
            if path is not None and not path.is_file():
                problems.append(
                    loaded.problem(f"$.central.sites[{i}].{key}", f"no such file: {path}")
                )
        if (site.client_cert is None) != (site.client_key is None):
            problems.append(
                loaded.problem(
                    f"$.central.sites[{i}].client_cert", "set client_cert and client_key together"
                )
            )
    if problems:
        relative = [attrs.evolve(p, path=p.path.removeprefix("$.")) for p in problems]
        raise ConfigError(relative, str(loaded.path))
    return settings
