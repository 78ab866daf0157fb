"""``exportcostandusage`` and ``getcostandusageexportstatus``: background exports and their jobs.

The handlers hand requests to the context's export service and put download links on what it answers:
links point at the REST facade's file route (``DOWNLOAD_PATH``) under the base the transport gave.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field

from tools import progress
from tools.catalog import Dataset, stored
from tools.context import ExportRequest, ToolContext
from tools.envelope import AppliedScope, applied_scope
from tools.filters import CostAndUsageFilters, ToolInput
from tools.records import columns_field, focus_version_field, version_of
from tools.spec import MONEY, Hints, RestRoute, ToolSpec

JobStatus = Literal["Pending", "Processing", "Complete", "Failed", "Expired"]
Format = Literal["csv", "parquet", "json"]
DOWNLOAD_PATH = "/cost-and-usage/export/{jobId}/files/{name}"
MEDIA_TYPES: dict[str, str] = {
    "csv": "text/csv",
    "parquet": "application/vnd.apache.parquet",
    "json": "application/x-ndjson",
}


class ExportCostAndUsageInput(CostAndUsageFilters):
    format: Annotated[
        Format,
        Field(description="csv (RFC 4180, header row), parquet (zstd) or json (JSON Lines: one record per line)."),
    ] = "csv"
    includeContractCommitments: Annotated[
        bool, Field(description="Also write the Contract Commitment dataset as a second file.")
    ] = False
    columns: columns_field(stored(Dataset.COST_AND_USAGE)) = None  # type: ignore[valid-type]
    focusVersion: focus_version_field() = None  # type: ignore[valid-type]


class GetExportStatusInput(ToolInput):
    jobId: Annotated[str, Field(min_length=1, max_length=200, description="The jobId exportcostandusage returned.")]
    waitSeconds: Annotated[
        int | None,
        Field(
            ge=0,
            le=60,
            description="Wait up to this many seconds (0-60) for the job to leave Pending/Processing; the answer "
            "comes as soon as it does. Over MCP, a request with a progressToken gets notifications/progress "
            "(rows written of rows expected) at least once a second while it waits.",
        ),
    ] = None


class ExportFile(BaseModel):
    dataset: Literal["CostAndUsage", "ContractCommitment"]
    name: str
    format: Format
    mediaType: str
    downloadUrl: str = Field("", description="Where to download the file (same credentials as the API).")
    recordCount: int
    bytes: int
    sha256: str


class ExportProgress(BaseModel):
    """How far a running job is: Cost and Usage rows written so far, of the rows the filters match."""

    rowsWritten: int
    rowsExpected: int | None = Field(None, description="null until the job has counted its rows.")


class ExportJob(BaseModel):
    jobId: str
    status: JobStatus
    format: Format
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
    progress: ExportProgress | None = Field(None, description="While Pending or Processing: rows written so far.")


def download_url(base: str, job_id: str, name: str) -> str:
    return base.rstrip("/") + DOWNLOAD_PATH.format(jobId=job_id, name=name)


def with_links(job: ExportJob, base: str) -> ExportJob:
    """The job with each file's download link, and the Cost and Usage file's as ``downloadUrl``."""
    files = [f.model_copy(update={"downloadUrl": download_url(base, job.jobId, f.name)}) for f in job.files]
    main = next((f for f in files if f.dataset == "CostAndUsage"), None)
    complete = job.status == "Complete"
    return job.model_copy(update={"files": files, "downloadUrl": main.downloadUrl if main and complete else None})


async def export_cost_and_usage(args: ExportCostAndUsageInput, ctx: ToolContext) -> ExportJob:
    filters = args.cost_filters(ctx.scope)
    request = args.model_dump(exclude_none=True) | {"appliedScope": applied_scope(ctx).model_dump()}
    job = await ctx.exports.submit(
        ExportRequest(
            filters=filters,
            format=args.format,
            include_contract_commitments=args.includeContractCommitments,
            columns=tuple(args.columns) if args.columns else None,
            focus_version=version_of(args.focusVersion),
            owner=ctx.principal,
            request=request,
            idempotency_key=ctx.idempotency_key,
        )
    )
    return with_links(job, ctx.download_base)


async def get_export_status(args: GetExportStatusInput, ctx: ToolContext) -> ExportJob:
    if args.waitSeconds:
        job = await ctx.exports.wait(args.jobId, ctx.principal, float(args.waitSeconds), progress.current())
    else:
        job = await ctx.exports.status(args.jobId, ctx.principal)
    return with_links(job, ctx.download_base)


EXPORT = ToolSpec(
    name="exportcostandusage",
    title="Export FOCUS cost and usage data",
    description=(
        "Start a background export of the Cost and Usage rows matching the filters (the same filters as "
        "listcostandusage) to a file: csv, parquet or json (JSON Lines, one record per line). Returns a jobId "
        "at once; poll getcostandusageexportstatus with it until status is Complete (then use downloadUrl) or "
        "Failed (see error). includeContractCommitments adds the Contract Commitment dataset as a second file. "
        "focusVersion 1.4 writes both files in FOCUS 1.4's columns. " + MONEY
    ),
    input_model=ExportCostAndUsageInput,
    output_model=ExportJob,
    handler=export_cost_and_usage,
    hints=Hints(read_only=False, destructive=False, idempotent=False),
    rest=RestRoute("POST", "/cost-and-usage/export", success_status=202),
)

STATUS = ToolSpec(
    name="getcostandusageexportstatus",
    title="Get cost and usage export status",
    description=(
        "Get the status of an export started with exportcostandusage: Pending, Processing, Complete, Failed or "
        "Expired, with recordCount, bytes, sha256 and downloadUrl (per file in files[]) once Complete, and the "
        "reason in error when it Failed; while it runs, progress has rowsWritten of rowsExpected. Pass "
        "waitSeconds (up to 60) to wait for the job to finish in this call instead of polling in a loop: the "
        "answer comes as soon as it leaves Pending/Processing (MCP clients that send a progressToken get "
        "notifications/progress while it waits)."
    ),
    input_model=GetExportStatusInput,
    output_model=ExportJob,
    handler=get_export_status,
    hints=Hints(read_only=True, destructive=False, idempotent=True),
    rest=RestRoute("GET", "/cost-and-usage/export/{jobId}"),
)
