"""The Spark engine behind the tools' ``Source`` protocol: the embedded store's source over Spark Connect.

``SparkStore`` is a ``StoreView`` whose cursors are ``SparkCursor``s, so ``SparkSource`` is the DuckDB
source's code (handlers, filters, scopes, keyset pages, completeness, commitments, invoices) running its
queries on the cluster. It differs only where the engines do: a page is one query (the DuckDB source finds
a page's ``_row_id`` range first because DuckDB's top-N would materialise every column of every match;
on Spark that would be a second full job), and the data version, which is one cluster job to read
(~0.1 s), is read at most once per ``VERSION_TTL`` seconds. One answer reads it up to three times (the
envelope, the page, its completeness): read each time, that alone cost a page 1.3x its own query. A
publish is seen within the TTL; it writes ``meta`` last, after every table (``server.spark.layout``), so
the window in which rows and version disagree is the publish's own, not the TTL's.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb

from server.sources import sql
from server.sources.duckdb_source import _CU_JSON, DuckDBSource, _cursor_int
from server.sources.result_rows import rows_of
from server.spark.session import SparkCursor
from server.store.db import StoreView
from tools.catalog import Dataset, columns_at
from tools.errors import EngineTableMissing
from tools.source import CostFilters, Page, Row

if TYPE_CHECKING:
    from pyspark.sql import SparkSession


class SparkStore(StoreView):
    """focus-api's tables on a Spark cluster (``server.spark.layout``), or views over a user's FOCUS table."""

    def __init__(self, session: SparkSession, data_dir: Path, *, database: str | None = None) -> None:
        self.session = session
        self.data_dir = data_dir  # local state only: export files, jobs, the page-token key, sync status
        if database is not None and not session.catalog.databaseExists(database):
            raise EngineTableMissing(
                f"the Spark database {database} does not exist: publish data into it first (focus-api load "
                "--engine spark, or focus-api publish) or name the right one with --spark-database",
                {"sparkDatabase": database},
            )
        if database is not None:
            session.catalog.setCurrentDatabase(database)

    @contextmanager
    def open_cursor(self) -> Iterator[Any]:
        cursor = SparkCursor(self.session)
        try:
            yield cursor
        finally:
            cursor.close()

    def close(self) -> None:
        self.session.stop()


VERSION_TTL = 1.0


class SparkSource(DuckDBSource):
    """The tools' source over Spark (see the module docstring for what differs)."""

    _seen: tuple[int, float] | None = None  # the last data version read, and when (monotonic)

    @contextmanager
    def _ranking_cursor(self, cur: Any) -> Iterator[Any]:
        """Spark cannot query an Arrow table the driver holds: a summary's many groups, already fetched,
        are ranked by a DuckDB of their own."""
        con = duckdb.connect()
        try:
            yield con
        finally:
            con.close()

    def _read_version(self, cur: Any) -> int:
        with self._lock:
            if self._seen is not None and time.monotonic() - self._seen[1] < VERSION_TTL:
                return self._seen[0]
        version = super()._read_version(cur)
        with self._lock:
            self._seen = (version, time.monotonic())
        return version

    async def list_cost_and_usage(
        self,
        filters: CostFilters,
        cursor: str | None,
        limit: int,
        columns: tuple[str, ...] | None = None,
        version: str = "1.3",
    ) -> Page:
        after = _cursor_int(cursor)
        catalog = columns_at(Dataset.COST_AND_USAGE, version)

        def run(cur: Any) -> Page:
            data_version = self._version(cur)
            names = sql.chosen_columns(catalog, self.custom_columns(cur, "CostAndUsage"), columns)
            query, params = sql.page_query(filters, after, limit, names)
            cur.execute(query, params)
            rows: list[Row] = rows_of(cur, _CU_JSON)
            more = len(rows) > limit
            rows = rows[:limit]
            cursors = [str(row.pop("_row_id")) for row in rows]
            next_cursor = cursors[-1] if more and rows else None
            return Page(rows, next_cursor, self._total(cur, data_version, filters), cursors)

        page: Page = await self._query(run)
        return page
