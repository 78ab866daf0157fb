"""MCP prompts for two common FinOps questions: they tell the model which tools to call, in what order."""

from __future__ import annotations

from typing import Annotated

from mcp.server.mcpserver.prompts import Prompt
from pydantic import Field


def monthly_cost_review(
    month: Annotated[str, Field(description="The month to review, YYYY-MM, e.g. 2026-05.")],
    provider: Annotated[str | None, Field(description="Optional ServiceProviderName, e.g. AWS.")] = None,
) -> str:
    year, mon = (int(x) for x in month.split("-"))
    start = f"{year:04d}-{mon:02d}-01T00:00:00Z"
    end = f"{year + (mon == 12):04d}-{mon % 12 + 1:02d}-01T00:00:00Z"
    scope = f' and providerName "{provider}"' if provider else ""
    return (
        f"Review cloud spend for {month}{scope} using the focus-api tools. Billing periods are "
        f"billingPeriodStart={start} (inclusive) to billingPeriodEnd={end} (exclusive).\n"
        "1. Call getschemametadata to confirm the period is loaded and see its currencies and whether it is "
        "complete (dataCompleteness).\n"
        f'2. Call summarizecostandusage with those billing period filters{scope}, groupBy ["ServiceName"], '
        'metrics ["EffectiveCost", "BilledCost"], top 10, savings true.\n'
        '3. Call it again with groupBy ["SubAccountId"] and top 10, and with groupBy ["ChargeCategory"] to '
        "separate usage, purchases, credits, tax and adjustments.\n"
        "4. For the previous month, repeat step 2 and compare the top services' EffectiveCost.\n"
        "Report amounts per BillingCurrency exactly as returned (never add different currencies), name the "
        "largest changes, and say if the month is still Partial."
    )


def commitment_utilization_check(
    billing_account_id: Annotated[
        str | None, Field(description="Optional BillingAccountId to limit the check to its commitments.")
    ] = None,
) -> str:
    account = f' with billingAccountId "{billing_account_id}"' if billing_account_id else ""
    return (
        "Check how well commitment discounts (savings plans, reservations) and contract commitments are used.\n"
        f"1. Call listcontractcommitments{account} to list the commitments: category Spend (ContractCommitmentCost "
        "in BillingCurrency) or Usage (ContractCommitmentQuantity in ContractCommitmentUnit) and their periods "
        "(start inclusive, end exclusive).\n"
        '2. Call summarizecostandusage with groupBy ["CommitmentDiscountStatus"] and metrics '
        '["EffectiveCost"] for the current billing period: Unused rows are commitment paid for but not used.\n'
        '3. Call summarizecostandusage with groupBy ["ServiceName", "CommitmentDiscountStatus"], top 10, to '
        "see where unused commitment sits.\n"
        "4. For a specific commitment, call listcostandusage and sum the ContractApplied elements whose "
        "ContractCommitmentId matches (AppliedCost for Spend, AppliedQuantity for Usage) and compare with the "
        "commitment.\n"
        "Report utilization = Used / (Used + Unused) EffectiveCost per currency, and the unused amount."
    )


PROMPTS = (
    Prompt.from_function(
        monthly_cost_review,
        name="monthly-cost-review",
        title="Monthly cost review",
        description="Review a month's spend: top services and accounts, charge categories, change vs last month.",
    ),
    Prompt.from_function(
        commitment_utilization_check,
        name="commitment-utilization-check",
        title="Commitment utilization check",
        description="How much of the commitment discounts and contract commitments is used, and where not.",
    ),
)
