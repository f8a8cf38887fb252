"""The plugin module the ``wafermon`` entry point names: hook implementations only.

aiobotocore and pyarrow take a while to import, so the classes are registered by name and
imported only when a site config uses ``type: s3``; ``wafermon archive`` imports them itself.
"""

from wafermon import hookimpl


@hookimpl
def register_emitters(register):
    register("s3", "wafermon_backend_s3.emitter:S3Emitter")


@hookimpl
def register_query_adapters(register):
    # The same type name as the emitter: a site reads back what it wrote, and the archive.
    register("s3", "wafermon_backend_s3.adapter:S3QueryAdapter")


@hookimpl
def register_commands(cli):
    from .cli import archive

    cli.add_command(archive)
