"""DuckDB SQL for the commitment analytics: ContractApplied elements per commitment, and commitment
discount sums per group.

``ContractApplied`` elements are read with ``from_json`` into a typed structure whose amounts are
``DECIMAL(38,18)``: DuckDB then reads each number from its JSON text, digit for digit (the JSON path
functions, ``->>`` or ``json_extract_string``, go through a double: ``0.08799215300000123456789`` comes
back as ``0.08799215300000124``). Key names match exactly: the store keeps the corrected 1.3 spelling
``ContractCommitmentId`` (the loader recases ``ContractCommitmentID``). A number that is no number, or does
not fit DECIMAL(38,18) (20 integer digits), reads as null and is not added. Each SELECT unnests one list
at most and the windows are a VALUES list, so Spark (one generator per SELECT, no array parameters
unnested side by side) runs the same text.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from server.sources import sql
from server.store.schema import CC_TABLE, CU_TABLE, quote
from tools.source import CostFilters, DiscountQuery, Scope

_ELEMENTS = (
    '{"Elements":[{"ContractCommitmentId":"VARCHAR","ContractCommitmentAppliedCost":"DECIMAL(38,18)",'
    '"ContractCommitmentAppliedQuantity":"DECIMAL(38,18)","ContractCommitmentAppliedUnit":"VARCHAR"}]}'
)


def in_scope(scope: Scope) -> tuple[str, list[Any]]:
    where, params = sql.scope_clauses(scope)
    return (" AND ".join(where) if where else "TRUE"), params


def applied_query(
    scope: Scope, as_of: datetime, windows: list[tuple[str, datetime | None, datetime | None]]
) -> tuple[str, list[Any]]:
    """Applied sums per (commitment, row currency, applied unit, in scope) over rows charged before
    ``as_of``: to date and within each commitment's run-rate window ``windows`` (id, window start, end).
    Every row is read (not only the caller's): out-of-scope ones only say that they exist. ``windows``
    must not be empty (a VALUES list has at least one row)."""
    scoped, params = in_scope(scope)
    rows = ", ".join("(?, CAST(? AS TIMESTAMP), CAST(? AS TIMESTAMP))" for _ in windows)
    query = f"""
    WITH elements AS (
      SELECT BillingCurrency, ChargePeriodStart, {scoped} AS in_scope,
             unnest(from_json(ContractApplied, '{_ELEMENTS}').Elements) AS e
      FROM {CU_TABLE} WHERE ContractApplied IS NOT NULL AND ChargePeriodStart < ?
    ), typed AS (
      SELECT BillingCurrency, ChargePeriodStart, in_scope,
             e.ContractCommitmentId AS id,
             e.ContractCommitmentAppliedUnit AS unit,
             e.ContractCommitmentAppliedCost AS cost,
             e.ContractCommitmentAppliedQuantity AS quantity
      FROM elements
    ), windows AS (
      SELECT * FROM (VALUES {rows}) AS v(id, ws, we)
    )
    SELECT t.id, t.BillingCurrency, t.unit, t.in_scope,
           sum(t.cost), sum(t.cost) FILTER (WHERE t.ChargePeriodStart >= w.ws AND t.ChargePeriodStart < w.we),
           sum(t.quantity), sum(t.quantity) FILTER (WHERE t.ChargePeriodStart >= w.ws AND t.ChargePeriodStart < w.we),
           count(*)
    FROM typed t JOIN windows w ON t.id = w.id
    GROUP BY ALL ORDER BY ALL"""
    return query, [*params, as_of, *(value for window in windows for value in window)]


def as_of_query(scope: Scope) -> tuple[str, list[Any]]:
    """The end of the loaded data the caller may see: the latest ChargePeriodEnd."""
    where, params = sql.scope_clauses(scope)
    return f"SELECT max(ChargePeriodEnd) FROM {CU_TABLE}{sql.where_sql(where)}", params


COMMITMENT_COLUMNS = (
    "ContractCommitmentId",
    "ContractId",
    "ContractCommitmentCategory",
    "ContractCommitmentType",
    "ContractCommitmentDescription",
    "ContractCommitmentCost",
    "ContractCommitmentQuantity",
    "ContractCommitmentUnit",
    "ContractCommitmentPeriodStart",
    "ContractCommitmentPeriodEnd",
    "ContractPeriodStart",
    "ContractPeriodEnd",
    "BillingCurrency",
)


def commitments_query(
    allowed_ids: list[str] | None, commitment_id: str | None, contract_id: str | None
) -> tuple[str, list[Any]]:
    """The commitments to burn down, with raw (naive UTC) date/times, in load order."""
    where: list[str] = []
    params: list[Any] = []
    for clause, value in (
        ("list_contains(?, ContractCommitmentId)", allowed_ids),
        ("ContractCommitmentId = ?", commitment_id),
        ("ContractId = ?", contract_id),
    ):
        if value is not None:
            where.append(clause)
            params.append(value)
    columns = ", ".join(COMMITMENT_COLUMNS)
    return f"SELECT {columns} FROM {CC_TABLE}{sql.where_sql(where)} ORDER BY _row_id", params


_KEYS = {"month": "strftime(ChargePeriodStart, '%Y-%m')"}


def discount_groups_query(filters: CostFilters, query: DiscountQuery) -> tuple[str, list[Any], list[str]]:
    """Sums per group and currency of the rows with a CommitmentDiscountId (``tools.discounts.GROUP_SUMS``)."""
    where, params = sql.cost_where(filters)
    where.append("CommitmentDiscountId IS NOT NULL")
    keys = [f"{_KEYS.get(d, d)} AS {quote(d)}" for d in query.group_by]
    names = ["BillingCurrency", *query.group_by]
    attributes = []
    if "CommitmentDiscountId" in query.group_by:  # attributes of the id, not groups of their own
        for column in ("CommitmentDiscountName", "CommitmentDiscountType", "CommitmentDiscountCategory"):
            if column not in query.group_by:
                attributes.append(f"min({column}) AS {column}")
                names.append(column)
    used, unused = "CommitmentDiscountStatus = 'Used'", "CommitmentDiscountStatus = 'Unused'"
    one_unit = "count(DISTINCT CommitmentDiscountUnit) <= 1"
    sums = [
        f"sum(EffectiveCost) FILTER (WHERE {used})",
        f"sum(EffectiveCost) FILTER (WHERE {unused})",
        f"CASE WHEN {one_unit} THEN sum(CommitmentDiscountQuantity) FILTER (WHERE {used}) END",
        f"CASE WHEN {one_unit} THEN sum(CommitmentDiscountQuantity) FILTER (WHERE {unused}) END",
        f"sum(ListCost) FILTER (WHERE {used})",
        f"sum(ContractedCost) FILTER (WHERE {used})",
        f"sum(EffectiveCost) FILTER (WHERE {used})",
        "sum(BilledCost) FILTER (WHERE ChargeCategory = 'Purchase')",
        f"CASE WHEN {one_unit} THEN min(CommitmentDiscountUnit) END",
        f"NOT ({one_unit})",
        "count(*)",
    ]
    select = ", ".join(["BillingCurrency", *keys, *attributes, *sums])
    group = ", ".join(["BillingCurrency", *(_KEYS.get(d, d) for d in query.group_by)])
    text = f"SELECT {select} FROM {CU_TABLE}{sql.where_sql(where)} GROUP BY {group}"
    return text, params, names
