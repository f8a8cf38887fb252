"""Bearer tokens with scopes (ingest, read, admin), as ASGI middleware in front of every route.

Config (the same under ``sidecar:``, ``gateway:`` and ``central:``)::

    tokens:
      ingest: ["${WAFERMON_INGEST_TOKEN}", "${WAFERMON_INGEST_TOKEN_OLD}"]  # a list: rotation
      read: {file: /run/secrets/wafermon-read}                              # or from a file
      admin: "${WAFERMON_ADMIN_TOKEN}"
    insecure: false

A token holds every scope it is listed under (list one value under ``ingest`` and ``read`` and
it grants both); scopes are not implied by each other. A route needs one scope or none
(``scope_of(path)``, or ``scope_of(path, method)`` where one path's methods differ, e.g. the
gateway's GET and POST /v1/silences); deny by default: a path that is not listed needs ``read``.

Fail closed: a scope without a token is open only while the host has no token at all (the
zero-config loopback default of ``wafermon up``) or says ``insecure: true``; once any token is
configured, a scope without one is refused to everybody. ``exposure_problems`` refuses a
non-loopback listen without a token for every scope the host serves, unless ``insecure``.
Tokens are compared with ``hmac.compare_digest`` against every accepted token (no early exit)
and never logged. Token files (``{file: PATH}``, one token per line) are read again within
``RELOAD_S`` of a change, so tokens rotate without a restart. Which scopes a request holds
is left in the ASGI scope for handlers (health answers details only to ``read``).
"""

from __future__ import annotations

import hmac
import inspect
import ipaddress
import logging
import time
from collections.abc import Callable, Iterable
from pathlib import Path

import attrs
from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from wafermon import Problem, Secret
from wafermon.config import FileSecret

from .errors import error_response

INGEST = "ingest"
READ = "read"
ADMIN = "admin"
SCOPES = (INGEST, READ, ADMIN)

#: The ASGI scope key where the middleware leaves the scopes a request holds (a frozenset).
GRANTED = "wafermon.granted_scopes"
#: Seconds between looks at the token files (``{file: PATH}``) for a change.
RELOAD_S = 1.0

log = logging.getLogger("wafermon_hosts.auth")


@attrs.frozen
class Tokens:
    """Bearer tokens by scope: one value, ``{file: PATH}``, or a list of them (rotation).

    Empty or whitespace values are config errors naming the key (core's ``Secret``).
    """

    ingest: list[Secret] = attrs.Factory(list)
    read: list[Secret] = attrs.Factory(list)
    admin: list[Secret] = attrs.Factory(list)

    def of(self, scope: str) -> list[Secret]:
        return list(getattr(self, scope))

    @property
    def any(self) -> bool:
        return bool(self.ingest or self.read or self.admin)


def is_loopback(host: str) -> bool:
    """``127.0.0.1``, ``::1``, ``localhost``; any other name or address counts as exposed."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def open_scopes(tokens: Tokens, served: Iterable[str], *, insecure: bool) -> list[str]:
    """The served scopes anyone may use without a token (see the module docstring)."""
    if tokens.any and not insecure:
        return []
    return [s for s in SCOPES if s in set(served) and not tokens.of(s)]


def exposure_problems(
    section: str, host: str, tokens: Tokens, served: Iterable[str], *, insecure: bool
) -> list[Problem]:
    """A problem per served scope without a token when ``host`` is not loopback.

    Each names the key to set and the two other ways out, so the operator knows the fix.
    """
    if insecure or is_loopback(host):
        return []
    return [
        Problem(
            f"$.{section}.tokens.{scope}",
            f"{section} listens on {host}, which is not loopback, and no {scope} token is set: "
            f'set {section}.tokens.{scope} (e.g. "${{WAFERMON_{scope.upper()}_TOKEN}}" or '
            f"{{file: PATH}}), listen on 127.0.0.1, or set {section}.insecure: true to accept "
            "unauthenticated access on purpose",
        )
        for scope in SCOPES
        if scope in set(served) and not tokens.of(scope)
    ]


def granted(request: Request) -> frozenset[str]:
    """The scopes the request's token holds (open scopes included)."""
    return request.scope.get(GRANTED, frozenset())


