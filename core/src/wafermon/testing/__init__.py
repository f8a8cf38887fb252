"""wafermon.testing: the kit for testing wafermon plugins (and wafermon itself).

Install with ``pip install "wafermon-core[testing]"``; pytest then loads its fixtures
(``wafermon.testing.plugin``). What it offers:

- ``EventFactory`` / ``make_event``: valid events with every field defaulted;
  ``ndjson_batch``, ``event_ids``, ``ids`` for bodies and ids;
- ``RecordingEmitter``, ``MemoryQueryAdapter``, ``RecordingNotifier``, ``RecordingPlugin``: real
  in-memory components with failure switches;
- ``EmitterContract``, ``QueryAdapterContract``, ``NotifierContract``: test classes to subclass,
  run against your component and its real backend;
- ``Proc``, ``processes``, ``free_port``, ``write_yaml``, ``sidecar_config``, ``wait_for``:
  real ``wafermon sidecar`` / ``wafermon gateway`` processes on free ports.

Reference: docs/testing-plugins.md.
"""

from .contract import EmitterContract, NotifierContract, QueryAdapterContract
from .events import EventFactory, event_ids, ids, make_event, ndjson_batch
from .processes import (
    FAST_RETRY,
    Proc,
    free_port,
    http_status,
    post_json,
    processes,
    sidecar_config,
    wafermon_command,
    wait_for,
    write_yaml,
)
from .recording import (
    MemoryAdapterSettings,
    MemoryQueryAdapter,
    RecordingEmitter,
    RecordingNotifier,
    RecordingPlugin,
    RecordingSettings,
)

__all__ = [
    "FAST_RETRY",
    "EmitterContract",
    "EventFactory",
    "MemoryAdapterSettings",
    "MemoryQueryAdapter",
    "NotifierContract",
    "Proc",
    "QueryAdapterContract",
    "RecordingEmitter",
    "RecordingNotifier",
    "RecordingPlugin",
    "RecordingSettings",
    "event_ids",
    "free_port",
    "http_status",
    "ids",
    "make_event",
    "ndjson_batch",
    "post_json",
    "processes",
    "sidecar_config",
    "wafermon_command",
    "wait_for",
    "write_yaml",
]
