"""The embedded DuckDB implementation of the tools' ``Source`` protocol.

Queries run in worker threads (DuckDB is synchronous), each on its own cursor of the one process-wide
connection, at most ``max_concurrency`` at once; rows become Python values off the event loop.
What follows from the data version alone (bookkeeping reads, a filter's total, commitment links) is kept
per version in a ``VersionMemo``: a page walk counts once, not per page, and a page is its own query.
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import anyio
import duckdb

from server.cloud import state as sync_state
from server.sources import sql, summary_rank, summary_sql
from server.sources.commitment_source import CommitmentAnalytics
from server.sources.duckdb_invoices import Covered, InvoiceQueries
from server.sources.query_progress import run_reporting
from server.sources.result_rows import rows_of
from server.sources.version_memo import VersionMemo
from server.store.db import StoreView
from server.store.schema import BP_TABLE, CU_TABLE, ID_TABLE
from tools.catalog import Dataset, DataType, columns_at, stored
from tools.errors import InvalidPageToken, QueryTimeout
from tools.source import (
    CommitmentFilters,
    Completeness,
    CostFilters,
    DataState,
    Page,
    Row,
    Scope,
    Stats,
    Summary,
    SummaryQuery,
    ValuesQuery,
)

T = TypeVar("T")
_CU_JSON = frozenset(c.id for c in stored(Dataset.COST_AND_USAGE).of_type(DataType.JSON))
_CC_JSON = frozenset(c.id for c in stored(Dataset.CONTRACT_COMMITMENT).of_type(DataType.JSON))


def _rows_key(query: str, params: list[Any] | None = None) -> tuple[str, str, tuple[Any, ...]]:
    """The memo key of a bookkeeping query's rows (``DuckDBSource.remembered``)."""
    return ("rows", query, tuple(params or ()))


def _interrupt(cur: duckdb.DuckDBPyConnection) -> None:
    with contextlib.suppress(duckdb.Error):  # already finished and closed
        cur.interrupt()


def _cursor_int(cursor: str | None) -> int | None:
    if cursor is None:
        return None
    try:
        return int(cursor)
    except ValueError:
        raise InvalidPageToken("pageToken does not hold a valid position; start again", {"reason": "forged"}) from None


class _NotKept(Exception):
    """A bookkeeping read the memo does not hold for the settled data version."""


class _Call(threading.local):
    """The cursor of the call running in this worker thread, and the data version it read."""

    cursor: Any = None
    version: int | None = None


