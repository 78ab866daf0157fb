"""The process's services, built once from Settings and owned by the lifespan: store, source, exports.

The store is the data dir's live store (``server.store.db.LiveStore``): any number of ``serve`` and ``stdio``
processes share a data dir while ``focus-api load`` writes to it. Transports call tools through
``server.pipeline.Pipeline`` over these services.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import anyio
import structlog

from server.exports.service import ExportBackend, ExportService
from server.exports.writers import StoreWriter
from server.limits import RateLimiter
from server.settings import Settings
from server.sources.duckdb_source import DuckDBSource
from server.store.db import LiveStore, Store, StoreView
from server.store.processes import ProcessLock
from tools.pagination import PageTokens
from tools.source import Source

if TYPE_CHECKING:
    from server.spark.source import SparkStore

log = structlog.get_logger(__name__)


@dataclass
class Services:
    settings: Settings
    store: StoreView | None  # None in upstream mode: no store is opened
    source: Source
    exports: ExportBackend
    tokens: PageTokens
    limiter: RateLimiter = field(init=False)

    def __post_init__(self) -> None:
        self.limiter = RateLimiter(self.settings.rate_limit_per_second, self.settings.rate_limit_burst)


# DuckDB's memory limit in a serving process, unless FOCUS_API_MEMORY_LIMIT says otherwise. The buffer pool
# keeps every block a scan reads until the limit is reached, so with the loader's default (up to 4 GiB) a
# 10M-row export left the server at 1.7 GB RSS; with 384 MB it peaked near 0.8 GB (bench/suite.py), and
# queries that need more (large hash aggregates) spill to the data dir's tmp/ instead.
SERVE_MEMORY_LIMIT = "384MB"


def open_store(settings: Settings) -> LiveStore:
    return LiveStore(settings.data_dir, memory_limit=settings.memory_limit or SERVE_MEMORY_LIMIT)


def ensure_data(store: LiveStore, settings: Settings) -> None:
    """A fresh install serves something real at once: load the demo set into an empty store.

    Checked again under the writers' lock: two processes starting on one empty data dir load it once.
    """
    if not store.is_empty():
        return
    from server.store.demo import generate_demo

    with Store(settings.data_dir, memory_limit=settings.memory_limit) as writer:
        if writer.is_empty():
            log.info(
                "empty data dir: loading the demo dataset", rows=settings.demo_rows, data_dir=str(settings.data_dir)
            )
            generate_demo(writer, rows=settings.demo_rows)


def open_spark(settings: Settings) -> SparkStore:
    """The Spark engine's store: a Spark Connect session on focus-api's tables or the user's FOCUS table."""
    from server.spark.session import connect
    from server.spark.source import SparkStore
    from server.spark.table import serve_table

    assert settings.spark_remote is not None  # Settings requires it with engine spark
    session = connect(settings.spark_remote, settings.spark_connect_timeout_seconds)
    try:
        if settings.spark_table:
            serve_table(session, settings.spark_table, settings.spark_key)
            store = SparkStore(session, settings.data_dir)
        else:
            store = SparkStore(session, settings.data_dir, database=settings.spark_database)
        store.data_version()  # a layout that is not there fails here, with engine_table_missing
    except BaseException:
        session.stop()
        raise
    return store


@asynccontextmanager
async def running_services(settings: Settings, *, load_demo: bool = True) -> AsyncIterator[Services]:
    """Open the store, start the export service, and close everything on exit.

    With ``settings.upstream_url`` set, serve that remote FOCUS API instead: no store is opened. With
    ``settings.engine`` spark, the store is the Spark cluster (no demo set is loaded into it).
    """
    if settings.upstream_url:
        async with running_upstream(settings) as services:
            yield services
        return
    spark = settings.engine == "spark"
    # Opening DuckDB reads the database file (and may replay its WAL): not on the event loop.
    store: StoreView = await anyio.to_thread.run_sync(open_spark if spark else open_store, settings)
    process = ProcessLock(settings.data_dir)
    source: DuckDBSource | None = None
    try:
        if load_demo and isinstance(store, LiveStore):
            await anyio.to_thread.run_sync(ensure_data, store, settings)
        kind = DuckDBSource
        if spark:
            from server.spark.source import SparkSource

            kind = SparkSource
        source = kind(store, max_concurrency=settings.query_threads, query_timeout=settings.query_timeout_seconds)
        exports = ExportService(
            settings.data_dir,
            StoreWriter(source),
            process_id=process.id,
            concurrency=settings.export_concurrency,
            ttl_seconds=settings.export_ttl_seconds,
            per_principal=settings.exports_per_principal,
            queue_limit=settings.export_queue_limit,
        )
        services = Services(settings, store, source, exports, PageTokens(settings.page_token_secret()))
        async with anyio.create_task_group() as tg:
            await tg.start(exports.run)
            try:
                yield services
            finally:
                tg.cancel_scope.cancel()
    finally:
        # Shielded: on shutdown this runs inside a cancelled scope, and the store must still be closed.
        with anyio.CancelScope(shield=True):
            if source is not None:
                await source.drain()
            await anyio.to_thread.run_sync(store.close)
            process.close()


@asynccontextmanager
async def running_upstream(settings: Settings) -> AsyncIterator[Services]:
    """Upstream mode: one HTTP session to the remote FOCUS API for the process, closed on exit."""
    from server.sources.upstream import UpstreamSource
    from server.sources.upstream_client import UpstreamClient, UpstreamConfig
    from server.sources.upstream_exports import UpstreamExports

    secret = settings.page_token_secret()
    async with UpstreamClient.open(UpstreamConfig.from_settings(settings)) as client:
        log.info("upstream mode: serving a remote FOCUS API", upstream=client.config.base_url)
        source = UpstreamSource(client, secret=secret)
        exports = UpstreamExports(client, secret=secret)
        yield Services(settings, None, source, exports, PageTokens(secret))
