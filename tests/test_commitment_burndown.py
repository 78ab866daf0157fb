"""summarizecontractcommitments: every figure equals the test's own Decimal computation from the CSV text.

On the shared AWS 1.3 samples, the 1.4 bundle's 1.3 files, and an inline set built here for what the samples
lack: quantity commitments, elements of several commitments in one row, the ``ContractCommitmentID``
spelling, more digits than a binary float keeps, E notation, a brace inside an id, a currency that differs
from the commitment's, each status, and accounts for scoped tokens.
"""

from __future__ import annotations

import csv
from collections.abc import AsyncIterator
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from commitment_oracle import burn_down, referenced, when
from conftest import AWS_13, AWS_CC, SHARED, read_csv, tool_context
from mcp import Client

from server.auth import Principal
from server.mcp.server import FocusMCPServer
from server.pipeline import Pipeline
from server.services import Services, running_services
from server.settings import Settings
from server.store.db import Store
from server.store.loader import load_files
from tools import burndown
from tools.burndown import SummarizeContractCommitmentsInput
from tools.source import Scope

BUNDLE = SHARED / "data" / "focus-1.4-samples" / "aws"
BUNDLE_CU, BUNDLE_CC = BUNDLE / "focus_1_3_cost_and_usage_aws.csv", BUNDLE / "focus_1_3_contract_commitment_aws.csv"
FIGURES = (
    "measure",
    "committed",
    "committedUnit",
    "appliedToDate",
    "appliedElements",
    "remaining",
    "percentConsumed",
    "percentElapsed",
    "appliedInRunRateWindow",
    "dailyRunRate",
    "projectedAtPeriodEnd",
    "projectedShortfall",
    "projectedSurplus",
    "status",
    "consumptionOutsideScope",
)

# The inline set: (id, category, cost, quantity, unit, period start, period end, currency).
COMMITMENTS = [
    ("C-TRACK", "Spend", "1000", "", "", "2026-05-01", "2026-07-01", "USD"),
    ("C-RISK", "Spend", "10000", "", "", "2026-05-01", "2027-05-01", "USD"),
    ("C-DONE", "Spend", "100", "", "", "2026-05-01", "2026-12-01", "USD"),
    ("C-HOURS", "Usage", "", "1000", "Hours", "2026-05-01", "2026-06-01", "USD"),
    ("C-LATER", "Spend", "5000", "", "", "2026-07-01", "2027-07-01", "USD"),
    ("C-EUR", "Spend", "500", "", "", "2026-05-01", "2027-05-01", "EUR"),
    ("C-{BRACE}", "Spend", "50", "", "", "2026-05-01", "2027-05-01", "USD"),
]


def cost(cid: str, amount: str, key: str = "ContractCommitmentId") -> str:
    return f'{{"ContractId":"K-1","{key}":"{cid}","ContractCommitmentAppliedCost":{amount}}}'


def hours(cid: str, amount: str, unit: str = "Hours") -> str:
    return (
        f'{{"ContractId":"K-1","ContractCommitmentId":"{cid}","ContractCommitmentAppliedCost":null,'
        f'"ContractCommitmentAppliedQuantity":{amount},"ContractCommitmentAppliedUnit":"{unit}"}}'
    )


# (day in May 2026, billing account, sub account, currency, elements)
ROWS = [
    (1, "A1", "S1", "USD", [cost("C-TRACK", "200"), cost("C-DONE", "60"), hours("C-HOURS", "100.5")]),
    (3, "A2", "S2", "USD", [cost("C-TRACK", "100.123456789012345678"), cost("C-RISK", "40")]),
    (9, "A1", "S1", "USD", [cost("C-TRACK", "150", "ContractCommitmentID"), cost("C-DONE", "1.5E+1")]),
    (12, "A2", "S2", "USD", [cost("C-RISK", "0.0000000000000000010"), hours("C-HOURS", "5", "Days")]),
    (15, "A1", "S1", "EUR", [cost("C-EUR", "120.50"), cost("C-TRACK", "7")]),
    (18, "A1", "S1", "USD", [cost("C-EUR", "99"), hours("C-HOURS", "199.5"), cost("C-{BRACE}", "12.25")]),
    (25, "A2", "S2", "USD", [cost("C-TRACK", "149.876543210987654322"), cost("C-DONE", "80")]),
    (28, "A1", "S1", "USD", [cost("C-{BRACE}", "7.75"), cost("C-RISK", "10")]),
]


