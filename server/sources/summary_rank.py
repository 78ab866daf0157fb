"""Ranking a summary's groups per currency: in Python when they are few, by DuckDB top-N scans when many.

The groups come from one GROUP BY (``summary_sql.groups_query``: currency, dimensions, metric sums, row
count). What an answer needs of each currency is its first groups in rank order, its totals and, for the
Other row, what is left once the shown groups are taken out of the totals. Ranking every group with a
window (and reading them twice for the Other row) cost ~2 ms more than the GROUP BY over 1M rows when the
groups were few, and sorted all of them when they were many (~0.7 s for 640k); a few hundred groups are
sorted here in well under a millisecond, and past ``PYTHON_RANKED`` DuckDB answers from the fetched groups
(an Arrow table) with one top-N scan per currency and one aggregate. Both give the same answer: the order
is the SQL's (the sort metric, then each dimension, NULLs last; strings by code point, which is DuckDB's
binary collation) and every sum is exact.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import duckdb

from server.sources import summary_sql
from tools import wire
from tools.source import Row, Summary, SummaryQuery

PYTHON_RANKED = 5_000
Group = tuple[Any, ...]  # (currency, *dimensions, *metric sums, rowCount)


@dataclass(frozen=True, slots=True)
class CurrencyGroups:
    """One currency's groups as far as the answer needs them."""

    currency: Any
    top: list[Group]  # the first groups in rank order (at most the limit)
    sums: list[Any]  # per metric: the sum over every group (None: no group has one)
    counted: list[int]  # per metric: how many groups have a sum
    rows: int  # rowCount over every group
    groups: int


def _sum(values: Iterable[Any]) -> Any:
    """SQL's sum: the exact sum of the non-null values, null when there are none."""
    present = [v for v in values if v is not None]
    return sum(present[1:], present[0]) if present else None


class _Layout:
    """Where a group tuple holds what, and the rank order."""

    def __init__(self, query: SummaryQuery) -> None:
        self.query = query
        dims = len(query.group_by)
        self.dims = range(1, 1 + dims)
        self.metrics = range(1 + dims, 1 + dims + len(query.metrics))
        self.names = ["BillingCurrency", *query.group_by, *query.metrics, "rowCount"]
        if query.sort == "Savings":
            self.list_cost = self.metrics[query.metrics.index("ListCost")]
            self.effective = self.metrics[query.metrics.index("EffectiveCost")]
        else:
            self.sort = self.metrics[query.metrics.index(query.sort)]

    def sort_value(self, group: Group) -> Decimal | None:
        if self.query.sort != "Savings":
            value: Decimal | None = group[self.sort]
            return value
        listed, effective = group[self.list_cost], group[self.effective]
        return None if listed is None or effective is None else listed - effective

    def key(self, group: Group) -> tuple[Any, ...]:
        value = self.sort_value(group)
        ranked = (True, 0) if value is None else (False, -value if self.query.descending else value)
        return (ranked, *((group[i] is None, group[i]) for i in self.dims))

    def summarise(self, currency: Any, members: list[Group], limit: int) -> CurrencyGroups:
        """What the answer needs of one currency, from all of its groups."""
        columns = [[g[i] for g in members] for i in self.metrics]
        return CurrencyGroups(
            currency,
            sorted(members, key=self.key)[:limit],
            [_sum(values) for values in columns],
            [sum(v is not None for v in values) for values in columns],
            sum(int(g[-1]) for g in members),
            len(members),
        )


def answer(parts: list[CurrencyGroups], query: SummaryQuery, group_count: int) -> Summary:
    """Top rows, each currency's Other row (its totals less its shown groups) when ``top`` is set, totals."""
    layout = _Layout(query)
    rows: list[Row] = []
    totals: list[Row] = []
    with wire.exact():
        for part in parts:
            rows += [dict(zip(layout.names, g, strict=True)) | {"other": False} for g in part.top]
            if query.top is not None and part.groups > len(part.top):
                left: dict[str, Any] = {}
                for m, i, total, counted in zip(query.metrics, layout.metrics, part.sums, part.counted, strict=True):
                    shown = [g[i] for g in part.top if g[i] is not None]
                    left[m] = None if counted == len(shown) else total - sum(shown, Decimal(0))
                shown_rows = sum(int(g[-1]) for g in part.top)
                rows.append(
                    {"BillingCurrency": part.currency, **dict.fromkeys(query.group_by), **left}
                    | {"rowCount": part.rows - shown_rows, "other": True}
                )
            totals.append(
                {"BillingCurrency": part.currency, **dict(zip(query.metrics, part.sums, strict=True))}
                | {"rowCount": part.rows}
            )
    return Summary(rows=rows, totals=totals, group_count=group_count)


def _limit(query: SummaryQuery) -> int:
    return query.top if query.top is not None else query.max_groups


def rank(groups: list[Group], query: SummaryQuery) -> Summary:
    """The answer from every group, ranked here."""
    layout = _Layout(query)
    by_currency: dict[Any, list[Group]] = {}
    for group in groups:
        by_currency.setdefault(group[0], []).append(group)
    with wire.exact():
        parts = [
            layout.summarise(c, by_currency[c], _limit(query))
            for c in sorted(by_currency, key=lambda c: (c is None, c))
        ]
    return answer(parts, query, len(groups))


def rank_by_engine(cur: duckdb.DuckDBPyConnection, groups: Any, query: SummaryQuery) -> Summary:
    """The answer from many groups (an Arrow table), ranked by DuckDB: no window, no second read of the data."""
    width = len(query.metrics)
    cur.register("summary_groups", groups)
    try:
        parts = []
        for currency, *values in cur.execute(summary_sql.currency_totals_query(query, "summary_groups")).fetchall():
            top = cur.execute(summary_sql.top_query(query, "summary_groups", _limit(query)), [currency]).fetchall()
            sums, counted = values[0 : 2 * width : 2], [int(n) for n in values[1 : 2 * width : 2]]
            parts.append(CurrencyGroups(currency, top, sums, counted, int(values[-2]), int(values[-1])))
    finally:
        cur.unregister("summary_groups")
    return answer(parts, query, sum(p.groups for p in parts))
