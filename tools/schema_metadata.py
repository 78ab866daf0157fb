"""``getschemametadata``: the FOCUS 1.3 columns of both datasets, the FOCUS metadata sections, what is loaded."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from tools import catalog
from tools.context import ToolContext
from tools.envelope import AppliedScope, applied_scope
from tools.filters import ToolInput
from tools.instants import format_instant
from tools.spec import READ_ONLY, RestRoute, ToolSpec

GENERATOR_NAME = "focus-api"
CU_INSTANCE_ID = "focus-api-cost-and-usage"
CC_INSTANCE_ID = "focus-api-contract-commitment"


class GetSchemaMetadataInput(ToolInput):
    pass


class ColumnInfo(BaseModel):
    dataset: Literal["CostAndUsage", "ContractCommitment"]
    name: str
    displayName: str
    dataType: str
    featureLevel: str
    allowsNulls: bool
    allowedValues: list[str] | None
    deprecated: bool
    description: str
    numericPrecision: int | None = None
    numberScale: int | None = None
    custom: bool = False


class DatasetInfo(BaseModel):
    id: Literal["CostAndUsage", "ContractCommitment"]
    name: str
    datasetInstanceId: str
    columnCount: int
    rowCount: int


class LoadedInfo(BaseModel):
    demo: bool
    costAndUsageRows: int
    contractCommitmentRows: int
    billingPeriods: list[dict[str, Any]]
    providers: list[str]
    currencies: list[str]
    dataLastUpdated: str | None
    origin: str = Field(description="Where the data comes from: the embedded store or an upstream FOCUS API.")
    loads: list[dict[str, Any]] = Field(
        default_factory=list,
        description="Load history, newest first: per file its rows, what was normalised (column, kind, count, first "
        "example) and rows quarantined. Empty for callers limited to some accounts.",
    )


class SchemaMetadataOutput(BaseModel):
    focusVersion: str
    dataGeneratorName: str
    dataGeneratorVersion: str
    columns: list[ColumnInfo]
    datasets: list[DatasetInfo]
    loaded: LoadedInfo
    metadata: dict[str, Any] = Field(
        description="FOCUS 1.3 metadata: DataGenerator, DatasetInstance, Recency and Schema sections."
    )
    appliedScope: AppliedScope | None = None


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


_INSTANCES = (
    {"DatasetInstanceId": CU_INSTANCE_ID, "DatasetInstanceName": "Cost and Usage", "FocusDatasetId": "CostAndUsage"},
    {
        "DatasetInstanceId": CC_INSTANCE_ID,
        "DatasetInstanceName": "Contract Commitment",
        "FocusDatasetId": "ContractCommitment",
    },
)


def _definition(c: ColumnInfo) -> dict[str, Any]:
    """A column as the FOCUS metadata Schema section's ColumnDefinition states it."""
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


def _focus_metadata(
    columns: list[ColumnInfo], created: str | None, version: str, periods: list[dict[str, Any]]
) -> dict[str, Any]:
    """The FOCUS 1.3 metadata sections (DataGenerator, DatasetInstance, Recency, Schema)."""
    instances = [dict(i) for i in _INSTANCES]
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
                "ColumnDefinition": [_definition(c) for c in columns if c.dataset == instance["FocusDatasetId"]],
            }
            for instance in instances
        ],
    }


async def get_schema_metadata(args: GetSchemaMetadataInput, ctx: ToolContext) -> SchemaMetadataOutput:
    stats = await ctx.source.stats(ctx.scope)
    state = await ctx.data_state()
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
        appliedScope=applied_scope(ctx),
    )


SPEC = ToolSpec(
    name="getschemametadata",
    title="Get FOCUS schema metadata",
    description=(
        "Describe the data this server holds: FOCUS version 1.3, every column of both datasets (data type, "
        "feature level, nullability, allowed values, deprecation), the FOCUS metadata sections (DataGenerator, "
        "DatasetInstance, Recency, Schema), and what is loaded: row counts, billing periods, providers and "
        "billing currencies (and whether it is demo data). Call this first to learn valid filter values."
    ),
    input_model=GetSchemaMetadataInput,
    output_model=SchemaMetadataOutput,
    handler=get_schema_metadata,
    hints=READ_ONLY,
    rest=RestRoute("GET", "/schema"),
)
