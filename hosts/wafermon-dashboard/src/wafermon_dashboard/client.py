"""The dashboard's only way to the data: HTTP to a gateway or a central host (and a sidecar).

Every call is a plain GET with the read token (a ``Secret``); nothing is loaded in bulk.
Lists are read one page at a time with the server's filters, and the few figures that need
counting (the live view's counts) read at most ``cap`` items, sorted so the newest come
first, and say when they stopped early. Failures raise ``ApiError`` with a sentence a person
can read; views show it instead of a chart.
"""

from __future__ import annotations

import ssl
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import attrs
import httpx

from wafermon import Secret, strip_credentials

GATEWAY = "gateway"
CENTRAL = "central"


class ApiError(Exception):
    """The server could not be reached or refused the request; str() says which and why."""


def parse_time(text: str | None) -> datetime | None:
    if not text:
        return None
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def iso(when: datetime) -> str:
    return when.astimezone(UTC).isoformat().replace("+00:00", "Z")


@attrs.frozen
class Count:
    """How many items matched, and whether counting stopped at the cap (then it is a floor)."""

    value: int
    capped: bool = False

    def __str__(self) -> str:
        return f"{self.value}+" if self.capped else str(self.value)


class Api:
    """A gateway (``mode="gateway"``) or central host (``mode="central"``) over HTTP."""

    def __init__(
        self,
        url: str,
        *,
        mode: str = GATEWAY,
        token: Secret | None = None,
        timeout: float = 10.0,
        transport: httpx.BaseTransport | None = None,
        verify: ssl.SSLContext | bool = True,
    ) -> None:
        self.url = url.rstrip("/")
        self.mode = mode
        headers = {"Accept": "application/json", "User-Agent": "wafermon-dashboard"}
        if token:
            headers["Authorization"] = f"Bearer {token.reveal()}"
        self._client = httpx.Client(
            base_url=self.url,
            headers=headers,
            timeout=timeout,
            transport=transport,
            trust_env=False,
            verify=verify,
        )

    @property
    def central(self) -> bool:
        return self.mode == CENTRAL

    @property
    def shown_url(self) -> str:
        """The URL as pages show it: credentials stripped."""
        return strip_credentials(self.url)

    def grants_read(self, token: str) -> bool:
        """Whether ``token`` holds the read scope here: health answers details only then."""
        try:
            response = self._client.get("/v1/healthz", headers={"Authorization": f"Bearer {token}"})
            body = response.json()
        except (httpx.HTTPError, ValueError):
            return False
        return response.status_code in (200, 503) and isinstance(body, dict) and len(body) > 1

    def close(self) -> None:
        self._client.close()

    # -- plumbing ------------------------------------------------------------------------------

    def _get(self, path: str, params: Mapping[str, Any] | None = None, *, ok=(200,)) -> Any:
        query = {k: v for k, v in (params or {}).items() if v not in (None, "", [])}
        try:
            response = self._client.get(path, params=query)
        except httpx.TimeoutException:
            raise ApiError(f"{self.shown_url}{path}: no answer in time") from None
        except httpx.HTTPError as exc:
            raise ApiError(strip_credentials(f"cannot reach {self.url}: {exc}")) from None
        if response.status_code not in ok:
            message = _error_text(response)
            raise ApiError(strip_credentials(f"{path}: HTTP {response.status_code}: {message}"))
        if path == "/metrics":
            return response.text
        try:
            return response.json()
        except ValueError:
            raise ApiError(f"{path}: the answer is not JSON") from None

    def get_json(self, path: str, params: Mapping[str, Any] | None = None) -> Any:
        return self._get(path, params)

    # -- the API -------------------------------------------------------------------------------

    def jobs(self, **params: Any) -> dict[str, Any]:
        """One page of ``/v1/jobs`` (``items``, ``next_cursor``; central adds ``sites``)."""
        return self._get("/v1/jobs", params)

    def subjobs(self, **params: Any) -> dict[str, Any]:
        return self._get("/v1/subjobs", params)

    def job(self, job_id: str, *, site: str | None = None, events_limit: int = 1000) -> Any:
        """``/v1/jobs/{id}``, or None when no site has it."""
        params: dict[str, Any] = {"events_limit": events_limit}
        if site and self.central:
            params["site"] = site
        body = self._get("/v1/jobs/" + quote(job_id, safe=""), params, ok=(200, 404))
        return None if "job" not in body else body

    def unified(self, **params: Any) -> dict[str, Any]:
        return self._get("/v1/data/unified", params)

    def trend_sources(self) -> dict[str, Any]:
        """The sources that answer trends: name -> {metrics: {name: unit}, stats}. On central
        the name is ``site/source`` for every site that has some (site names hold no ``/``)."""
        body = self._get("/v1/trends/sources")
        if not self.central:
            return body["sources"]
        return {
            f"{site}/{name}": source
            for site, info in body["sites"].items()
            for name, source in (info.get("sources") or {}).items()
        }

    def trends(self, source: str, **params: Any) -> dict[str, Any]:
        """``/v1/trends``: one metric of one source per period (``series`` of points)."""
        if self.central:
            site, _, source = source.partition("/")
            params["site"] = site
        return self._get("/v1/trends", {**params, "source": source})

    def health(self) -> dict[str, Any]:
        """``/v1/healthz`` (its 503 answer is a health report too)."""
        return self._get("/v1/healthz", ok=(200, 503))

    def metrics(self) -> str:
        return self._get("/metrics")

    def sites(self) -> list[str]:
        """Site names (central), or [] for a gateway."""
        if not self.central:
            return []
        return [s["name"] for s in self._get("/v1/sites")["sites"]]

    def sources(self) -> list[str]:
        """The source names the unified view accepts, ``managed`` first."""
        if self.central:
            body = self._get("/v1/data/unified", {"limit": 1})
            names: dict[str, None] = {"managed": None}
            for site in body.get("sites", {}).values():
                names.update(dict.fromkeys(site.get("sources", {})))
            return list(names)
        return ["managed", *self.health().get("sources", {})]

    # -- alerting (the gateway's engine; central reads alerts across sites) ----------------------

    def alerts(self, **params: Any) -> dict[str, Any]:
        """One page of ``/v1/alerts`` (``alerts``, ``next_cursor``; central adds ``sites``)."""
        return self._get("/v1/alerts", params)

    def monitors(self) -> list[dict[str, Any]]:
        """``/v1/monitors``: every expected job with its state, last and recent runs."""
        return self._get("/v1/monitors")["monitors"]

    def silences(self) -> list[dict[str, Any]]:
        return self._get("/v1/silences")["silences"]

    def create_silence(self, body: dict[str, Any], token: Secret | None) -> dict[str, Any]:
        """POST ``/v1/silences`` with an admin token (the dashboard's reads use a read token)."""
        headers = {"Authorization": f"Bearer {token.reveal()}"} if token else {}
        try:
            response = self._client.post("/v1/silences", json=body, headers=headers)
        except httpx.HTTPError as exc:
            raise ApiError(strip_credentials(f"cannot reach {self.url}: {exc}")) from None
        if response.status_code != 201:
            raise ApiError(f"/v1/silences: HTTP {response.status_code}: {_error_text(response)}")
        return response.json()

    def grants_admin(self, token: Secret | None) -> bool:
        """Whether ``token`` (None: no token) may write silences here. Asks the gateway to expire
        a silence that does not exist: 404 (or 409, alerting off) means the scope is held, 401
        or 403 that it is not; nothing changes either way."""
        headers = {"Authorization": f"Bearer {token.reveal()}"} if token else {}
        try:
            response = self._client.delete(
                "/v1/silences/wafermon-dashboard-scope-check", headers=headers
            )
        except httpx.HTTPError:
            return False
        return response.status_code in (404, 409)

    # -- counting without loading everything ----------------------------------------------------

    def recent(
        self, *, status: str | None, since: datetime, cap: int, page: int = 500, **filters: Any
    ) -> tuple[list[dict[str, Any]], bool]:
        """Jobs updated at or after ``since`` (newest first), at most ``cap``; (items, capped).

        Reads pages sorted by ``-updated_at`` and stops at the first item older than ``since``.
        """
        found: list[dict[str, Any]] = []
        for item in self._walk(status=status, sort="-updated_at", limit=page, **filters):
            if parse_time(item["updated_at"]) < since:
                return found, False
            if len(found) == cap:
                return found, True
            found.append(item)
        return found, False

    def _walk(self, **params: Any) -> Iterator[dict[str, Any]]:
        cursor = None
        while True:
            body = self.jobs(**params, cursor=cursor)
            yield from body["items"]
            cursor = body.get("next_cursor")
            if not cursor:
                return


