"""The embedded store's commitment analytics (a part of ``DuckDBSource``): contract commitment burn-down
and commitment discount utilization.

The engine does the scanning and summing (``commitment_sql``); the figures are computed by the tools
(``tools/burndown.py``, ``tools/discounts.py``), the same for every source. ContractApplied documents the
SQL cannot split with certainty are parsed here exactly (``json.loads`` with ``Decimal``) and summed into
the same groups.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal, localcontext
from typing import TYPE_CHECKING, Any, TypeVar

import duckdb

from server.sources import commitment_sql
from server.store.db import utc_now
from tools.burndown import Applied, burn_down, commitment_fields, run_rate_window
from tools.discounts import GROUP_SUMS, rank
from tools.source import BurnDownQuery, BurnDowns, CommitmentFilters, CostFilters, DiscountQuery, Row, Summary

T = TypeVar("T")
Window = tuple[str, datetime | None, datetime | None]
GroupKey = tuple[str, str | None, str | None, bool]


def _key(element: dict[str, Any], name: str) -> Any:
    """An element's value under ``name`` in any letter case (as the SQL reading accepts it)."""
    wanted = name.lower()
    return next((v for k, v in element.items() if k.lower() == wanted), None)


def _decimal(value: Any) -> Decimal | None:
    if isinstance(value, Decimal | int) and not isinstance(value, bool):
        return Decimal(value)
    if isinstance(value, str):
        try:
            return Decimal(value)
        except ArithmeticError:
            return None
    return None


def parse_unreadable(
    docs: list[tuple[str, str | None, datetime, bool]], windows: dict[str, Window]
) -> dict[GroupKey, list[Any]]:
    """Applied sums of the documents the SQL left whole, in ``applied_query``'s groups."""
    groups: dict[GroupKey, list[Any]] = {}
    for doc, currency, charged, in_scope in docs:
        try:
            parsed = json.loads(doc, parse_float=Decimal, parse_int=Decimal)
        except ValueError:
            continue
        elements = parsed.get("Elements") if isinstance(parsed, dict) else None
        for element in elements if isinstance(elements, list) else []:
            if not isinstance(element, dict):
                continue
            cid = _key(element, "ContractCommitmentId")
            if not isinstance(cid, str) or cid not in windows:
                continue
            _, start, end = windows[cid]
            inside = start is not None and end is not None and start <= charged < end
            unit = _key(element, "ContractCommitmentAppliedUnit")
            sums = groups.setdefault((cid, currency, unit if isinstance(unit, str) else None, in_scope), [None] * 5)
            cost, quantity = (
                _decimal(_key(element, "ContractCommitmentAppliedCost")),
                _decimal(_key(element, "ContractCommitmentAppliedQuantity")),
            )
            for i, value in (
                (0, cost),
                (1, cost if inside else None),
                (2, quantity),
                (3, quantity if inside else None),
            ):
                if value is not None:
                    sums[i] = value if sums[i] is None else sums[i] + value
            sums[4] = (sums[4] or 0) + 1
    return groups


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
        groups: dict[GroupKey, list[Any]] = {}
        for cid, currency, unit, in_scope, *sums in cur.execute(text, params).fetchall():
            groups[(cid, currency, unit, bool(in_scope))] = list(sums)
        text, params = commitment_sql.unreadable_query(scope, as_of)
        extra = parse_unreadable(cur.execute(text, params).fetchall(), windows)
        with localcontext() as exact:
            exact.prec = 76
            for key, sums in extra.items():
                if key not in groups:
                    groups[key] = sums
                    continue
                merged = groups[key]
                for i, value in enumerate(sums):
                    if value is not None:
                        merged[i] = value if merged[i] is None else merged[i] + value
        out: dict[str, list[Applied]] = {}
        for (cid, currency, unit, in_scope), (cost, cost_w, qty, qty_w, count) in sorted(
            groups.items(), key=lambda kv: repr(kv[0])
        ):
            out.setdefault(cid, []).append(Applied(cid, currency, unit, in_scope, cost, cost_w, qty, qty_w, int(count)))
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