def write_inline(folder: Path) -> tuple[Path, Path]:
    """The inline Cost and Usage and Contract Commitment files, rows shaped like the AWS 1.3 sample's."""
    template = next(r for r in read_csv(AWS_13) if r["ChargeCategory"] == "Usage")
    header = list(template)
    cu_path, cc_path = folder / "inline_cu.csv", folder / "inline_cc.csv"
    with cu_path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, header)
        writer.writeheader()
        for day, account, sub, currency, elements in ROWS:
            row = dict(template)
            row |= {
                "BillingAccountId": account,
                "SubAccountId": sub,
                "BillingCurrency": currency,
                "ChargePeriodStart": f"2026-05-{day:02d}T00:00:00Z",
                "ChargePeriodEnd": f"2026-05-{day + 1:02d}T00:00:00Z",
                "ContractApplied": '{"Elements":[' + ",".join(elements) + "]}",
                "CommitmentDiscountId": "",
                "CommitmentDiscountStatus": "",
            }
            writer.writerow(row)
    cc_header = list(read_csv(AWS_CC)[0])
    with cc_path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, cc_header)
        writer.writeheader()
        for cid, category, amount, quantity, unit, start, end, currency in COMMITMENTS:
            writer.writerow(
                {
                    "ContractCommitmentId": cid,
                    "ContractCommitmentType": "Committed Spend" if category == "Spend" else "Usage Minimum",
                    "ContractCommitmentCategory": category,
                    "ContractCommitmentCost": amount,
                    "ContractCommitmentQuantity": quantity,
                    "ContractCommitmentUnit": unit,
                    "ContractCommitmentDescription": f"inline {cid}",
                    "ContractCommitmentPeriodStart": f"{start}T00:00:00Z",
                    "ContractCommitmentPeriodEnd": f"{end}T00:00:00Z",
                    "ContractId": "K-1",
                    "ContractPeriodStart": "2026-01-01T00:00:00Z",
                    "ContractPeriodEnd": "2028-01-01T00:00:00Z",
                    "BillingCurrency": currency,
                }
            )
    return cu_path, cc_path


def load(folder: Path, files: list[Path]) -> Path:
    store = Store(folder)
    try:
        summary = load_files(store, files)
        assert summary.ok, summary.as_json()
    finally:
        store.close()
    return folder


@pytest.fixture(scope="module")
def stores(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, list[Path], list[Path]]]:
    """name -> (data dir, Cost and Usage files, Contract Commitment files)."""
    inline_cu, inline_cc = write_inline(tmp_path_factory.mktemp("inline-files"))
    sets = {"aws": ([AWS_13], [AWS_CC]), "bundle": ([BUNDLE_CU], [BUNDLE_CC]), "inline": ([inline_cu], [inline_cc])}
    return {name: (load(tmp_path_factory.mktemp(name), [*cu, *cc]), cu, cc) for name, (cu, cc) in sets.items()}


@pytest.fixture(params=["aws", "bundle", "inline"])
async def loaded(
    request: pytest.FixtureRequest, stores: dict[str, tuple[Path, list[Path], list[Path]]]
) -> AsyncIterator[tuple[Services, list[dict[str, str]], list[dict[str, str]]]]:
    folder, cu, cc = stores[request.param]
    async with running_services(Settings(data_dir=folder, token_secret="t"), load_demo=False) as svc:  # type: ignore[arg-type]
        yield svc, [r for p in cu for r in read_csv(p)], [r for p in cc for r in read_csv(p)]


async def summarize(svc: Services, principal: Principal | None = None, **args: Any) -> Any:
    ctx = tool_context(svc) if principal is None else tool_context(svc, principal=principal)
    return await burndown.summarize_contract_commitments(SummarizeContractCommitmentsInput.model_validate(args), ctx)


def expected(
    cc_rows: list[dict[str, str]], cu_rows: list[dict[str, str]], as_of: datetime, days: int
) -> dict[str, Any]:
    return {c["ContractCommitmentId"]: burn_down(c, cu_rows, as_of, days) for c in cc_rows}


def figures(row: Any) -> dict[str, Any]:
    values = row.model_dump()
    out = {k: values[k] for k in FIGURES}
    out["notCounted"] = {n["BillingCurrency"] or n["unit"]: n["applied"] for n in values["notCounted"]}
    return out


def oracle_figures(want: dict[str, Any]) -> dict[str, Any]:
    return {k: want[k] for k in (*FIGURES, "notCounted")}


