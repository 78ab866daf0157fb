"""The tests' own computation of the commitment tools' figures, from the CSV text, in plain Decimal.

Written from the rules in the tools' descriptions, not from the server's code: ContractApplied is parsed
with ``json.loads(parse_float=Decimal)``, instants with ``datetime``, and every figure is derived again here.
"""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal, localcontext
from typing import Any

from tools.instants import parse_instant
from tools.source import Scope

CENT = Decimal("0.01")
E18 = Decimal("1E-18")


def when(text: str) -> datetime:
    return parse_instant(text, "test")


def dec(text: str | None) -> Decimal | None:
    return None if text in (None, "") else Decimal(text)


def visible(row: dict[str, str], scope: Scope | None) -> bool:
    if scope is None:
        return True
    if scope.billing_account_ids is not None and row["BillingAccountId"] not in scope.billing_account_ids:
        return False
    return scope.sub_account_ids is None or row["SubAccountId"] in scope.sub_account_ids


def elements(row: dict[str, str]) -> list[dict[str, Any]]:
    text = row.get("ContractApplied") or ""
    if not text:
        return []
    doc = json.loads(text, parse_float=Decimal, parse_int=Decimal)
    out = []
    for e in doc.get("Elements") or []:
        e = dict(e)
        e.setdefault("ContractCommitmentId", e.get("ContractCommitmentID"))
        out.append(e)
    return out


def referenced(cu_rows: list[dict[str, str]], scope: Scope | None) -> set[str]:
    """Commitment ids the rows a scope sees reference (elements, or CommitmentDiscountId on purchases)."""
    ids = set()
    for row in cu_rows:
        if visible(row, scope):
            ids |= {e["ContractCommitmentId"] for e in elements(row)}
            if row["ChargeCategory"] == "Purchase" and row.get("CommitmentDiscountId"):
                ids.add(row["CommitmentDiscountId"])
    return ids


def pct(part: Decimal, whole: Decimal) -> Decimal | None:
    return None if whole == 0 else (part * 100 / whole).quantize(CENT, ROUND_HALF_EVEN)


def seconds(delta: timedelta) -> Decimal:
    return Decimal(int(delta.total_seconds()))


def burn_down(
    cc: dict[str, str], cu_rows: list[dict[str, str]], as_of: datetime, days: int, scope: Scope | None = None
) -> dict[str, Any]:
    with localcontext() as ctx:
        ctx.prec = 80
        return _burn_down(cc, cu_rows, as_of, days, scope)


def _burn_down(
    cc: dict[str, str], cu_rows: list[dict[str, str]], as_of: datetime, days: int, scope: Scope | None
) -> dict[str, Any]:
    cid = cc["ContractCommitmentId"]
    qty = dec(cc["ContractCommitmentQuantity"])
    cost = dec(cc["ContractCommitmentCost"])
    by_quantity = qty is not None and (cc["ContractCommitmentCategory"] == "Usage" or cost is None)
    committed = qty if by_quantity else cost
    unit = cc["ContractCommitmentUnit"] if by_quantity else cc["BillingCurrency"]
    start, end = when(cc["ContractCommitmentPeriodStart"]), when(cc["ContractCommitmentPeriodEnd"])
    window_end = min(as_of, end)
    window_start = max(window_end - timedelta(days=days), start)
    applied = in_window = Decimal(0)
    count = 0
    other: dict[str, list[Decimal]] = defaultdict(list)
    outside = False
    for row in cu_rows:
        charged = when(row["ChargePeriodStart"])
        if charged >= as_of:
            continue
        for e in elements(row):
            if e["ContractCommitmentId"] != cid:
                continue
            if not visible(row, scope):
                outside = True
                continue
            value = e.get("ContractCommitmentAppliedQuantity" if by_quantity else "ContractCommitmentAppliedCost")
            if value is None:
                continue
            key = e.get("ContractCommitmentAppliedUnit") if by_quantity else row["BillingCurrency"]
            if key != unit:
                other[key].append(Decimal(value))
                continue
            applied += Decimal(value)
            count += 1
            if window_start <= charged < window_end:
                in_window += Decimal(value)
    window = seconds(window_end - window_start)
    projected: Decimal | None = None
    if as_of >= end:
        projected = applied
    elif as_of > start and window > 0:
        projected = (applied + in_window * seconds(end - as_of) / window).quantize(E18, ROUND_HALF_EVEN)
    elapsed = min(max(as_of - start, timedelta(0)), end - start)
    assert committed is not None
    if as_of <= start:
        status = "not started"
    elif applied >= committed:
        status = "exhausted"
    elif as_of >= end:
        status = "expired"
    elif projected is not None and projected < committed:
        status = "at risk"
    else:
        status = "on track"
    return {
        "measure": "Quantity" if by_quantity else "Cost",
        "committed": committed,
        "committedUnit": unit,
        "appliedToDate": applied,
        "appliedElements": count,
        "remaining": committed - applied,
        "percentConsumed": pct(applied, committed),
        "percentElapsed": pct(seconds(elapsed), seconds(end - start)),
        "appliedInRunRateWindow": in_window,
        "dailyRunRate": (in_window * 86400 / window).quantize(E18, ROUND_HALF_EVEN) if window > 0 else None,
        "projectedAtPeriodEnd": projected,
        "projectedShortfall": None if projected is None else max(committed - projected, Decimal(0)),
        "projectedSurplus": None if projected is None else max(projected - committed, Decimal(0)),
        "status": status,
        "notCounted": {k: sum(v, Decimal(0)) for k, v in other.items()},
        "consumptionOutsideScope": outside if scope is not None else None,
    }


