"""A lot of wafers, monitored: one job with a subjob per wafer, shipped to a sidecar.

    WAFERMON_SIDECAR_URL=http://127.0.0.1:17000 python sdk-python/examples/wafer_lot.py

Settings come from WAFERMON_* variables (WAFERMON_SIDECAR_URL, WAFERMON_TOKEN, ...); the
sidecar URL defaults to http://127.0.0.1:17000. Wafer 3 fails on purpose so the lot shows a
failed subjob with its traceback; the lot itself finishes. Prints the client's figures.
"""

from __future__ import annotations

import json
import os
import random
import time
from uuid import uuid4

from wafermon_sdk import AppRef, Monitored, SidecarEmitter

SITE = os.environ.get("WAFERMON_SITE_ID", "fab1")


class ChamberFault(RuntimeError):
    """The tool reported a fault while etching."""


def process_wafer(wafer_id: int) -> None:
    time.sleep(random.uniform(0.01, 0.05))
    if wafer_id == 3:
        raise ChamberFault(f"RF power out of range on wafer {wafer_id}")


def main() -> None:
    emitter = SidecarEmitter(
        base_url=os.environ.get("WAFERMON_SIDECAR_URL", "http://127.0.0.1:17000"),
        timeout=10.0,
        max_retries=5,
        enable_retries=True,
    )
    app = AppRef(app_id=uuid4(), name="wafer-process", version="2.1.0")
    with Monitored(
        site_id=SITE,
        app=app,
        entity_type="job",
        business_key="batch-12345",
        metadata={"priority": "high", "customer": "ACME"},
        emitter=emitter,
    ) as job:
        for wafer_id in range(1, 6):
            try:
                with Monitored(
                    site_id=SITE,
                    app=app,
                    entity_type="subjob",
                    parent_id=job.entity_id,
                    sub_key=f"wafer-{wafer_id}",
                    emitter=emitter,
                ) as subjob:
                    process_wafer(wafer_id)
                    subjob.tick(extra_meta={"progress": 0.5, "chamber": "C2"})
                    process_wafer(wafer_id + 100)
            except ChamberFault:
                pass  # reported as a failed subjob; the lot goes on
    delivered = emitter.flush()
    print(f"lot {job.entity_id}: {'delivered' if delivered else 'kept in the local spool'}")
    print(json.dumps(emitter.stats(), indent=2))
    emitter.close()


if __name__ == "__main__":
    main()
