"""``summarizecontractcommitments``: how far each contract commitment is burnt down, and where it is heading.

The source finds the commitments the caller may see and sums, per commitment, the ``ContractApplied``
elements of the Cost and Usage rows charged before ``asOf`` (``Applied`` groups: per row currency and
applied unit, in or out of the caller's scope, to date and within the run-rate window). Every figure is
then computed here, once, for every source, with exact decimals by the rules stated in ``DESCRIPTION``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, field_validator

from tools import wire
from tools.context import ToolContext
from tools.envelope import AppliedScope, Truncation, freshness
from tools.filters import ToolInput
from tools.instants import DATE_HELP, format_instant, parse_instant
from tools.source import BurnDownQuery, CommitmentFilters, CostFilters, Row
from tools.spec import READ_ONLY, RestRoute, ToolSpec

Status = Literal["not started", "exhausted", "expired", "at risk", "on track", "unknown"]
CENT = Decimal("0.01")
SCALE = Decimal("1E-18")  # the store's DECIMAL(38,18): quotients are rounded to its 18 decimals
DAY_SECONDS = 86_400
SCOPE_NOTE = (
    "Only Cost and Usage rows of the accounts this token may see are counted: consumption of a commitment "
    "by other accounts is not in appliedToDate (consumptionOutsideScope says where some exists)."
)

DESCRIPTION = (
    "Burn-down of FOCUS contract commitments (MACC, EDP, committed spend, usage minimums) per "
    "ContractCommitmentId, as of asOf (default: the end of the loaded data, the latest ChargePeriodEnd). "
    "committed is ContractCommitmentCost in the commitment's BillingCurrency (measure Cost) or, for a Usage "
    "commitment with a quantity, ContractCommitmentQuantity in ContractCommitmentUnit (measure Quantity). "
    "appliedToDate = the sum of ContractApplied.Elements[*].ContractCommitmentAppliedCost (or "
    "AppliedQuantity in the commitment's unit) for that ContractCommitmentId over Cost and Usage rows with "
    "ChargePeriodStart < asOf; elements in another currency or unit are never converted: they are listed in "
    "notCounted. remaining = committed - appliedToDate (negative: consumed beyond the commitment). "
    "percentConsumed = 100 * appliedToDate / committed; percentElapsed = 100 * (asOf - "
    "ContractCommitmentPeriodStart) / (ContractCommitmentPeriodEnd - ContractCommitmentPeriodStart), within "
    "0..100 (both rounded half-even to 2 decimals). The run-rate window ends at min(asOf, period end) and "
    "starts runRateDays (default 30) earlier, but not before the period start; dailyRunRate = applied in "
    "the window / window length in days. projectedAtPeriodEnd = appliedToDate + applied in the window * "
    "(period end - asOf) / window length (appliedToDate once the period has ended; null before it starts); "
    "quotients are rounded half-even to 18 decimals. projectedShortfall = max(committed - projected, 0) (what "
    "a true-up would owe), projectedSurplus = max(projected - committed, 0). status, first rule that holds: "
    "'not started' (asOf <= period start), 'exhausted' (appliedToDate >= committed), 'expired' (asOf >= "
    "period end, short of the commitment), 'at risk' (projected < committed), else 'on track'; 'unknown' "
    "when the commitment states neither cost nor quantity. Filters: contractCommitmentId, contractId, "
    "billingAccountId (commitments that account's rows reference). A token limited to some accounts sees "
    "only commitments its accounts' rows reference, and counts only their rows."
)


@dataclass(frozen=True, slots=True)
class Applied:
    """Sums of one commitment's applied elements over rows of one currency and applied unit."""

    commitment_id: str
    currency: str | None
    unit: str | None
    in_scope: bool
    cost: Decimal | None
    cost_in_window: Decimal | None
    quantity: Decimal | None
    quantity_in_window: Decimal | None
    elements: int


def run_rate_window(start: datetime, end: datetime, as_of: datetime, days: int) -> tuple[datetime, datetime]:
    """[window start, window end): the last ``days`` before min(asOf, end), not before ``start``."""
    window_end = min(as_of, end)
    if window_end - datetime.min < timedelta(days=days):  # near year 1: the window reaches back to the start
        return start, window_end
    return max(window_end - timedelta(days=days), start), window_end


class SummarizeContractCommitmentsInput(ToolInput):
    contractCommitmentId: Annotated[str | None, Field(description="ContractCommitmentId equals this.")] = None
    contractId: Annotated[str | None, Field(description="ContractId equals this.")] = None
    billingAccountId: Annotated[
        str | None,
        Field(description="Commitments this billing account's Cost and Usage rows reference (ContractApplied)."),
    ] = None
    asOf: Annotated[
        str | None,
        Field(description=f"The instant the burn-down holds at (default: the end of the loaded data). {DATE_HELP}."),
    ] = None
    runRateDays: Annotated[
        int, Field(ge=1, le=366, description="Days of consumption the daily run rate is measured over.")
    ] = 30

    @field_validator("asOf")
    @classmethod
    def _instant(cls, value: str | None) -> str | None:
        if value is not None:
            parse_instant(value, "asOf")
        return value


