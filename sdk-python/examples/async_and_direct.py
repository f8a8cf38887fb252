"""Async jobs, the module-level API, and direct mode (no sidecar: backends in-process).

    python sdk-python/examples/async_and_direct.py            # writes ./data/sdk-example

Direct mode builds the backends a site config names, through the same plugins the sidecar
loads; here one ``filesystem`` backend. Set WAFERMON_MODE/WAFERMON_CONFIG to use your own.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
from pathlib import Path

import wafermon_sdk
from wafermon_sdk import AppRef, Monitored

APP = AppRef(name="metrology", version="1.4")


@Monitored(app=APP, entity_type="subjob")
async def measure(wafer: int) -> float:
    await asyncio.sleep(0.01)
    return 42.0 + wafer


async def lot() -> list[float]:
    async with Monitored(app=APP, business_key="lot-77") as job:
        results = await asyncio.gather(*(measure(w) for w in range(5)))
        job.tick(extra_meta={"progress": 1.0, "mean": sum(results) / len(results)})
        return results


def main() -> None:
    root = Path("data/sdk-example").absolute()
    site = Path(tempfile.mkdtemp()) / "site.yaml"
    backend = f"{{name: local, type: filesystem, config: {{root: '{root}'}}}}"
    site.write_text(f"site_id: fab1\nbackends: [{backend}]\n")
    wafermon_sdk.initialize(
        mode=os.environ.get("WAFERMON_MODE", "direct"),
        site_config=os.environ.get("WAFERMON_CONFIG", str(site)),
        spool_dir=str(root.parent / "sdk-spool"),
    )
    print(asyncio.run(lot()))
    print("delivered:", wafermon_sdk.flush(), "| events under", root)
    wafermon_sdk.close()


if __name__ == "__main__":
    main()
