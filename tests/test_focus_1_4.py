"""FOCUS 1.4: all four datasets load (detected from their columns), money stays exact, broken 1.4 inputs are
refused with their rule, and the API serves both the seed's 1.3 shape (the default) and the 1.4 shape.

Inputs are the shared 1.4 bundle (``../shared/data/focus-1.4-samples/aws``: four 1.4 files and the 1.3
files they were converted from) and copies of it with one cell edited, built in tmp_path.
"""

from __future__ import annotations

import csv
import io
import json
import shutil
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from aiohttp.test_utils import TestClient, TestServer
from conftest import GCP_12, SHARED, decimal_sums, read_csv

from server.auth import LOCAL, TokenStore
from server.exports.service import ExportService
from server.pipeline import Pipeline
from server.rest.app import create_app
from server.services import Services, running_services
from server.settings import Settings
from server.store.db import Store
from server.store.loader import LoadSummary, load_files
from server.store.schema import TABLES
from tools.catalog import Dataset, columns_at

BUNDLE = SHARED / "data" / "focus-1.4-samples" / "aws"
CU_14 = BUNDLE / "synthetic_focus_1_4_cost_and_usage.csv"
CC_14 = BUNDLE / "synthetic_focus_1_4_contract_commitment.csv"
BP_14 = BUNDLE / "synthetic_focus_1_4_billing_period.csv"
ID_14 = BUNDLE / "synthetic_focus_1_4_invoice_detail.csv"
CU_13 = BUNDLE / "focus_1_3_cost_and_usage_aws.csv"
CC_13 = BUNDLE / "focus_1_3_contract_commitment_aws.csv"
BUNDLE_14 = {CU_14: Dataset.COST_AND_USAGE, CC_14: Dataset.CONTRACT_COMMITMENT, BP_14: Dataset.BILLING_PERIOD}
BUNDLE_14[ID_14] = Dataset.INVOICE_DETAIL


def load(store: Store, *paths: Path, strict: bool = False) -> LoadSummary:
    return load_files(store, list(paths), strict=strict)


def table_rows(store: Store, dataset: Dataset) -> int:
    row = store.con.execute(f"SELECT count(*) FROM {TABLES[dataset]}").fetchone()
    return int(row[0]) if row else 0


def edited(tmp_path: Path, source: Path, row: int, column: str, value: str, name: str = "edited.csv") -> Path:
    """A copy of ``source`` with one cell (0-based data row) set to ``value``."""
    rows = read_csv(source)
    rows[row][column] = value
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    target = tmp_path / name
    target.write_text(out.getvalue(), encoding="utf-8")
    return target


def first_problem(summary: LoadSummary) -> dict[str, Any]:
    errors: list[dict[str, Any]] = summary.as_json()["errors"]
    assert errors, summary.as_json()
    return errors[0]


# -- loading ------------------------------------------------------------------------------------


@pytest.mark.parametrize("strict", [False, True], ids=["normalising", "strict"])
def test_each_file_of_the_1_4_bundle_loads_with_its_exact_row_count_detected_from_its_columns(
    store: Store, tmp_path: Path, strict: bool
) -> None:
    # Neutral names: the dataset and version come from the columns, never from the file name.
    copies = {}
    for i, (path, dataset) in enumerate(BUNDLE_14.items()):
        copies[shutil.copyfile(path, tmp_path / f"export-{i}.csv")] = (dataset, len(read_csv(path)))

    summary = load(store, *copies, strict=strict)

    assert summary.ok, summary.as_json()
    for report in summary.files:
        dataset, rows = copies[Path(report.file)]
        assert (report.dataset, report.focus_version, report.rows) == (dataset.value, "1.4", rows)
        assert table_rows(store, dataset) == rows


def test_a_1_4_file_keeps_every_billed_and_effective_cost_digit_per_currency(store: Store) -> None:
    load(store, CU_14)

    stored = store.con.execute(
        "SELECT BillingCurrency, CAST(sum(BilledCost) AS VARCHAR), CAST(sum(EffectiveCost) AS VARCHAR) "
        "FROM cost_and_usage GROUP BY 1"
    ).fetchall()
    expected = decimal_sums(read_csv(CU_14), ("BilledCost", "EffectiveCost"))

    assert {(c, "BilledCost"): Decimal(b) for c, b, _ in stored} | {
        (c, "EffectiveCost"): Decimal(e) for c, _, e in stored
    } == expected