def discount_groups(cu_rows: list[dict[str, str]], group_by: list[str]) -> dict[tuple[Any, ...], dict[str, Any]]:
    """Per (BillingCurrency, *group_by): the sums the discount tool's description names."""
    groups: dict[tuple[Any, ...], dict[str, Any]] = {}
    for row in cu_rows:
        if not row.get("CommitmentDiscountId"):
            continue
        key = (row["BillingCurrency"], *(row["ChargePeriodStart"][:7] if d == "month" else row[d] for d in group_by))
        g = groups.setdefault(key, defaultdict(lambda: Decimal(0)) | {"rows": 0, "units": set(), "used": False})
        g["rows"] += 1
        status = row.get("CommitmentDiscountStatus")
        if status in ("Used", "Unused"):
            prefix = status.lower()
            g[f"{prefix}Cost"] += Decimal(row["EffectiveCost"])
            g["has_" + prefix] = True
            if row.get("CommitmentDiscountQuantity"):
                g[f"{prefix}Quantity"] += Decimal(row["CommitmentDiscountQuantity"])
                g[f"has_{prefix}Quantity"] = True
        if row.get("CommitmentDiscountUnit"):
            g["units"].add(row["CommitmentDiscountUnit"])
        if status == "Used":
            g["used"] = True
            g["list"] += Decimal(row["ListCost"])
            g["contracted"] += Decimal(row["ContractedCost"])
            g["effective"] += Decimal(row["EffectiveCost"])
        if row["ChargeCategory"] == "Purchase":
            g["purchase"] += Decimal(row["BilledCost"])
            g["has_purchase"] = True
    return groups


def discount_figures(g: dict[str, Any]) -> dict[str, Any]:
    used = g["usedCost"] if g.get("has_used") else None
    unused = g["unusedCost"] if g.get("has_unused") else None
    committed = None if used is None and unused is None else (used or 0) + (unused or 0)
    one_unit = len(g["units"]) <= 1
    used_q = g["usedQuantity"] if g.get("has_usedQuantity") and one_unit else None
    unused_q = g["unusedQuantity"] if g.get("has_unusedQuantity") and one_unit else None
    q_total = None if used_q is None and unused_q is None else (used_q or 0) + (unused_q or 0)
    return {
        "usedCost": used,
        "unusedCost": unused,
        "committedCost": committed,
        "utilizationPercent": None if used is None or not committed else pct(used, committed),
        "usedQuantity": used_q,
        "unusedQuantity": unused_q,
        "quantityUtilizationPercent": None if used_q is None or not q_total else pct(used_q, q_total),
        "savings": g["list"] - g["effective"] if g["used"] else None,
        "contractedSavings": g["contracted"] - g["effective"] if g["used"] else None,
        "purchaseBilledCost": g["purchase"] if g.get("has_purchase") else None,
        "rowCount": g["rows"],
    }
