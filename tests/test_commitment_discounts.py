"""summarizecommitmentdiscounts: utilization, savings and purchases equal the test's own Decimal sums of the CSV
text, per group and currency, with top N + Other, under the list filters and scoped tokens."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from commitment_oracle import discount_figures, discount_groups
from conftest import AWS_13, SHARED, expected_rows, python_filter, read_csv, tool_context
from mcp import Client

from server.auth import Principal
from server.mcp.server import FocusMCPServer
from server.pipeline import Pipeline
from server.services import Services, running_services
from server.settings import Settings
from server.store.db import Store
from server.store.loader import load_files
from tools import discounts
from tools.discounts import SummarizeCommitmentDiscountsInput
from tools.source import Scope

BUNDLE_CU = SHARED / "data" / "focus-1.4-samples" / "aws" / "focus_1_3_cost_and_usage_aws.csv"
FIGURES = (
    "usedCost",
    "unusedCost",
    "committedCost",
    "utilizationPercent",
    "usedQuantity",
    "unusedQuantity",
    "quantityUtilizationPercent",
    "savings",
    "contractedSavings",
    "purchaseBilledCost",
    "rowCount",
)


@pytest.fixture(scope="module")
def bundle_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("bundle-discounts")
    store = Store(folder)
    try:
        assert load_files(store, [BUNDLE_CU]).ok
    finally:
        store.close()
    return folder


@pytest.fixture
async def bundle(bundle_dir: Path) -> AsyncIterator[Services]:
    async with running_services(Settings(data_dir=bundle_dir, token_secret="t"), load_demo=False) as svc:  # type: ignore[arg-type]
        yield svc


async def summarize(svc: Services, principal: Principal | None = None, **args: Any) -> Any:
    ctx = tool_context(svc) if principal is None else tool_context(svc, principal=principal)
    return await discounts.summarize_commitment_discounts(SummarizeCommitmentDiscountsInput.model_validate(args), ctx)


def got(answer: Any, group_by: list[str]) -> dict[tuple[Any, ...], dict[str, Any]]:
    return {
        (r.BillingCurrency, *(getattr(r, d, None) for d in group_by)): {k: getattr(r, k) for k in FIGURES}
        for r in answer.data
    }


CASES = [
    (["CommitmentDiscountId"], {}),
    (["CommitmentDiscountType", "month"], {}),
    (["CommitmentDiscountCategory", "ServiceProviderName"], {"billingAccountId": "100000000002"}),
    (["CommitmentDiscountId"], {"chargePeriodStart": "2026-05-01T12:00:00Z"}),
]


@pytest.mark.parametrize(("group_by", "filters"), CASES, ids=repr)
async def test_every_figure_equals_the_decimal_sums_of_the_multi_provider_samples(
    multi: Services, group_by: list[str], filters: dict[str, str]
) -> None:
    answer = await summarize(multi, groupBy=group_by, **filters)
    rows = python_filter(expected_rows(), filters)
    want = {k: discount_figures(g) for k, g in discount_groups(rows, group_by).items()}
    assert got(answer, group_by) == want
    assert answer.groupCount == len(want)


@pytest.mark.parametrize("group_by", [["CommitmentDiscountId"], ["CommitmentDiscountType"]], ids=repr)
async def test_every_figure_equals_the_decimal_sums_of_the_bundle(bundle: Services, group_by: list[str]) -> None:
    answer = await summarize(bundle, groupBy=group_by)
    want = {k: discount_figures(g) for k, g in discount_groups(read_csv(BUNDLE_CU), group_by).items()}
    assert got(answer, group_by) == want
    assert any(v["unusedQuantity"] for v in want.values()), "the bundle has unused hours"


async def test_top_keeps_the_largest_by_sort_and_other_sums_the_rest(bundle: Services) -> None:
    answer = await summarize(bundle, top=3, sort="unusedCost")
    groups = discount_groups(read_csv(BUNDLE_CU), ["CommitmentDiscountId"])
    ranked = sorted(groups.items(), key=lambda kv: discount_figures(kv[1])["unusedCost"] or -1, reverse=True)
    top = [r for r in answer.data if not r.other]
    (other,) = [r for r in answer.data if r.other]
    assert [r.CommitmentDiscountId for r in top] == [k[1] for k, _ in ranked[:3]]
    rest = [g for _, g in ranked[3:]]
    assert other.unusedCost == sum((g["unusedCost"] for g in rest), Decimal(0))
    assert other.usedCost == sum((g["usedCost"] for g in rest), Decimal(0))
    assert other.rowCount == sum(g["rows"] for g in rest)
    assert other.utilizationPercent == (
        other.usedCost * 100 / (other.usedCost + other.unusedCost)  # type: ignore[operator]
    ).quantize(Decimal("0.01"))
    (total,) = answer.totals
    assert total.rowCount == sum(g["rows"] for g in groups.values())
    assert total.savings == sum((g["list"] - g["effective"] for g in groups.values()), Decimal(0))


async def test_a_scoped_token_sees_only_its_accounts_discounts(multi: Services) -> None:
    scope = Scope(billing_account_ids=frozenset({"100000000001"}))
    answer = await summarize(multi, Principal("team", scope=scope))
    rows = [r for r in expected_rows() if r["BillingAccountId"] == "100000000001"]
    want = {k: discount_figures(g) for k, g in discount_groups(rows, ["CommitmentDiscountId"]).items()}
    assert got(answer, ["CommitmentDiscountId"]) == want
    others = {r["CommitmentDiscountId"] for r in expected_rows() if r["BillingAccountId"] != "100000000001"}
    assert not {r.CommitmentDiscountId for r in answer.data} & (others - {k[1] for k in want})
    assert answer.appliedScope.billingAccountIds == ["100000000001"]


async def test_the_mcp_text_is_a_table_with_totals_per_currency(multi: Services) -> None:
    async with Client(FocusMCPServer(Pipeline(multi))) as client:
        result = await client.call_tool("summarizecommitmentdiscounts", {"top": 2})
    assert not result.is_error and result.structured_content is not None
    text = result.content[0].text  # type: ignore[union-attr]
    assert text.startswith("| BillingCurrency | CommitmentDiscountId | usedCost | unusedCost | utilization % |")
    assert "| Other |" in text
    assert "Totals per currency (never added across currencies): USD: used " in text
    assert isinstance(result.structured_content["totals"][0]["usedCost"], str)


async def test_unknown_groups_are_refused(multi: Services) -> None:
    async with Client(FocusMCPServer(Pipeline(multi))) as client:
        result = await client.call_tool("summarizecommitmentdiscounts", {"groupBy": ["ServiceName"]})
    assert result.is_error
    assert '"code": "invalid_argument"' in result.content[0].text  # type: ignore[union-attr]


def test_the_shared_sample_has_unused_commitment_rows() -> None:
    assert any(r["CommitmentDiscountStatus"] == "Unused" for r in read_csv(AWS_13))


@pytest.mark.parametrize(
    ("name", "args", "tools"),
    [
        ("monthly-cost-review", {"month": "2026-05"}, ["summarizecommitmentdiscounts", "summarizecontractcommitments"]),
        ("commitment-utilization-check", {}, ["summarizecommitmentdiscounts", "summarizecontractcommitments"]),
        ("commitment-burndown-review", {"as_of": "2026-06-01T00:00:00Z"}, ["summarizecontractcommitments"]),
    ],
)
async def test_the_prompts_use_the_commitment_tools(
    multi: Services, name: str, args: dict[str, str], tools: list[str]
) -> None:
    async with Client(FocusMCPServer(Pipeline(multi))) as client:
        prompt = await client.get_prompt(name, args)
    text = prompt.messages[0].content.text  # type: ignore[union-attr]
    assert all(tool in text for tool in tools), text
    if name == "commitment-burndown-review":
        assert 'asOf "2026-06-01T00:00:00Z"' in text and "projectedShortfall" in text
