"""The module the ``wafermon`` entry point ``dashboard`` names: adds ``wafermon dashboard``
to the CLI."""

from wafermon import hookimpl


@hookimpl
def register_commands(cli):
    from .cli import dashboard

    cli.add_command(dashboard)
