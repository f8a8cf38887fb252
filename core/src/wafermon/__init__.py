"""wafermon-core: the event contract, the plugin system, site config and the ``wafermon`` CLI.

Plugins import what they need from here::

    from wafermon import hookimpl, Emitter, Event, RetryableError, PermanentError

The wire event's JSON Schema ships inside this package (``schema_path()``) and is the contract
every SDK is tested against.
"""

from importlib import resources
from pathlib import Path

import pluggy

__version__ = "0.1.0"

hookimpl = pluggy.HookimplMarker("wafermon")


def schema_path() -> Path:
    """Filesystem path of the wire event's JSON Schema (version 1)."""
    return Path(str(resources.files(__name__) / "schemas" / "event.v1.schema.json"))