def test_the_invoice_detail_file_loads_with_its_conditional_columns_absent_and_named(store: Store) -> None:
    summary = load(store, ID_14)

    report = summary.as_json()["files"][0]
    assert report["status"] == "loaded"
    assert report["absentColumns"] == [
        "PaymentCurrency",
        "PaymentCurrencyBilledCost",
        "PaymentCurrencyInvoiceDetailId",
        "PurchaseOrderNumber",
    ]
    history = store.con.execute("SELECT report FROM loads").fetchone()
    assert history is not None and json.loads(history[0])["absentColumns"] == report["absentColumns"]


def test_a_1_4_cost_and_usage_file_reports_the_derived_provider_names(store: Store) -> None:
    summary = load(store, CU_14)

    derived = [c for c in summary.as_json()["normalised"] if c["kind"] == "provider_names_derived"]
    assert [(c["column"], c["count"]) for c in derived] == [("ProviderName", 300)]
    mismatched = store.con.execute(
        "SELECT count(*) FROM cost_and_usage WHERE ProviderName IS DISTINCT FROM "
        "coalesce(HostProviderName, ServiceProviderName) OR PublisherName IS DISTINCT FROM ServiceProviderName"
    ).fetchone()
    assert mismatched == (0,)


def test_a_1_4_file_missing_a_mandatory_column_is_refused_whole(store: Store, tmp_path: Path) -> None:
    rows = read_csv(CU_14)
    out = io.StringIO()
    names = [c for c in rows[0] if c != "BillingAccountName"]
    writer = csv.DictWriter(out, fieldnames=names, lineterminator="\n", extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    (tmp_path / "cut.csv").write_text(out.getvalue(), encoding="utf-8")

    summary = load(store, tmp_path / "cut.csv")

    problem = first_problem(summary)
    assert problem["rule"] == "missing_column" and "mandatory FOCUS 1.4 columns" in problem["message"]
    assert "BillingAccountName" in problem["message"]
    assert table_rows(store, Dataset.COST_AND_USAGE) == 0


def _contract_applied_row() -> int:
    return next(i for i, r in enumerate(read_csv(CU_14)) if r["ContractApplied"])


BROKEN_1_4 = [
    pytest.param(
        CU_14,
        "ContractApplied",
        '{"Elements":[{"ContractId":"C","ContractCommitmentId":"K","ContractCommitmentAppliedCost":1.5,'
        '"ContractCommitmentAppliedQuantity":2,"ContractCommitmentAppliedUnit":"Hours"}]}',
        "json_schema",
        id="contract-applied-cost-and-quantity",
    ),
    pytest.param(
        CU_14,
        "ContractApplied",
        '{"Elements":[{"ContractId":"C","ContractCommitmentId":"K","ContractCommitmentAppliedCost":"1.5"}]}',
        "json_schema",
        id="contract-applied-quoted-number",
    ),
    pytest.param(
        CU_14,
        "ContractApplied",
        '{"Elements":[{"ContractId":"C","ContractCommitmentId":"K","ContractCommitmentAppliedCost":1.5,"Note":"x"}]}',
        "json_schema",
        id="contract-applied-key-without-x-prefix",
    ),
    pytest.param(CC_14, "ContractCommitmentLifecycleStatus", "Paused", "allowed_values", id="lifecycle-status"),
    pytest.param(ID_14, "InvoiceId", "", "not_null", id="invoice-detail-without-invoice-id"),
    pytest.param(ID_14, "InvoiceIssueStatus", "Draft", "allowed_values", id="invoice-issue-status"),
    pytest.param(BP_14, "BillingPeriodEnd", "2026-04-01T00:00:00Z", "period_order", id="period-ends-before-start"),
    pytest.param(BP_14, "BillingPeriodStatus", "Final", "allowed_values", id="billing-period-status"),
]


@pytest.mark.parametrize(("source", "column", "value", "rule"), BROKEN_1_4)
@pytest.mark.parametrize("strict", [False, True], ids=["normalising", "strict"])
def test_a_broken_1_4_input_is_refused_with_its_rule_and_nothing_is_stored(
    store: Store, tmp_path: Path, source: Path, column: str, value: str, rule: str, strict: bool
) -> None:
    row = _contract_applied_row() if column == "ContractApplied" else 0
    broken = edited(tmp_path, source, row, column, value)
    dataset = BUNDLE_14[source]

    summary = load(store, broken, strict=strict)

    problem = first_problem(summary)
    expected_rule = {"not_null": "not_null" if not strict else problem["rule"]}.get(rule, rule)
    assert summary.files[0].status == "refused"
    assert problem["rule"] == expected_rule and problem["column"] == column
    assert problem["examples"][0]["row"] == row + 1
    assert table_rows(store, dataset) == 0


def test_a_schema_refusal_names_the_rule_the_value_broke(store: Store, tmp_path: Path) -> None:
    quoted = '{"Elements":[{"ContractId":"C","ContractCommitmentId":"K","ContractCommitmentAppliedCost":"1.5"}]}'
    summary = load(store, edited(tmp_path, CU_14, _contract_applied_row(), "ContractApplied", quoted))

    example = first_problem(summary)["examples"][0]
    assert example["value"] == quoted
    assert example["detail"].startswith("$.Elements[0]")


def test_a_1_3_file_may_spell_contract_applied_keys_the_old_way_and_they_are_stored_corrected(
    store: Store, tmp_path: Path
) -> None:
    rows = read_csv(CU_13)
    index = next(i for i, r in enumerate(rows) if r["ContractApplied"])
    original = rows[index]["ContractApplied"]
    old_spelling = original.replace('"ContractId"', '"ContractID"').replace(
        '"ContractCommitmentId"', '"ContractCommitmentID"'
    )
    assert old_spelling != original

    summary = load(store, edited(tmp_path, CU_13, index, "ContractApplied", old_spelling))

    assert summary.ok, summary.as_json()
    recased = [c for c in summary.as_json()["normalised"] if c["kind"] == "json_key_recased"]
    assert [(c["column"], c["count"]) for c in recased] == [("ContractApplied", 1)]
    stored = store.con.execute("SELECT count(*) FROM cost_and_usage WHERE ContractApplied::VARCHAR LIKE '%ID\"%'")
    assert stored.fetchone() == (0,)


def test_a_1_4_file_may_not_use_the_old_key_spelling(store: Store, tmp_path: Path) -> None:
    index = _contract_applied_row()
    text = read_csv(CU_14)[index]["ContractApplied"].replace('"ContractId"', '"ContractID"')

    summary = load(store, edited(tmp_path, CU_14, index, "ContractApplied", text))

    assert first_problem(summary)["rule"] == "json_schema"


def test_a_re_delivered_billing_period_and_invoice_replace_the_earlier_rows(store: Store, tmp_path: Path) -> None:
    load(store, BP_14, ID_14)
    first = store.con.execute("SELECT CAST(sum(BilledCost) AS VARCHAR) FROM invoice_detail").fetchone()
    # The re-issued first invoice lost its Tax line: the line must not linger.
    rows = [r for r in read_csv(ID_14) if not (r["InvoiceId"] == "INV-2026-05-0001" and r["ChargeCategory"] == "Tax")]
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    (tmp_path / "reissued.csv").write_text(out.getvalue(), encoding="utf-8")
    bp = edited(tmp_path, BP_14, 0, "BillingPeriodLastUpdated", "2026-06-02T00:00:00Z", "bp.csv")

    summary = load(store, bp, tmp_path / "reissued.csv")

    assert summary.ok and [f.replaced_rows for f in summary.files] == [1, 6]
    assert table_rows(store, Dataset.BILLING_PERIOD) == 1
    assert table_rows(store, Dataset.INVOICE_DETAIL) == 5
    second = store.con.execute("SELECT CAST(sum(BilledCost) AS VARCHAR) FROM invoice_detail").fetchone()
    assert first and second and Decimal(first[0]) - Decimal(second[0]) == Decimal("0.110067840000000")


def test_a_billing_period_delivered_twice_in_one_run_is_refused(store: Store, tmp_path: Path) -> None:
    # Same period and issuer, another LastUpdated (identical content would be skipped as a duplicate file).
    copy = edited(tmp_path, BP_14, 0, "BillingPeriodLastUpdated", "2026-06-03T00:00:00Z", "again.csv")

    summary = load(store, BP_14, copy)

    assert [f.status for f in summary.files] == ["loaded", "refused"]
    assert first_problem(summary)["rule"] == "duplicate_key"
    assert table_rows(store, Dataset.BILLING_PERIOD) == 1


# -- serving --------------------------------------------------------------------------------------


@pytest.fixture
async def services(tmp_path: Path) -> AsyncIterator[Services]:
    """A store holding the 1.4 bundle and a 1.2 file of another provider (versions mix in one store)."""
    store = Store(tmp_path / "data")
    try:
        assert load_files(store, list(BUNDLE_14)).ok
        assert load_files(store, [GCP_12]).ok
    finally:
        store.close()
    settings = Settings(data_dir=tmp_path / "data", token_secret="t")  # type: ignore[arg-type]
    async with running_services(settings, load_demo=False) as running:
        yield running


@pytest.fixture
async def client(services: Services) -> AsyncIterator[TestClient[Any, Any]]:
    """The REST facade over ``services``."""
    async with TestClient(TestServer(create_app(Pipeline(services), TokenStore([])))) as rest:
        yield rest


async def _get(client: TestClient[Any, Any], path: str, **params: str) -> Any:
    resp = await client.get(path, params=params)
    return json.loads(await resp.text(), parse_float=Decimal) | {"_status": resp.status}


async def test_a_1_4_row_served_as_1_3_has_provider_and_publisher_filled_by_the_documented_rule(
    client: TestClient[Any, Any],
) -> None:
    page = await _get(client, "/cost-and-usage", billingAccountId="100000000001", pageSize="1000")

    assert page["_status"] == 200 and page["data"]
    for row in page["data"]:
        assert list(row)[:65] == list(columns_at(Dataset.COST_AND_USAGE, "1.3").ids)
        assert row["ProviderName"] == (row["HostProviderName"] or row["ServiceProviderName"])
        assert row["PublisherName"] == row["ServiceProviderName"]
        assert "InvoiceDetailId" not in row
    assert len(page["data"]) == sum(1 for r in read_csv(CU_14) if r["BillingAccountId"] == "100000000001")


async def test_focus_version_1_4_serves_exactly_the_1_4_columns(client: TestClient[Any, Any]) -> None:
    page = await _get(client, "/cost-and-usage", focusVersion="1.4", pageSize="1000", billingAccountId="100000000002")
    ids = list(columns_at(Dataset.COST_AND_USAGE, "1.4").ids)

    assert page["_status"] == 200 and page["data"]
    assert all(list(row) == ids for row in page["data"])
    expected = sorted(r["InvoiceDetailId"] for r in read_csv(CU_14) if r["BillingAccountId"] == "100000000002")
    assert sorted(r["InvoiceDetailId"] for r in page["data"]) == expected


async def test_rows_of_an_older_file_served_as_1_4_carry_the_new_columns_as_null(client: TestClient[Any, Any]) -> None:
    page = await _get(client, "/cost-and-usage", focusVersion="1.4", providerName="Google Cloud", pageSize="1000")

    assert len(page["data"]) == 100
    assert all(r["InvoiceDetailId"] is None and "ProviderName" not in r for r in page["data"])
    assert {r["ServiceProviderName"] for r in page["data"]} == {"Google Cloud"}


async def test_contract_commitments_come_in_13_or_30_columns(client: TestClient[Any, Any]) -> None:
    v13 = await _get(client, "/contract-commitments", pageSize="100")
    v14 = await _get(client, "/contract-commitments", pageSize="100", focusVersion="1.4")

    assert {len(r) for r in v13["data"]} == {13} and {len(r) for r in v14["data"]} == {30}
    assert len(v14["data"]) == len(read_csv(CC_14))
    by_id = {r["ContractCommitmentId"]: r for r in read_csv(CC_14)}
    for row in v14["data"]:
        assert (
            row["ContractCommitmentLifecycleStatus"]
            == by_id[row["ContractCommitmentId"]]["ContractCommitmentLifecycleStatus"]
        )


async def test_a_page_token_is_bound_to_its_focus_version(client: TestClient[Any, Any]) -> None:
    first = await _get(client, "/cost-and-usage", pageSize="7")
    reused = await _get(client, "/cost-and-usage", pageSize="7", focusVersion="1.4", pageToken=first["nextPageToken"])

    assert first["nextPageToken"] and reused["_status"] == 400 and reused["code"] == "invalid_page_token"


async def test_asking_for_a_column_of_the_other_version_says_which_version_has_it(
    client: TestClient[Any, Any],
) -> None:
    removed = await _get(client, "/cost-and-usage", focusVersion="1.4", columns="BilledCost,ProviderName")
    added = await _get(client, "/cost-and-usage", columns="InvoiceDetailId")
    unknown = await _get(client, "/cost-and-usage", focusVersion="2.0")

    assert removed["_status"] == 400 and removed["code"] == "invalid_argument"
    assert "ProviderName" in removed["message"] and "focusVersion 1.3" in removed["message"]
    assert added["_status"] == 400 and "focusVersion 1.4" in added["message"]
    assert unknown["_status"] == 400 and unknown["code"] == "invalid_argument"


async def test_the_1_3_source_and_the_1_4_file_give_equal_totals_per_currency(tmp_path: Path) -> None:
    totals = []
    for name, path in (("v13", CU_13), ("v14", CU_14)):
        store = Store(tmp_path / name)
        try:
            assert load_files(store, [path]).ok
        finally:
            store.close()
        settings = Settings(data_dir=tmp_path / name, token_secret="t")  # type: ignore[arg-type]
        async with (
            running_services(settings, load_demo=False) as services,
            TestClient(TestServer(create_app(Pipeline(services), TokenStore([])))) as rest,
        ):
            body = await _get(rest, "/cost-and-usage/summary", metrics="BilledCost,EffectiveCost")
        totals.append(body["totals"])

    assert totals[0] == totals[1]
    expected = decimal_sums(read_csv(CU_13), ("BilledCost", "EffectiveCost"))
    assert {(t["BillingCurrency"], "BilledCost"): t["BilledCost"] for t in totals[1]} == {
        k: v for k, v in expected.items() if k[1] == "BilledCost"
    }


async def test_schema_metadata_describes_each_version_and_what_was_loaded_from_which(
    client: TestClient[Any, Any],
) -> None:
    v13 = await _get(client, "/schema")
    v14 = await _get(client, "/schema", focusVersion="1.4")

    assert v13["focusVersion"] == "1.3" and [d["id"] for d in v13["datasets"]] == ["CostAndUsage", "ContractCommitment"]
    assert v14["focusVersion"] == "1.4"
    assert {d["id"]: (d["columnCount"], d["rowCount"]) for d in v14["datasets"]} == {
        "CostAndUsage": (65, 400),
        "ContractCommitment": (30, 24),
        "BillingPeriod": (6, 1),
        "InvoiceDetail": (22, 6),
    }
    provider = next(c for c in v13["columns"] if c["name"] == "ProviderName")
    assert "HostProviderName" in provider["derivedFrom"]
    assert not [c for c in v14["columns"] if c["name"] in ("ProviderName", "PublisherName")]
    assert v14["loaded"]["costAndUsageRowsByFocusVersion"] == {"1.2": 100, "1.4": 300}
    absent = {h["file"].split("/")[-1]: h["absentColumns"] for h in v14["loaded"]["loads"]}
    assert absent[ID_14.name] == [
        "PaymentCurrency",
        "PaymentCurrencyBilledCost",
        "PaymentCurrencyInvoiceDetailId",
        "PurchaseOrderNumber",
    ]
    assert {s["FocusVersion"] for s in v14["metadata"]["Schema"]} == {"1.4"}


async def test_an_export_in_focus_version_1_4_writes_the_1_4_columns(
    client: TestClient[Any, Any], services: Services
) -> None:
    started = await client.post(
        "/cost-and-usage/export", json={"format": "csv", "focusVersion": "1.4", "includeContractCommitments": True}
    )
    job = await started.json()
    assert isinstance(services.exports, ExportService)
    await services.exports.wait(job["jobId"], LOCAL.name, timeout=60)
    status = await _get(client, f"/cost-and-usage/export/{job['jobId']}")

    assert status["status"] == "Complete", status
    headers = {}
    for f in status["files"]:
        resp = await client.get(urlsplit(f["downloadUrl"]).path)
        headers[f["dataset"]] = next(csv.reader(io.StringIO(await resp.text())))
    assert headers["CostAndUsage"] == list(columns_at(Dataset.COST_AND_USAGE, "1.4").ids)
    assert headers["ContractCommitment"] == list(columns_at(Dataset.CONTRACT_COMMITMENT, "1.4").ids)
