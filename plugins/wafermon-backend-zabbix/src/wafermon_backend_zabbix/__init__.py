"""wafermon-backend-zabbix: job figures into Zabbix trapper items, and events back out.

As a backend (an emitter the sidecar routes batches to, or the Python SDK's direct mode)::

    backends:
      - name: zabbix
        type: zabbix
        config:
          server: zabbix.fab1          # trapper port 10051 of the server or a proxy
          provision: true              # create host wafermon-<site>, LLD rule, item prototypes
          api: {url: "https://zabbix.fab1/", token: "${WAFERMON_ZABBIX_TOKEN}"}

As a source (a query adapter the gateway reads for /v1/query/external and /v1/data/unified)::

    sources:
      - name: zabbix
        type: zabbix
        config:
          api: {url: "https://zabbix.fab1/", token: "${WAFERMON_ZABBIX_TOKEN}"}

See docs/backends/zabbix.md for the items, what is refused and why, and what Zabbix users see.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from wafermon.plugins import lazy_exports

if TYPE_CHECKING:
    from .adapter import AdapterSettings, ZabbixQueryAdapter
    from .api import ApiSettings, ZabbixApi
    from .emitter import EmitterSettings, ZabbixEmitter
    from .keys import host_name, key
    from .provision import ProvisionReport, provision_site

# Imported on first use: every wafermon command and host loads this package to find its hooks.
_EXPORTS = {
    "AdapterSettings": "adapter",
    "ZabbixQueryAdapter": "adapter",
    "ApiSettings": "api",
    "ZabbixApi": "api",
    "EmitterSettings": "emitter",
    "ZabbixEmitter": "emitter",
    "host_name": "keys",
    "key": "keys",
    "ProvisionReport": "provision",
    "provision_site": "provision",
}
__all__ = [
    "AdapterSettings",
    "ApiSettings",
    "EmitterSettings",
    "ProvisionReport",
    "ZabbixApi",
    "ZabbixEmitter",
    "ZabbixQueryAdapter",
    "host_name",
    "key",
    "provision_site",
]
__getattr__ = lazy_exports(__name__, _EXPORTS)
