"""The module the ``wafermon`` entry point ``hosts`` names: adds the host commands to the CLI,
and checks the host sections for ``wafermon config check``."""

from wafermon import hookimpl


@hookimpl
def register_commands(cli):
    from .alerts_cli import alerts
    from .central.cli import central
    from .gateway.cli import gateway
    from .sidecar.cli import sidecar

    cli.add_command(alerts)
    cli.add_command(central)
    cli.add_command(gateway)
    cli.add_command(sidecar)


@hookimpl
def check_config(config, plugins):
    """Run the builders ``wafermon sidecar|gateway|central --check`` run, for each section the
    file has.

    One validation for both commands: a key ``sidecar --check`` refuses, ``config check`` refuses
    too, with the same words. Nothing is started (no spool opened, no connection made).
    """
    from wafermon import ConfigError, PluginError

    from .central.settings import build_central
    from .gateway.settings import build_gateway
    from .sidecar.settings import build_sidecar

    builders = {
        "sidecar": build_sidecar,
        "gateway": build_gateway,
        "central": lambda config, _plugins: build_central(config),
    }
    problems: list = []
    for section, build in builders.items():
        if section not in config.raw:
            continue
        try:
            build(config, plugins)
        except ConfigError as exc:
            problems.extend(exc.problems)
        except PluginError as exc:
            problems.append(str(exc))
    return problems
