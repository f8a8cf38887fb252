"""Sign-in for the dashboard, with a read token of the gateway (or central) it shows.

Why the gateway's tokens rather than dash-auth: dash-auth's BasicAuth keeps its own user and
password list (a second secret store to provision, rotate and protect), has no login page or
sign-out (the browser's popup sends the password with every request), and its OIDC flavour
needs an identity provider a fab network may not have. Signing in with a read token reuses
what operators already hold and rotate (``gateway.tokens.read`` takes a list, so each team can
have its own token and lose it alone); the dashboard asks the gateway whether the token grants
``read`` (``GET /v1/healthz`` answers details only then), so there is one place that decides.

Who signs in with a token that also holds ``admin`` on the gateway may silence alerts: that
token stays in this process's memory under a random id (``ADMIN_SESSIONS`` at most, dropped at
sign-out or after ``SESSION_HOURS``), and the cookie holds only the id.

The session is Flask's signed cookie holding only "signed in" and when (never the token),
HttpOnly, SameSite=Lax (Dash's callbacks are POSTs: a cross-site page cannot make them with
the cookie) and Secure under TLS, valid for ``SESSION_HOURS``. A page asked for without a
session is redirected to ``/login?next=...``; Dash's own requests get 401.
"""

from __future__ import annotations

import html
import logging
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable
from datetime import timedelta
from urllib.parse import quote

from flask import Flask, Response, redirect, request, session

from wafermon import Secret

log = logging.getLogger("wafermon_dashboard.login")

LOGIN_PATH = "/login"
LOGOUT_PATH = "/logout"
#: Reachable without a session: the sign-in page itself and the liveness probe.
OPEN_PATHS = frozenset({LOGIN_PATH, "/healthz"})
SESSION_HOURS = 12
#: A refused sign-in waits this long before answering, to slow down guessing.
REFUSED_DELAY_S = 0.5
#: Admin tokens kept for signed-in sessions (oldest dropped first): bounded memory.
ADMIN_SESSIONS = 1000
_admin_tokens: OrderedDict[str, tuple[float, Secret]] = OrderedDict()


def session_admin_token() -> Secret | None:
    """The admin token of the signed-in person of the current request, or None."""
    key = session.get("admin") if session.get("signed_in") else None
    found = _admin_tokens.get(key) if key else None
    if found is None or time.time() - found[0] > SESSION_HOURS * 3600:
        return None
    return found[1]


_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>wafermon: sign in</title>
<style>
body {{ font-family: system-ui, sans-serif; background: #f4f5f7; margin: 0; }}
form {{ max-width: 26rem; margin: 12vh auto; background: #fff; padding: 2rem;
        border-radius: 8px; box-shadow: 0 1px 4px rgba(0,0,0,.15); }}
h1 {{ font-size: 1.3rem; margin-top: 0; }}
input {{ width: 100%; padding: .5rem; margin: .4rem 0 1rem; box-sizing: border-box; }}
button {{ padding: .5rem 1.2rem; }}
.error {{ color: #b00020; }}
.target {{ color: #555; font-size: .9rem; }}
</style></head>
<body><form method="post" action="/login" id="login-form">
<h1>wafermon</h1>
<p class="target">Sign in with a read token of {target}.</p>
{error}
<label for="token">Token</label>
<input id="token" name="token" type="password" autocomplete="current-password" autofocus>
<input type="hidden" name="next" value="{next}">
<button type="submit" id="login-submit">Sign in</button>
</form></body></html>
"""


def _safe_next(value: str | None) -> str:
    """Only a path on this server (no ``//host`` or ``https://``): no open redirect."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return "/"
    return value


def install_login(
    server: Flask,
    check_token: Callable[[str], bool],
    *,
    target: str,
    secure_cookie: bool,
    secret_key: bytes | None = None,
    check_admin: Callable[[Secret], bool] | None = None,
) -> None:
    """Require a signed-in session for every page of ``server`` except OPEN_PATHS.

    ``check_token(token)`` says whether a presented token grants the read scope upstream.
    ``secret_key`` signs the session cookie; by default a random one (sessions end with the
    process). ``check_admin(token)`` says whether it also holds ``admin`` (may silence).
    """
    server.secret_key = secret_key or secrets.token_bytes(32)
    server.config.update(
        SESSION_COOKIE_NAME="wafermon_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=secure_cookie,
        PERMANENT_SESSION_LIFETIME=timedelta(hours=SESSION_HOURS),
    )

    def page(error: str = "", next_path: str = "/", status: int = 200) -> Response:
        body = _PAGE.format(
            target=html.escape(target),
            error=f'<p class="error" id="login-error">{html.escape(error)}</p>' if error else "",
            next=html.escape(next_path, quote=True),
        )
        return Response(body, status=status, mimetype="text/html")

    @server.before_request
    def require_session() -> Response | None:
        if request.path in OPEN_PATHS or session.get("signed_in"):
            return None
        if request.path.startswith("/_dash-") or request.method != "GET":
            return Response('{"error": "sign in first"}', 401, mimetype="application/json")
        return redirect(f"{LOGIN_PATH}?next={quote(request.full_path.rstrip('?'), safe='/')}")

    @server.route(LOGIN_PATH, methods=["GET", "POST"])
    def login() -> Response:
        next_path = _safe_next(request.values.get("next"))
        if request.method == "GET":
            return page(next_path=next_path)
        token = (request.form.get("token") or "").strip()
        if token and check_token(token):
            session.clear()  # a fresh session: nothing from before the sign-in survives
            session.permanent = True
            session["signed_in"] = True
            session["since"] = int(time.time())
            if check_admin is not None and check_admin(Secret(token)):
                key = secrets.token_urlsafe(24)
                _admin_tokens[key] = (time.time(), Secret(token))
                while len(_admin_tokens) > ADMIN_SESSIONS:
                    _admin_tokens.popitem(last=False)
                session["admin"] = key
            log.info("dashboard sign-in accepted from %s", request.remote_addr)
            return redirect(next_path)
        log.warning("dashboard sign-in refused from %s", request.remote_addr)
        time.sleep(REFUSED_DELAY_S)
        return page("That token is not a read token of this site.", next_path, status=401)

    @server.route(LOGOUT_PATH, methods=["GET", "POST"])
    def logout() -> Response:
        _admin_tokens.pop(session.get("admin") or "", None)
        session.clear()
        return redirect(LOGIN_PATH)
