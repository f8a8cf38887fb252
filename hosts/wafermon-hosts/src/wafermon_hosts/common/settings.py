"""Settings pieces every host section shares: validators, TLS files, tracing.

Each host structures its own section of the site config (``gateway:``, ``sidecar:``) into an
attrs class built from these, so ``listen``, ``tls`` and ``tracing`` read and fail the same
way everywhere (``sidecar.listen (line 3): expected HOST:PORT ...``).
"""

from __future__ import annotations

from pathlib import Path

import attrs

from wafermon import Problem
from wafermon.config import LoadedConfig
from wafermon.errors import FieldValueError

from .serve import parse_listen


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


@attrs.frozen
class TlsSettings:
    """PEM files; relative paths resolve against the config file's folder."""

    cert: Path
    key: Path


@attrs.frozen
class TracingSettings:
    enabled: bool = False
    otlp_endpoint: str | None = None  # e.g. http://127.0.0.1:4318/v1/traces


def tls_problems(loaded: LoadedConfig, section: str, tls: TlsSettings | None) -> list[Problem]:
    """A problem for each TLS file that does not exist (``$.<section>.tls.cert`` ...)."""
    problems = []
    if tls is not None:
        for key in ("cert", "key"):
            path = getattr(tls, key)
            if not path.is_file():
                problems.append(loaded.problem(f"$.{section}.tls.{key}", f"no such file: {path}"))
    return problems
