"""Settings pieces every host section shares: validators, TLS files, tokens, tracing.

Each host structures its own section of the site config (``gateway:``, ``sidecar:``) into an
attrs class built from these, so ``listen``, ``tls`` and ``tracing`` read and fail the same
way everywhere (``sidecar.listen (line 3): expected HOST:PORT ...``).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any, TypeVar

import attrs

from wafermon import ConfigError, Problem
from wafermon.config import LoadedConfig
from wafermon.errors import FieldValueError

from .auth import SCOPES, exposure_problems, open_scopes
from .serve import parse_listen

_S = TypeVar("_S")


def host_settings(loaded: LoadedConfig, cls: type[_S], section: str, listen: str | None) -> _S:
    """The site config's ``section`` structured as ``cls``, listening on ``listen`` (the
    command's ``--listen``) when it is given; a bad one is a ConfigError naming ``--listen``."""
    settings = loaded.structure(cls, getattr(loaded.site, section), f"$.{section}")
    if listen is None:
        return settings
    try:
        return attrs.evolve(settings, listen=listen)
    except FieldValueError as exc:
        raise ConfigError([Problem("--listen", exc.message)], str(loaded.path)) from None


def check_listen(_inst: object, attribute: attrs.Attribute, value: str) -> None:
    """attrs validator: ``HOST:PORT``."""
    try:
        parse_listen(value)
    except ValueError as exc:
        raise FieldValueError(attribute.name, str(exc)) from None


def positive(_inst: object, attribute: attrs.Attribute, value: float) -> None:
    """attrs validator: greater than 0."""
    if value <= 0:
        raise FieldValueError(attribute.name, f"must be greater than 0, got {value!r}")


def not_negative(_inst: object, attribute: attrs.Attribute, value: float) -> None:
    """attrs validator: 0 or more."""
    if value < 0:
        raise FieldValueError(attribute.name, f"must not be negative, got {value!r}")


@attrs.frozen
class TlsSettings:
    """PEM files; relative paths resolve against the config file's folder.

    ``client_ca`` turns on mutual TLS: every client must present a certificate signed by it.
    """

    cert: Path
    key: Path
    client_ca: Path | None = None


@attrs.frozen
class TracingSettings:
    enabled: bool = False
    otlp_endpoint: str | None = None  # e.g. http://127.0.0.1:4318/v1/traces


def tls_problems(loaded: LoadedConfig, section: str, tls: TlsSettings | None) -> list[Problem]:
    """A problem for each TLS file that does not exist (``$.<section>.tls.cert`` ...)."""
    problems = []
    if tls is not None:
        for key in ("cert", "key", "client_ca"):
            path = getattr(tls, key)
            if path is not None and not path.is_file():
                problems.append(loaded.problem(f"$.{section}.tls.{key}", f"no such file: {path}"))
    return problems


def auth_problems(
    loaded: LoadedConfig, section: str, settings: Any, served: Iterable[str]
) -> list[Problem]:
    """Fail closed: a non-loopback ``listen`` needs a token for every scope the host serves
    (``insecure: true`` says otherwise on purpose). Each problem names the key and the fix."""
    host, _port = parse_listen(settings.listen)
    found = exposure_problems(section, host, settings.tokens, served, insecure=settings.insecure)
    return [loaded.problem(p.path, p.message) for p in found]


def security_warnings(section: str, settings: Any, served: Iterable[str]) -> list[str]:
    """What the host logs as a warning at every start: open scopes, short tokens."""
    warnings = []
    for scope in SCOPES:
        short = [i for i, t in enumerate(settings.tokens.of(scope)) if len(t.reveal()) < 16]
        if short:
            warnings.append(
                f"{section}.tokens.{scope}: {len(short)} token(s) shorter than 16 characters "
                "are easy to guess; make them with: python -c 'import secrets; "
                "print(secrets.token_urlsafe(32))'"
            )
    if settings.insecure:
        opened = open_scopes(settings.tokens, served, insecure=True)
        warnings.append(
            f"{section}.insecure is true: "
            + (
                f"scopes {', '.join(opened)} need no token"
                if opened
                else "a non-loopback listen without tokens would be accepted"
            )
            + f" (listen {settings.listen})"
        )
    return warnings
