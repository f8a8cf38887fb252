"""The module the ``wafermon`` entry point ``hosts`` names: adds the host commands to the CLI."""

from wafermon import hookimpl


@hookimpl
def register_commands(cli):
    from .central.cli import central
    from .gateway.cli import gateway
    from .sidecar.cli import sidecar

    cli.add_command(central)
    cli.add_command(gateway)
    cli.add_command(sidecar)
