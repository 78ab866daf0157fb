"""``summarizecommitmentdiscounts``: utilization and savings of commitment discounts (reservations, savings
plans, committed use discounts), per CommitmentDiscountId and currency.

The source sums, per group and BillingCurrency, the Cost and Usage rows that carry a CommitmentDiscountId
(``GROUP_SUMS``); ranking, the Other row, totals and every ratio are computed here, once, by the formulas of
``DESCRIPTION``, so a reviewer can reproduce each number from the rows.
"""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, field_validator

from tools import wire
from tools.context import ToolContext
from tools.envelope import AppliedScope, Truncation, freshness
from tools.filters import CostAndUsageFilters
from tools.records import split_list
from tools.source import Completeness, DiscountQuery, Row
from tools.spec import MONEY, READ_ONLY, RestRoute, ToolSpec

DIMENSIONS = (
    "CommitmentDiscountId",
    "CommitmentDiscountType",
    "CommitmentDiscountCategory",
    "ServiceProviderName",
    "month",
)
# What the source sums per group (money in BillingCurrency, quantities only when the group has one unit).
GROUP_SUMS = (
    "usedCost",
    "unusedCost",
    "usedQuantity",
    "unusedQuantity",
    "listCostUsed",
    "contractedCostUsed",
    "effectiveCostUsed",
    "purchaseBilledCost",
)
SORTS = ("unusedCost", "usedCost", "committedCost", "savings", "purchaseBilledCost")
CENT = Decimal("0.01")

DESCRIPTION = (
    "Utilization and savings of commitment discounts (savings plans, reservations, committed use discounts), "
    "from the Cost and Usage rows that carry a CommitmentDiscountId, under the same filters and scope as "
    "listcostandusage. Groups: groupBy from CommitmentDiscountId (default), CommitmentDiscountType, "
    "CommitmentDiscountCategory, ServiceProviderName, month (of ChargePeriodStart, YYYY-MM); BillingCurrency "
    "is always a group. Per group: usedCost = sum of EffectiveCost where CommitmentDiscountStatus = 'Used'; "
    "unusedCost = the same where 'Unused'; committedCost = usedCost + unusedCost; utilizationPercent = 100 * "
    "usedCost / committedCost; usedQuantity / unusedQuantity = sums of CommitmentDiscountQuantity by status "
    "in CommitmentDiscountUnit (null when the group mixes units) and quantityUtilizationPercent = 100 * "
    "usedQuantity / (usedQuantity + unusedQuantity); savings = sum(ListCost) - sum(EffectiveCost) and "
    "contractedSavings = sum(ContractedCost) - sum(EffectiveCost), both over the 'Used' rows (the covered "
    "usage); purchaseBilledCost = sum of BilledCost where ChargeCategory = 'Purchase'. Percentages are "
    "rounded half-even to 2 decimals; sums are exact. top=N keeps the N groups per currency with the largest "
    "sort (default unusedCost) and sums the rest in one row with other=true; totals are per currency. " + MONEY
)


class SummarizeCommitmentDiscountsInput(CostAndUsageFilters):
    groupBy: Annotated[
        list[str],
        Field(
            default_factory=lambda: ["CommitmentDiscountId"],
            max_length=3,
            description="Up to 3 of " + ", ".join(DIMENSIONS) + " (comma-separated in a REST query).",
        ),
    ]
    top: Annotated[
        int | None,
        Field(ge=1, le=1000, description="Keep the N largest groups per currency; the rest become one Other row."),
    ] = None
    sort: Annotated[
        Literal["unusedCost", "usedCost", "committedCost", "savings", "purchaseBilledCost"],
        Field(description="The figure groups are ranked by, largest first."),
    ] = "unusedCost"

    @field_validator("groupBy", mode="before")
    @classmethod
    def _split(cls, value: Any) -> Any:
        return split_list(value)

    @field_validator("groupBy")
    @classmethod
    def _dimensions(cls, value: list[str]) -> list[str]:
        for dim in value:
            if dim not in DIMENSIONS:
                raise ValueError(f"groupBy {dim!r} is not supported; use {', '.join(DIMENSIONS)}")
        if len(set(value)) != len(value):
            raise ValueError("groupBy repeats a dimension")
        return value


class DiscountRow(BaseModel):
    """One group: its dimension values, BillingCurrency and the figures of the tool description."""

    model_config = {"extra": "allow"}
    BillingCurrency: str | None
    CommitmentDiscountName: str | None = None
    usedCost: Decimal | None = None
    unusedCost: Decimal | None = None
    committedCost: Decimal | None = None
    utilizationPercent: Decimal | None = None
    CommitmentDiscountUnit: str | None = None
    usedQuantity: Decimal | None = None
    unusedQuantity: Decimal | None = None
    quantityUtilizationPercent: Decimal | None = None
    savings: Decimal | None = None
    contractedSavings: Decimal | None = None
    purchaseBilledCost: Decimal | None = None
    rowCount: int
    other: bool = Field(False, description="True for the row that sums every group beyond top.")


class SummarizeCommitmentDiscountsOutput(BaseModel):
    groupBy: list[str]
    data: list[DiscountRow] = Field(description="Groups per currency, largest sort first; then the Other row.")
    totals: list[DiscountRow] = Field(description="Per BillingCurrency over every matching row.")
    groupCount: int = Field(description="Groups before top and before any cut.")
    truncated: Truncation | None = None
    dataLastUpdated: str | None
    dataCompleteness: Completeness
    appliedScope: AppliedScope | None = None


