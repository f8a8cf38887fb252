"""GET /-/plugins: the plugins a host runs, so an operator can see which versions answer.

The same facts as ``wafermon plugins --json`` (name, version, distribution, hooks, warnings,
load error), with ``provides`` grouped by kind (``{"emitter": ["sql"], ...}``). It needs the
read scope (the default for a path ``scope_of`` does not list) and costs no plugin work: the
registrations were collected when the host built its components.
"""

from __future__ import annotations

from typing import Annotated, Any

from msgspec import Meta
from starlette.requests import Request
from starlette.responses import Response

from wafermon import strip_credentials
from wafermon.plugins import PluginInfo

from .bodies import Body, BodyResponse, schemas
from .openapi import json_content, operation, ref

PATH = "/-/plugins"


class Plugin(Body):
    name: Annotated[str, Meta(description="The entry point's name.")]
    version: Annotated[str | None, Meta(description="Its distribution's.")]
    distribution: str | None
    provides: Annotated[
        dict[str, list[str]],
        Meta(
            description="Kind (emitter, query_adapter, notifier, ...) -> the type names it "
            "registers, as site configs write them."
        ),
    ]
    hooks: Annotated[list[str], Meta(description="The hooks it implements.")]
    warnings: list[str]
    error: Annotated[
        str | None, Meta(description="Why it failed to load (then it provides nothing).")
    ]


class Plugins(Body):
    plugins: list[Plugin]


SCHEMAS: dict[str, Any] = schemas(Plugins)


def plugin_json(info: PluginInfo) -> Plugin:
    provides: dict[str, list[str]] = {}
    for item in info.provides:
        kind, _, type_name = item.partition(":")
        provides.setdefault(kind, []).append(type_name)
    return Plugin(
        name=info.name,
        version=info.version,
        distribution=info.distribution,
        provides=provides,
        hooks=list(info.hooks),
        warnings=[strip_credentials(w) for w in info.warnings],
        error=None if info.error is None else strip_credentials(info.error),
    )


@operation(
    "plugins",
    "The plugins this host loaded: name, version, what each provides, the hooks it implements.",
    {"200": json_content(ref("Plugins"), "Every plugin, loaded or broken, by name.")},
)
async def list_plugins(request: Request) -> Response:
    plugins = request.app.state.plugins
    infos = [] if plugins is None else plugins.info()
    return BodyResponse(Plugins(plugins=[plugin_json(info) for info in infos]))
