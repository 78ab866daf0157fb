"""The five tool handlers: ``async (validated input, ToolContext) -> output model``.

Transport-neutral: the MCP and REST adapters call exactly these, so the two can never disagree.
"""

from __future__ import annotations

from typing import Any

from tools import catalog, wire
from tools.context import ExportRequest, ToolContext
from tools.errors import InvalidArgument
from tools.models import (
    ColumnInfo,
    CostAndUsageFilters,
    DatasetInfo,
    ExportCostAndUsageInput,
    ExportJob,
    GetExportStatusInput,
    GetSchemaMetadataInput,
    ListContractCommitmentsInput,
    ListContractCommitmentsOutput,
    ListCostAndUsageInput,
    ListCostAndUsageOutput,
    LoadedInfo,
    SchemaMetadataOutput,
    Truncation,
    format_instant,
)
from tools.pagination import fingerprint
from tools.source import CommitmentFilters, CostFilters, Page, Row, Scope

GENERATOR_NAME = "focus-api"
CU_INSTANCE_ID = "focus-api-cost-and-usage"
CC_INSTANCE_ID = "focus-api-contract-commitment"


def cost_filters(args: CostAndUsageFilters, scope: Scope) -> CostFilters:
    try:
        start, end = args.period()
    except ValueError as exc:
        raise InvalidArgument(str(exc), {"field": "billingPeriodEnd"}) from None
    return CostFilters(
        billing_period_start=start,
        billing_period_end=end,
        charge_category=args.chargeCategory,
        service_provider_name=args.providerName,
        service_name=args.serviceName,
        service_category=args.serviceCategory,
        region_id=args.region,
        resource_id=args.resourceId,
        sub_account_id=args.subAccountId,
        billing_currency=args.billingCurrency,
        scope=scope,
    )


def page_size(requested: int | None, ctx: ToolContext) -> int:
    if requested is None:
        return ctx.limits.default_page_size
    if requested > ctx.limits.max_page_size:
        raise InvalidArgument(
            f"pageSize {requested} is above the {ctx.limits.transport} maximum of {ctx.limits.max_page_size}; "
            "ask for a smaller page and follow nextPageToken, or use exportcostandusage for the whole set",
            {"field": "pageSize", "maximum": ctx.limits.max_page_size},
        )
    return requested


def _fit_budget(page: Page, ctx: ToolContext, requested: int) -> tuple[list[Row], str | None, Truncation | None]:
    """Cut a page to the transport's size budget, saying what was cut and how to get the rest."""
    budget = ctx.limits.result_budget_bytes
    if budget is None or page.cursors is None or not page.rows:
        return page.rows, page.next_cursor, None
    used = 0
    keep = 0
    for row in page.rows:
        used += len(wire.dumps(row)) + 1
        if used > budget and keep > 0:
            break
        keep += 1
    if keep == len(page.rows):
        return page.rows, page.next_cursor, None
    note = Truncation(
        rowsReturned=keep,
        rowsRequested=requested,
        reason=f"the page was cut at {keep} rows to stay within this result's size budget of {budget} bytes",
        howToGetTheRest="call again with the same filters and pageToken=nextPageToken; nothing was skipped",
    )
    return page.rows[:keep], page.cursors[keep - 1], note


async def list_cost_and_usage(args: ListCostAndUsageInput, ctx: ToolContext) -> ListCostAndUsageOutput:
    size = page_size(args.pageSize, ctx)
    filters = cost_filters(args, ctx.scope)
    state = await ctx.source.data_state()
    walk = fingerprint("listcostandusage", filters.as_params(), ctx.scope.key())
    cursor = ctx.tokens.open(args.pageToken, fingerprint=walk, data_version=state.version) if args.pageToken else None
    page = await ctx.source.list_cost_and_usage(filters, cursor, size)
    rows, next_cursor, cut = _fit_budget(page, ctx, size)
    return ListCostAndUsageOutput.model_construct(
        data=rows,
        nextPageToken=(
            ctx.tokens.issue(fingerprint=walk, data_version=state.version, cursor=next_cursor) if next_cursor else None
        ),
        totalRecords=page.total,
        dataLastUpdated=format_instant(page.envelope.last_updated if page.envelope else state.last_updated),
        dataCompleteness=(
            page.envelope.completeness
            if page.envelope
            else "Empty"
            if page.total == 0
            else await ctx.source.completeness(filters)
        ),
        truncated=cut,
        appliedScope=ctx.applied_scope(),
    )


