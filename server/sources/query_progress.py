"""Running one store query in a worker thread, reporting its progress while it runs long.

When the call has a progress reporter (``tools.progress``: an MCP request with a progressToken), the
cursor's progress tracking is switched on and, once the query has run ``REPORT_AFTER_SECONDS``, DuckDB's
``query_progress()`` (a percentage, readable from another thread while the query runs) is sent every
``REPORT_INTERVAL_SECONDS`` until it ends, and 100 once it has. Without a reporter nothing is switched on or polled.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import TypeVar

import anyio
import duckdb

from tools import progress

T = TypeVar("T")
# "A tool call whose query runs longer than about a second" (issue 14); tests set it to 0.
REPORT_AFTER_SECONDS = 1.0


async def run_reporting(cur: duckdb.DuckDBPyConnection, run: Callable[[], T]) -> T:
    """``run()`` (which uses ``cur``) in a worker thread; progress reported as described above."""
    report = progress.current()
    if report is None:
        return await anyio.to_thread.run_sync(run, abandon_on_cancel=True)
    with contextlib.suppress(duckdb.Error):  # progress is a courtesy: a store that refuses it still answers
        cur.execute("SET enable_progress_bar = true")
        cur.execute("SET enable_progress_bar_print = false")
    result: list[T] = []
    started = anyio.current_time()
    async with anyio.create_task_group() as tg:

        async def watch() -> None:
            await anyio.sleep(REPORT_AFTER_SECONDS)
            while True:
                try:
                    percent = cur.query_progress()
                except duckdb.Error:  # the cursor closed: the query is over
                    return
                if percent >= 0:
                    await report(float(percent), 100.0, "query running")
                await anyio.sleep(progress.REPORT_INTERVAL_SECONDS)

        tg.start_soon(watch)
        result.append(await anyio.to_thread.run_sync(run, abandon_on_cancel=True))
        tg.cancel_scope.cancel()
    if anyio.current_time() - started >= REPORT_AFTER_SECONDS:
        await report(100.0, 100.0, "query done")  # a long query's last word: the client sees it end
    return result[0]
