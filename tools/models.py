"""Input and output models of the five tools: the contract both adapters publish.

Parameter names are the seed's (camelCase) and are never renamed; new ones may be added. Unknown
parameters are refused (``extra="forbid"``) so a typo is an error, not a silently ignored filter.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, create_model, field_validator

from tools.catalog import Catalog, DataType, contract_commitment, cost_and_usage

_DATE_HELP = "RFC 3339 date-time in UTC such as 2026-05-01T00:00:00Z (a plain date 2026-05-01 means midnight UTC)"


def parse_instant(value: str, field: str) -> datetime:
    """An RFC 3339 date-time (or plain date) as a naive UTC datetime; ValueError says how to fix it."""
    text = value.strip()
    try:
        if len(text) == 10:
            return datetime.strptime(text, "%Y-%m-%d")
        parsed = datetime.fromisoformat(text.replace("z", "Z").replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"{field} {value!r} is not a date-time; use {_DATE_HELP}") from None
    if parsed.tzinfo is None:
        raise ValueError(f"{field} {value!r} has no time zone; use {_DATE_HELP}")
    return parsed.astimezone(UTC).replace(tzinfo=None)


def format_instant(value: datetime | None) -> str | None:
    return None if value is None else value.strftime("%Y-%m-%dT%H:%M:%SZ")


class _Input(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


def _allowed(column: str) -> tuple[str, ...]:
    values = cost_and_usage()[column].allowed_values
    assert values is not None
    return values


class CostAndUsageFilters(_Input):
    """The list filters of the seed; exact, case-sensitive matches unless said otherwise."""

    billingPeriodStart: Annotated[
        str | None,
        Field(description=f"Rows whose BillingPeriodStart is at or after this instant (inclusive). {_DATE_HELP}."),
    ] = None
    billingPeriodEnd: Annotated[
        str | None,
        Field(description=f"Rows whose BillingPeriodStart is before this instant (exclusive). {_DATE_HELP}."),
    ] = None
    chargeCategory: Annotated[
        str | None,
        Field(description="ChargeCategory equals this: one of Usage, Purchase, Tax, Credit, Adjustment."),
    ] = None
    providerName: Annotated[
        str | None,
        Field(
            description="ServiceProviderName equals this (the entity that made the service available, e.g. AWS, "
            "Microsoft, Google Cloud). FOCUS 1.3 replaced the deprecated ProviderName with ServiceProviderName."
        ),
    ] = None
    serviceName: Annotated[str | None, Field(description="ServiceName equals this, e.g. AmazonEC2.")] = None
    serviceCategory: Annotated[
        str | None,
        Field(description="ServiceCategory equals this, e.g. Compute, Storage, Networking, Databases."),
    ] = None
    region: Annotated[str | None, Field(description="RegionId equals this, e.g. us-east-1.")] = None
    resourceId: Annotated[str | None, Field(description="ResourceId equals this (the provider's identifier).")] = None
    subAccountId: Annotated[str | None, Field(description="SubAccountId equals this.")] = None
    billingCurrency: Annotated[
        str | None, Field(description="BillingCurrency equals this ISO 4217 code, e.g. USD.")
    ] = None

    @field_validator("billingPeriodStart", "billingPeriodEnd")
    @classmethod
    def _instant(cls, value: str | None, info: Any) -> str | None:
        if value is not None:
            parse_instant(value, info.field_name)
        return value

    @field_validator("chargeCategory")
    @classmethod
    def _charge_category(cls, value: str | None) -> str | None:
        if value is not None and value not in _allowed("ChargeCategory"):
            raise ValueError(f"chargeCategory must be one of {', '.join(_allowed('ChargeCategory'))} (case-sensitive)")
        return value

    @field_validator("serviceCategory")
    @classmethod
    def _service_category(cls, value: str | None) -> str | None:
        if value is not None and value not in _allowed("ServiceCategory"):
            raise ValueError(f"serviceCategory must be one of {', '.join(_allowed('ServiceCategory'))}")
        return value

    def period(self) -> tuple[datetime | None, datetime | None]:
        start = parse_instant(self.billingPeriodStart, "billingPeriodStart") if self.billingPeriodStart else None
        end = parse_instant(self.billingPeriodEnd, "billingPeriodEnd") if self.billingPeriodEnd else None
        if start and end and end <= start:
            raise ValueError("billingPeriodEnd must be later than billingPeriodStart (start inclusive, end exclusive)")
        return start, end


PAGE_SIZE_HELP = (
    "Rows per page. Over REST the default is 1000 and the maximum 10000; over MCP the default is 100 and the "
    "maximum 1000. A larger value is refused, not clamped."
)
PAGE_TOKEN_HELP = "nextPageToken from the previous page; repeat the same filters (the token is bound to them)."  # noqa: S105


class ListCostAndUsageInput(CostAndUsageFilters):
    pageSize: Annotated[int | None, Field(ge=1, description=PAGE_SIZE_HELP)] = None
    pageToken: Annotated[str | None, Field(description=PAGE_TOKEN_HELP)] = None


class ExportCostAndUsageInput(CostAndUsageFilters):
    format: Annotated[
        Literal["csv", "parquet", "json"],
        Field(description="csv (RFC 4180, header row), parquet (zstd) or json (JSON Lines: one record per line)."),
    ] = "csv"
    includeContractCommitments: Annotated[
        bool, Field(description="Also write the Contract Commitment dataset as a second file.")
    ] = False


class GetExportStatusInput(_Input):
    jobId: Annotated[str, Field(min_length=1, max_length=200, description="The jobId exportcostandusage returned.")]


class ListContractCommitmentsInput(_Input):
    commitmentDiscountId: Annotated[
        str | None,
        Field(
            description="ContractCommitmentId equals this (the identifier of the commitment, e.g. a savings plan ARN)."
        ),
    ] = None
    billingAccountId: Annotated[
        str | None,
        Field(
            description="Commitments applied to or bought by this billing account's Cost and Usage rows "
            "(ContractApplied elements, or CommitmentDiscountId on its Purchase rows)."
        ),
    ] = None
    contractId: Annotated[str | None, Field(description="ContractId equals this.")] = None
    pageSize: Annotated[int | None, Field(ge=1, description=PAGE_SIZE_HELP)] = None
    pageToken: Annotated[str | None, Field(description=PAGE_TOKEN_HELP)] = None


class GetSchemaMetadataInput(_Input):
    pass


# -- records -----------------------------------------------------------------------------------------

_PY_TYPES: dict[DataType, Any] = {
    DataType.STRING: str | None,
    DataType.DECIMAL: Decimal | None,
    DataType.DATETIME: str | None,
    DataType.JSON: dict[str, Any] | None,
}


def _record_model(name: str, catalog: Catalog) -> type[BaseModel]:
    fields: dict[str, Any] = {}
    for column in catalog.columns:
        extra = " Deprecated in FOCUS 1.3." if column.deprecated else ""
        unit = " UTC, YYYY-MM-DDTHH:MM:SSZ." if column.data_type is DataType.DATETIME else ""
        fields[column.id] = (_PY_TYPES[column.data_type], Field(None, description=column.description + unit + extra))
    return create_model(name, __config__=ConfigDict(extra="allow"), **fields)


CostAndUsageRecord = _record_model("CostAndUsageRecord", cost_and_usage())
ContractCommitmentRecord = _record_model("ContractCommitmentRecord", contract_commitment())

Completeness = Literal["Complete", "Partial", "Empty"]
_COMPLETENESS_HELP = (
    "Complete: every billing period the answer covers had ended when its data was last loaded, so no more "
    "charges are expected for it. Partial: at least one covered period was still open. Empty: nothing matched."
)


class AppliedScope(BaseModel):
    """Which caller the answer was computed for, and the accounts it was limited to (null: all)."""

    principal: str
    billingAccountIds: list[str] | None = None
    subAccountIds: list[str] | None = None


class Truncation(BaseModel):
    """What a size budget cut from a page, and how to get the rest."""

    rowsReturned: int
    rowsRequested: int
    reason: str
    howToGetTheRest: str


class ListCostAndUsageOutput(BaseModel):
    data: list[CostAndUsageRecord]  # type: ignore[valid-type]
    nextPageToken: str | None = Field(description="null on the last page.")
    totalRecords: int = Field(description="Rows matching the filters, across all pages.")
    dataLastUpdated: str | None = Field(description="When the data last changed (UTC).")
    dataCompleteness: Completeness = Field(description=_COMPLETENESS_HELP)
    truncated: Truncation | None = None
    appliedScope: AppliedScope | None = None


class ListContractCommitmentsOutput(BaseModel):
    data: list[ContractCommitmentRecord]  # type: ignore[valid-type]
    nextPageToken: str | None = Field(description="null on the last page.")
    totalRecords: int
    dataLastUpdated: str | None
    dataCompleteness: Completeness = Field(description=_COMPLETENESS_HELP)
    truncated: Truncation | None = None
    appliedScope: AppliedScope | None = None


JobStatus = Literal["Pending", "Processing", "Complete", "Failed", "Expired"]


class ExportFile(BaseModel):
    dataset: Literal["CostAndUsage", "ContractCommitment"]
    name: str
    format: Literal["csv", "parquet", "json"]
    mediaType: str
    downloadUrl: str
    recordCount: int
    bytes: int
    sha256: str


class ExportJob(BaseModel):
    jobId: str
    status: JobStatus
    format: Literal["csv", "parquet", "json"]
    createdAt: str
    startedAt: str | None = None
    completedAt: str | None = None
    downloadUrl: str | None = Field(None, description="The Cost and Usage file, once Complete.")
    recordCount: int | None = None
    bytes: int | None = None
    sha256: str | None = None
    files: list[ExportFile] = Field(default_factory=list)
    error: str | None = None
    request: dict[str, Any] = Field(default_factory=dict, description="The filters and options of the export.")
    appliedScope: AppliedScope | None = None


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
