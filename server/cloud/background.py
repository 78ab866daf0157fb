"""``focus-api serve --sync SOURCE --sync-every 6h``: sync cloud exports in the background while serving.

Each round is one ``run_sync`` (its own writer) in a daemon thread of its own: the serving processes follow
its publish like any load's, and a failed round publishes nothing. A shutdown does not wait for a round in
flight: the thread dies with the process, like a killed ``focus-api load``, so its generation is never
published and the next writer deletes it. Rounds run one after another, the first at start-up; progress
and outcome go to the log and the status file (``getschemametadata``'s ``loaded.sync``).
"""

from __future__ import annotations

import contextlib
import threading

import anyio
import anyio.lowlevel
import structlog

from server.cloud.sync import SyncResult, run_sync
from server.settings import Settings
from tools.errors import FocusApiError

log = structlog.get_logger(__name__)


async def _round(settings: Settings, sources: list[str]) -> SyncResult:
    """One sync in a daemon thread; returns (or raises) its outcome when it ends."""
    finished = anyio.Event()
    token = anyio.lowlevel.current_token()
    outcome: list[SyncResult | BaseException] = []

    def work() -> None:
        try:
            outcome.append(run_sync(settings, sources))
        except BaseException as exc:  # handed to the event loop, which logs it
            outcome.append(exc)
        with contextlib.suppress(RuntimeError):  # the event loop is gone: the server is shutting down
            anyio.from_thread.run_sync(finished.set, token=token)

    threading.Thread(target=work, name="focus-api-sync", daemon=True).start()
    await finished.wait()
    result = outcome[0]
    if isinstance(result, BaseException):
        raise result
    return result


async def sync_forever(settings: Settings) -> None:
    sources = settings.sync_list()
    while True:
        log.info("background sync: starting", sources=sources)
        try:
            result = await _round(settings, sources)
        except FocusApiError as exc:
            log.warning("background sync: failed, the data served is unchanged", code=exc.code, error=exc.message)
        except Exception as exc:
            log.exception("background sync: failed, the data served is unchanged", error=str(exc).splitlines()[0])
        else:
            log.info(
                "background sync: done",
                loaded_units=len(result.loaded),
                rows=sum(u.rows for u in result.loaded),
                units=len(result.units),
            )
        await anyio.sleep(settings.sync_every_seconds)