class TokenAuth:
    """ASGI middleware: ``scope_of(path[, method])`` says which scope a request needs (or None)."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        tokens: Tokens,
        scope_of: Callable[..., str | None],
        open: Iterable[str] = (),
        realm: str = "wafermon",
    ) -> None:
        self.app = app
        self.scope_of = scope_of
        self._by_method = _takes_method(scope_of)
        self.realm = realm
        self.open = frozenset(open)
        self.tokens = tokens
        # Token files are read again when they change: rotation without a restart.
        self._texts: dict[Path, str] = {}
        self._stamps: dict[Path, tuple[int, int] | None] = {
            s.path: _stamp(s.path)
            for scope in SCOPES
            for s in tokens.of(scope)
            if isinstance(s, FileSecret)
        }
        self._looked = time.monotonic()
        self.holders = self._holders()

    def _holders(self) -> list[tuple[bytes, frozenset[str]]]:
        """Every distinct token with the scopes it holds; a file holds one token per line."""
        holders: dict[bytes, set[str]] = {}
        for scope in SCOPES:
            for secret in self.tokens.of(scope):
                text = secret.reveal()
                if isinstance(secret, FileSecret):
                    text = self._texts.get(secret.path, text)
                for line in text.splitlines():
                    if line.strip():
                        holders.setdefault(line.strip().encode(), set()).add(scope)
        return [(token, frozenset(scopes)) for token, scopes in holders.items()]

    def reload_changed_files(self) -> None:
        """Read the token files whose size or mtime changed. One that cannot be read or is
        empty keeps its previous tokens (warned): a botched edit must not open anything."""
        changed = []
        for path, stamp in self._stamps.items():
            now = _stamp(path)
            if now == stamp:
                continue
            try:
                text = path.read_text(encoding="utf-8") if now else ""
            except OSError:
                text = ""
            self._stamps[path] = now
            if not text.strip():
                log.warning("token file %s is missing or empty: its previous tokens stay", path)
                continue
            self._texts[path] = text
            changed.append(str(path))
        if changed:
            self.holders = self._holders()
            log.info("token files reloaded: %s", ", ".join(changed))

    def scopes_of(self, presented: bytes | None) -> frozenset[str] | None:
        """The scopes ``presented`` holds; None for a token that matches nothing."""
        if presented is None:
            return self.open
        found: frozenset[str] | None = None
        for token, scopes in self.holders:  # no early exit: time does not depend on position
            if hmac.compare_digest(presented, token):
                found = scopes
        return None if found is None else found | self.open

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self._stamps and time.monotonic() - self._looked >= RELOAD_S:
            self._looked = time.monotonic()
            self.reload_changed_files()
        path = scope["path"]
        needed = self.scope_of(path, scope["method"]) if self._by_method else self.scope_of(path)
        presented = _bearer(scope)
        held = self.scopes_of(presented)
        scope[GRANTED] = held or self.open
        if needed is None or needed in (held or ()):
            await self.app(scope, receive, send)
            return
        if presented is None:
            challenge = f'Bearer realm="{self.realm}"'
            response = error_response(
                401,
                f"this endpoint needs a bearer token ({needed} scope)",
                headers={"WWW-Authenticate": challenge},
            )
        else:
            challenge = f'Bearer realm="{self.realm}", error="invalid_token"'
            response = error_response(
                403,
                f"the bearer token does not grant the {needed} scope",
                headers={"WWW-Authenticate": challenge},
            )
        await response(scope, receive, send)


def needed_scope(scope_of: Callable[..., str | None], path: str, method: str) -> str | None:
    """``scope_of(path, method)`` if it takes the method, else ``scope_of(path)``."""
    return scope_of(path, method) if _takes_method(scope_of) else scope_of(path)


def _takes_method(scope_of: Callable[..., str | None]) -> bool:
    try:
        return len(inspect.signature(scope_of).parameters) > 1
    except (TypeError, ValueError):
        return False


def _stamp(path: Path) -> tuple[int, int] | None:
    try:
        info = path.stat()
    except OSError:
        return None
    return info.st_mtime_ns, info.st_size


def _bearer(scope: Scope) -> bytes | None:
    for name, value in scope["headers"]:
        if name == b"authorization":
            scheme, _, token = value.partition(b" ")
            token = token.strip()
            return token if scheme.lower() == b"bearer" and token else None
    return None