def _error_text(response: httpx.Response) -> str:
    """The ``error`` of a JSON error answer (with its problems), else the start of the body."""
    try:
        body = response.json()
    except ValueError:
        return response.text[:200]
    if not isinstance(body, dict):
        return response.text[:200]
    problems = "; ".join(f"{p.get('path')}: {p.get('message')}" for p in body.get("problems", []))
    return (body.get("error") or response.text[:200]) + (f" ({problems})" if problems else "")


class Sidecar:
    """A sidecar's health report (``--sidecar URL``): backends, breakers, spool lag."""

    def __init__(self, url: str, *, token: Secret | None = None, timeout: float = 5.0) -> None:
        self.url = strip_credentials(url.rstrip("/"))
        # Without the sidecar's read token, its health answer is the status only.
        headers = {"Authorization": f"Bearer {token.reveal()}"} if token else {}
        self._client = httpx.Client(
            base_url=url.rstrip("/"), headers=headers, timeout=timeout, trust_env=False
        )

    def health(self) -> dict[str, Any]:
        try:
            response = self._client.get("/v1/healthz")
        except httpx.HTTPError as exc:
            reason = strip_credentials(f"cannot reach the sidecar at {self.url}: {exc}")
            raise ApiError(reason) from None
        try:
            return response.json()
        except ValueError:
            raise ApiError(f"sidecar {self.url}: HTTP {response.status_code}") from None

    def close(self) -> None:
        self._client.close()
