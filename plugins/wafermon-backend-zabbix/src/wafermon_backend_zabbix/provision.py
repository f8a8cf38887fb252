"""Idempotent provisioning through the API: host group, a host per site, the LLD rule and its
item prototypes. Each object is looked up by its natural key (group name, host name, item key)
and created only when missing, or updated when its type has drifted; a second run changes
nothing and says so in its report.
"""

from __future__ import annotations

import attrs

from .api import ZabbixApi
from .keys import APP_MACRO, DISCOVERY_KEY, ITEMS, TEXT

TRAPPER = 2  # item type "Zabbix trapper"
#: Apps not sent for this long lose their items (LLD "lost resources"); the emitter announces
#: only the apps it has seen since it started, so the period is long.
LLD_LIFETIME = "3650d"


@attrs.define
class ProvisionReport:
    host: str
    hostid: str = ""
    created: list[str] = attrs.Factory(list)
    updated: list[str] = attrs.Factory(list)


async def provision_site(
    api: ZabbixApi, host: str, group: str, *, trapper_hosts: str = ""
) -> ProvisionReport:
    """Make sure ``host`` exists with the discovery rule and prototypes; returns what changed."""
    report = ProvisionReport(host)
    groups = await api.call("hostgroup.get", filter={"name": [group]}, output=["groupid"])
    if groups:
        groupid = groups[0]["groupid"]
    else:
        groupid = (await api.call("hostgroup.create", name=group))["groupids"][0]
        report.created.append(f"hostgroup {group}")
    hosts = await api.call("host.get", filter={"host": [host]}, output=["hostid"])
    if hosts:
        report.hostid = hosts[0]["hostid"]
    else:
        # No interface: trapper items need none.
        created = await api.call("host.create", host=host, groups=[{"groupid": groupid}])
        report.hostid = created["hostids"][0]
        report.created.append(f"host {host}")
    rules = await api.call(
        "discoveryrule.get",
        hostids=[report.hostid],
        filter={"key_": [DISCOVERY_KEY]},
        output=["itemid", "type", "lifetime", "trapper_hosts"],
    )
    rule_fields = {"type": TRAPPER, "lifetime": LLD_LIFETIME, "trapper_hosts": trapper_hosts}
    if rules:
        ruleid = rules[0]["itemid"]
        if any(str(rules[0][k]) != str(v) for k, v in rule_fields.items()):
            await api.call("discoveryrule.update", itemid=ruleid, **rule_fields)
            report.updated.append(f"discovery rule {DISCOVERY_KEY}")
    else:
        ruleid = (
            await api.call(
                "discoveryrule.create",
                hostid=report.hostid,
                name="wafermon apps",
                key_=DISCOVERY_KEY,
                **rule_fields,
            )
        )["itemids"][0]
        report.created.append(f"discovery rule {DISCOVERY_KEY}")
    have = {
        p["key_"]: p
        for p in await api.call(
            "itemprototype.get",
            discoveryids=[ruleid],
            output=["itemid", "key_", "type", "value_type", "units", "trapper_hosts"],
        )
    }
    for base, (name, value_type, units) in ITEMS.items():
        proto_key = f"{base}[{APP_MACRO}]"
        fields = {
            "type": TRAPPER,
            "value_type": value_type,
            "units": units,
            "trapper_hosts": trapper_hosts,
        }
        found = have.get(proto_key)
        if found is None:
            extra = {} if value_type == TEXT else {"trends": "365d"}
            await api.call(
                "itemprototype.create",
                hostid=report.hostid,
                ruleid=ruleid,
                name=name,
                key_=proto_key,
                history="90d",
                **fields,
                **extra,
            )
            report.created.append(f"item prototype {proto_key}")
        elif any(str(found[k]) != str(v) for k, v in fields.items()):
            await api.call("itemprototype.update", itemid=found["itemid"], **fields)
            report.updated.append(f"item prototype {proto_key}")
    return report
