"""The Zabbix API connection (zabbix-utils' AsyncZabbixAPI), shared by provisioning and queries.

Credentials are ``Secret``: an API token (Zabbix 5.4+) or a user and password.
"""

from __future__ import annotations

import asyncio
import contextlib

import aiohttp
import attrs
from zabbix_utils import AsyncZabbixAPI
from zabbix_utils.exceptions import ModuleBaseException

from wafermon import ConfigError, Problem, RetryableError, Seconds, Secret


@attrs.frozen(kw_only=True)
class ApiSettings:
    """Where the Zabbix API is and how to log in (``url`` may omit ``/api_jsonrpc.php``)."""

    url: str
    token: Secret | None = None
    user: str | None = None
    password: Secret | None = None
    verify_tls: bool = True
    timeout: Seconds = Seconds(30.0)

    def __attrs_post_init__(self) -> None:
        if self.token is None and (self.user is None or self.password is None):
            raise ConfigError([Problem("$.token", "give an API token, or user and password")])
        if self.token is not None and (self.user or self.password):
            raise ConfigError([Problem("$.token", "give a token or user/password, not both")])


class ZabbixApi:
    """One logged-in API session; ``call('host.get', ...)`` turns every failure into
    RetryableError with Zabbix's message (never the credentials)."""

    def __init__(self, settings: ApiSettings) -> None:
        self.settings = settings
        self._session: aiohttp.ClientSession | None = None
        self._api: AsyncZabbixAPI | None = None
        self._lock = asyncio.Lock()

    async def connect(self) -> AsyncZabbixAPI:
        async with self._lock:
            if self._api is not None:
                return self._api
            s = self.settings
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(ssl=s.verify_tls),
                timeout=aiohttp.ClientTimeout(total=s.timeout),
            )
            try:
                # The constructor asks the API version with a blocking request: off the loop.
                api = await asyncio.to_thread(
                    AsyncZabbixAPI,
                    url=s.url,
                    client_session=self._session,
                    validate_certs=s.verify_tls,
                    timeout=int(s.timeout),
                )
                if s.token is not None:
                    await api.login(token=s.token.reveal())
                else:
                    assert s.password is not None
                    await api.login(user=s.user, password=s.password.reveal())
            except (ModuleBaseException, aiohttp.ClientError, OSError, TimeoutError) as exc:
                await self.close()
                raise RetryableError(f"Zabbix API {s.url}: {exc}") from exc
            self._api = api
            return api

    async def call(self, method: str, *args, **params):
        api = await self.connect()
        group, name = method.split(".")
        try:
            return await getattr(getattr(api, group), name)(*args, **params)
        except (ModuleBaseException, aiohttp.ClientError, OSError, TimeoutError) as exc:
            raise RetryableError(f"Zabbix API {method}: {exc}") from exc

    async def close(self) -> None:
        api, self._api = self._api, None
        if api is not None and self.settings.token is None:
            # If this fails the session expires on its own.
            with contextlib.suppress(
                ModuleBaseException, aiohttp.ClientError, OSError, TimeoutError
            ):
                await api.logout()
        if self._session is not None:
            await self._session.close()
            self._session = None
