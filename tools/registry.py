"""The one registry of tool specs. The MCP and REST adapters both loop over ``TOOLS``.

Names, REST routes and hints follow the seed (``capability.yaml``); a contract test fails on drift.
Descriptions are written for a model: units, currencies, inclusive/exclusive dates, what to call next.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from tools import handlers, summaries
from tools.context import ToolContext
from tools.models import (
    ExportCostAndUsageInput,
    ExportJob,
    GetExportStatusInput,
    GetSchemaMetadataInput,
    ListContractCommitmentsInput,
    ListContractCommitmentsOutput,
    ListCostAndUsageInput,
    ListCostAndUsageOutput,
    SchemaMetadataOutput,
)
from tools.summary_models import (
    ListCostAndUsageValuesInput,
    ListCostAndUsageValuesOutput,
    SummarizeCostAndUsageInput,
    SummarizeCostAndUsageOutput,
)

Handler = Callable[[Any, ToolContext], Awaitable[BaseModel]]


@dataclass(frozen=True, slots=True)
class Hints:
    read_only: bool
    destructive: bool
    idempotent: bool
    open_world: bool = False


@dataclass(frozen=True, slots=True)
class RestRoute:
    method: str
    path: str
    success_status: int = 200


@dataclass(frozen=True, slots=True)
class ToolSpec:
    name: str
    title: str
    description: str
    input_model: type[BaseModel]
    output_model: type[BaseModel]
    handler: Handler
    hints: Hints
    rest: RestRoute


_MONEY = (
    "Money columns (BilledCost, EffectiveCost, ListCost, ContractedCost, unit prices) are exact decimals in the "
    "row's BillingCurrency; never add amounts of different currencies. Date/times are UTC, YYYY-MM-DDTHH:MM:SSZ; "
    "every *Start is inclusive and every *End exclusive."
)

SEED_TOOLS: tuple[ToolSpec, ...] = (
    ToolSpec(
        name="listcostandusage",
        title="List FOCUS cost and usage rows",
        description=(
            "List FOCUS 1.3 Cost and Usage rows (all 65 columns, exact FOCUS column IDs) matching the filters, one "
            "page at a time. billingPeriodStart (inclusive) and billingPeriodEnd (exclusive) filter on "
            "BillingPeriodStart; providerName matches ServiceProviderName; region matches RegionId; all matches are "
            "exact and case-sensitive. " + _MONEY + " The answer says totalRecords across all pages; when "
            "nextPageToken is not null, call again with the same filters and pageToken to get the next page. "
            "Call getschemametadata first to see which providers, currencies and billing periods are loaded; for "
            "whole result sets use exportcostandusage instead of walking many pages."
        ),
        input_model=ListCostAndUsageInput,
        output_model=ListCostAndUsageOutput,
        handler=handlers.list_cost_and_usage,
        hints=Hints(read_only=True, destructive=False, idempotent=True),
        rest=RestRoute("GET", "/cost-and-usage"),
    ),
    ToolSpec(
        name="exportcostandusage",
        title="Export FOCUS cost and usage data",
        description=(
            "Start a background export of the Cost and Usage rows matching the filters (the same filters as "
            "listcostandusage) to a file: csv, parquet or json (JSON Lines, one record per line). Returns a jobId "
            "at once; poll getcostandusageexportstatus with it until status is Complete (then use downloadUrl) or "
            "Failed (see error). includeContractCommitments adds the Contract Commitment dataset as a second file. "
            + _MONEY
        ),
        input_model=ExportCostAndUsageInput,
        output_model=ExportJob,
        handler=handlers.export_cost_and_usage,
        hints=Hints(read_only=False, destructive=False, idempotent=False),
        rest=RestRoute("POST", "/cost-and-usage/export", success_status=202),
    ),
    ToolSpec(
        name="getcostandusageexportstatus",
        title="Get cost and usage export status",
        description=(
            "Get the status of an export started with exportcostandusage: Pending, Processing, Complete, Failed or "
            "Expired, with recordCount, bytes, sha256 and downloadUrl (per file in files[]) once Complete, and the "
            "reason in error when it Failed. Poll every few seconds; an export of millions of rows takes seconds "
            "to minutes."
        ),
        input_model=GetExportStatusInput,
        output_model=ExportJob,
        handler=handlers.get_export_status,
        hints=Hints(read_only=True, destructive=False, idempotent=True),
        rest=RestRoute("GET", "/cost-and-usage/export/{jobId}"),
    ),
    ToolSpec(
        name="listcontractcommitments",
        title="List FOCUS contract commitments",
        description=(
            "List FOCUS 1.3 Contract Commitment rows (13 columns: the contract, the commitment's category Spend or "
            "Usage, its cost in BillingCurrency or quantity in ContractCommitmentUnit, and its period, start "
            "inclusive, end exclusive). commitmentDiscountId matches ContractCommitmentId; billingAccountId keeps "
            "commitments applied to or bought by that account's Cost and Usage rows; contractId matches ContractId. "
            "Paginated like listcostandusage. To measure usage against a commitment, list Cost and Usage rows and "
            "sum the ContractApplied elements for its ContractCommitmentId."
        ),
        input_model=ListContractCommitmentsInput,
        output_model=ListContractCommitmentsOutput,
        handler=handlers.list_contract_commitments,
        hints=Hints(read_only=True, destructive=False, idempotent=True),
        rest=RestRoute("GET", "/contract-commitments"),
    ),
    ToolSpec(
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
        handler=handlers.get_schema_metadata,
        hints=Hints(read_only=True, destructive=False, idempotent=True),
        rest=RestRoute("GET", "/schema"),
    ),
)

# Beyond the seed: answers in one call instead of dozens of pages.
SUMMARY_TOOLS: tuple[ToolSpec, ...] = (
    ToolSpec(
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
            "listcostandusagevalues to find valid values for filters, then listcostandusage for the rows. " + _MONEY
        ),
        input_model=SummarizeCostAndUsageInput,
        output_model=SummarizeCostAndUsageOutput,
        handler=summaries.summarize_cost_and_usage,
        hints=Hints(read_only=True, destructive=False, idempotent=True),
        rest=RestRoute("GET", "/cost-and-usage/summary"),
    ),
    ToolSpec(
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
        handler=summaries.list_cost_and_usage_values,
        hints=Hints(read_only=True, destructive=False, idempotent=True),
        rest=RestRoute("GET", "/cost-and-usage/values"),
    ),
)

TOOLS = SEED_TOOLS + SUMMARY_TOOLS
BY_NAME = {spec.name: spec for spec in TOOLS}
