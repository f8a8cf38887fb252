"""The module the ``wafermon`` entry point ``stack`` names: adds ``wafermon up`` and
``wafermon demo`` to the CLI."""

from wafermon import hookimpl


@hookimpl
def register_commands(cli):
    from .cli import demo, up

    cli.add_command(up)
    cli.add_command(demo)
