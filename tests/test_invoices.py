"""The FOCUS 1.4 invoice tools on the sample bundle: listbillingperiods, listinvoicedetails, reconcileinvoices.

Every expectation is computed here from the CSV text with ``decimal.Decimal``; the store is loaded by the
real loader from ``../shared/data/focus-1.4-samples/aws/``.
"""

from __future__ import annotations

import csv
from collections import defaultdict
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from conftest import SHARED, read_csv, tool_context
from pydantic import ValidationError

from server.auth import Principal
from server.pipeline import Caller, Pipeline
from server.services import Services, running_services
from server.settings import Settings
from server.sources.upstream_contract import ContractViolation
from server.sources.upstream_invoices import reconciliation_check, record_check
from server.store.db import Store
from server.store.demo import generate_demo
from server.store.loader import load_files
from tools import cost_and_usage, invoices, reconciliation
from tools.context import REST_LIMITS
from tools.cost_and_usage import ListCostAndUsageInput
from tools.errors import FocusApiError, Forbidden, InvalidArgument
from tools.invoices import ListBillingPeriodsInput, ListInvoiceDetailsInput
from tools.reconciliation import ReconcileInvoicesInput, subunit, tolerance, within_tolerance
from tools.source import Scope

BUNDLE = SHARED / "data" / "focus-1.4-samples" / "aws"
CU = BUNDLE / "synthetic_focus_1_4_cost_and_usage.csv"
ID = BUNDLE / "synthetic_focus_1_4_invoice_detail.csv"
BP = BUNDLE / "synthetic_focus_1_4_billing_period.csv"
CC = BUNDLE / "synthetic_focus_1_4_contract_commitment.csv"
D = Decimal


def load_store(path: Path, *files: Path) -> Path:
    store = Store(path)
    try:
        summary = load_files(store, list(files))
        assert summary.ok, summary.as_json()
    finally:
        store.close()
    return path


@pytest.fixture(scope="module")
def bundle_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return load_store(tmp_path_factory.mktemp("bundle") / "store", CU, CC, BP, ID)


async def started(path: Path) -> AsyncIterator[Services]:
    settings = Settings(data_dir=path, token_secret="t", tokens="")  # type: ignore[arg-type]
    async with running_services(settings, load_demo=False) as svc:
        yield svc


@pytest.fixture
async def bundle(bundle_dir: Path) -> AsyncIterator[Services]:
    async for svc in started(bundle_dir):
        yield svc


def with_rows(tmp_path: Path, source: Path, name: str, change: dict[int, dict[str, str]]) -> Path:
    """A copy of ``source`` with some rows' cells replaced (row index -> column -> text)."""
    rows = read_csv(source)
    for index, cells in change.items():
        rows[index].update(cells)
    target = tmp_path / name
    with target.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return target


# -- what the CSVs say ------------------------------------------------------------------------------------


def expected_reconciliation(cu_rows: list[dict[str, str]], id_rows: list[dict[str, str]]) -> dict[Any, dict[str, Any]]:
    """Per (InvoiceIssuerName, InvoiceId, BillingCurrency), from the CSV text, with Decimal."""
    out: dict[Any, dict[str, Any]] = defaultdict(
        lambda: {"inv": D(0), "inv_tax": D(0), "inv_rows": 0, "cu": D(0), "cu_tax": D(0), "cu_rows": 0, "non_tax": 0}
    )
    for r in id_rows:
        e = out[(r["InvoiceIssuerName"], r["InvoiceId"], r["BillingCurrency"])]
        e["inv"] += D(r["BilledCost"])
        e["inv_tax"] += D(r["BilledCost"]) if r["ChargeCategory"] == "Tax" else 0
        e["inv_rows"] += 1
    for r in cu_rows:
        e = out[(r["InvoiceIssuerName"], r["InvoiceId"], r["BillingCurrency"])]
        e["cu"] += D(r["BilledCost"])
        e["cu_tax"] += D(r["BilledCost"]) if r["ChargeCategory"] == "Tax" else 0
        e["cu_rows"] += 1
        e["non_tax"] += r["ChargeCategory"] != "Tax"
    return dict(out)


