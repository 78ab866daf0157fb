"""The questions the suite asks focus-api, the peer (focus-mcp) and raw DuckDB, and how their answers compare.

Each ``Question`` carries our tool call (MCP) and the DuckDB SQL a peer user (or the raw baseline) runs for
the same answer, with ``{table}`` for the table or view name. Answers are normalised to lists of tuples
with ``Decimal`` money, so ``agreement`` can say whether they are equal exactly, equal to the cent, or not.
Money is never summed across currencies: every money question is per BillingCurrency, as our tools answer.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

Answer = list[tuple[Any, ...]]
CENT = Decimal("0.01")


@dataclass(frozen=True)
class Question:
    key: str
    title: str
    tool: str
    args: dict[str, Any]
    sql: str  # DuckDB SQL with {table}
    ours: Callable[[dict[str, Any]], Answer]  # from our structured content
    theirs: Callable[[list[dict[str, Any]]], Answer]  # from SQL result rows (dicts)


def _money(value: Any) -> Decimal:
    return Decimal(str(value))


def _instant(value: Any) -> str:
    """Date/times from either side as ``YYYY-MM-DD HH:MM:SS`` (ours ``...T..Z``, the peer's ISO without Z)."""
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    return str(value).replace("T", " ").removesuffix("Z")[:19]


def _page_rows(rows: list[dict[str, Any]]) -> Answer:
    return [
        (
            r["ResourceId"],
            _instant(r["ChargePeriodStart"]),
            r["ChargeDescription"],
            _money(r["BilledCost"]),
            _money(r["EffectiveCost"]),
        )
        for r in rows
    ]


def _groups(*dims: str) -> Callable[[list[dict[str, Any]]], Answer]:
    def answer(rows: list[dict[str, Any]]) -> Answer:
        return [
            (r["BillingCurrency"], *(r[d] for d in dims), _money(r["EffectiveCost"]))
            for r in rows
            if not r.get("other")
        ]

    return answer


def _month_end(period: str) -> str:
    year, month = int(period[:4]), int(period[5:7])
    year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return f"{year:04d}-{month:02d}-01T00:00:00Z"


def questions(sub_account: str, period: str) -> list[Question]:
    """The peer comparison's questions for one SubAccountId and one billing period (``YYYY-MM-01``)."""
    start, end = f"{period}T00:00:00Z", _month_end(period)
    month = {"billingPeriodStart": start, "billingPeriodEnd": end}
    in_month = f"BillingPeriodStart = TIMESTAMP '{period}'"
    return [
        Question(
            "q1",
            f"first 100 rows, one SubAccountId, {period[:7]}",
            "listcostandusage",
            {"subAccountId": sub_account, **month, "pageSize": 100},
            f"SELECT * FROM {{table}} WHERE SubAccountId = '{sub_account}' AND {in_month} LIMIT 100",
            lambda s: _page_rows(s["data"]),
            _page_rows,
        ),
        Question(
            "q2",
            f"EffectiveCost per BillingCurrency, {period[:7]}",
            "summarizecostandusage",
            {**month, "metrics": ["EffectiveCost"]},
            f"SELECT BillingCurrency, sum(EffectiveCost) AS EffectiveCost FROM {{table}} WHERE {in_month} "
            "GROUP BY ALL ORDER BY BillingCurrency",
            lambda s: _groups()(s["data"]),
            _groups(),
        ),
        Question(
            "q3",
            f"top 10 ServiceName by EffectiveCost, {period[:7]}",
            "summarizecostandusage",
            {**month, "groupBy": ["ServiceName"], "top": 10},
            f"SELECT BillingCurrency, ServiceName, sum(EffectiveCost) AS EffectiveCost FROM {{table}} WHERE {in_month} "
            "GROUP BY 1, 2 QUALIFY row_number() OVER (PARTITION BY BillingCurrency ORDER BY sum(EffectiveCost) DESC, "
            "ServiceName) <= 10 ORDER BY BillingCurrency, EffectiveCost DESC, ServiceName",
            lambda s: _groups("ServiceName")(s["data"]),
            _groups("ServiceName"),
        ),
        top_services_by_month(),
    ]


def top_services_by_month() -> Question:
    """Issue 7's benchmark question: the top 20 (ServiceName, month) groups by EffectiveCost, all data."""
    return Question(
        "q4",
        "top 20 ServiceName by month (all data)",
        "summarizecostandusage",
        {"groupBy": ["ServiceName", "month"], "top": 20},
        "SELECT BillingCurrency, ServiceName, strftime(date_trunc('month', ChargePeriodStart), '%Y-%m') AS month, "
        "sum(EffectiveCost) AS EffectiveCost FROM {table} GROUP BY BillingCurrency, ServiceName, "
        "date_trunc('month', ChargePeriodStart) QUALIFY row_number() OVER "
        "(PARTITION BY BillingCurrency ORDER BY sum(EffectiveCost) DESC, ServiceName, month) <= 20 "
        "ORDER BY BillingCurrency, EffectiveCost DESC, ServiceName, month",
        lambda s: _groups("ServiceName", "month")(s["data"]),
        _groups("ServiceName", "month"),
    )


def _cents(answer: Answer) -> Answer:
    return [tuple(v.quantize(CENT, ROUND_HALF_EVEN) if isinstance(v, Decimal) else v for v in t) for t in answer]


def agreement(ours: Answer, theirs: Answer) -> tuple[bool, str]:
    """(agree to the cent, how): exact, to the cent (later digits differ), same rows in another order, or not."""
    if not ours:
        return False, "focus-api returned nothing"
    if ours == theirs:
        return True, "exact"
    if _cents(ours) == _cents(theirs):
        return True, "to the cent (later digits differ)"
    if Counter(_cents(ours)) == Counter(_cents(theirs)):
        return True, "same rows to the cent, in another order"
    return False, f"differ ({len(ours)} vs {len(theirs)} rows; first: {ours[:1]} vs {theirs[:1]})"
