"""``focus-api serve --sync SOURCE --sync-every 6h``: sync cloud exports in the background while serving.

Each round is one ``run_sync`` (its own writer, in a worker thread): the serving processes follow its
publish like any load's, and a failed round publishes nothing. Rounds run one after another, the first at
start-up; progress and outcome go to the log and the status file (``getschemametadata``'s ``loaded.sync``).
"""

from __future__ import annotations

import anyio
import structlog

from server.cloud.sync import run_sync
from server.settings import Settings
from tools.errors import FocusApiError

log = structlog.get_logger(__name__)


async def sync_forever(settings: Settings) -> None:
    sources = settings.sync_list()
    while True:
        log.info("background sync: starting", sources=sources)
        try:
            # Abandoned on shutdown: a writer cut short publishes nothing, and the next one collects its files.
            result = await anyio.to_thread.run_sync(lambda: run_sync(settings, sources), abandon_on_cancel=True)
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
