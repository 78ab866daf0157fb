"""SQL for summaries and distinct values: GROUP BY over whitelisted dimensions, always per currency.

Dimension and metric names arrive already checked against ``tools.summaries``; tag keys travel
as parameters (inside a JSON path), never spliced into the SQL text.
"""

from __future__ import annotations

from typing import Any

from server.sources.sql import cost_where, json_key_path, where_sql
from server.store.schema import CU_TABLE, quote
from tools.source import CostFilters, SummaryQuery, ValuesQuery
from tools.summaries import TIME_BUCKETS, is_tag


def _tag_path(dimension: str) -> str:
    return json_key_path(dimension.split(":", 1)[1])


def dimension_sql(dimension: str, params: list[Any]) -> str:
    """The SQL expression for one dimension; appends its parameters (tag paths) to ``params``."""
    if is_tag(dimension):
        params.append(_tag_path(dimension))
        return "json_extract_string(Tags, ?)"
    if dimension == "day":
        return "strftime(ChargePeriodStart, '%Y-%m-%d')"
    if dimension == "month":
        return "strftime(ChargePeriodStart, '%Y-%m')"
    if dimension == "billingPeriod":
        return "strftime(BillingPeriodStart, '%Y-%m-%dT%H:%M:%SZ')"
    assert dimension not in TIME_BUCKETS
    return quote(dimension)


# Time buckets group on the truncated timestamp and are formatted once per group, not once per row
# (strftime on every row doubled the time of a month summary over 1M rows: bench/suite.py). Text and
# timestamp order agree, as the formats are zero-padded.
_BUCKETS = {
    "day": ("date_trunc('day', ChargePeriodStart)", "%Y-%m-%d"),
    "month": ("date_trunc('month', ChargePeriodStart)", "%Y-%m"),
    "billingPeriod": ("BillingPeriodStart", "%Y-%m-%dT%H:%M:%SZ"),
}


def groups_query(filters: CostFilters, query: SummaryQuery) -> tuple[str, list[Any]]:
    """Every group once, in no order (``summary_rank`` ranks them): BillingCurrency, the dimensions (time
    buckets as their text, which sorts as the instants do), the metric sums and rowCount."""
    params: list[Any] = []
    dims = [_BUCKETS[d][0] if d in _BUCKETS else dimension_sql(d, params) for d in query.group_by]
    where, where_params = cost_where(filters)
    params += where_params
    select_dims = "".join(f", {expr} AS d{i}" for i, expr in enumerate(dims))
    sums = ", ".join(f"sum({quote(m)}) AS {quote(m)}" for m in query.metrics)
    groups = (
        f"SELECT BillingCurrency{select_dims}, {sums}, count(*) AS rowCount FROM {CU_TABLE}{where_sql(where)} "
        "GROUP BY ALL"
    )
    if not any(d in _BUCKETS for d in query.group_by):
        return groups, params
    shown = [
        f"strftime(d{i}, '{_BUCKETS[d][1]}') AS d{i}" if d in _BUCKETS else f"d{i}"
        for i, d in enumerate(query.group_by)
    ]
    metrics = "".join(f", {quote(m)}" for m in query.metrics)
    return f"SELECT BillingCurrency, {', '.join(shown)}{metrics}, rowCount FROM ({groups})", params


def _order(query: SummaryQuery) -> str:
    """The rank order within a currency: the sort metric, then each dimension, NULLs last."""
    metric = f"({quote('ListCost')} - {quote('EffectiveCost')})" if query.sort == "Savings" else quote(query.sort)
    tie = "".join(f", d{i} NULLS LAST" for i in range(len(query.group_by)))
    return f"{metric} {'DESC' if query.descending else 'ASC'} NULLS LAST{tie}"


def top_query(query: SummaryQuery, groups: str, limit: int) -> str:
    """The first ``limit`` groups of relation ``groups`` in one currency (the query's parameter), in rank
    order: a top-N scan, where a window ranking every group sorted them all (~0.7 s for 640k groups)."""
    return (
        f"SELECT * FROM {groups} WHERE BillingCurrency IS NOT DISTINCT FROM ? ORDER BY {_order(query)} "
        f"LIMIT {int(limit)}"
    )


def currency_totals_query(query: SummaryQuery, groups: str) -> str:
    """Per currency of relation ``groups``: each metric's sum and how many groups have one, the rows and the
    groups (the sums of the groups' sums are the sums of the rows)."""
    parts = ", ".join(f"sum({quote(m)}), count({quote(m)})" for m in query.metrics)
    return (
        f"SELECT BillingCurrency, {parts}, sum(rowCount), count(*) FROM {groups} "
        "GROUP BY BillingCurrency ORDER BY BillingCurrency NULLS LAST"
    )


def values_queries(
    filters: CostFilters, query: ValuesQuery, offset: int, limit: int
) -> tuple[str, list[Any], str, list[Any]]:
    """(page SQL, params, distinct-count SQL, params) for the values of one column."""
    tag = [_tag_path(query.column)] if is_tag(query.column) else []
    expr = dimension_sql(query.column, [])
    where, where_params = cost_where(filters)
    # Parameters in the order they appear: the SELECT expression, the filters, the NOT NULL test, the search.
    params = [*tag, *where_params, *tag]
    where = [*where, f"{expr} IS NOT NULL"]
    if query.search:
        pattern = query.search.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        where.append(f"lower({expr}) LIKE ? ESCAPE '\\'")
        params += [*tag, pattern + "%" if query.prefix else "%" + pattern + "%"]
    base = (
        f"SELECT {expr} AS value, BillingCurrency, count(*) AS n, sum(EffectiveCost) AS cost "
        f"FROM {CU_TABLE}{where_sql(where)} GROUP BY ALL"
    )
    page = (
        f"WITH v AS ({base}) SELECT value, sum(n) AS rowCount, "
        "list({'BillingCurrency': BillingCurrency, 'EffectiveCost': cost} ORDER BY BillingCurrency) AS costs "
        f"FROM v GROUP BY value ORDER BY rowCount DESC, value LIMIT {int(limit) + 1} OFFSET {int(offset)}"
    )
    count = f"WITH v AS ({base}) SELECT count(DISTINCT value) FROM v"
    return page, params, count, list(params)