def _add(a: Decimal | None, b: Decimal | None) -> Decimal | None:
    return b if a is None else a if b is None else a + b


def _percent(part: Decimal | None, other: Decimal | None) -> Decimal | None:
    whole = _add(part, other)
    if part is None or whole is None or whole == 0:
        return None
    return (part * 100 / whole).quantize(CENT, ROUND_HALF_EVEN)


def figures(row: Row) -> Row:
    """A group's sums (``GROUP_SUMS``, rowCount) with the derived figures of the description."""
    out = dict(row)
    used, unused = row.get("usedCost"), row.get("unusedCost")
    out["committedCost"] = _add(used, unused)
    out["utilizationPercent"] = _percent(used, unused)
    out["quantityUtilizationPercent"] = _percent(row.get("usedQuantity"), row.get("unusedQuantity"))
    effective = row.get("effectiveCostUsed")
    for name, column in (("savings", "listCostUsed"), ("contractedSavings", "contractedCostUsed")):
        value = row.get(column)
        out[name] = None if value is None or effective is None else value - effective
    for column in ("listCostUsed", "contractedCostUsed", "effectiveCostUsed"):
        out.pop(column, None)
    return out


def merge(rows: list[Row], currency: Any, group_by: tuple[str, ...]) -> Row:
    """Several groups of one currency summed into one (the Other row, a total); quantities stay only
    while every group has the same unit."""
    out: Row = dict.fromkeys(group_by) | {"BillingCurrency": currency, "rowCount": 0}
    units = {r.get("CommitmentDiscountUnit") for r in rows if r.get("usedQuantity") or r.get("unusedQuantity")}
    for name in GROUP_SUMS:
        total: Decimal | None = None
        for row in rows:
            total = _add(total, row.get(name))
        out[name] = total
    if len(units) > 1 or any(r.get("mixedUnits") for r in rows):
        out["usedQuantity"] = out["unusedQuantity"] = None
        units = set()
    out["CommitmentDiscountUnit"] = next(iter(units)) if units else None
    out["rowCount"] = sum(int(r["rowCount"]) for r in rows)
    return out


def _sort_key(row: Row, sort: str) -> Decimal:
    value = figures(row).get(sort)
    return value if isinstance(value, Decimal) else Decimal("-Infinity")


def rank(groups: list[Row], query: DiscountQuery) -> tuple[list[Row], list[Row]]:
    """Top groups per currency (then Other), and per-currency totals, all with their figures."""
    with wire.exact():
        by_currency: dict[Any, list[Row]] = {}
        for group in groups:
            by_currency.setdefault(group["BillingCurrency"], []).append(group)
        data: list[Row] = []
        totals: list[Row] = []
        keep = query.top if query.top is not None else query.max_groups
        for currency in sorted(by_currency, key=lambda c: (c is None, str(c))):
            ordered = sorted(by_currency[currency], key=lambda r: _sort_key(r, query.sort), reverse=True)
            data += [figures(r) | {"other": False} for r in ordered[:keep]]
            if query.top is not None and len(ordered) > keep:
                data.append(figures(merge(ordered[keep:], currency, query.group_by)) | {"other": True})
            totals.append(figures(merge(ordered, currency, query.group_by)))
        return [_clean(r) for r in data], [_clean(t, total=True) for t in totals]


def _clean(row: Row, total: bool = False) -> Row:
    row.pop("mixedUnits", None)
    if total:
        for key in (*DIMENSIONS, "CommitmentDiscountName"):
            row.pop(key, None)
    return row


async def summarize_commitment_discounts(
    args: SummarizeCommitmentDiscountsInput, ctx: ToolContext
) -> SummarizeCommitmentDiscountsOutput:
    filters = args.cost_filters(ctx.scope)
    query = DiscountQuery(tuple(args.groupBy), args.top, args.sort, ctx.limits.max_page_size)
    summary = await ctx.source.summarize_commitment_discounts(filters, query)
    shown = sum(1 for r in summary.rows if not r.get("other"))
    cut = None
    if args.top is None and shown < summary.group_count:
        cut = Truncation(
            rowsReturned=shown,
            rowsRequested=summary.group_count,
            reason=f"{summary.group_count} groups exceed the {ctx.limits.transport} limit of "
            f"{ctx.limits.max_page_size} per currency",
            howToGetTheRest="set top (the rest is summed in one Other row per currency) or narrow the filters",
        )
    return SummarizeCommitmentDiscountsOutput(
        groupBy=args.groupBy,
        data=[DiscountRow(**r) for r in summary.rows],
        totals=[DiscountRow(**t) for t in summary.totals],
        groupCount=summary.group_count,
        truncated=cut,
        **await freshness(ctx, summary.envelope, not summary.totals, lambda: ctx.source.completeness(filters)),
    )


SUMMARIZE = ToolSpec(
    name="summarizecommitmentdiscounts",
    title="Summarize FOCUS commitment discount utilization",
    description=DESCRIPTION,
    input_model=SummarizeCommitmentDiscountsInput,
    output_model=SummarizeCommitmentDiscountsOutput,
    handler=summarize_commitment_discounts,
    hints=READ_ONLY,
    rest=RestRoute("GET", "/commitment-discounts/summary"),
)