async def reconcile(svc: Services, principal: Principal | None = None, **args: Any) -> Any:
    ctx = tool_context(svc, REST_LIMITS, principal or Principal("local"))
    return await reconciliation.reconcile_invoices(ReconcileInvoicesInput.model_validate(args), ctx)


# -- reconciliation ---------------------------------------------------------------------------------------


async def test_reconciliation_of_the_sample_equals_the_decimal_sums_of_the_two_csvs(bundle: Services) -> None:
    answer = await reconcile(bundle)
    expected = expected_reconciliation(read_csv(CU), read_csv(ID))
    got = {(r["InvoiceIssuerName"], r["InvoiceId"], r["BillingCurrency"]): r for r in answer.data}
    assert set(got) == set(expected) and answer.totalRecords == len(expected) == 2
    for key, e in expected.items():
        row = got[key]
        assert (row["invoicedBilledCost"], row["costAndUsageBilledCost"]) == (e["inv"], e["cu"])
        assert row["difference"] == e["inv"] - e["cu"]  # exact: both sums hold every digit of the CSV text
        assert (row["invoicedTax"], row["costAndUsageTax"], row["taxDifference"]) == (
            e["inv_tax"],
            e["cu_tax"],
            e["inv_tax"] - e["cu_tax"],
        )
        assert (row["invoiceDetailRows"], row["costAndUsageRows"], row["toleranceRows"]) == (
            e["inv_rows"],
            e["cu_rows"],
            e["non_tax"],
        )
        # MAX(100 x 0.01, SQRT(Rows) x 0.5 x 0.01): 1.00 for a few hundred rows
        assert (row["subunit"], row["tolerance"]) == (D("0.01"), max(D("1.00"), D(e["non_tax"]).sqrt() * D("0.005")))
        assert (row["status"], row["withinTolerance"], row["billingPeriodStatus"]) == ("Matched", True, "Closed")
    assert str(got[("AWS", "INV-2026-05-0001", "USD")]["invoicedBilledCost"].normalize()) == "3828.38521263232992"
    assert (answer.dataCompleteness, answer.dataCompletenessRule) == ("Complete", "BillingPeriodStatus")


async def test_a_changed_invoice_line_is_a_mismatch_and_a_cost_and_usage_row_without_invoice_is_one_sided(
    tmp_path: Path,
) -> None:
    id_rows = read_csv(ID)
    usage_line = next(
        i for i, r in enumerate(id_rows) if r["InvoiceId"] == "INV-2026-05-0002" and r["ChargeCategory"] == "Usage"
    )
    bumped = with_rows(
        tmp_path,
        ID,
        "invoice_detail.csv",
        {usage_line: {"BilledCost": str(D(id_rows[usage_line]["BilledCost"]) + D("1.01"))}},
    )
    cu_rows = read_csv(CU)
    # A Usage row of INV-2026-05-0001 under 1.00 moves to an invoice nobody sent: INV-2026-05-0001 is then
    # short by less than its tolerance of 1.00.
    orphan = next(
        i
        for i, r in enumerate(cu_rows)
        if r["InvoiceId"] == "INV-2026-05-0001" and r["ChargeCategory"] == "Usage" and D("0.1") < D(r["BilledCost"]) < 1
    )
    cost = with_rows(
        tmp_path, CU, "cost_and_usage.csv", {orphan: {"InvoiceId": "INV-NOT-INVOICED", "InvoiceDetailId": ""}}
    )
    async for svc in started(load_store(tmp_path / "store", cost, BP, bumped)):
        answer = await reconcile(svc)
        by_invoice = {r["InvoiceId"]: r for r in answer.data}
        assert by_invoice["INV-2026-05-0002"]["difference"] == D("1.01")
        assert by_invoice["INV-2026-05-0002"]["status"] == "Mismatch"  # 1.01 > MAX(1.00, SQRT(109) x 0.005)
        only = by_invoice["INV-NOT-INVOICED"]
        assert (only["status"], only["invoicedBilledCost"], only["costAndUsageBilledCost"]) == (
            "CostAndUsageOnly",
            None,
            D(cu_rows[orphan]["BilledCost"]),
        )
        assert by_invoice["INV-2026-05-0001"]["difference"] == D(cu_rows[orphan]["BilledCost"])
        assert by_invoice["INV-2026-05-0001"]["status"] == "WithinTolerance"
        mismatches = await reconcile(svc, status="Mismatch")
        assert [r["InvoiceId"] for r in mismatches.data] == ["INV-2026-05-0002"] and mismatches.totalRecords == 1