async def list_contract_commitments(
    args: ListContractCommitmentsInput, ctx: ToolContext
) -> ListContractCommitmentsOutput:
    size = page_size(args.pageSize, ctx)
    filters = CommitmentFilters(
        contract_commitment_id=args.commitmentDiscountId,
        billing_account_id=args.billingAccountId,
        contract_id=args.contractId,
        scope=ctx.scope,
    )
    state = await ctx.source.data_state()
    walk = fingerprint("listcontractcommitments", filters.as_params(), ctx.scope.key())
    cursor = ctx.tokens.open(args.pageToken, fingerprint=walk, data_version=state.version) if args.pageToken else None
    page = await ctx.source.list_contract_commitments(filters, cursor, size)
    rows, next_cursor, cut = _fit_budget(page, ctx, size)
    return ListContractCommitmentsOutput.model_construct(
        data=rows,
        nextPageToken=(
            ctx.tokens.issue(fingerprint=walk, data_version=state.version, cursor=next_cursor) if next_cursor else None
        ),
        totalRecords=page.total,
        dataLastUpdated=format_instant(page.envelope.last_updated if page.envelope else state.last_updated),
        # Contract Commitment is not a time series: the loaded set is the whole dataset instance.
        dataCompleteness=page.envelope.completeness if page.envelope else "Complete" if page.total else "Empty",
        truncated=cut,
        appliedScope=ctx.applied_scope(),
    )


async def export_cost_and_usage(
    args: ExportCostAndUsageInput, ctx: ToolContext, *, idempotency_key: str | None = None
) -> ExportJob:
    filters = cost_filters(args, ctx.scope)
    request = args.model_dump(exclude_none=True) | {"appliedScope": ctx.applied_scope().model_dump()}
    return await ctx.exports.submit(
        ExportRequest(
            filters=filters,
            format=args.format,
            include_contract_commitments=args.includeContractCommitments,
            owner=ctx.principal,
            request=request,
            idempotency_key=idempotency_key,
        )
    )


async def get_export_status(args: GetExportStatusInput, ctx: ToolContext) -> ExportJob:
    return await ctx.exports.status(args.jobId, ctx.principal)


def _columns(stats_custom: dict[str, list[str]]) -> list[ColumnInfo]:
    out = []
    for cat in (catalog.cost_and_usage(), catalog.contract_commitment()):
        dataset = cat.dataset.value
        for c in cat.columns:
            decimal = c.data_type is catalog.DataType.DECIMAL
            out.append(
                ColumnInfo(
                    dataset=dataset,
                    name=c.id,
                    displayName=c.display_name,
                    dataType=c.data_type.value,
                    featureLevel=c.feature_level,
                    allowsNulls=c.allows_nulls,
                    allowedValues=list(c.allowed_values) if c.allowed_values else None,
                    deprecated=c.deprecated,
                    description=c.description,
                    numericPrecision=38 if decimal else None,
                    numberScale=18 if decimal else None,
                )
            )
        for name in stats_custom.get(dataset, []):
            out.append(
                ColumnInfo(
                    dataset=dataset,
                    name=name,
                    displayName=name,
                    dataType="String",
                    featureLevel="Custom",
                    allowsNulls=True,
                    allowedValues=None,
                    deprecated=False,
                    description="Custom column carried over from the loaded files.",
                    custom=True,
                )
            )
    return out


