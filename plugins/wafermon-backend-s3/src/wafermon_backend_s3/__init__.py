"""wafermon-backend-s3: events as objects in any S3-compatible store, read back, and the archive.

As a backend (an emitter the sidecar routes to, or an SDK uses directly)::

    backends:
      - name: lake
        type: s3
        config:
          bucket: wafer-events
          prefix: wafermon/events
          format: jsonl                 # or parquet
          endpoint_url: http://127.0.0.1:8333   # omit for AWS S3
          path_style: true

As a source, and as the gateway's archive of the managed store::

    sources:
      - name: archive
        type: s3
        config:
          bucket: wafer-events
          prefix: wafermon/archive
          archive: {hot_window: 72h, retention: 3650d}

See docs/backends/s3.md and docs/archive.md.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from wafermon.plugins import lazy_exports

if TYPE_CHECKING:
    from .archive import Archiver, ArchiveReport, ArchiveSettings
    from .bucket import Bucket, S3Settings

# Imported on first use: every wafermon command and host loads this package to find its hooks.
_EXPORTS = {
    "Archiver": "archive",
    "ArchiveReport": "archive",
    "ArchiveSettings": "archive",
    "Bucket": "bucket",
    "S3Settings": "bucket",
}
__all__ = [
    "ArchiveReport",
    "ArchiveSettings",
    "Archiver",
    "Bucket",
    "S3Settings",
]
__getattr__ = lazy_exports(__name__, _EXPORTS)