async def test_a_correction_landing_in_a_closed_billing_period_is_flagged(tmp_path: Path) -> None:
    cu_rows = read_csv(CU)
    fixed = next(
        i for i, r in enumerate(cu_rows) if r["InvoiceId"] == "INV-2026-05-0001" and r["ChargeCategory"] == "Usage"
    )
    cost = with_rows(tmp_path, CU, "cost_and_usage.csv", {fixed: {"ChargeClass": "Correction"}})
    async for svc in started(load_store(tmp_path / "store", cost, BP, ID)):
        by_invoice = {r["InvoiceId"]: r for r in (await reconcile(svc)).data}
    assert by_invoice["INV-2026-05-0001"]["closedPeriodCorrectionRows"] == 1
    assert by_invoice["INV-2026-05-0001"]["closedPeriodCorrectionBilledCost"] == D(cu_rows[fixed]["BilledCost"])
    assert by_invoice["INV-2026-05-0002"]["closedPeriodCorrectionRows"] == 0


async def test_an_open_invoice_is_not_judged_against_the_tolerance(tmp_path: Path) -> None:
    opened = with_rows(tmp_path, ID, "invoice_detail.csv", {0: {"InvoiceIssueStatus": "Open"}})
    async for svc in started(load_store(tmp_path / "store", CU, BP, opened)):
        by_invoice = {r["InvoiceId"]: r for r in (await reconcile(svc)).data}
    assert (by_invoice["INV-2026-05-0001"]["status"], by_invoice["INV-2026-05-0001"]["tolerance"]) == ("Open", None)
    assert by_invoice["INV-2026-05-0001"]["withinTolerance"] is None


def test_the_tolerance_is_the_specs_formula_per_iso_4217_minor_unit() -> None:
    assert (subunit("USD"), subunit("EUR"), subunit("JPY"), subunit("KWD"), subunit("CLF")) == (
        D("0.01"),
        D("0.01"),
        D(1),
        D("0.001"),
        D("0.0001"),
    )
    assert tolerance(100, D("0.01")) == D(1)  # 100 subunits beats SQRT(100) x 0.5 subunit
    assert tolerance(1_000_000, D("0.01")) == D(5)  # SQRT(1e6) x 0.005
    assert tolerance(40_000, D(1)) == D(100)  # the two terms meet
    assert within_tolerance(D("1.00"), 10, D("0.01")) and not within_tolerance(D("1.000001"), 10, D("0.01"))
    # SQRT(2e6) x 0.005 = 7.0710678118...: decided by squares, exactly, either side of the irrational bound
    assert within_tolerance(D("7.0710678118"), 2_000_000, D("0.01"))
    assert not within_tolerance(D("7.0710678119"), 2_000_000, D("0.01"))
    assert within_tolerance(D("-7.07"), 2_000_000, D("0.01"))


