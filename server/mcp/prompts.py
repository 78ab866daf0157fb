"""MCP prompts for common FinOps questions: they tell the model which tools to call, in what order.

Each names the one-call summaries first (summarizecostandusage, summarizecommitmentdiscounts,
summarizecontractcommitments) and the row listings only to drill into a number.
"""

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
        f"5. Call summarizecommitmentdiscounts with the same billing period filters{scope} and top 10: "
        "utilizationPercent and unusedCost per commitment discount show what was paid for and not used.\n"
        "6. Call summarizecontractcommitments with asOf set to the end of the month (" + end + ") to see how "
        "the month moved each contract commitment (status, percentConsumed, projectedShortfall).\n"
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
        "Check how well commitment discounts (savings plans, reservations, committed use discounts) and "
        "contract commitments are used.\n"
        f"1. Call summarizecommitmentdiscounts{account} (groupBy CommitmentDiscountId, the default) for the "
        "current billing period: per commitment discount it gives usedCost, unusedCost, utilizationPercent = "
        "100 * used / (used + unused), unused hours (unusedQuantity in CommitmentDiscountUnit), savings = "
        "ListCost - EffectiveCost of the covered usage, and the purchases.\n"
        '2. Call it again with groupBy ["CommitmentDiscountType", "month"] to see the trend by type.\n'
        f"3. Call summarizecontractcommitments{account} for the contract commitments those discounts and "
        "negotiated contracts belong to: status, percentConsumed and projectedShortfall.\n"
        '4. To see where unused commitment sits, call summarizecostandusage with groupBy ["ServiceName", '
        '"CommitmentDiscountStatus"], top 10, and commitmentDiscountId set to the least used one.\n'
        "Report utilization and the unused amount per currency exactly as returned (never add currencies), the "
        "least used commitments first."
    )


def commitment_burndown_review(
    billing_account_id: Annotated[
        str | None, Field(description="Optional BillingAccountId to limit the review to its commitments.")
    ] = None,
    as_of: Annotated[
        str | None, Field(description="Optional instant to review at, e.g. 2026-06-01T00:00:00Z (default: now).")
    ] = None,
) -> str:
    args = [f'billingAccountId "{billing_account_id}"'] if billing_account_id else []
    args += [f'asOf "{as_of}"'] if as_of else []
    given = f" with {' and '.join(args)}" if args else ""
    return (
        "Review the burn-down of contract commitments (EDP, MACC, committed spend, usage minimums) and say which "
        "will end short, by how much, and what to do.\n"
        f"1. Call summarizecontractcommitments{given}. Each row has committed, appliedToDate, remaining, "
        "percentConsumed vs percentElapsed, dailyRunRate over the last runRateDays (30), projectedAtPeriodEnd, "
        "projectedShortfall (what a true-up would owe) and a status (not started, exhausted, expired, at risk, "
        "on track; the rules are in the tool description).\n"
        "2. Call it again with runRateDays 7 to see whether the recent run rate changes the projection.\n"
        "3. For each commitment at risk, find what consumes it: call summarizecostandusage with groupBy "
        '["ServiceName", "SubAccountId"] and top 10 over the commitment period.\n'
        "4. Check notCounted (consumption in another currency or unit, never converted) and, for a token limited "
        "to some accounts, consumptionOutsideScope and scopeNote.\n"
        "Report per commitment, in its own currency or unit exactly as returned: status, percentConsumed against "
        "percentElapsed, projectedShortfall or surplus, and the ContractCommitmentPeriodEnd by which it is owed."
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
    Prompt.from_function(
        commitment_burndown_review,
        name="commitment-burndown-review",
        title="Commitment burn-down review",
        description="Which contract commitments will end short of what was committed, by how much, and why.",
    ),
)
