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


def summary_queries(filters: CostFilters, query: SummaryQuery) -> tuple[str, list[Any], str, list[Any]]:
    """(groups SQL, params, totals SQL, params). Groups come ranked per currency, the Other row last."""
    params: list[Any] = []
    dims = [_BUCKETS[d][0] if d in _BUCKETS else dimension_sql(d, params) for d in query.group_by]
    where, where_params = cost_where(filters)
    params += where_params
    names = [f"d{i}" for i in range(len(dims))]
    select_dims = "".join(f", {expr} AS {name}" for expr, name in zip(dims, names, strict=True))
    sums = ", ".join(f"sum({quote(m)}) AS {quote(m)}" for m in query.metrics)
    metric = f"({quote('ListCost')} - {quote('EffectiveCost')})" if query.sort == "Savings" else quote(query.sort)
    direction = "DESC" if query.descending else "ASC"
    tie = "".join(f", {n} NULLS LAST" for n in names)
    ranked = (
        f"WITH g AS (SELECT BillingCurrency{select_dims}, {sums}, count(*) AS rowCount FROM {CU_TABLE}"
        f"{where_sql(where)} GROUP BY ALL), "
        f"r AS (SELECT *, row_number() OVER (PARTITION BY BillingCurrency ORDER BY {metric} {direction} NULLS LAST"
        f"{tie}) AS rank, count(*) OVER () AS groups FROM g) "
    )
    shown = [
        f"strftime({name}, '{_BUCKETS[d][1]}') AS {name}" if d in _BUCKETS else name
        for d, name in zip(query.group_by, names, strict=True)
    ]
    columns = ", ".join(["BillingCurrency", *shown, *(quote(m) for m in query.metrics), "rowCount"])
    limit = query.top if query.top is not None else query.max_groups
    top_rows = f"SELECT {columns}, false AS other, rank, groups FROM r WHERE rank <= {int(limit)}"
    if query.top is not None:
        other_sums = ", ".join(f"sum({quote(m)})" for m in query.metrics)
        nulls = "".join(", NULL" for _ in names)
        other = (
            f" UNION ALL SELECT BillingCurrency{nulls}, {other_sums}, sum(rowCount), true, {int(limit) + 1}, "
            f"max(groups) FROM r WHERE rank > {int(limit)} GROUP BY BillingCurrency"
        )
        top_rows += other
    groups_sql = f"{ranked}SELECT * FROM ({top_rows}) ORDER BY BillingCurrency NULLS LAST, other, rank"
    totals_where, totals_params = cost_where(filters)
    totals_sql = (
        f"SELECT BillingCurrency, {sums}, count(*) AS rowCount FROM {CU_TABLE}{where_sql(totals_where)} "
        "GROUP BY BillingCurrency ORDER BY BillingCurrency NULLS LAST"
    )
    return groups_sql, params, totals_sql, totals_params


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
