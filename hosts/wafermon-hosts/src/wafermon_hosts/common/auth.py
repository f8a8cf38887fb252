"""Bearer-token authentication with two scopes, as ASGI middleware in front of every route.

A route needs ``ingest`` (writes), ``read`` (everything else, plugin routes included), or
nothing (the paths listed as open: health, metrics, the API description). Deny by default:
a path that is not listed needs ``read``. A scope without a configured token is open. The
ingest token also grants read, so a sidecar holding it can check what it sent. Tokens are
compared with ``hmac.compare_digest`` against every accepted token, and never logged.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Iterable

from starlette.types import ASGIApp, Receive, Scope, Send

from wafermon import Secret

from .errors import error_response

READ = "read"
INGEST = "ingest"


class TokenAuth:
    """ASGI middleware: ``scope_of(path)`` says which scope a request path needs (or None)."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        tokens: dict[str, Secret | None],
        scope_of: Callable[[str], str | None],
        realm: str = "wafermon",
    ) -> None:
        self.app = app
        self.scope_of = scope_of
        self.realm = realm
        ingest = tokens.get(INGEST)
        read = tokens.get(READ)
        # Which tokens open each scope; an empty tuple means the scope is open.
        self.accepted: dict[str, tuple[bytes, ...]] = {
            INGEST: _encoded([ingest]) if ingest else (),
            READ: _encoded([read, ingest]) if read else (),
        }

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        needed = self.scope_of(scope["path"])
        accepted = self.accepted.get(needed, ()) if needed else ()
        if not accepted:
            await self.app(scope, receive, send)
            return
        presented = _bearer(scope)
        if presented is None:
            challenge = f'Bearer realm="{self.realm}"'
            response = error_response(
                401,
                f"this endpoint needs a bearer token ({needed} scope)",
                headers={"WWW-Authenticate": challenge},
            )
        elif not _matches(presented, accepted):
            challenge = f'Bearer realm="{self.realm}", error="invalid_token"'
            response = error_response(
                403,
                f"the bearer token does not grant the {needed} scope",
                headers={"WWW-Authenticate": challenge},
            )
        else:
            await self.app(scope, receive, send)
            return
        await response(scope, receive, send)


def _encoded(secrets: Iterable[Secret | None]) -> tuple[bytes, ...]:
    return tuple(s.reveal().encode() for s in secrets if s)


def _bearer(scope: Scope) -> bytes | None:
    for name, value in scope["headers"]:
        if name == b"authorization":
            scheme, _, token = value.partition(b" ")
            token = token.strip()
            return token if scheme.lower() == b"bearer" and token else None
    return None


def _matches(presented: bytes, accepted: tuple[bytes, ...]) -> bool:
    # Compare against every accepted token, without stopping early.
    results = [hmac.compare_digest(presented, token) for token in accepted]
    return any(results)
