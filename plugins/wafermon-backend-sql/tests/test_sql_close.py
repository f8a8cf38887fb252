"""close() waits for a read its caller cancelled, so no aiosqlite thread outlives the loop.

A query cancelled by a timeout (a source timeout, a client gone) keeps running in aiosqlite's
worker thread; the thread then hands its answer to the event loop. If the loop was closed in
between, the thread dies with "Event loop is closed", which pytest reports as an unhandled
thread exception (an error under filterwarnings=error). Run in its own loop, closed right
after the store is, like an in-process test server's.
"""

from __future__ import annotations

import asyncio
import threading

import sqlalchemy as sa

from wafermon_backend_sql import Settings, SqlStore

#: Long enough (tens of milliseconds or more) to still be running when it is cancelled.
SLOW = sa.text(
    "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 3000000) "
    "SELECT count(*) FROM c"
)


def _worker_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if "_connection_worker_thread" in t.name]


def test_close_waits_for_a_cancelled_read_before_the_loop_closes(tmp_path):
    before = set(_worker_threads())
    seen: list[BaseException] = []
    old_hook = threading.excepthook
    threading.excepthook = lambda args: seen.append(args.exc_value)  # type: ignore[assignment]

    async def main() -> None:
        store = SqlStore("managed", Settings(url=f"sqlite+aiosqlite:///{tmp_path}/w.db"))
        await store.start()
        read = asyncio.create_task(store._fetch(SLOW))
        await asyncio.sleep(0.02)
        read.cancel()
        await asyncio.gather(read, return_exceptions=True)
        await store.close()

    try:
        asyncio.run(main())
        for thread in set(_worker_threads()) - before:
            thread.join(30)  # the slow read ends in the thread whatever happened
    finally:
        threading.excepthook = old_hook
    assert seen == [], seen