async def test_tax_lines_get_no_tolerance(tmp_path: Path) -> None:
    id_rows = read_csv(ID)
    tax = next(i for i, r in enumerate(id_rows) if r["ChargeCategory"] == "Tax")
    cents = with_rows(
        tmp_path, ID, "invoice_detail.csv", {tax: {"BilledCost": str(D(id_rows[tax]["BilledCost"]) + D("0.01"))}}
    )
    async for svc in started(load_store(tmp_path / "store", CU, BP, cents)):
        row = next(r for r in (await reconcile(svc)).data if r["InvoiceId"] == id_rows[tax]["InvoiceId"])
    assert (row["difference"], row["taxDifference"], row["status"]) == (D("0.01"), D("0.01"), "Mismatch")


# -- the two lists ----------------------------------------------------------------------------------------


async def test_invoice_details_are_the_csv_lines_in_the_1_4_shape_with_exact_money(bundle: Services) -> None:
    page = await invoices.list_invoice_details(ListInvoiceDetailsInput(), tool_context(bundle))
    expected = read_csv(ID)
    assert page.totalRecords == len(page.data) == len(expected) == 6
    assert all(list(r) == list(invoices.INVOICE_DETAIL.ids) for r in page.data)  # the 22 columns, in order
    assert sorted(r["BilledCost"] for r in page.data) == sorted(D(r["BilledCost"]) for r in expected)
    assert page.data[0]["InvoiceDetailGrain"].value()["x_Generator"] == "focus-data-toolkit x_fdt_idl_v1"
    taxes = await invoices.list_invoice_details(ListInvoiceDetailsInput(chargeCategory="Tax"), tool_context(bundle))
    assert sorted(r["BilledCost"] for r in taxes.data) == sorted(
        D(r["BilledCost"]) for r in expected if r["ChargeCategory"] == "Tax"
    )
    one = await invoices.list_invoice_details(
        ListInvoiceDetailsInput(invoiceId="INV-2026-05-0002", billingPeriodStart="2026-05-01"), tool_context(bundle)
    )
    assert {r["InvoiceId"] for r in one.data} == {"INV-2026-05-0002"} and one.totalRecords == 3


async def test_billing_periods_are_the_csv_rows(bundle: Services) -> None:
    page = await invoices.list_billing_periods(ListBillingPeriodsInput(), tool_context(bundle))
    assert page.data == read_csv(BP)  # every column is text or a date/time written as the CSV writes it
    assert (page.dataCompleteness, page.dataCompletenessRule) == ("Complete", "BillingPeriodStatus")
    none = await invoices.list_billing_periods(
        ListBillingPeriodsInput(billingPeriodStatus="Open"), tool_context(bundle)
    )
    assert (none.data, none.totalRecords, none.dataCompleteness, none.dataCompletenessRule) == ([], 0, "Empty", None)


# -- scopes -----------------------------------------------------------------------------------------------


async def test_a_scoped_token_sees_only_its_accounts_invoices_and_its_issuers_periods(bundle: Services) -> None:
    mine = Principal("team-1", scope=Scope(frozenset({"100000000001"}), None))
    ctx = tool_context(bundle, REST_LIMITS, mine)
    lines = await invoices.list_invoice_details(ListInvoiceDetailsInput(), ctx)
    assert {r["BillingAccountId"] for r in lines.data} == {"100000000001"} and lines.totalRecords == 3
    assert [r["InvoiceId"] for r in (await reconcile(bundle, mine)).data] == ["INV-2026-05-0001"]
    assert (await invoices.list_billing_periods(ListBillingPeriodsInput(), ctx)).totalRecords == 1  # AWS: visible

    nobody = Principal("nobody", scope=Scope(frozenset({"999"}), None))
    ctx = tool_context(bundle, REST_LIMITS, nobody)
    assert (await invoices.list_invoice_details(ListInvoiceDetailsInput(), ctx)).totalRecords == 0
    assert (await invoices.list_billing_periods(ListBillingPeriodsInput(), ctx)).totalRecords == 0
    assert (await reconcile(bundle, nobody)).totalRecords == 0

    subs = Principal("subs", scope=Scope(None, frozenset({"200000000011"})))
    ctx = tool_context(bundle, REST_LIMITS, subs)
    assert (await invoices.list_invoice_details(ListInvoiceDetailsInput(), ctx)).totalRecords == 0
    with pytest.raises(Forbidden, match="sub accounts"):
        await reconcile(bundle, subs)


