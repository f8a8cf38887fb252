"""The plugin module the ``wafermon`` entry point names: hook implementations only."""

from wafermon import hookimpl


@hookimpl
def register_emitters(register):
    # Imported on first use: zabbix-utils and aiohttp cost start-up time to hosts not using it.
    register("zabbix", "wafermon_backend_zabbix.emitter:ZabbixEmitter")


@hookimpl
def register_query_adapters(register):
    register("zabbix", "wafermon_backend_zabbix.adapter:ZabbixQueryAdapter")