class NotCounted(BaseModel):
    """Applied elements that do not add to the commitment: another currency (Cost) or unit (Quantity)."""

    BillingCurrency: str | None = None
    unit: str | None = None
    applied: Decimal
    elements: int


class CommitmentBurnDown(BaseModel):
    ContractCommitmentId: str
    ContractId: str | None
    ContractCommitmentCategory: str | None
    ContractCommitmentType: str | None
    ContractCommitmentDescription: str | None
    ContractCommitmentPeriodStart: str | None
    ContractCommitmentPeriodEnd: str | None
    ContractPeriodStart: str | None
    ContractPeriodEnd: str | None
    measure: Literal["Cost", "Quantity"] | None
    committed: Decimal | None
    committedUnit: str | None = Field(description="BillingCurrency for Cost, ContractCommitmentUnit for Quantity.")
    appliedToDate: Decimal
    appliedElements: int = Field(description="Applied elements counted in appliedToDate.")
    remaining: Decimal | None
    percentConsumed: Decimal | None
    percentElapsed: Decimal | None
    runRateWindowStart: str | None
    runRateWindowEnd: str | None
    appliedInRunRateWindow: Decimal
    dailyRunRate: Decimal | None
    projectedAtPeriodEnd: Decimal | None
    projectedShortfall: Decimal | None
    projectedSurplus: Decimal | None
    status: Status
    notCounted: list[NotCounted] = Field(default_factory=list)
    consumptionOutsideScope: bool | None = Field(
        None, description="Scoped tokens: other accounts' rows also apply to this commitment (not counted)."
    )


class SummarizeContractCommitmentsOutput(BaseModel):
    asOf: str | None
    runRateDays: int
    data: list[CommitmentBurnDown]
    statusCounts: dict[str, int]
    totalRecords: int = Field(description="Commitments matching, before any cut.")
    scopeNote: str | None = None
    truncated: Truncation | None = None
    dataLastUpdated: str | None
    dataCompleteness: Literal["Complete", "Partial", "Empty"]
    appliedScope: AppliedScope | None = None


def _sum(values: list[Decimal | None]) -> Decimal | None:
    present = [v for v in values if v is not None]
    return sum(present, Decimal(0)) if present else None


def _percent(part: Decimal, whole: Decimal) -> Decimal | None:
    return None if whole == 0 else (part * 100 / whole).quantize(CENT, ROUND_HALF_EVEN)


def _measure(commitment: Row) -> Literal["Cost", "Quantity"] | None:
    quantity, cost = commitment.get("ContractCommitmentQuantity"), commitment.get("ContractCommitmentCost")
    if quantity is not None and (commitment.get("ContractCommitmentCategory") == "Usage" or cost is None):
        return "Quantity"
    return "Cost" if cost is not None else None


def burn_down(commitment: Row, applied: list[Applied], as_of: datetime, days: int, scoped: bool) -> dict[str, Any]:
    """The figures of one commitment (``commitment``: its Contract Commitment row, date/times as naive UTC)."""
    with wire.exact():  # sums and products never round before the stated rounding
        return _figures(commitment, applied, as_of, days, scoped)


def _figures(commitment: Row, applied: list[Applied], as_of: datetime, days: int, scoped: bool) -> dict[str, Any]:
    measure = _measure(commitment)
    quantity = measure == "Quantity"
    committed = commitment.get("ContractCommitmentQuantity" if quantity else "ContractCommitmentCost")
    unit = commitment.get("ContractCommitmentUnit") if quantity else commitment.get("BillingCurrency")
    visible = [a for a in applied if a.in_scope]
    counted = [a for a in visible if (a.unit if quantity else a.currency) == unit]
    to_date = _sum([a.quantity if quantity else a.cost for a in counted]) or Decimal(0)
    in_window = _sum([a.quantity_in_window if quantity else a.cost_in_window for a in counted]) or Decimal(0)
    elements = sum(a.elements for a in counted if (a.quantity if quantity else a.cost) is not None)
    others: dict[str | None, list[Applied]] = {}
    for a in visible:
        if (a.unit if quantity else a.currency) != unit and (a.quantity if quantity else a.cost) is not None:
            others.setdefault(a.unit if quantity else a.currency, []).append(a)
    start, end = commitment.get("ContractCommitmentPeriodStart"), commitment.get("ContractCommitmentPeriodEnd")
    out: dict[str, Any] = {
        "measure": measure,
        "committed": committed,
        "committedUnit": unit,
        "appliedToDate": to_date,
        "appliedElements": elements,
        "remaining": None if committed is None else committed - to_date,
        "percentConsumed": None if committed is None else _percent(to_date, committed),
        "appliedInRunRateWindow": in_window,
        "notCounted": [
            {
                ("unit" if quantity else "BillingCurrency"): key,
                "applied": _sum([a.quantity if quantity else a.cost for a in group]),
                "elements": sum(a.elements for a in group),
            }
            for key, group in sorted(others.items(), key=lambda kv: str(kv[0]))
        ],
        "consumptionOutsideScope": any(not a.in_scope for a in applied) if scoped else None,
    }
    out |= _timeline(committed, to_date, in_window, start, end, as_of, days)
    return out


