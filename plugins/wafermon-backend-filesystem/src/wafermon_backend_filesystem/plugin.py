"""The plugin module the ``wafermon`` entry point names: hook implementations only.

The core calls these hooks to learn which component types this distribution provides. The
type name is what a site config writes as ``type:`` under ``backends`` or ``sources``.
"""

from wafermon import hookimpl

from .adapter import FilesystemQueryAdapter
from .emitter import FilesystemEmitter


@hookimpl
def register_emitters(register):
    register("filesystem", FilesystemEmitter)


@hookimpl
def register_query_adapters(register):
    # The same type name as the emitter: a site can read back what it wrote.
    register("filesystem", FilesystemQueryAdapter)
