"""``getschemametadata``: the columns of every dataset in one FOCUS version (1.3 by default, or 1.4), the
FOCUS metadata sections, and what is loaded (row counts, periods, the versions the rows came from)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from tools import catalog
from tools.context import ToolContext
from tools.envelope import AppliedScope, applied_scope
from tools.filters import ToolInput
from tools.instants import format_instant
from tools.records import focus_version_field, version_of
from tools.spec import READ_ONLY, RestRoute, ToolSpec

GENERATOR_NAME = "focus-api"
DatasetId = Literal["CostAndUsage", "ContractCommitment", "BillingPeriod", "InvoiceDetail"]
# How the 1.3 row shape fills the columns FOCUS 1.4 removed, for rows loaded from 1.4 files.
DERIVED = {
    "ProviderName": "for rows loaded from FOCUS 1.4 files: HostProviderName, or ServiceProviderName where no host "
    "is named",
    "PublisherName": "for rows loaded from FOCUS 1.4 files: ServiceProviderName",
}


def instance_id(dataset: catalog.Dataset) -> str:
    return "focus-api-" + dataset.label.lower().replace(" ", "-")


class GetSchemaMetadataInput(ToolInput):
    focusVersion: focus_version_field() = None  # type: ignore[valid-type]


class ColumnInfo(BaseModel):
    dataset: DatasetId
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
    introducedIn: str | None = None
    derivedFrom: str | None = Field(None, description="How the column is filled where its source file lacks it.")


class DatasetInfo(BaseModel):
    id: DatasetId
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
        description="Load history, newest first: per file its rows, FOCUS version, what was normalised (column, "
        "kind, count, first example), the columns it left out (absentColumns) and rows quarantined. Empty for "
        "callers limited to some accounts.",
    )
    costAndUsageRowsByFocusVersion: dict[str, int] = Field(
        default_factory=dict, description="Cost and Usage rows by the FOCUS version of the file they were loaded from."
    )
    billingPeriodRows: int = 0
    invoiceDetailRows: int = 0
    sync: dict[str, Any] | None = Field(
        None,
        description="Cloud export syncs (focus-api sync, serve --sync): lastAttempt, the latest sync (startedAt, "
        "finishedAt, ok, what it loaded, the first error as {code, message, details}), and per source the last "
        "sync that loaded something (lastLoadedAt, what it loaded). Null when nothing was ever synced, and for "
        "callers limited to some accounts.",
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


def datasets_of(version: str) -> list[catalog.Dataset]:
    return [d for d in catalog.Dataset if version in catalog.DATASET_VERSIONS[d]]


def _columns(stats_custom: dict[str, list[str]], version: str) -> list[ColumnInfo]:
    out = []
    for cat in (catalog.columns_at(d, version) for d in datasets_of(version)):
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
                    introducedIn=c.introduced_in,
                    derivedFrom=DERIVED.get(c.id) if cat.dataset is catalog.Dataset.COST_AND_USAGE else None,
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
    columns: list[ColumnInfo], created: str | None, version: str, periods: list[dict[str, Any]], focus_version: str
) -> dict[str, Any]:
    """The FOCUS metadata sections (DataGenerator, DatasetInstance, Recency, Schema) of ``focus_version``."""
    instances = [
        {"DatasetInstanceId": instance_id(d), "DatasetInstanceName": d.label, "FocusDatasetId": d.value}
        for d in datasets_of(focus_version)
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
                "DatasetInstanceId": instances[0]["DatasetInstanceId"],
                "DatasetInstanceLastUpdated": created,
                "RecencyLastUpdated": created,
                "TimeSectors": sectors,
            },
            *(
                {
                    "DatasetInstanceId": i["DatasetInstanceId"],
                    "DatasetInstanceComplete": True,
                    "DatasetInstanceLastUpdated": created,
                    "RecencyLastUpdated": created,
                }
                for i in instances[1:]
            ),
        ],
        "Schema": [
            {
                "SchemaId": f"{instance['DatasetInstanceId']}-v{version}",
                "DatasetInstanceId": instance["DatasetInstanceId"],
                "FocusVersion": focus_version,
                "CreationDate": created,
                "DataGeneratorVersion": version,
                "ColumnDefinition": [_definition(c) for c in columns if c.dataset == instance["FocusDatasetId"]],
            }
            for instance in instances
        ],
    }


async def get_schema_metadata(args: GetSchemaMetadataInput, ctx: ToolContext) -> SchemaMetadataOutput:
    version = version_of(args.focusVersion)
    stats = await ctx.source.stats(ctx.scope)
    state = await ctx.data_state()
    columns = _columns(stats.custom_columns, version)
    updated = format_instant(state.last_updated)
    rows = {
        catalog.Dataset.COST_AND_USAGE: stats.cost_and_usage_rows,
        catalog.Dataset.CONTRACT_COMMITMENT: stats.contract_commitment_rows,
        catalog.Dataset.BILLING_PERIOD: stats.billing_period_rows,
        catalog.Dataset.INVOICE_DETAIL: stats.invoice_detail_rows,
    }
    return SchemaMetadataOutput(
        focusVersion=version,
        dataGeneratorName=GENERATOR_NAME,
        dataGeneratorVersion=ctx.generator_version,
        columns=columns,
        datasets=[
            DatasetInfo(
                id=d.value,
                name=d.label,
                datasetInstanceId=instance_id(d),
                columnCount=sum(1 for c in columns if c.dataset == d.value),
                rowCount=rows[d],
            )
            for d in datasets_of(version)
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
            costAndUsageRowsByFocusVersion=stats.rows_by_focus_version,
            billingPeriodRows=stats.billing_period_rows,
            sync=stats.sync,
            invoiceDetailRows=stats.invoice_detail_rows,
        ),
        metadata=_focus_metadata(columns, updated, ctx.generator_version, stats.billing_periods, version),
        appliedScope=applied_scope(ctx),
    )


SPEC = ToolSpec(
    name="getschemametadata",
    title="Get FOCUS schema metadata",
    description=(
        "Describe the data this server holds: every column of every dataset of one FOCUS version (1.3 by default: "
        "Cost and Usage and Contract Commitment; focusVersion 1.4 adds Billing Period and Invoice Detail) with "
        "data type, feature level, nullability, allowed values, deprecation and how a column is derived where a "
        "file lacks it; the FOCUS metadata sections (DataGenerator, DatasetInstance, Recency, Schema); and what "
        "is loaded: row counts, billing periods, providers, billing currencies, Cost and Usage rows by the FOCUS "
        "version of their file, and the load history (whether it is demo data). Call this first to learn valid "
        "filter values."
    ),
    input_model=GetSchemaMetadataInput,
    output_model=SchemaMetadataOutput,
    handler=get_schema_metadata,
    hints=READ_ONLY,
    rest=RestRoute("GET", "/schema"),
)
