"""The ``central:`` section of a central host's config file.

A central config is a site config whose ``site_id`` names the central itself (``central``) and
whose ``central:`` section lists the sites it aggregates. Problems are reported like every
other config problem: all at once, each with its key path and line, raised as ConfigError.

```yaml
site_id: central
central:
  listen: 127.0.0.1:19000
  tokens: {read: "${WAFERMON_CENTRAL_READ_TOKEN:-}"}
  site_timeout: 3s
  cache_ttl: 2s
  sites:
    - {name: fab1, url: "http://fab1-gw:18000", token: "${FAB1_READ_TOKEN:-}"}
    - {name: fab2, url: "https://fab2-gw:18443", ca_file: fab2-ca.pem}
```
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

import attrs

from wafermon import ConfigError, Problem, Seconds, Secret
from wafermon.config import LoadedConfig
from wafermon.errors import FieldValueError
from wafermon.events import SITE_ID_PATTERN

from ..common.settings import TlsSettings, TracingSettings, check_listen, positive, tls_problems


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


def _not_negative(_inst: object, attribute: attrs.Attribute, value: float) -> None:
    if value < 0:
        raise FieldValueError(attribute.name, f"must not be negative, got {value!r}")


@attrs.frozen
class SiteSettings:
    """One gateway the central host reads."""

    name: str = attrs.field(validator=_site_name)
    url: str = attrs.field(validator=_http_url, converter=lambda u: str(u).rstrip("/"))
    token: Secret | None = None  # the gateway's read token (its ingest token works too)
    timeout: Seconds | None = None  # overrides central.site_timeout for this site
    verify_tls: bool = True
    ca_file: Path | None = None  # a CA bundle for a gateway with a private certificate


@attrs.frozen
class Tokens:
    """The read token clients of central present; unset or empty leaves reads open."""

    read: Secret | None = None


@attrs.frozen
class CentralSettings:
    """Everything under ``central:``."""

    sites: list[SiteSettings]
    listen: str = attrs.field(default="127.0.0.1:19000", validator=check_listen)
    tokens: Tokens = Tokens()
    site_timeout: Seconds = attrs.field(default=Seconds(3.0), validator=positive)
    cache_ttl: Seconds = attrs.field(default=Seconds(2.0), validator=_not_negative)
    cache_max_entries: int = attrs.field(default=2000, validator=positive)
    max_concurrency: int = attrs.field(default=32, validator=positive)  # requests per site
    tls: TlsSettings | None = None
    tracing: TracingSettings = TracingSettings()

    def timeout_of(self, site: SiteSettings) -> float:
        return float(site.timeout if site.timeout is not None else self.site_timeout)


def build_central(loaded: LoadedConfig, *, listen: str | None = None) -> CentralSettings:
    """Structure ``central:`` and check it; ConfigError lists every fault with its line."""
    if not loaded.site.central:
        raise ConfigError(
            [loaded.problem("central", "missing: a central host needs a central: section")],
            str(loaded.path),
        )
    settings = loaded.structure(CentralSettings, loaded.site.central, "$.central")
    if listen is not None:
        try:
            settings = attrs.evolve(settings, listen=listen)
        except FieldValueError as exc:
            raise ConfigError([Problem("--listen", exc.message)], str(loaded.path)) from None
    problems: list[Problem] = tls_problems(loaded, "central", settings.tls)
    if not settings.sites:
        problems.append(loaded.problem("$.central.sites", "list at least one site"))
    seen: set[str] = set()
    for i, site in enumerate(settings.sites):
        if site.name in seen:
            problems.append(
                loaded.problem(f"$.central.sites[{i}].name", f"site {site.name!r} is listed twice")
            )
        seen.add(site.name)
        if site.ca_file is not None and not site.ca_file.is_file():
            problems.append(
                loaded.problem(f"$.central.sites[{i}].ca_file", f"no such file: {site.ca_file}")
            )
    if problems:
        relative = [attrs.evolve(p, path=p.path.removeprefix("$.")) for p in problems]
        raise ConfigError(relative, str(loaded.path))
    return settings
