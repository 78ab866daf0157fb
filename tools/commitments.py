"""``listcontractcommitments``: FOCUS 1.3 Contract Commitment rows, paginated like the Cost and Usage list."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, Field

from tools.catalog import Dataset, stored
from tools.context import ToolContext
from tools.envelope import COMPLETENESS_HELP, PAGE_SIZE_HELP, PAGE_TOKEN_HELP, AppliedScope, Truncation, list_page
from tools.filters import ToolInput
from tools.records import (
    ContractCommitmentRecord,
    RowFormat,
    columns_field,
    focus_version_field,
    row_format_field,
    shape_rows,
    version_of,
)
from tools.source import CommitmentFilters, Completeness
from tools.spec import READ_ONLY, RestRoute, ToolSpec


class ListContractCommitmentsInput(ToolInput):
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
    columns: columns_field(stored(Dataset.CONTRACT_COMMITMENT)) = None  # type: ignore[valid-type]
    focusVersion: focus_version_field() = None  # type: ignore[valid-type]
    rowFormat: row_format_field() = None  # type: ignore[valid-type]
    pageSize: Annotated[int | None, Field(ge=1, description=PAGE_SIZE_HELP)] = None
    pageToken: Annotated[str | None, Field(description=PAGE_TOKEN_HELP)] = None


class ListContractCommitmentsOutput(BaseModel):
    data: list[ContractCommitmentRecord | list[Any]]  # type: ignore[valid-type]
    nextPageToken: str | None = Field(description="null on the last page.")
    totalRecords: int
    dataLastUpdated: str | None
    dataCompleteness: Completeness = Field(description=COMPLETENESS_HELP)
    truncated: Truncation | None = None
    appliedScope: AppliedScope | None = None
    rowFormat: RowFormat = "objects"
    columns: list[str] | None = Field(None, description="With rowFormat arrays: the column of each position.")


async def _whole_dataset() -> Completeness:
    # Contract Commitment is not a time series: the loaded set is the whole dataset instance.
    return "Complete"


async def list_contract_commitments(
    args: ListContractCommitmentsInput, ctx: ToolContext
) -> ListContractCommitmentsOutput:
    filters = CommitmentFilters(
        contract_commitment_id=args.commitmentDiscountId,
        billing_account_id=args.billingAccountId,
        contract_id=args.contractId,
        scope=ctx.scope,
    )
    columns = tuple(args.columns) if args.columns else None
    version = version_of(args.focusVersion)
    envelope = await list_page(
        ctx,
        tool="listcontractcommitments",
        walk=filters.as_params() | {"focusVersion": version},
        page_token=args.pageToken,
        requested_size=args.pageSize,
        fetch=lambda cursor, size: ctx.source.list_contract_commitments(filters, cursor, size, columns, version),
        completeness=_whole_dataset,
    )
    return ListContractCommitmentsOutput.model_construct(
        **shape_rows(envelope, args.columns, args.rowFormat, ctx.limits.compact_rows)
    )


LIST = ToolSpec(
    name="listcontractcommitments",
    title="List FOCUS contract commitments",
    description=(
        "List FOCUS Contract Commitment rows (FOCUS 1.3's 13 columns: the contract, the commitment's category "
        "Spend or Usage, its cost in BillingCurrency or quantity in ContractCommitmentUnit, and its period, start "
        "inclusive, end exclusive; with focusVersion 1.4, all 30 columns of 1.4, e.g. lifecycle status, payment "
        "model, applicability). commitmentDiscountId matches ContractCommitmentId; billingAccountId keeps "
        "commitments applied to or bought by that account's Cost and Usage rows; contractId matches ContractId. "
        "Paginated like listcostandusage. To measure usage against a commitment, list Cost and Usage rows and "
        "sum the ContractApplied elements for its ContractCommitmentId."
    ),
    input_model=ListContractCommitmentsInput,
    output_model=ListContractCommitmentsOutput,
    handler=list_contract_commitments,
    hints=READ_ONLY,
    rest=RestRoute("GET", "/contract-commitments"),
)
