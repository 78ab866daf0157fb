"""The MCP text of the commitment tools: compact Markdown tables an agent can quote, figures exact.

Every figure in a table is in structured content too (with the rest: periods, run-rate windows, what was
not counted); the table keeps the columns a review reads first.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from tools import wire
from tools.burndown import SummarizeContractCommitmentsOutput
from tools.discounts import SummarizeCommitmentDiscountsOutput

ROW_LIMIT = 40


def _cell(value: Any) -> str:
    if isinstance(value, Decimal):
        return wire.decimal_text(value)
    return "" if value is None else str(value).replace("|", "\\|")


def _table(columns: list[str], rows: list[list[Any]]) -> list[str]:
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(_cell(v) for v in row) + " |" for row in rows]
    return lines


def burn_down_text(output: SummarizeContractCommitmentsOutput) -> str:
    columns = [
        "ContractCommitmentId",
        "status",
        "measure",
        "unit",
        "committed",
        "appliedToDate",
        "remaining",
        "% consumed",
        "% elapsed",
        "dailyRunRate",
        "projectedAtPeriodEnd",
        "projectedShortfall",
        "period",
    ]
    rows = [
        [
            r.ContractCommitmentId,
            r.status,
            r.measure,
            r.committedUnit,
            r.committed,
            r.appliedToDate,
            r.remaining,
            r.percentConsumed,
            r.percentElapsed,
            r.dailyRunRate,
            r.projectedAtPeriodEnd,
            r.projectedShortfall,
            f"{r.ContractCommitmentPeriodStart} to {r.ContractCommitmentPeriodEnd}",
        ]
        for r in output.data[:ROW_LIMIT]
    ]
    head = (
        f"Contract commitment burn-down as of {output.asOf} (run rate over the last {output.runRateDays} days): "
        f"{output.totalRecords} commitments; "
        + (", ".join(f"{n} {s}" for s, n in sorted(output.statusCounts.items())) or "none")
        + "."
    )
    lines = [head, *_table(columns, rows)]
    if len(output.data) > ROW_LIMIT:
        lines.append(f"({len(output.data) - ROW_LIMIT} more commitments in structured content.)")
    skipped = [r for r in output.data if r.notCounted]
    for r in skipped[:10]:
        parts = ", ".join(
            f"{_cell(n.applied)} {n.BillingCurrency or n.unit} ({n.elements} elements)" for n in r.notCounted
        )
        lines.append(f"Not counted for {r.ContractCommitmentId} (other currency or unit, never converted): {parts}.")
    if output.scopeNote:
        outside = [r.ContractCommitmentId for r in output.data if r.consumptionOutsideScope]
        lines.append(output.scopeNote + (f" Consumed outside your scope: {', '.join(outside)}." if outside else ""))
    if output.truncated:
        lines.append(f"Cut: {output.truncated.reason}; {output.truncated.howToGetTheRest}.")
    return "\n".join(lines)


def discounts_text(output: SummarizeCommitmentDiscountsOutput) -> str:
    columns = [
        "BillingCurrency",
        *output.groupBy,
        "usedCost",
        "unusedCost",
        "utilization %",
        "unit",
        "usedQuantity",
        "unusedQuantity",
        "savings",
        "purchaseBilledCost",
        "rowCount",
    ]
    rows = []
    for r in output.data[:ROW_LIMIT]:
        values = r.model_dump()
        keys = ["Other" if r.other else values.get(d) for d in output.groupBy]
        rows.append(
            [
                r.BillingCurrency,
                *keys,
                r.usedCost,
                r.unusedCost,
                r.utilizationPercent,
                r.CommitmentDiscountUnit,
                r.usedQuantity,
                r.unusedQuantity,
                r.savings,
                r.purchaseBilledCost,
                r.rowCount,
            ]
        )
    lines = _table(columns, rows)
    if len(output.data) > ROW_LIMIT:
        lines.append(f"({len(output.data) - ROW_LIMIT} more groups in structured content.)")
    totals = "; ".join(
        f"{t.BillingCurrency}: used {_cell(t.usedCost)}, unused {_cell(t.unusedCost)}, utilization "
        f"{_cell(t.utilizationPercent)} %, savings {_cell(t.savings)}, "
        f"purchases {_cell(t.purchaseBilledCost) or 'none'}"
        for t in output.totals
    )
    lines.append(f"Totals per currency (never added across currencies): {totals or 'none'}.")
    if output.truncated:
        lines.append(f"Cut: {output.truncated.reason}; {output.truncated.howToGetTheRest}.")
    return "\n".join(lines)
