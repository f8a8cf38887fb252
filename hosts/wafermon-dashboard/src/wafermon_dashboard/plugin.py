"""The module the ``wafermon`` entry point ``dashboard`` names: adds ``wafermon dashboard``,
``wafermon up`` and ``wafermon demo`` to the CLI."""

from wafermon import hookimpl


@hookimpl
def register_commands(cli):
    from .cli import dashboard, demo, up

    cli.add_command(dashboard)
    cli.add_command(up)
    cli.add_command(demo)