@pytest.mark.parametrize(
    ("as_of", "days"),
    [(None, 30), ("2026-05-10T12:00:00Z", 30), ("2026-05-01T05:30:00Z", 1), ("2026-04-01", 7), ("2027-06-01", 30)],
)
async def test_every_figure_equals_the_decimal_computation_from_the_csv(
    loaded: tuple[Services, list[dict[str, str]], list[dict[str, str]]], as_of: str | None, days: int
) -> None:
    svc, cu_rows, cc_rows = loaded
    answer = await summarize(svc, **({"asOf": as_of} if as_of else {}), runRateDays=days)
    end_of_data = max(when(r["ChargePeriodEnd"]) for r in cu_rows)
    at = when(as_of) if as_of else end_of_data
    assert answer.asOf == at.strftime("%Y-%m-%dT%H:%M:%SZ")
    want = expected(cc_rows, cu_rows, at, days)
    got = {r.ContractCommitmentId: figures(r) for r in answer.data}
    assert got == {k: oracle_figures(v) for k, v in want.items()}
    assert answer.totalRecords == len(cc_rows)
    assert sum(answer.statusCounts.values()) == len(cc_rows)


async def test_the_inline_set_has_each_status_and_reports_what_it_did_not_count(
    stores: dict[str, tuple[Path, list[Path], list[Path]]],
) -> None:
    folder, _, _ = stores["inline"]
    async with running_services(Settings(data_dir=folder, token_secret="t"), load_demo=False) as svc:  # type: ignore[arg-type]
        answer = await summarize(svc)
        later = await summarize(svc, asOf="2026-06-15")
    by_id = {r.ContractCommitmentId: r for r in answer.data}
    assert answer.asOf == "2026-05-29T00:00:00Z"  # the latest ChargePeriodEnd
    assert {k: r.status for k, r in by_id.items()} == {
        "C-TRACK": "on track",
        "C-RISK": "at risk",
        "C-DONE": "exhausted",
        "C-HOURS": "at risk",
        "C-LATER": "not started",
        "C-EUR": "on track",
        "C-{BRACE}": "on track",
    }
    assert {r.ContractCommitmentId: r.status for r in later.data}["C-HOURS"] == "expired"  # ended 300 of 1000 short
    assert {r.ContractCommitmentId: r.projectedShortfall for r in later.data}["C-HOURS"] == 700
    # 18 decimal digits survive (a binary float would keep 17 significant ones) and 1.5E+1 is 15.
    assert by_id["C-TRACK"].appliedToDate == Decimal(600)  # the parts sum exactly; the EUR row's 7 is not added
    assert str(by_id["C-RISK"].appliedToDate) == "50.000000000000000001"
    assert by_id["C-DONE"].appliedToDate == 155
    assert by_id["C-HOURS"].measure == "Quantity" and by_id["C-HOURS"].committedUnit == "Hours"
    assert by_id["C-HOURS"].appliedToDate == 300
    assert [(n.unit, n.applied) for n in by_id["C-HOURS"].notCounted] == [("Days", 5)]
    assert by_id["C-EUR"].appliedToDate == 120.5
    assert [(n.BillingCurrency, n.applied) for n in by_id["C-EUR"].notCounted] == [("USD", 99)]
    assert by_id["C-{BRACE}"].appliedToDate == 20  # braces inside an id do not confuse the reading


async def test_a_scoped_token_sees_only_its_accounts_commitments_and_is_told_what_is_not_counted(
    stores: dict[str, tuple[Path, list[Path], list[Path]]],
) -> None:
    folder, cu, cc = stores["inline"]
    cu_rows, cc_rows = [r for p in cu for r in read_csv(p)], [r for p in cc for r in read_csv(p)]
    scope = Scope(billing_account_ids=frozenset({"A1"}))
    team = Principal("team-a1", scope=scope)
    async with running_services(Settings(data_dir=folder, token_secret="t"), load_demo=False) as svc:  # type: ignore[arg-type]
        answer = await summarize(svc, team)
        async with Client(FocusMCPServer(Pipeline(svc))) as client:
            unscoped = await client.call_tool("summarizecontractcommitments", {})
    ids = referenced(cu_rows, scope)
    assert {r.ContractCommitmentId for r in answer.data} == ids
    assert "C-RISK" in ids and "C-LATER" not in ids
    at = when("2026-05-29T00:00:00Z")
    for row in answer.data:
        cc_row = next(c for c in cc_rows if c["ContractCommitmentId"] == row.ContractCommitmentId)
        assert figures(row) == oracle_figures(burn_down(cc_row, cu_rows, at, 30, scope))
    by_id = {r.ContractCommitmentId: r for r in answer.data}
    assert by_id["C-TRACK"].consumptionOutsideScope is True  # A2 consumed some of it
    assert by_id["C-DONE"].consumptionOutsideScope is True
    assert by_id["C-EUR"].consumptionOutsideScope is False
    assert answer.scopeNote and "not in appliedToDate" in answer.scopeNote
    assert answer.appliedScope is not None and answer.appliedScope.billingAccountIds == ["A1"]
    assert unscoped.structured_content is not None
    assert all(r["consumptionOutsideScope"] is None for r in unscoped.structured_content["data"])


