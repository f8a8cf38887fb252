"""Runs one archive pass and kills itself with SIGKILL at a chosen step (the kill -9 test).

``python archive_child.py CONFIG_JSON``: {db_url, s3: {...settings}, archive: {...}, now,
step, occurrence}. The process dies at the ``occurrence``-th time the archiver reaches
``step``, exactly as a kill -9 from outside would leave things at that point.
"""

import asyncio
import os
import signal
import sys
from datetime import datetime

import orjson

from wafermon import Secret
from wafermon_backend_s3 import Archiver, ArchiveSettings, Bucket, S3Settings
from wafermon_backend_sql import Settings, SqlStore


async def main(spec: dict) -> None:
    store = SqlStore("managed", Settings(url=Secret(spec["db_url"])))
    bucket = Bucket(S3Settings(**spec["s3"]))
    await store.start()
    await bucket.open()
    seen = 0

    def on_step(step: str) -> None:
        nonlocal seen
        if step == spec["step"]:
            seen += 1
            if seen == spec["occurrence"]:
                os.kill(os.getpid(), signal.SIGKILL)

    archiver = Archiver(
        store,
        bucket,
        spec["s3"].get("prefix", "wafermon"),
        ArchiveSettings(**spec["archive"]),
        on_step=on_step,
        now=datetime.fromisoformat(spec["now"]),
    )
    await archiver.run()
    print("finished without reaching the step", file=sys.stderr)
    sys.exit(3)


asyncio.run(main(orjson.loads(sys.argv[1])))