# -- dataCompleteness -------------------------------------------------------------------------------------


async def completeness(svc: Services) -> tuple[str, str | None]:
    page = await cost_and_usage.list_cost_and_usage(ListCostAndUsageInput(pageSize=1), tool_context(svc))
    return page.dataCompleteness, page.dataCompletenessRule


async def test_a_closed_billing_period_is_final_and_an_open_one_is_not_whatever_the_calendar_says(
    tmp_path: Path,
) -> None:
    async for svc in started(load_store(tmp_path / "closed", CU, BP)):
        assert await completeness(svc) == ("Complete", "BillingPeriodStatus")
    reopened = with_rows(tmp_path, BP, "billing_period.csv", {0: {"BillingPeriodStatus": "Open"}})
    async for svc in started(load_store(tmp_path / "open", CU, reopened)):
        # May 2026 ended long before this load: the old rule would call it Complete; the issuer says Open.
        assert await completeness(svc) == ("Partial", "BillingPeriodStatus")
    async for svc in started(load_store(tmp_path / "none", CU)):
        assert await completeness(svc) == ("Complete", "PeriodEnded")


# -- broken inputs ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tool", "args", "field", "says"),
    [
        ("listbillingperiods", {"billingPeriodStatus": "closed"}, "billingPeriodStatus", "Open, Closed"),
        ("listbillingperiods", {"billingPeriodStart": "May 2026"}, "billingPeriodStart", "not a date-time"),
        ("listinvoicedetails", {"chargeCategory": "usage"}, "chargeCategory", "Usage, Purchase, Tax"),
        ("listinvoicedetails", {"invoiceID": "x"}, "invoiceID", "unknown field"),
        ("listinvoicedetails", {"pageSize": 0}, "pageSize", "greater than"),
        ("reconcileinvoices", {"status": "mismatch"}, "status", "Matched, WithinTolerance, Mismatch"),
        ("reconcileinvoices", {"billingPeriodEnd": "2026-05-01T00:00:00"}, "billingPeriodEnd", "no time zone"),
        (
            "reconcileinvoices",
            {"billingPeriodStart": "2026-06-01", "billingPeriodEnd": "2026-05-01"},
            "billingPeriodEnd",
            "later than billingPeriodStart",
        ),
    ],
)
async def test_a_broken_filter_is_invalid_argument_naming_the_field_and_the_fix(
    bundle: Services, tool: str, args: dict[str, Any], field: str, says: str
) -> None:
    caller = Caller(Principal("local"), "test", REST_LIMITS, "http://x")
    with pytest.raises(FocusApiError) as caught:
        await Pipeline(bundle).invoke(tool, args, caller)
    assert isinstance(caught.value, InvalidArgument), caught.value.body()
    assert field in str(caught.value.body()) and says in caught.value.message, caught.value.message


def test_the_input_models_refuse_what_the_pipeline_refuses() -> None:
    with pytest.raises(ValidationError):
        ListBillingPeriodsInput.model_validate({"billingPeriodStatus": "Pending"})


# -- upstream mode's checks of what an upstream answers ---------------------------------------------------


