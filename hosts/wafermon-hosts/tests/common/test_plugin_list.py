"""GET /-/plugins: every host says which plugins it runs, what each provides and implements."""

from __future__ import annotations

from tests.helpers.central import write_central_config
from tests.helpers.gateway import running
from wafermon import hookimpl
from wafermon.config import load_config
from wafermon.plugins import Plugins
from wafermon_hosts.central import create_app as create_central_app
from wafermon_hosts.central import load_central


def by_name(body: dict) -> dict[str, dict]:
    return {p["name"]: p for p in body["plugins"]}


async def test_the_gateway_lists_its_plugins_with_what_they_provide(start_gateway, plugins):
    class Broken:
        @hookimpl
        def register_emitters(self, register):
            raise RuntimeError("cannot reach http://user:pw@example.invalid/")

    plugins.register(Broken(), "broken")
    async with start_gateway() as (client, _app):
        answer = await client.get("/-/plugins")
    assert answer.status_code == 200
    listed = by_name(answer.json())
    assert {"sql", "filesystem", "test-components", "broken"} <= set(listed)
    sql = listed["sql"]
    assert sql["provides"]["emitter"] == ["sql"]
    assert "sql" in sql["provides"]["query_adapter"]
    assert "register_emitters" in sql["hooks"]
    assert sql["error"] is None
    assert sql["warnings"] == []
    assert set(sql) == {"name", "version", "distribution", "provides", "hooks", "warnings", "error"}
    broken = listed["broken"]
    assert broken["provides"] == {}
    assert "register_emitters failed: RuntimeError" in broken["error"]
    assert "pw@" not in broken["error"]  # URL credentials are stripped


async def test_it_needs_the_read_scope(start_gateway):
    async with start_gateway(gateway={"tokens": {"read": "r", "ingest": "i"}}) as (client, _app):
        assert (await client.get("/-/plugins")).status_code == 401
        assert (
            await client.get("/-/plugins", headers={"Authorization": "Bearer i"})
        ).status_code == 403
        ok = await client.get("/-/plugins", headers={"Authorization": "Bearer r"})
    assert "sql" in by_name(ok.json())


async def test_the_sidecar_lists_its_plugins(start_sidecar):
    async with start_sidecar() as (client, _app):
        listed = by_name((await client.get("/-/plugins")).json())
    assert listed["filesystem"]["provides"]["emitter"] == ["filesystem"]
    assert "sc-test-components" in listed


async def test_central_lists_its_plugins_or_none(tmp_path):
    sites = {"fab1": {"url": "http://127.0.0.1:1"}}
    loaded = load_config(write_central_config(tmp_path, sites))
    async with running(create_central_app(load_central(loaded))) as client:
        assert (await client.get("/-/plugins")).json() == {"plugins": []}
    plugins = Plugins()

    class Extra:
        @hookimpl
        def register_routes(self, host):
            return None

    plugins.register(Extra(), "extra")
    async with running(create_central_app(load_central(loaded, plugins))) as client:
        listed = by_name((await client.get("/-/plugins")).json())
    assert listed["extra"]["hooks"] == ["register_routes"]
