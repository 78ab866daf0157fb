"""``summarizecostandusage`` and ``listcostandusagevalues``: answers in one call instead of dozens of pages.

Both take the Cost and Usage filters. Grouping dimensions and metrics are whitelisted here (the SQL layer
only ever sees these names); money is always grouped by BillingCurrency, so no total crosses currencies.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, field_validator, model_validator

from tools import wire
from tools.context import ToolContext
from tools.envelope import (
    COMPLETENESS_RULE_HELP,
    PAGE_SIZE_HELP,
    PAGE_TOKEN_HELP,
    AppliedScope,
    Truncation,
    freshness,
    list_page,
)
from tools.filters import CostAndUsageFilters
from tools.records import split_list
from tools.source import Completeness, CompletenessRule, SummaryQuery, ValuesQuery
from tools.spec import MONEY, READ_ONLY, RestRoute, ToolSpec

DIMENSIONS = (
    "ServiceProviderName",
    "ServiceName",
    "ServiceCategory",
    "ServiceSubcategory",
    "RegionId",
    "SubAccountId",
    "BillingAccountId",
    "ChargeCategory",
    "PricingCategory",
    "ResourceType",
    "CommitmentDiscountStatus",
    "ConsumedUnit",
    "PricingUnit",
)
TIME_BUCKETS = ("day", "month", "billingPeriod")
MONEY_METRICS = ("BilledCost", "EffectiveCost", "ListCost", "ContractedCost")
QUANTITY_UNITS = {"ConsumedQuantity": "ConsumedUnit", "PricingQuantity": "PricingUnit"}
METRICS = MONEY_METRICS + tuple(QUANTITY_UNITS)
VALUE_COLUMNS = (*DIMENSIONS, "BillingCurrency", "ResourceId", "SkuId", "InvoiceIssuerName", "HostProviderName")
TAG_PREFIX = "tag:"


def is_tag(dimension: str) -> bool:
    return dimension.startswith(TAG_PREFIX) and len(dimension) > len(TAG_PREFIX)


class SummarizeCostAndUsageInput(CostAndUsageFilters):
    groupBy: Annotated[
        list[str],
        Field(
            default_factory=list,
            max_length=3,
            description=(
                "Up to 3 of: " + ", ".join(DIMENSIONS) + ", tag:KEY (a Tags key), or a time bucket on "
                "ChargePeriodStart: day (YYYY-MM-DD), month (YYYY-MM), billingPeriod (BillingPeriodStart). "
                "BillingCurrency is always added. Comma-separated in a REST query."
            ),
        ),
    ]
    metrics: Annotated[
        list[str],
        Field(
            default_factory=lambda: ["EffectiveCost"],
            min_length=1,
            description=(
                "Sums to compute: BilledCost, EffectiveCost, ListCost, ContractedCost (money, in BillingCurrency), "
                "ConsumedQuantity (needs ConsumedUnit in groupBy), PricingQuantity (needs PricingUnit in groupBy)."
            ),
        ),
    ]
    savings: Annotated[
        bool, Field(description="Add Savings = ListCost - EffectiveCost per group (what discounts saved).")
    ] = False
    top: Annotated[
        int | None,
        Field(ge=1, le=1000, description="Keep the N largest groups per currency; the rest become one Other row."),
    ] = None
    sort: Annotated[
        str | None,
        Field(
            description="A metric (or Savings) to order by, largest first; prefix + for smallest first. "
            "Default: the first metric."
        ),
    ] = None

    @field_validator("groupBy", "metrics", mode="before")
    @classmethod
    def _split_lists(cls, value: Any) -> Any:
        return split_list(value)

    @field_validator("groupBy")
    @classmethod
    def _dimensions(cls, value: list[str]) -> list[str]:
        for dim in value:
            if dim not in DIMENSIONS and dim not in TIME_BUCKETS and not is_tag(dim):
                raise ValueError(
                    f"groupBy {dim!r} is not supported; use {', '.join(DIMENSIONS)}, tag:KEY, day, month or "
                    "billingPeriod"
                )
        if len(set(value)) != len(value):
            raise ValueError("groupBy repeats a dimension")
        if sum(d in TIME_BUCKETS for d in value) > 1:
            raise ValueError("groupBy takes at most one time bucket (day, month or billingPeriod)")
        return value

    @field_validator("metrics")
    @classmethod
    def _metrics(cls, value: list[str]) -> list[str]:
        for metric in value:
            if metric not in METRICS:
                raise ValueError(f"metric {metric!r} is not supported; use {', '.join(METRICS)}")
        return list(dict.fromkeys(value))

    @model_validator(mode="after")
    def _units_and_sort(self) -> SummarizeCostAndUsageInput:
        for metric, unit in QUANTITY_UNITS.items():
            if metric in self.metrics and unit not in self.groupBy:
                raise ValueError(
                    f"{metric} is summed per unit: add {unit} to groupBy (quantities of different units never add up)"
                )
        if self.savings:
            self.metrics = list(dict.fromkeys([*self.metrics, "ListCost", "EffectiveCost"]))
        if self.sort is None:
            self.sort = self.metrics[0]
        key = self.sort.lstrip("+-")
        if key not in self.metrics and not (key == "Savings" and self.savings):
            raise ValueError(f"sort {self.sort!r} must name one of the requested metrics ({', '.join(self.metrics)})")
        return self


class SummaryRow(BaseModel):
    """One group: its dimension values, BillingCurrency, the metric sums and the rows behind them."""

    model_config = {"extra": "allow"}
    BillingCurrency: str | None
    rowCount: int
    other: bool = Field(False, description="True for the row that sums every group beyond top.")


class SummarizeCostAndUsageOutput(BaseModel):
    groupBy: list[str]
    metrics: list[str]
    data: list[SummaryRow] = Field(description="Groups, per currency, largest first; metrics as exact decimals.")
    totals: list[SummaryRow] = Field(description="Grand totals per BillingCurrency over every matching row.")
    groupCount: int = Field(description="Groups before top and before any cut.")
    truncated: Truncation | None = None
    dataLastUpdated: str | None
    dataCompleteness: Completeness
    dataCompletenessRule: CompletenessRule | None = Field(None, description=COMPLETENESS_RULE_HELP)
    appliedScope: AppliedScope | None = None


class ListCostAndUsageValuesInput(CostAndUsageFilters):
    column: Annotated[
        str,
        Field(description="The column whose values to list: " + ", ".join(VALUE_COLUMNS) + ", or tag:KEY."),
    ]
    search: Annotated[
        str | None, Field(max_length=200, description="Keep values containing this text (case-insensitive).")
    ] = None
    searchMode: Annotated[Literal["contains", "prefix"], Field(description="contains (default) or prefix.")] = (
        "contains"
    )
    pageSize: Annotated[int | None, Field(ge=1, description=PAGE_SIZE_HELP)] = None
    pageToken: Annotated[str | None, Field(description=PAGE_TOKEN_HELP)] = None

    @field_validator("column")
    @classmethod
    def _column(cls, value: str) -> str:
        if value not in VALUE_COLUMNS and not is_tag(value):
            raise ValueError(f"column {value!r} is not supported; use {', '.join(VALUE_COLUMNS)} or tag:KEY")
        return value


class CurrencyAmount(BaseModel):
    BillingCurrency: str | None
    EffectiveCost: Any = Field(description="Exact decimal sum of EffectiveCost in this currency.")


class ValueCount(BaseModel):
    value: str
    rowCount: int
    effectiveCost: list[CurrencyAmount]


class ListCostAndUsageValuesOutput(BaseModel):
    column: str
    data: list[ValueCount] = Field(description="Distinct values, most rows first.")
    nextPageToken: str | None
    totalRecords: int = Field(description="Distinct values matching, across all pages.")
    dataLastUpdated: str | None
    dataCompleteness: Completeness
    appliedScope: AppliedScope | None = None
    truncated: Truncation | None = None


def _with_savings(row: dict[str, Any], savings: bool) -> dict[str, Any]:
    if savings:
        with wire.exact():
            row["Savings"] = (row.get("ListCost") or Decimal(0)) - (row.get("EffectiveCost") or Decimal(0))
    return row


async def summarize_cost_and_usage(args: SummarizeCostAndUsageInput, ctx: ToolContext) -> SummarizeCostAndUsageOutput:
    filters = args.cost_filters(ctx.scope)
    query = SummaryQuery(
        group_by=tuple(args.groupBy),
        metrics=tuple(args.metrics),
        savings=args.savings,
        top=args.top,
        sort=(args.sort or args.metrics[0]).lstrip("+-"),
        descending=not (args.sort or "").startswith("+"),
        max_groups=ctx.limits.max_page_size,
    )
    summary = await ctx.source.summarize(filters, query)
    shown = sum(1 for r in summary.rows if not r["other"])
    cut = None
    if args.top is None and shown < summary.group_count:
        cut = Truncation(
            rowsReturned=shown,
            rowsRequested=summary.group_count,
            reason=f"{summary.group_count} groups exceed the {ctx.limits.transport} limit of "
            f"{ctx.limits.max_page_size} per currency",
            howToGetTheRest="set top (the rest is summed in one Other row per currency), narrow the filters, or "
            "group by fewer dimensions",
        )
    return SummarizeCostAndUsageOutput(
        groupBy=args.groupBy,
        metrics=[*args.metrics, *(["Savings"] if args.savings else [])],
        data=[SummaryRow(**_with_savings(r, args.savings)) for r in summary.rows],
        totals=[SummaryRow(**_with_savings(t, args.savings)) for t in summary.totals],
        groupCount=summary.group_count,
        truncated=cut,
        **await freshness(ctx, summary.envelope, not summary.totals, lambda: ctx.source.completeness_verdict(filters)),
    )


async def list_cost_and_usage_values(
    args: ListCostAndUsageValuesInput, ctx: ToolContext
) -> ListCostAndUsageValuesOutput:
    filters = args.cost_filters(ctx.scope)
    query = ValuesQuery(column=args.column, search=args.search, prefix=args.searchMode == "prefix")
    envelope = await list_page(
        ctx,
        tool="listcostandusagevalues",
        walk=filters.as_params() | {"column": args.column, "search": args.search, "mode": args.searchMode},
        page_token=args.pageToken,
        requested_size=args.pageSize,
        fetch=lambda cursor, size: ctx.source.distinct_values(filters, query, cursor, size),
        completeness=lambda: ctx.source.completeness(filters),
    )
    return ListCostAndUsageValuesOutput(column=args.column, **envelope)


SUMMARIZE = ToolSpec(
    name="summarizecostandusage",
    title="Summarize FOCUS cost and usage",
    description=(
        "Answer 'how much, by what' in one call: sums of BilledCost, EffectiveCost, ListCost or ContractedCost "
        "(and ConsumedQuantity/PricingQuantity per unit) grouped by up to 3 dimensions (e.g. ServiceName, "
        "SubAccountId, RegionId, ChargeCategory, tag:team) and optionally a time bucket on ChargePeriodStart "
        "(day, month) or billingPeriod, over the same filters as listcostandusage. BillingCurrency is always a "
        "group: amounts in different currencies are never added; totals are per currency. top=N keeps the N "
        "largest groups per currency and sums the rest in one row marked other=true; savings=true adds "
        "Savings = ListCost - EffectiveCost. Each group says how many rows it sums (rowCount). Use "
        "listcostandusagevalues to find valid values for filters, then listcostandusage for the rows. " + MONEY
    ),
    input_model=SummarizeCostAndUsageInput,
    output_model=SummarizeCostAndUsageOutput,
    handler=summarize_cost_and_usage,
    hints=READ_ONLY,
    rest=RestRoute("GET", "/cost-and-usage/summary"),
)

VALUES = ToolSpec(
    name="listcostandusagevalues",
    title="List values of a FOCUS column",
    description=(
        "List the distinct values of one column (ServiceName, ServiceProviderName, RegionId, SubAccountId, "
        "ChargeCategory, BillingCurrency, ... or tag:KEY) under the same filters as listcostandusage, most "
        "rows first, each with its row count and EffectiveCost per BillingCurrency. search keeps values "
        "containing the text (case-insensitive; searchMode=prefix for prefixes). Use it to find the exact, "
        "case-sensitive value to filter on (e.g. 'AmazonEC2' vs 'Virtual Machines') before calling "
        "listcostandusage or summarizecostandusage. Paginated like listcostandusage."
    ),
    input_model=ListCostAndUsageValuesInput,
    output_model=ListCostAndUsageValuesOutput,
    handler=list_cost_and_usage_values,
    hints=READ_ONLY,
    rest=RestRoute("GET", "/cost-and-usage/values"),
)
