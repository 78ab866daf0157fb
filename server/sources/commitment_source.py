"""The embedded store's commitment analytics (a part of ``DuckDBSource``): contract commitment burn-down
and commitment discount utilization.

The engine does the scanning and summing (``commitment_sql``); the figures are computed by the tools
(``tools/burndown.py``, ``tools/discounts.py``), the same for every source.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

import duckdb

from server.sources import commitment_sql
from server.store.db import utc_now
from tools.burndown import Applied, burn_down, commitment_fields, run_rate_window
from tools.discounts import GROUP_SUMS, rank
from tools.source import BurnDownQuery, BurnDowns, CommitmentFilters, CostFilters, DiscountQuery, Row, Summary

T = TypeVar("T")
Window = tuple[str, datetime | None, datetime | None]


class CommitmentAnalytics:
    """Mixed into ``DuckDBSource``; uses its query runner and commitment visibility."""

    if TYPE_CHECKING:

        async def _query(self, fn: Callable[[duckdb.DuckDBPyConnection], T]) -> T: ...

        def allowed_commitments(
            self, cur: duckdb.DuckDBPyConnection, filters: CommitmentFilters
        ) -> list[str] | None: ...

    async def summarize_contract_commitments(self, query: BurnDownQuery) -> BurnDowns:
        def run(cur: duckdb.DuckDBPyConnection) -> BurnDowns:
            scope = query.filters.scope
            as_of = query.as_of
            if as_of is None:
                found = cur.execute(*commitment_sql.as_of_query(scope)).fetchone()
                as_of = found[0] if found and found[0] is not None else utc_now().replace(microsecond=0)
            allowed = self.allowed_commitments(cur, query.filters)
            text, params = commitment_sql.commitments_query(
                allowed, query.filters.contract_commitment_id, query.filters.contract_id
            )
            names = commitment_sql.COMMITMENT_COLUMNS
            commitments = [dict(zip(names, r, strict=True)) for r in cur.execute(text, params).fetchall()]
            shown = commitments[: query.max_rows]
            windows = _windows(shown, as_of, query.run_rate_days)
            applied = self._applied(cur, scope, as_of, windows)
            rows = [
                commitment_fields(c)
                | burn_down(
                    c,
                    applied.get(c["ContractCommitmentId"], []),
                    as_of,
                    query.run_rate_days,
                    not scope.unrestricted,
                )
                for c in shown
            ]
            return BurnDowns(rows=rows, as_of=as_of, matched=len(commitments))

        result: BurnDowns = await self._query(run)
        return result

    @staticmethod
    def _applied(
        cur: duckdb.DuckDBPyConnection, scope: Any, as_of: datetime, windows: dict[str, Window]
    ) -> dict[str, list[Applied]]:
        if not windows:
            return {}
        text, params = commitment_sql.applied_query(scope, as_of, list(windows.values()))
        out: dict[str, list[Applied]] = {}
        for cid, currency, unit, in_scope, cost, cost_w, qty, qty_w, count in cur.execute(text, params).fetchall():
            applied = Applied(cid, currency, unit, bool(in_scope), cost, cost_w, qty, qty_w, int(count))
            out.setdefault(cid, []).append(applied)
        return out

    async def summarize_commitment_discounts(self, filters: CostFilters, query: DiscountQuery) -> Summary:
        def run(cur: duckdb.DuckDBPyConnection) -> Summary:
            text, params, names = commitment_sql.discount_groups_query(filters, query)
            fields = [*names, *GROUP_SUMS, "CommitmentDiscountUnit", "mixedUnits", "rowCount"]
            groups: list[Row] = [dict(zip(fields, r, strict=True)) for r in cur.execute(text, params).fetchall()]
            rows, totals = rank(groups, query)
            return Summary(rows=rows, totals=totals, group_count=len(groups))

        result: Summary = await self._query(run)
        return result


def _windows(commitments: list[Row], as_of: datetime, days: int) -> dict[str, Window]:
    """Each commitment's run-rate window (``tools.burndown.run_rate_window``), one per id."""
    windows: dict[str, Window] = {}
    for c in commitments:
        start, end = c.get("ContractCommitmentPeriodStart"), c.get("ContractCommitmentPeriodEnd")
        if start is None or end is None:
            windows.setdefault(c["ContractCommitmentId"], (c["ContractCommitmentId"], None, None))
            continue
        ws, we = run_rate_window(start, end, as_of, days)
        windows.setdefault(c["ContractCommitmentId"], (c["ContractCommitmentId"], ws, we))
    return windows