def _focus_metadata(
    columns: list[ColumnInfo], created: str | None, version: str, periods: list[dict[str, Any]]
) -> dict[str, Any]:
    """The FOCUS 1.3 metadata sections (DataGenerator, DatasetInstance, Recency, Schema)."""

    def definition(c: ColumnInfo) -> dict[str, Any]:
        d: dict[str, Any] = {"ColumnName": c.name, "DataType": c.dataType}
        if c.numericPrecision is not None:
            d |= {"NumericPrecision": c.numericPrecision, "NumberScale": c.numberScale}
        if c.dataType == "String":
            d["StringEncoding"] = "UTF-8"
        if c.name == "Tags":
            d["ProviderTagPrefixes"] = []
        if c.deprecated:
            d["Deprecated"] = True
        return d

    instances = [
        {
            "DatasetInstanceId": CU_INSTANCE_ID,
            "DatasetInstanceName": "Cost and Usage",
            "FocusDatasetId": "CostAndUsage",
        },
        {
            "DatasetInstanceId": CC_INSTANCE_ID,
            "DatasetInstanceName": "Contract Commitment",
            "FocusDatasetId": "ContractCommitment",
        },
    ]
    sectors = [
        {
            "TimeSectorStart": p["billingPeriodStart"],
            "TimeSectorEnd": p["billingPeriodEnd"],
            "TimeSectorComplete": p.get("complete", False),
            "TimeSectorLastUpdated": created,
        }
        for p in periods
    ]
    return {
        "DataGenerator": {"DataGenerator": GENERATOR_NAME},
        "DatasetInstance": instances,
        "Recency": [
            {
                "DatasetInstanceId": CU_INSTANCE_ID,
                "DatasetInstanceLastUpdated": created,
                "RecencyLastUpdated": created,
                "TimeSectors": sectors,
            },
            {
                "DatasetInstanceId": CC_INSTANCE_ID,
                "DatasetInstanceComplete": True,
                "DatasetInstanceLastUpdated": created,
                "RecencyLastUpdated": created,
            },
        ],
        "Schema": [
            {
                "SchemaId": f"{instance['DatasetInstanceId']}-v{version}",
                "DatasetInstanceId": instance["DatasetInstanceId"],
                "FocusVersion": "1.3",
                "CreationDate": created,
                "DataGeneratorVersion": version,
                "ColumnDefinition": [definition(c) for c in columns if c.dataset == instance["FocusDatasetId"]],
            }
            for instance in instances
        ],
    }


async def get_schema_metadata(args: GetSchemaMetadataInput, ctx: ToolContext) -> SchemaMetadataOutput:
    stats = await ctx.source.stats(ctx.scope)
    state = await ctx.source.data_state()
    columns = _columns(stats.custom_columns)
    updated = format_instant(state.last_updated)
    cu_columns = sum(1 for c in columns if c.dataset == "CostAndUsage")
    return SchemaMetadataOutput(
        focusVersion="1.3",
        dataGeneratorName=GENERATOR_NAME,
        dataGeneratorVersion=ctx.generator_version,
        columns=columns,
        datasets=[
            DatasetInfo(
                id="CostAndUsage",
                name="Cost and Usage",
                datasetInstanceId=CU_INSTANCE_ID,
                columnCount=cu_columns,
                rowCount=stats.cost_and_usage_rows,
            ),
            DatasetInfo(
                id="ContractCommitment",
                name="Contract Commitment",
                datasetInstanceId=CC_INSTANCE_ID,
                columnCount=len(columns) - cu_columns,
                rowCount=stats.contract_commitment_rows,
            ),
        ],
        loaded=LoadedInfo(
            demo=stats.demo,
            costAndUsageRows=stats.cost_and_usage_rows,
            contractCommitmentRows=stats.contract_commitment_rows,
            billingPeriods=stats.billing_periods,
            providers=stats.providers,
            currencies=stats.currencies,
            dataLastUpdated=updated,
            origin=stats.origin + (" (demo data)" if stats.demo else ""),
            loads=stats.loads,
        ),
        metadata=_focus_metadata(columns, updated, ctx.generator_version, stats.billing_periods),
        appliedScope=ctx.applied_scope(),
    )
