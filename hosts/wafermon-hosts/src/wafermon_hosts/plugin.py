"""The module the ``wafermon`` entry point ``hosts`` names: adds the host commands to the CLI."""

from wafermon import hookimpl


@hookimpl
def register_commands(cli):
    from .gateway.cli import gateway

    cli.add_command(gateway)
