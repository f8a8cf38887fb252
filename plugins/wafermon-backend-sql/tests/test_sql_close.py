"""close() waits for a read its caller cancelled, so no aiosqlite thread outlives the loop.

A read cancelled twice (a source timeout, then a server shutting down) used to leave its
connection's close orphaned while aiosqlite's worker thread still ran the statement: closing
the loop then hung or the thread died answering a closed loop ("Event loop is closed", an
unhandled thread exception that failed unrelated tests in teardown). The loop here is closed
right after the store, like an in-process test server's.
"""

from __future__ import annotations

import asyncio
import threading

import sqlalchemy as sa

from wafermon_backend_sql import Settings, SqlStore

#: Long enough (about a second) to still be running when it is cancelled.
SLOW = sa.text(
    "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 3000000) "
    "SELECT count(*) FROM c"
)


def _worker_threads() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if "_connection_worker_thread" in t.name}


def test_close_waits_for_a_read_cancelled_twice_before_the_loop_closes(tmp_path):
    before = _worker_threads()
    seen: list[BaseException | None] = []
    old_hook = threading.excepthook
    threading.excepthook = lambda args: seen.append(args.exc_value)

    async def main() -> None:
        store = SqlStore("managed", Settings(url=f"sqlite+aiosqlite:///{tmp_path}/w.db"))
        await store.start()
        read = asyncio.create_task(store._fetch(SLOW))
        for _ in range(2):
            await asyncio.sleep(0.02)
            read.cancel()
        await asyncio.gather(read, return_exceptions=True)
        await store.close()

    # In a thread of its own: before the fix, closing this loop never returned.
    runner = threading.Thread(target=asyncio.run, args=(main(),), daemon=True)
    try:
        runner.start()
        runner.join(30)
        assert not runner.is_alive(), "closing the event loop hung on the cancelled read"
        left = _worker_threads() - before
        for thread in left:
            thread.join(10)
        assert not [t for t in left if t.is_alive()], "an aiosqlite thread outlived its store"
    finally:
        threading.excepthook = old_hook
    assert seen == [], seen
