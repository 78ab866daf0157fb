"""``listcostandusage``: FOCUS 1.3 Cost and Usage rows matching the filters, one page at a time."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, Field

from tools.catalog import Dataset, stored
from tools.context import ToolContext
from tools.envelope import (
    COMPLETENESS_HELP,
    COMPLETENESS_RULE_HELP,
    PAGE_SIZE_HELP,
    PAGE_TOKEN_HELP,
    AppliedScope,
    Truncation,
    list_page,
)
from tools.filters import CostAndUsageFilters
from tools.records import (
    CostAndUsageRecord,
    RowFormat,
    columns_field,
    focus_version_field,
    row_format_field,
    shape_rows,
    version_of,
)
from tools.source import Completeness, CompletenessRule
from tools.spec import MONEY, READ_ONLY, RestRoute, ToolSpec


class ListCostAndUsageInput(CostAndUsageFilters):
    columns: columns_field(stored(Dataset.COST_AND_USAGE)) = None  # type: ignore[valid-type]
    focusVersion: focus_version_field() = None  # type: ignore[valid-type]
    rowFormat: row_format_field() = None  # type: ignore[valid-type]
    pageSize: Annotated[int | None, Field(ge=1, description=PAGE_SIZE_HELP)] = None
    pageToken: Annotated[str | None, Field(description=PAGE_TOKEN_HELP)] = None


class ListCostAndUsageOutput(BaseModel):
    data: list[CostAndUsageRecord | list[Any]]  # type: ignore[valid-type]
    nextPageToken: str | None = Field(description="null on the last page.")
    totalRecords: int = Field(description="Rows matching the filters, across all pages.")
    dataLastUpdated: str | None = Field(description="When the data last changed (UTC).")
    dataCompleteness: Completeness = Field(description=COMPLETENESS_HELP)
    dataCompletenessRule: CompletenessRule | None = Field(None, description=COMPLETENESS_RULE_HELP)
    truncated: Truncation | None = None
    appliedScope: AppliedScope | None = None
    rowFormat: RowFormat = "objects"
    columns: list[str] | None = Field(None, description="With rowFormat arrays: the column of each position.")


async def list_cost_and_usage(args: ListCostAndUsageInput, ctx: ToolContext) -> ListCostAndUsageOutput:
    filters = args.cost_filters(ctx.scope)
    columns = tuple(args.columns) if args.columns else None
    version = version_of(args.focusVersion)
    envelope = await list_page(
        ctx,
        tool="listcostandusage",
        walk=filters.as_params() | {"focusVersion": version},
        page_token=args.pageToken,
        requested_size=args.pageSize,
        fetch=lambda cursor, size: ctx.source.list_cost_and_usage(filters, cursor, size, columns, version),
        completeness=lambda: ctx.source.completeness_verdict(filters),
    )
    return ListCostAndUsageOutput.model_construct(
        **shape_rows(envelope, args.columns, args.rowFormat, ctx.limits.compact_rows)
    )


LIST = ToolSpec(
    name="listcostandusage",
    title="List FOCUS cost and usage rows",
    description=(
        "List FOCUS Cost and Usage rows (all 65 columns of FOCUS 1.3, or of 1.4 with focusVersion 1.4; exact "
        "FOCUS column IDs, or just those named in columns) matching the filters, one page at a time. Ask for the "
        "columns you need (e.g. ChargePeriodStart, ServiceName, ChargeCategory, EffectiveCost, BillingCurrency): "
        "a full row is ~2 KB, mostly nulls. "
        "billingPeriodStart (inclusive) and billingPeriodEnd (exclusive) filter on BillingPeriodStart; "
        "chargePeriodStart / chargePeriodEnd on ChargePeriodStart (when the usage happened); providerName matches "
        "ServiceProviderName; region matches RegionId; tag takes KEY=VALUE; all matches are exact and "
        "case-sensitive. " + MONEY + " The answer says totalRecords across all pages; when "
        "nextPageToken is not null, call again with the same filters and pageToken to get the next page. "
        "Call getschemametadata first to see which providers, currencies and billing periods are loaded; for "
        "whole result sets use exportcostandusage instead of walking many pages."
    ),
    input_model=ListCostAndUsageInput,
    output_model=ListCostAndUsageOutput,
    handler=list_cost_and_usage,
    hints=READ_ONLY,
    rest=RestRoute("GET", "/cost-and-usage"),
)