async def test_filters_keep_one_commitment_contract_or_account(loaded: Any) -> None:
    svc, cu_rows, cc_rows = loaded
    first = cc_rows[0]
    one = await summarize(svc, contractCommitmentId=first["ContractCommitmentId"])
    assert [r.ContractCommitmentId for r in one.data] == [first["ContractCommitmentId"]]
    contract = await summarize(svc, contractId=first["ContractId"])
    assert {r.ContractCommitmentId for r in contract.data} == {
        c["ContractCommitmentId"] for c in cc_rows if c["ContractId"] == first["ContractId"]
    }
    account = cu_rows[0]["BillingAccountId"]
    mine = await summarize(svc, billingAccountId=account)
    assert {r.ContractCommitmentId for r in mine.data} == referenced(
        cu_rows, Scope(billing_account_ids=frozenset({account}))
    ) & {c["ContractCommitmentId"] for c in cc_rows}


async def test_the_mcp_text_is_a_table_of_the_figures_and_rest_serves_the_same(multi: Services) -> None:
    async with Client(FocusMCPServer(Pipeline(multi))) as client:
        result = await client.call_tool("summarizecontractcommitments", {"asOf": "2026-05-15T00:00:00Z"})
    assert not result.is_error and result.structured_content is not None
    text = result.content[0].text  # type: ignore[union-attr]
    assert text.startswith("Contract commitment burn-down as of 2026-05-15T00:00:00Z")
    assert "| ContractCommitmentId | status |" in text
    first = result.structured_content["data"][0]
    assert f"| {first['ContractCommitmentId']} | {first['status']} |" in text
    assert isinstance(first["appliedToDate"], str)  # exact decimal text over MCP
    assert "/contract-commitments/summary?asOf=2026-05-15T00%3A00%3A00Z" in text


async def test_invalid_arguments_are_refused(multi: Services) -> None:
    async with Client(FocusMCPServer(Pipeline(multi))) as client:
        for args in ({"asOf": "yesterday"}, {"runRateDays": 0}, {"runRateDays": 367}, {"commitmentDiscountId": "x"}):
            result = await client.call_tool("summarizecontractcommitments", args)
            assert result.is_error, args
            assert '"code": "invalid_argument"' in result.content[0].text  # type: ignore[union-attr]


async def test_the_default_demo_has_commitments_on_track_at_risk_and_exhausted_and_unused_hours(
    tmp_path: Path,
) -> None:
    from server.store.demo import generate_demo
    from tools import discounts
    from tools.discounts import SummarizeCommitmentDiscountsInput

    store = Store(tmp_path / "demo")
    try:
        generate_demo(store, rows=Settings(data_dir=tmp_path).demo_rows, seed=42)  # type: ignore[arg-type]
    finally:
        store.close()
    async with running_services(Settings(data_dir=tmp_path / "demo", token_secret="t"), load_demo=False) as svc:  # type: ignore[arg-type]
        burn = await summarize(svc)
        used = await discounts.summarize_commitment_discounts(SummarizeCommitmentDiscountsInput(), tool_context(svc))
    assert {"on track", "at risk", "exhausted"} <= set(burn.statusCounts)
    statuses = {r.ContractCommitmentId: r.status for r in burn.data}
    assert statuses["AWS-EDP-2025-483920175526-MIN-SPEND"] == "on track"
    assert statuses["MACC-2025-EXAMPLECORP-US-COMMIT"] == "at risk"
    assert statuses["MACC-2026-EXAMPLECORP-EU-COMMIT"] == "exhausted"
    assert any(r.CommitmentDiscountUnit == "Hours" and r.unusedQuantity for r in used.data), "unused hours"