def _timeline(
    committed: Decimal | None,
    to_date: Decimal,
    in_window: Decimal,
    start: datetime | None,
    end: datetime | None,
    as_of: datetime,
    days: int,
) -> dict[str, Any]:
    """Elapsed share, run rate, projection and status (the rules of ``DESCRIPTION``)."""
    out: dict[str, Any] = dict.fromkeys(
        ("percentElapsed", "runRateWindowStart", "runRateWindowEnd", "dailyRunRate", "projectedAtPeriodEnd"),
    )
    projected: Decimal | None = None
    if start is not None and end is not None and end > start:
        period = Decimal(int((end - start).total_seconds()))
        elapsed = min(max(as_of - start, timedelta(0)), end - start)
        out["percentElapsed"] = _percent(Decimal(int(elapsed.total_seconds())), period)
        window_start, window_end = run_rate_window(start, end, as_of, days)
        window = Decimal(int((window_end - window_start).total_seconds()))
        if window > 0:
            out["runRateWindowStart"], out["runRateWindowEnd"] = (
                format_instant(window_start),
                format_instant(window_end),
            )
            out["dailyRunRate"] = (in_window * DAY_SECONDS / window).quantize(SCALE, ROUND_HALF_EVEN)
        if as_of >= end:
            projected = to_date
        elif as_of > start and window > 0:
            ahead = Decimal(int((end - as_of).total_seconds()))
            projected = (to_date + in_window * ahead / window).quantize(SCALE, ROUND_HALF_EVEN)
    out["projectedAtPeriodEnd"] = projected
    out["projectedShortfall"] = out["projectedSurplus"] = None
    if committed is not None and projected is not None:
        out["projectedShortfall"] = max(committed - projected, Decimal(0))
        out["projectedSurplus"] = max(projected - committed, Decimal(0))
    out["status"] = _status(committed, to_date, projected, start, end, as_of)
    return out


def _status(
    committed: Decimal | None,
    to_date: Decimal,
    projected: Decimal | None,
    start: datetime | None,
    end: datetime | None,
    as_of: datetime,
) -> Status:
    if committed is None:
        return "unknown"
    if start is not None and as_of <= start:
        return "not started"
    if to_date >= committed:
        return "exhausted"
    if end is not None and as_of >= end:
        return "expired"
    if projected is not None and projected < committed:
        return "at risk"
    return "on track"


def commitment_fields(commitment: Row) -> dict[str, Any]:
    """The Contract Commitment columns an answer row repeats, date/times as FOCUS text."""
    out = {
        k: commitment.get(k)
        for k in (
            "ContractCommitmentId",
            "ContractId",
            "ContractCommitmentCategory",
            "ContractCommitmentType",
            "ContractCommitmentDescription",
        )
    }
    for k in (
        "ContractCommitmentPeriodStart",
        "ContractCommitmentPeriodEnd",
        "ContractPeriodStart",
        "ContractPeriodEnd",
    ):
        value = commitment.get(k)
        out[k] = format_instant(value) if isinstance(value, datetime) else value
    return out


async def summarize_contract_commitments(
    args: SummarizeContractCommitmentsInput, ctx: ToolContext
) -> SummarizeContractCommitmentsOutput:
    filters = CommitmentFilters(
        contract_commitment_id=args.contractCommitmentId,
        billing_account_id=args.billingAccountId,
        contract_id=args.contractId,
        scope=ctx.scope,
    )
    as_of = parse_instant(args.asOf, "asOf") if args.asOf else None
    query = BurnDownQuery(filters, as_of, args.runRateDays, ctx.limits.max_page_size)
    result = await ctx.source.summarize_contract_commitments(query)
    rows = [CommitmentBurnDown(**r) for r in result.rows]
    counts: dict[str, int] = {}
    for row in rows:
        counts[row.status] = counts.get(row.status, 0) + 1
    cut = None
    if len(rows) < result.matched:
        cut = Truncation(
            rowsReturned=len(rows),
            rowsRequested=result.matched,
            reason=f"{result.matched} commitments exceed the {ctx.limits.transport} limit of {query.max_rows}",
            howToGetTheRest="filter by contractId, billingAccountId or contractCommitmentId",
        )
    return SummarizeContractCommitmentsOutput(
        asOf=format_instant(result.as_of),
        runRateDays=args.runRateDays,
        data=rows,
        statusCounts=counts,
        totalRecords=result.matched,
        scopeNote=None if ctx.scope.unrestricted else SCOPE_NOTE,
        truncated=cut,
        **await freshness(
            ctx, result.envelope, not rows, lambda: ctx.source.completeness(CostFilters(scope=ctx.scope))
        ),
    )


SUMMARIZE = ToolSpec(
    name="summarizecontractcommitments",
    title="Summarize FOCUS contract commitment burn-down",
    description=DESCRIPTION,
    input_model=SummarizeContractCommitmentsInput,
    output_model=SummarizeContractCommitmentsOutput,
    handler=summarize_contract_commitments,
    hints=READ_ONLY,
    rest=RestRoute("GET", "/contract-commitments/summary"),
)