def test_an_upstream_invoice_line_with_an_unknown_column_or_a_quoted_amount_is_a_contract_violation() -> None:
    check = record_check(invoices.INVOICE_DETAIL)
    line = {"InvoiceId": "INV-1", "BilledCost": D("1.5"), "x_Note": "kept"}
    assert check(dict(line), "data[0]", "GET /invoice-details")["BilledCost"] == D("1.5")
    with pytest.raises(ContractViolation, match="'ProviderName'"):
        check({**line, "ProviderName": "AWS"}, "data[0]", "GET /invoice-details")
    with pytest.raises(ContractViolation, match=r"data\[0\].BilledCost is not Decimal"):
        check({**line, "BilledCost": "1.5"}, "data[0]", "GET /invoice-details")
    with pytest.raises(ContractViolation, match="not Date/Time"):
        record_check(invoices.BILLING_PERIOD)({"BillingPeriodStart": "2026-05-01"}, "data[0]", "GET /billing-periods")


def test_an_upstream_reconciliation_row_must_hold_exact_numbers_and_a_known_status() -> None:
    row = {
        "InvoiceIssuerName": "AWS", "InvoiceId": "INV-1", "BillingCurrency": "USD", "billingAccountIds": ["1"],
        "billingPeriodStart": "2026-05-01T00:00:00Z", "billingPeriodEnd": "2026-06-01T00:00:00Z",
        "billingPeriodStatus": "Closed", "invoiceIssueStatus": "Issued", "invoicedBilledCost": D("2"),
        "costAndUsageBilledCost": D("2"), "difference": 0, "invoicedTax": 0, "costAndUsageTax": 0,
        "taxDifference": 0, "invoiceDetailRows": 1, "costAndUsageRows": 1, "toleranceRows": 1,
        "subunit": D("0.01"), "tolerance": 1, "withinTolerance": True, "closedPeriodCorrectionRows": 0,
        "closedPeriodCorrectionBilledCost": 0, "status": "Matched",
    }  # fmt: skip
    assert reconciliation_check(dict(row), "data[0]", "GET /invoices/reconciliation")["difference"] == 0
    with pytest.raises(ContractViolation, match="difference is not a decimal JSON number"):
        reconciliation_check({**row, "difference": "0"}, "data[0]", "GET /invoices/reconciliation")
    with pytest.raises(ContractViolation, match="status"):
        reconciliation_check({**row, "status": "Fine"}, "data[0]", "GET /invoices/reconciliation")


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("demo-periods")
    store = Store(path)
    try:
        assert generate_demo(store, rows=3000, seed=7).ok
    finally:
        store.close()
    return path


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ({}, ("Partial", "BillingPeriodStatus")),  # the demo's last month is Open
        ({"billingPeriodStart": "2026-01-01", "billingPeriodEnd": "2026-02-01"}, ("Complete", "BillingPeriodStatus")),
        ({"billingPeriodStart": "2026-06-01"}, ("Partial", "BillingPeriodStatus")),
        ({"chargePeriodStart": "2026-02-10", "chargePeriodEnd": "2026-03-20"}, ("Complete", "BillingPeriodStatus")),
        ({"chargePeriodStart": "2026-05-20"}, ("Partial", "BillingPeriodStatus")),
        ({"chargePeriodEnd": "2026-06-01"}, ("Complete", "BillingPeriodStatus")),
        ({"chargePeriodEnd": "2026-06-01T00:00:01Z"}, ("Partial", "BillingPeriodStatus")),
        ({"billingPeriodStart": "2030-01-01"}, ("Empty", None)),
    ],
)
async def test_completeness_judges_exactly_the_billing_periods_the_filters_cover(
    demo_dir: Path, args: dict[str, str], expected: tuple[str, str | None]
) -> None:
    settings = Settings(data_dir=demo_dir, token_secret="t", tokens="")  # type: ignore[arg-type]
    async with running_services(settings, load_demo=False) as svc:
        for _ in range(2):  # computed, then from the per-version memo: the same verdict
            page = await cost_and_usage.list_cost_and_usage(
                ListCostAndUsageInput.model_validate(args | {"pageSize": 1}), tool_context(svc)
            )
            assert (page.dataCompleteness, page.dataCompletenessRule) == expected
