"""Helpers shared by the sidecar tests (a uniquely named module, importable from tests).

Most come from the plugin authors' kit, wafermon.testing (one copy for the hosts' tests and
every plugin's):

- ``Collect``: the kit's ``RecordingEmitter`` registered as the test-only emitter type
  ``collect``; it keeps what it gets in memory and can be switched down, made to refuse
  entities permanently, or made to fail its start.
- ``Proc``: a real ``wafermon sidecar`` / ``wafermon gateway`` process that can be stopped with
  SIGTERM, killed with SIGKILL and started again on the same port.
- Fast NDJSON bodies for the load tests (``ndjson_batch``); here: reading back what a
  filesystem backend wrote, /v1/healthz and /metrics readers, a sidecar site config.
"""

from __future__ import annotations

import gzip
import sys
from pathlib import Path

import httpx
import orjson

from wafermon import hookimpl
from wafermon.testing import (
    FAST_RETRY,
    Proc,
    RecordingEmitter,
    event_ids,
    free_port,
    ids,
    ndjson_batch,
    processes,
    wait_for,
    write_yaml,
)

__all__ = [
    "FAST_RETRY",
    "WAFERMON",
    "Collect",
    "Proc",
    "SidecarTestComponents",
    "backend_health",
    "event_ids",
    "filesystem_event_ids",
    "free_port",
    "ids",
    "metric",
    "ndjson_batch",
    "processes",
    "site",
    "wait_for",
    "write_yaml",
]

WAFERMON = str(Path(sys.executable).parent / "wafermon")

#: The kit's in-memory emitter, registered below as the test-only type ``collect``.
Collect = RecordingEmitter


class SidecarTestComponents:
    """A plugin object providing the test-only emitter type ``collect``."""

    @hookimpl
    def register_emitters(self, register):
        register("collect", Collect)


# -- events, fast -----------------------------------------------------------------------------


def filesystem_event_ids(root: Path) -> list[str]:
    """Every event_id a filesystem backend wrote under ``root`` (plain and gzipped files)."""
    found = []
    for path in sorted(root.rglob("events*.jsonl*")):
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rb") as file:
            found.extend(orjson.loads(line)["event_id"] for line in file if line.strip())
    return found


def backend_health(url: str) -> dict[str, dict]:
    return httpx.get(f"{url}/v1/healthz", timeout=10).json()["backends"]


def metric(text: str, name: str, **labels: str) -> float | None:
    """The value of one sample in a Prometheus text exposition, or None."""
    from prometheus_client.parser import text_string_to_metric_families

    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return sample.value
    return None


def site(tmp_path, *, backends=None, **sidecar) -> dict:
    return {
        "site_id": "fab1",
        "sidecar": {"spool": {"dir": str(tmp_path / "spool")}, "retry": FAST_RETRY, **sidecar},
        "backends": backends
        or [{"name": "archive", "type": "filesystem", "config": {"root": str(tmp_path / "fs")}}],
    }
