"""Models of the two tools beyond the seed: ``summarizecostandusage`` and ``listcostandusagevalues``.

Both take the list filters. Grouping dimensions and metrics are whitelisted here (the SQL layer only
ever sees these names); money is always grouped by BillingCurrency, so no total crosses currencies.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, field_validator, model_validator

from tools.models import (
    PAGE_SIZE_HELP,
    PAGE_TOKEN_HELP,
    AppliedScope,
    Completeness,
    CostAndUsageFilters,
    Truncation,
)

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


def _split(value: Any) -> Any:
    """Lists arrive as JSON arrays (MCP, POST) or comma-separated strings (REST query)."""
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


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
        return _split(value)

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
