"""wafermon-backend-filesystem: store events as JSONL files, and read them back.

As a backend (an emitter the sidecar routes batches to)::

    backends:
      - name: backup
        type: filesystem
        config:
          root: /var/lib/wafermon/events   # relative paths are relative to the config file
          rotate_bytes: 64MiB              # rotate the active file at this size ...
          rotate_after: 1h                 # ... or at this age, whichever comes first
          compress: true                   # gzip rotated files
          fsync: true                      # emit returns only once the batch is on disk
          format: jsonl                    # or json, csv (see formats)

As a source (a query adapter the gateway reads)::

    sources:
      - name: backup
        type: filesystem
        config:
          root: /var/lib/wafermon/events

Events are partitioned by site and UTC day of their ``time``; see ``layout`` for the files.
"""

from .adapter import AdapterSettings, FilesystemQueryAdapter
from .emitter import EmitterSettings, FilesystemEmitter

__all__ = ["AdapterSettings", "EmitterSettings", "FilesystemEmitter", "FilesystemQueryAdapter"]