class DuckDBSource(InvoiceQueries, CommitmentAnalytics):
    """FOCUS data from the embedded store (the FOCUS 1.4 Billing Period and Invoice Detail answers and the
    completeness rule are in ``duckdb_invoices``, the commitment summaries in ``commitment_source``)."""

    def __init__(self, store: StoreView, *, max_concurrency: int = 4, query_timeout: float = 30.0) -> None:
        self.store = store
        self.query_timeout = query_timeout
        self._limiter = anyio.CapacityLimiter(max_concurrency)
        self._lock = threading.Lock()
        self._memo = VersionMemo()
        self._call = _Call()
        self._inflight = 0

    async def drain(self, timeout: float = 10.0) -> None:
        """Wait for abandoned (interrupted) queries to leave their threads before the store closes."""
        with anyio.move_on_after(timeout):
            while self._inflight:
                await anyio.sleep(0.01)

    async def _query(self, fn: Callable[[duckdb.DuckDBPyConnection], T]) -> T:
        """Run ``fn`` on its own cursor in a worker thread; interrupt it past the query timeout.

        A cancelled caller (a client that went away) also interrupts the query, so nothing keeps running.
        """
        # The limiter is taken here, not by to_thread: once submitted, ``run`` always executes and
        # closes its cursor, so an abandoned (interrupted) query never leaks one.
        async with self._limiter:
            cur, release = self.store.lease()
            with self._lock:
                self._inflight += 1

            def run() -> T:
                self._call.cursor, self._call.version = cur, None
                try:
                    return fn(cur)
                finally:
                    self._call.cursor = self._call.version = None
                    release()
                    with self._lock:
                        self._inflight -= 1

            try:
                with anyio.fail_after(self.query_timeout or None):
                    return await run_reporting(cur, run)
            except TimeoutError:
                _interrupt(cur)
                raise QueryTimeout(
                    f"the query ran longer than {self.query_timeout:g} s and was stopped; narrow the filters "
                    "(billing period, provider, service) or use exportcostandusage",
                    {"timeoutSeconds": self.query_timeout},
                ) from None
            except BaseException:
                _interrupt(cur)
                raise

    # -- state ------------------------------------------------------------------------------------

    def _version(self, cur: duckdb.DuckDBPyConnection) -> int:
        """The data version ``cur`` sees, read once per call: every part of one answer is of one version."""
        call = self._call
        if call.cursor is not cur:  # not inside a call (an export's own cursor): read it
            return self._read_version(cur)
        if call.version is None:
            call.version = self._read_version(cur)
        return call.version

    def _read_version(self, cur: duckdb.DuckDBPyConnection) -> int:
        return self.store.version_of(cur)

    def remembered(self, cur: duckdb.DuckDBPyConnection, query: str, params: list[Any] | None = None) -> list[Any]:
        """The rows of a query over the bookkeeping tables, read once per data version."""
        key = _rows_key(query, params)
        return self._memo.get(self._version(cur), key, lambda: cur.execute(query, params or []).fetchall())

    def custom_columns(self, cur: duckdb.DuckDBPyConnection, dataset: str) -> list[str]:
        rows = self.remembered(cur, "SELECT name FROM custom_columns WHERE dataset = ? ORDER BY name", [dataset])
        return [str(r[0]) for r in rows]

    def _reads(self, cur: duckdb.DuckDBPyConnection) -> Callable[[str], list[Any]]:
        """Bookkeeping reads on ``cur``, kept once per data version."""
        return lambda query: self.remembered(cur, query)

    async def _kept_or_query(self, judge: Callable[[Callable[[str], list[Any]], int], T]) -> T:
        """``judge(reads, version)`` from what the memo keeps, on the event loop, while no load has published
        since (the common case: every call asks for the data state and a completeness verdict, and a worker
        thread and a cursor for each cost more than the answer); else on a cursor, reading what is missing."""
        settled = self.store.settled_version()
        if settled is not None:

            def kept(query: str) -> list[Any]:
                found, rows = self._memo.peek(settled, _rows_key(query))
                if not found:
                    raise _NotKept
                return rows  # type: ignore[no-any-return]

            with contextlib.suppress(_NotKept):
                return judge(kept, settled)
        return await self._query(lambda cur: judge(self._reads(cur), self._version(cur)))

    async def data_state(self) -> DataState:
        def judge(reads: Callable[[str], list[Any]], version: int) -> DataState:
            rows = reads(sql.LAST_LOAD)
            return DataState(version=str(version), last_updated=rows[0][0] if rows else None)

        result: DataState = await self._kept_or_query(judge)
        return result

    # -- cost and usage ---------------------------------------------------------------------------

    def _total(self, cur: duckdb.DuckDBPyConnection, version: int, filters: CostFilters) -> int:
        def count() -> int:
            row = cur.execute(*sql.count_query(filters)).fetchone()
            return int(row[0]) if row else 0

        return self._memo.get(version, ("total", repr(filters)), count)

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

        def run(cur: duckdb.DuckDBPyConnection) -> Page:
            data_version = self._version(cur)
            names = sql.chosen_columns(catalog, self.custom_columns(cur, "CostAndUsage"), columns)
            ids_query, ids_params = sql.page_ids_query(filters, after, limit)
            ids = cur.execute(ids_query, ids_params).fetchall()
            rows: list[Row] = []
            if ids:
                bounds = (int(ids[0][0]), int(ids[-1][0]))
                query, params = sql.page_query(filters, after, limit, names, bounds)
                cur.execute(query, params)
                rows = rows_of(cur, _CU_JSON)
            more = len(rows) > limit
            rows = rows[:limit]
            cursors = [str(row.pop("_row_id")) for row in rows]
            next_cursor = cursors[-1] if more and rows else None
            return Page(rows, next_cursor, self._total(cur, data_version, filters), cursors)

        page: Page = await self._query(run)
        return page

    async def completeness(self, filters: CostFilters) -> Completeness:
        # Judged by Billing Period status where there are such rows, else by the period having ended.
        return (await self.completeness_verdict(filters)).completeness

    # -- summaries and values ---------------------------------------------------------------------

    @contextlib.contextmanager
    def _ranking_cursor(self, cur: duckdb.DuckDBPyConnection) -> Iterator[duckdb.DuckDBPyConnection]:
        """The DuckDB connection that ranks a summary's many groups (an Arrow table): the query's own."""
        yield cur

    async def summarize(self, filters: CostFilters, query: SummaryQuery) -> Summary:
        def run(cur: duckdb.DuckDBPyConnection) -> Summary:
            groups_sql, params = summary_sql.groups_query(filters, query)
            groups = cur.sql(groups_sql, params=params).to_arrow_table()
            if groups.num_rows <= summary_rank.PYTHON_RANKED:
                return summary_rank.rank(list(zip(*(c.to_pylist() for c in groups.columns), strict=True)), query)
            with self._ranking_cursor(cur) as ranker:
                return summary_rank.rank_by_engine(ranker, groups, query)

        result: Summary = await self._query(run)
        return result

    async def distinct_values(self, filters: CostFilters, query: ValuesQuery, cursor: str | None, limit: int) -> Page:
        offset = _cursor_int(cursor) or 0

        def run(cur: duckdb.DuckDBPyConnection) -> Page:
            page_sql, params, count_sql, count_params = summary_sql.values_queries(filters, query, offset, limit)
            found = cur.execute(page_sql, params).fetchall()
            rows: list[Row] = [
                {"value": str(value), "rowCount": int(count), "effectiveCost": list(costs)}
                for value, count, costs in found[:limit]
            ]
            total = cur.execute(count_sql, count_params).fetchone()
            more = len(found) > limit
            return Page(rows, str(offset + limit) if more else None, int(total[0]) if total else 0)

        page: Page = await self._query(run)
        return page

    # -- contract commitments ---------------------------------------------------------------------

    def _commitment_links(self, cur: duckdb.DuckDBPyConnection) -> list[tuple[str, str, str | None]]:
        return [(str(a), str(b), c) for a, b, c in self.remembered(cur, sql.commitment_links_query())]

    def allowed_commitments(self, cur: duckdb.DuckDBPyConnection, filters: CommitmentFilters) -> list[str] | None:
        scope = filters.scope
        if filters.billing_account_id is None and scope.unrestricted:
            return None
        links = self._commitment_links(cur)
        ids = set()
        for commitment_id, account, sub_account in links:
            if filters.billing_account_id is not None and account != filters.billing_account_id:
                continue
            if scope.billing_account_ids is not None and account not in scope.billing_account_ids:
                continue
            if scope.sub_account_ids is not None and sub_account not in scope.sub_account_ids:
                continue
            ids.add(commitment_id)
        return sorted(ids)

    async def list_contract_commitments(
        self,
        filters: CommitmentFilters,
        cursor: str | None,
        limit: int,
        columns: tuple[str, ...] | None = None,
        version: str = "1.3",
    ) -> Page:
        after = _cursor_int(cursor)
        catalog = columns_at(Dataset.CONTRACT_COMMITMENT, version)

        def run(cur: duckdb.DuckDBPyConnection) -> Page:
            allowed = self.allowed_commitments(cur, filters)
            names = sql.chosen_columns(catalog, [], columns)
            query, params = sql.commitments_query(
                allowed, filters.contract_commitment_id, filters.contract_id, after, limit, names
            )
            cur.execute(query, params)
            rows = rows_of(cur, _CC_JSON)
            more = len(rows) > limit
            rows = rows[:limit]
            cursors = [str(row.pop("_row_id")) for row in rows]
            count_sql, count_params = sql.commitments_query(
                allowed, filters.contract_commitment_id, filters.contract_id, None, None
            )
            total_row = cur.execute(f"SELECT count(*) FROM ({count_sql})", count_params).fetchone()
            total = int(total_row[0]) if total_row else 0
            return Page(rows, cursors[-1] if more and rows else None, total, cursors)

        page: Page = await self._query(run)
        return page

    # -- statistics -------------------------------------------------------------------------------

    async def stats(self, scope: Scope) -> Stats:
        def run(cur: duckdb.DuckDBPyConnection) -> Stats:
            where, params = sql.scope_clauses(scope)
            base = f"FROM {CU_TABLE}{sql.where_sql(where)}"
            periods = cur.execute(
                f"SELECT c.BillingPeriodStart, strftime(c.BillingPeriodStart, '%Y-%m-%dT%H:%M:%SZ'), "
                f"strftime(c.BillingPeriodEnd, '%Y-%m-%dT%H:%M:%SZ'), c.n, coalesce(p.last_loaded_at >= "
                f"c.BillingPeriodEnd, false), (c.BillingPeriodStart, c.BillingPeriodEnd) IN "
                "(SELECT BillingPeriodStart, BillingPeriodEnd FROM quarantined_scopes) "
                f"FROM (SELECT BillingPeriodStart, BillingPeriodEnd, count(*) AS n {base} "
                "GROUP BY ALL) c LEFT JOIN billing_periods p USING (BillingPeriodStart, BillingPeriodEnd) ORDER BY 1",
                params,
            ).fetchall()
            reads = self._reads(cur)
            issuers = self._cost_issuers(reads)
            # Each period judged as the envelopes judge it (Billing Period rows where there are some).
            verdicts = [
                self._judge_periods(reads, [Covered(p[0], issuers.get(p[0], set()), bool(p[4]), bool(p[5]))])
                for p in periods
            ]
            providers = cur.execute(f"SELECT DISTINCT ServiceProviderName {base} ORDER BY 1", params).fetchall()
            currencies = cur.execute(f"SELECT DISTINCT BillingCurrency {base} ORDER BY 1", params).fetchall()
            allowed = self.allowed_commitments(cur, CommitmentFilters(scope=scope))
            cc_sql, cc_params = sql.commitments_query(allowed, None, None, None, None)
            cc = cur.execute(f"SELECT count(*) FROM ({cc_sql})", cc_params).fetchone()
            by_version = cur.execute(
                f"SELECT l.focus_version, count(*) FROM {CU_TABLE} JOIN loads l ON _load_id = l.load_id"
                f"{sql.where_sql(where)} GROUP BY 1 ORDER BY 1",
                params,
            ).fetchall()
            return Stats(
                demo=self.store.get_meta("demo", cur) == "true",
                cost_and_usage_rows=sum(int(p[3]) for p in periods),
                contract_commitment_rows=int(cc[0]) if cc else 0,
                billing_periods=[
                    {
                        "billingPeriodStart": p[1],
                        "billingPeriodEnd": p[2],
                        "rows": int(p[3]),
                        "complete": verdict.completeness == "Complete",
                        "completenessRule": verdict.rule,
                    }
                    for p, verdict in zip(periods, verdicts, strict=True)
                ],
                providers=[str(p[0]) for p in providers if p[0] is not None],
                currencies=[str(c[0]) for c in currencies if c[0] is not None],
                custom_columns={
                    "CostAndUsage": self.custom_columns(cur, "CostAndUsage"),
                    "ContractCommitment": self.custom_columns(cur, "ContractCommitment"),
                },
                origin="embedded DuckDB store",
                loads=self._load_history(cur) if scope.unrestricted else [],
                rows_by_focus_version={str(v): int(n) for v, n in by_version},
                billing_period_rows=self._count_visible(cur, BP_TABLE, scope, base),
                invoice_detail_rows=self._count_visible(cur, ID_TABLE, scope, base),
                sync=self._sync_info(cur) if scope.unrestricted else None,
            )

        result: Stats = await self._query(run)
        return result

    @staticmethod
    def _count_visible(cur: duckdb.DuckDBPyConnection, table: str, scope: Scope, cost_rows: str) -> int:
        """Billing Period rows of issuers the caller sees Cost and Usage rows of; Invoice Detail rows of the
        caller's billing accounts (none for a sub-account scope: an invoice covers its whole account)."""
        where, params = sql.scope_clauses(scope)
        if table == BP_TABLE:
            visible = (
                "" if scope.unrestricted else f" WHERE InvoiceIssuerName IN (SELECT InvoiceIssuerName {cost_rows})"
            )
            query, args = f"SELECT count(*) FROM {table}{visible}", [] if scope.unrestricted else params
        elif scope.sub_account_ids is not None:
            return 0
        else:
            query, args = f"SELECT count(*) FROM {table}{sql.where_sql(where)}", params
        row = cur.execute(query, args).fetchone()
        return int(row[0]) if row else 0

    def _sync_info(self, cur: duckdb.DuckDBPyConnection) -> dict[str, Any] | None:
        """The latest sync attempt (the status file) and each source's last successful sync (the store)."""
        sources = sync_state.synced_sources(cur)
        attempt = sync_state.read_status(self.store.data_dir)
        if not sources and attempt is None:
            return None
        return {"lastAttempt": attempt, "sources": sources}

    @staticmethod
    def _load_history(cur: duckdb.DuckDBPyConnection, last: int = 20) -> list[dict[str, Any]]:
        """The latest loads, newest first, with what each normalised and quarantined.

        Only unrestricted callers see it: file names and example values may belong to any account.
        """
        rows = cur.execute(
            "SELECT load_id, dataset, source, focus_version, rows, replaced_rows, "
            f"strftime(loaded_at, '%Y-%m-%dT%H:%M:%SZ'), report FROM loads ORDER BY load_id DESC LIMIT {int(last)}"
        ).fetchall()
        history = []
        for load_id, dataset, source, version, count, replaced, at, report in rows:
            extra = json.loads(report) if report else {}
            history.append(
                {
                    "loadId": load_id,
                    "dataset": dataset,
                    "file": source,
                    "focusVersion": version,
                    "rows": count,
                    "replacedRows": replaced,
                    "loadedAt": at,
                    "normalised": extra.get("normalised", []),
                    "rejectedRows": extra.get("rejectedRows", 0),
                    "rejectsFile": extra.get("rejectsFile"),
                    "absentColumns": extra.get("absentColumns", []),
                }
            )
        return history
