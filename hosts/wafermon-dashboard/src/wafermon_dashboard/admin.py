"""Who may write through the dashboard: today, only silences (admin scope on the gateway).

Reads use the dashboard's read token; a silence is posted with an admin token, found here:
- with sign-in (``--login``): the token the person signed in with, when the gateway says it
  holds ``admin`` (``login`` keeps it in this process's memory, never in the cookie);
- without sign-in: ``--admin-token``, or, without one, whatever the dashboard's own read
  credentials allow (a zero-config loopback gateway has no tokens, so everyone is admin).
The gateway checks the scope again on every POST; this only decides whether to show the form.
"""

from __future__ import annotations

import time
from typing import Any

from wafermon import Secret

#: Seconds a "may this token write?" answer from the gateway is reused.
CHECK_TTL = 30.0
_checked: dict[int, tuple[float, bool]] = {}


def silence_token(ctx: Any) -> tuple[bool, Secret | None]:
    """(allowed, the token to post with) for the current request."""
    if ctx.login:
        from .login import session_admin_token

        token = session_admin_token()
        return token is not None, token
    token = ctx.admin_token
    key = id(ctx)
    seen = _checked.get(key)
    if seen is None or time.monotonic() - seen[0] > CHECK_TTL:
        seen = (time.monotonic(), ctx.api.grants_admin(token))
        _checked[key] = seen
    return seen[1], token


def can_silence(ctx: Any) -> bool:
    return silence_token(ctx)[0]
