"""The demo dataset: deterministic, realistic FOCUS 1.3 data that passes the loader and the validator."""

from __future__ import annotations

import glob
import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from datetime import date
from decimal import Decimal, localcontext
from importlib import resources
from pathlib import Path
from typing import Any

import pytest

from server.store import demo_load
from server.store.db import Store
from server.store.demo import generate_demo, plan_months
from server.store.demo_invoices import MISMATCH, WITHIN
from server.store.demo_load import reference
from server.store.demo_reference import Provider
from server.store.schema import BP_TABLE, CC_TABLE, CU_TABLE, FOCUS_TIMESTAMP_FORMAT, ID_TABLE, quote

ROWS = 5_000
ROOT = Path(__file__).resolve().parent.parent
VALIDATOR = ROOT.parent / "shared" / "tools" / "focus-validate"


def make_store(path: Path, rows: int = ROWS, seed: int = 42) -> Store:
    store = Store(path)
    summary = generate_demo(store, rows=rows, seed=seed)
    assert summary.ok, summary.as_json()["errors"]
    return store


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    store = make_store(tmp_path_factory.mktemp("demo"))
    yield store
    store.close()


def rows(store: Store, sql: str) -> list[tuple[Any, ...]]:
    cur = store.cursor()
    try:
        return cur.execute(sql).fetchall()
    finally:
        cur.close()


def digest(store: Store) -> list[tuple[Any, ...]]:
    """An order-independent digest of both tables, including the row ids the loader assigned."""
    return [
        rows(store, f"SELECT count(*), sum(hash(t)) FROM (SELECT * EXCLUDE (_load_id) FROM {table}) t")[0]
        for table in (CU_TABLE, CC_TABLE)
    ]


def test_the_same_seed_gives_identical_tables(demo: Store, tmp_path: Path) -> None:
    again = make_store(tmp_path / "again")
    try:
        assert digest(again) == digest(demo)
    finally:
        again.close()


def test_a_different_seed_gives_different_rows(demo: Store, tmp_path: Path) -> None:
    other = make_store(tmp_path / "other", seed=7)
    try:
        assert digest(other)[0] != digest(demo)[0]
        assert digest(other)[0][0] == ROWS
    finally:
        other.close()


def test_exactly_the_requested_rows_are_loaded_evenly_over_six_months(demo: Store) -> None:
    per_month = rows(demo, f"SELECT count(*) FROM {CU_TABLE} GROUP BY BillingPeriodStart ORDER BY BillingPeriodStart")
    assert [n for (n,) in per_month] == [833] * 5 + [835]


def test_the_plan_gives_the_remainder_to_the_last_month() -> None:
    plan = plan_months(1_003, 1)
    assert [m.usage + m.unused + m.alloc + m.fixed for m in plan] == [167] * 5 + [168]


def test_too_few_rows_or_a_bad_start_are_refused() -> None:
    with pytest.raises(ValueError, match="at least 600"):
        plan_months(599, 42)
    with pytest.raises(ValueError, match="first day"):
        plan_months(5_000, 42, start=date(2026, 1, 2))


def test_three_service_providers_with_their_own_services_and_regions(demo: Store) -> None:
    found = dict(rows(demo, f"SELECT ServiceProviderName, list(DISTINCT ServiceName) FROM {CU_TABLE} GROUP BY 1"))
    assert set(found) == {"AWS", "Microsoft", "Google Cloud"}
    assert {"AmazonEC2", "AmazonS3", "AmazonRDS", "AWSLambda"} <= set(found["AWS"])
    assert {"Virtual Machines", "Azure Blob Storage"} <= set(found["Microsoft"])
    assert {"Compute Engine", "Cloud Storage", "BigQuery"} <= set(found["Google Cloud"])
    regions = dict(rows(demo, f"SELECT ServiceProviderName, list(DISTINCT RegionId) FROM {CU_TABLE} GROUP BY 1"))
    assert {"us-east-1", "eu-west-1"} <= set(regions["AWS"])
    assert {"westeurope", "eastus"} <= set(regions["Microsoft"])
    assert "europe-west1" in regions["Google Cloud"]
    aws_accounts = rows(demo, f"SELECT DISTINCT SubAccountId FROM {CU_TABLE} WHERE ServiceProviderName = 'AWS'")
    assert all(re.fullmatch(r"\d{12}", a) for (a,) in aws_accounts if a is not None)


def test_provider_role_and_account_type_columns_are_filled(demo: Store) -> None:
    nulls = rows(
        demo,
        f"SELECT count(*) FILTER (WHERE ProviderName IS NULL OR PublisherName IS NULL OR HostProviderName IS NULL "
        f"OR InvoiceIssuerName IS NULL OR BillingAccountType IS NULL OR InvoiceId IS NULL "
        f"OR (SubAccountId IS NOT NULL AND SubAccountType IS NULL)), count(*) FILTER (WHERE ChargeClass IS NOT NULL) "
        f"FROM {CU_TABLE}",
    )
    assert nulls == [(0, 0)]


def test_service_subcategories_belong_to_their_category(demo: Store) -> None:
    catalog = json.loads(resources.files("tools.catalog_data").joinpath("v1_3/cost_and_usage.json").read_text("utf-8"))
    parents = next(c for c in catalog if c["column_id"] == "ServiceSubcategory")["allowed_value_parents"]
    pairs = rows(demo, f"SELECT DISTINCT ServiceName, ServiceCategory, ServiceSubcategory FROM {CU_TABLE}")
    assert all(parents[sub] == cat for _, cat, sub in pairs)
    assert len({name for name, _, _ in pairs}) == len(pairs)  # one category pair per service


def test_six_monthly_billing_periods_hold_their_hourly_or_daily_charge_periods(demo: Store) -> None:
    periods = rows(demo, f"SELECT DISTINCT BillingPeriodStart, BillingPeriodEnd FROM {CU_TABLE} ORDER BY 1")
    assert [(s.strftime("%Y-%m-%d"), e.strftime("%Y-%m-%d")) for s, e in periods] == [
        ("2026-01-01", "2026-02-01"), ("2026-02-01", "2026-03-01"), ("2026-03-01", "2026-04-01"),
        ("2026-04-01", "2026-05-01"), ("2026-05-01", "2026-06-01"), ("2026-06-01", "2026-07-01"),
    ]  # fmt: skip
    outside = rows(
        demo,
        f"SELECT count(*) FROM {CU_TABLE} WHERE ChargePeriodStart < BillingPeriodStart "
        f"OR ChargePeriodEnd > BillingPeriodEnd "
        f"OR ChargePeriodEnd - ChargePeriodStart NOT IN (INTERVAL 1 HOUR, INTERVAL 1 DAY)",
    )
    assert outside == [(0,)]


def test_every_charge_category_appears(demo: Store) -> None:
    found = {c for (c,) in rows(demo, f"SELECT DISTINCT ChargeCategory FROM {CU_TABLE}")}
    assert found == {"Usage", "Purchase", "Tax", "Credit", "Adjustment"}


def test_usage_is_priced_standard_dynamic_and_committed(demo: Store) -> None:
    found = {
        c for (c,) in rows(demo, f"SELECT DISTINCT PricingCategory FROM {CU_TABLE} WHERE ChargeCategory = 'Usage'")
    }
    assert found == {"Standard", "Dynamic", "Committed"}


def test_commitment_discounts_have_used_and_unused_rows_of_both_categories(demo: Store) -> None:
    found = rows(
        demo,
        f"SELECT DISTINCT CommitmentDiscountCategory, CommitmentDiscountStatus, CommitmentDiscountUnit "
        f"FROM {CU_TABLE} WHERE ChargeCategory = 'Usage' AND CommitmentDiscountId IS NOT NULL",
    )
    assert {(c, s) for c, s, _ in found} == {
        ("Spend", "Used"),
        ("Spend", "Unused"),
        ("Usage", "Used"),
        ("Usage", "Unused"),
    }
    assert {u for c, _, u in found if c == "Usage"} == {"Hours"}
    assert {u for c, _, u in found if c == "Spend"} == {"USD", "EUR"}
    unused_consumption = rows(
        demo,
        f"SELECT count(*) FROM {CU_TABLE} WHERE CommitmentDiscountStatus = 'Unused' AND ConsumedQuantity IS NOT NULL",
    )
    assert unused_consumption == [(0,)]


def test_purchases_are_prepaid_and_never_usage_based(demo: Store) -> None:
    found = rows(
        demo,
        f"SELECT DISTINCT ChargeFrequency, EffectiveCost, ResourceId = CommitmentDiscountId "
        f"FROM {CU_TABLE} WHERE ChargeCategory = 'Purchase'",
    )
    assert {f for f, _, _ in found} == {"Recurring", "One-Time"}
    assert {(e, same) for _, e, same in found} == {(Decimal(0), True)}


def test_a_recurring_commitment_fee_is_the_amortized_cost_of_its_used_and_unused_rows(demo: Store) -> None:
    mismatches = rows(
        demo,
        f"""SELECT p.BillingPeriodStart, p.CommitmentDiscountId, p.BilledCost, u.amortized
            FROM {CU_TABLE} p JOIN (
              SELECT BillingPeriodStart, CommitmentDiscountId, sum(EffectiveCost) AS amortized FROM {CU_TABLE}
              WHERE ChargeCategory = 'Usage' AND CommitmentDiscountId IS NOT NULL GROUP BY ALL
            ) u USING (BillingPeriodStart, CommitmentDiscountId)
            WHERE p.ChargeCategory = 'Purchase' AND p.ChargeFrequency = 'Recurring' AND p.BilledCost <> u.amortized""",
    )
    assert mismatches == []


def test_each_billing_account_bills_in_one_currency_and_two_currencies_appear(demo: Store) -> None:
    per_account = rows(demo, f"SELECT BillingAccountId, list(DISTINCT BillingCurrency) FROM {CU_TABLE} GROUP BY 1")
    assert all(len(currencies) == 1 for _, currencies in per_account)
    assert {c for _, (c,) in per_account} == {"USD", "EUR"}


def test_pricing_currency_columns_mirror_the_billing_currency_ones(demo: Store) -> None:
    differ = rows(
        demo,
        f"SELECT count(*) FROM {CU_TABLE} WHERE PricingCurrency <> BillingCurrency "
        f"OR PricingCurrencyEffectiveCost IS DISTINCT FROM EffectiveCost "
        f"OR PricingCurrencyListUnitPrice IS DISTINCT FROM ListUnitPrice "
        f"OR PricingCurrencyContractedUnitPrice IS DISTINCT FROM ContractedUnitPrice",
    )
    assert differ == [(0,)]


def test_contract_applied_names_contract_commitments_that_exist(demo: Store) -> None:
    elements = rows(
        demo,
        f"SELECT DISTINCT e->>'$.ContractId', e->>'$.ContractCommitmentId', json_keys(e) "
        f"FROM (SELECT unnest(json_extract(ContractApplied, '$.Elements[*]')) AS e FROM {CU_TABLE})",
    )
    known = set(rows(demo, f"SELECT ContractId, ContractCommitmentId FROM {CC_TABLE}"))
    assert elements and {(c, cc) for c, cc, _ in elements} <= known
    assert {tuple(keys) for _, _, keys in elements} == {
        ("ContractId", "ContractCommitmentId", "ContractCommitmentAppliedCost", "ContractCommitmentAppliedQuantity",
         "ContractCommitmentAppliedUnit")
    }  # fmt: skip


def test_the_rules_behind_the_validators_known_false_alarms_hold(demo: Store) -> None:
    """focus-validate cannot check these (model or engine bugs), so they are checked here."""
    broken = rows(
        demo,
        f"""SELECT
          count(*) FILTER (WHERE ResourceId IS NOT NULL AND ResourceType IS NULL),
          count(*) FILTER (WHERE SkuPriceId IS NOT NULL AND PricingCurrencyContractedUnitPrice IS NULL),
          count(*) FILTER (WHERE CommitmentDiscountId IS NULL AND CommitmentDiscountStatus IS NOT NULL),
          count(*) FILTER (WHERE CommitmentDiscountId IS NOT NULL AND ChargeCategory = 'Usage'
                           AND CommitmentDiscountStatus IS NULL),
          count(*) FILTER (WHERE CapacityReservationId IS NOT NULL OR CapacityReservationStatus IS NOT NULL)
        FROM {CU_TABLE}""",
    )
    assert broken == [(0, 0, 0, 0, 0)]
    shapes = rows(
        demo,
        f"""SELECT DISTINCT json_type(json_extract(e, '$.ContractCommitmentAppliedCost')) = 'NULL',
                  json_type(json_extract(e, '$.ContractCommitmentAppliedQuantity')) = 'NULL',
                  json_type(json_extract(e, '$.ContractCommitmentAppliedUnit')) = 'NULL'
            FROM (SELECT unnest(json_extract(ContractApplied, '$.Elements[*]')) AS e FROM {CU_TABLE})""",
    )
    # a cost-based element (no quantity, no unit) or a quantity-based one (quantity and unit, no cost)
    assert set(shapes) == {(False, True, True), (True, False, False)}


def test_split_allocation_ratios_sum_to_exactly_one_per_origin_charge(demo: Store) -> None:
    origins = rows(
        demo,
        f"SELECT sum(CAST(AllocatedMethodDetails->>'$.Elements[0].AllocatedRatio' AS DECIMAL(18,6))), "
        f"sum(PricingQuantity), count(*), count(AllocatedResourceId) FROM {CU_TABLE} "
        f"WHERE AllocatedMethodId IS NOT NULL GROUP BY ResourceId, ChargePeriodStart, AllocatedMethodId",
    )
    assert origins and set(origins) == {(Decimal(1), Decimal(1), 4, 3)}


def test_list_and_contracted_costs_are_exactly_unit_price_times_quantity(demo: Store) -> None:
    found = rows(
        demo,
        f"SELECT ListUnitPrice, ContractedUnitPrice, PricingQuantity, ListCost, ContractedCost FROM {CU_TABLE} "
        f"WHERE PricingQuantity IS NOT NULL",
    )
    with localcontext() as ctx:
        ctx.prec = 80
        assert all(lp * q == lc and cp * q == cc for lp, cp, q, lc, cc in found)
    assert len(found) > ROWS * 0.9
    places = max(-(c.normalize().as_tuple().exponent) for row in found for c in row[3:])
    assert places >= 12  # exact decimals with many places, not floats


def test_no_amount_carries_more_than_14_decimal_places(demo: Store) -> None:
    """The generator's intermediate DECIMAL(38,16) casts therefore never rounded anything."""
    columns = ("BilledCost", "EffectiveCost", "ListCost", "ContractedCost", "PricingQuantity", "ConsumedQuantity",
               "CommitmentDiscountQuantity", "ContractedUnitPrice")  # fmt: skip
    checks = ", ".join(f"count(*) FILTER (WHERE {c} <> round({c}, 14))" for c in columns)
    assert rows(demo, f"SELECT {checks} FROM {CU_TABLE}") == [(0,) * len(columns)]


def test_a_sku_price_has_one_sku_one_list_price_and_one_contracted_price(demo: Store) -> None:
    found = rows(
        demo,
        f"SELECT count(*) FROM (SELECT SkuPriceId FROM {CU_TABLE} WHERE SkuPriceId IS NOT NULL GROUP BY 1 "
        f"HAVING count(DISTINCT SkuId) > 1 OR count(DISTINCT ListUnitPrice) > 1 "
        f"OR count(DISTINCT ContractedUnitPrice) > 1)",
    )
    assert found == [(0,)]


def test_prices_and_quantities_are_null_without_a_sku_price(demo: Store) -> None:
    found = rows(
        demo,
        f"SELECT count(*) FROM {CU_TABLE} WHERE SkuPriceId IS NULL AND (ListUnitPrice IS NOT NULL "
        f"OR ContractedUnitPrice IS NOT NULL OR PricingQuantity IS NOT NULL OR PricingCategory IS NOT NULL "
        f"OR ConsumedQuantity IS NOT NULL OR PricingUnit IS NOT NULL OR SkuPriceDetails IS NOT NULL)",
    )
    assert found == [(0,)]


def test_tax_rows_have_no_sku_quantity_price_or_resource(demo: Store) -> None:
    found = rows(
        demo,
        f"SELECT count(*), count(SkuId), count(SkuPriceId), count(PricingQuantity), count(ListUnitPrice), "
        f"count(ResourceId) FROM {CU_TABLE} WHERE ChargeCategory = 'Tax'",
    )
    assert found[0][0] > 0 and found[0][1:] == (0, 0, 0, 0, 0)


def test_credits_are_negative(demo: Store) -> None:
    (count, positive), *_ = rows(
        demo,
        f"SELECT count(*), count(*) FILTER (WHERE BilledCost >= 0) FROM {CU_TABLE} WHERE ChargeCategory = 'Credit'",
    )
    assert count > 0 and positive == 0


def test_tags_and_price_details_are_flat_json_objects(demo: Store) -> None:
    for column in ("Tags", "AllocatedTags", "SkuPriceDetails"):
        values = rows(demo, f"SELECT DISTINCT {quote(column)} FROM {CU_TABLE} WHERE {quote(column)} IS NOT NULL")
        parsed = [json.loads(v) for (v,) in values]
        assert parsed and all(isinstance(o, dict) for o in parsed), column
        assert all(not isinstance(v, dict | list) for o in parsed for v in o.values()), column


def test_the_store_is_flagged_as_demo_data_with_its_seed(demo: Store) -> None:
    assert (demo.get_meta("demo"), demo.get_meta("demo_seed")) == ("true", "42")
    assert rows(demo, "SELECT DISTINCT demo FROM loads") == [(True,)]


def test_the_work_folder_is_removed(demo: Store) -> None:
    assert not list((demo.data_dir / "tmp").glob("demo-*"))


# -- pinned output and the reference data -------------------------------------------------------------

D = Decimal
# (currency, rows, BilledCost, EffectiveCost, ListCost, ContractedCost, PricingQuantity) of --rows 600 --seed 42
PINNED_COST_AND_USAGE = [
    ("EUR", 129, D("48948.124106952704"), D("286.119007752704"), D("48970.9079019008"), D("48948.620553672704"),
     D("195737.9286")),
    ("USD", 471, D("1322.358274463"), D("1322.358274463"), D("1410.1449383246"), D("1373.964676629"),
     D("3292061.9612021402")),
]  # fmt: skip
PINNED_CHARGES = [("Adjustment", 24), ("Credit", 24), ("Purchase", 25), ("Tax", 192), ("Usage", 335)]
PINNED_COMMITMENTS = [("EUR", 2, D("63662.4"), None), ("USD", 6, D("2191933.7088"), D("368256"))]
PINNED_ROWS_MD5 = "2913ba58268c71a89a06dd692542ec1f"  # kind, SKU price, resource, hour and costs of every row, in order


def test_a_small_demo_is_exactly_the_pinned_one(tmp_path: Path) -> None:
    """Any change to the reference data or to the SQL changes these: update them only on purpose."""
    store = make_store(tmp_path / "pinned", rows=600, seed=42)
    try:
        money = rows(
            store,
            f"SELECT BillingCurrency, count(*), sum(BilledCost), sum(EffectiveCost), sum(ListCost), "
            f"sum(ContractedCost), sum(PricingQuantity) FROM {CU_TABLE} GROUP BY 1 ORDER BY 1",
        )
        charges = rows(store, f"SELECT ChargeCategory, count(*) FROM {CU_TABLE} GROUP BY 1 ORDER BY 1")
        commitments = rows(
            store,
            f"SELECT BillingCurrency, count(*), sum(ContractCommitmentCost), sum(ContractCommitmentQuantity) "
            f"FROM {CC_TABLE} GROUP BY 1 ORDER BY 1",
        )
        assert (money, charges, commitments) == (PINNED_COST_AND_USAGE, PINNED_CHARGES, PINNED_COMMITMENTS)
        line = (
            "concat_ws('|', ChargeCategory, SkuPriceId, ResourceId, strftime(ChargePeriodStart, '%Y-%m-%dT%H:%M:%S'), "
            "CAST(BilledCost AS VARCHAR), CAST(EffectiveCost AS VARCHAR))"
        )
        digest = rows(store, f"SELECT md5(string_agg({line}, chr(10) ORDER BY _row_id)) FROM {CU_TABLE}")
        assert digest == [(PINNED_ROWS_MD5,)]
    finally:
        store.close()


# The FOCUS 1.4 invoices of --rows 600 --seed 42 (server/store/demo_invoices.py), pinned like the rows above.
PINNED_BILLING_PERIODS = [("Closed", 15), ("Open", 3)]
PINNED_INVOICE_LINES = [
    ("EUR", "Issued", 21, D("48982.20034150016")), ("EUR", "Open", 4, D("-34.076234547456")),
    ("USD", "Issued", 70, D("973.4025273659")), ("USD", "Open", 14, D("351.7097470971")),
]  # fmt: skip
PINNED_INVOICE_MD5 = "def6bcc8a54decd67846553d2e8c1994"  # id, BilledCost and last update of every line, in order


def test_the_small_demos_invoices_are_exactly_the_pinned_ones(tmp_path: Path) -> None:
    """Billing Period and Invoice Detail rows: change these only on purpose, as the Cost and Usage pins."""
    store = make_store(tmp_path / "pinned", rows=600, seed=42)
    try:
        periods = rows(store, f"SELECT BillingPeriodStatus, count(*) FROM {BP_TABLE} GROUP BY 1 ORDER BY 1")
        lines = rows(
            store,
            f"SELECT BillingCurrency, InvoiceIssueStatus, count(*), sum(BilledCost) FROM {ID_TABLE} "
            "GROUP BY ALL ORDER BY 1, 2",
        )
        assert (periods, lines) == (PINNED_BILLING_PERIODS, PINNED_INVOICE_LINES)
        line = (
            "concat_ws('|', InvoiceDetailId, CAST(BilledCost AS VARCHAR), "
            "strftime(InvoiceDetailLastUpdated, '%Y-%m-%dT%H:%M:%S'))"
        )
        digest = rows(store, f"SELECT md5(string_agg({line}, chr(10) ORDER BY _row_id)) FROM {ID_TABLE}")
        assert digest == [(PINNED_INVOICE_MD5,)]
        # Every currency's invoices hold its Cost and Usage BilledCost plus the two deliberate variances (USD).
        billed = dict(rows(store, f"SELECT BillingCurrency, sum(BilledCost) FROM {CU_TABLE} GROUP BY 1"))
        invoiced = {c: sum((s for cur, _, _, s in PINNED_INVOICE_LINES if cur == c), D(0)) for c in billed}
        assert invoiced == {"EUR": billed["EUR"], "USD": billed["USD"] + MISMATCH + WITHIN}
    finally:
        store.close()


def test_the_reference_data_is_read_once_with_exact_decimals() -> None:
    ref = reference()
    assert reference() is ref
    lambda_requests = next(k for k in ref.skus if k.desc == "Lambda requests")
    assert lambda_requests.price_usd == D("0.0000002") and isinstance(lambda_requests.price_usd, Decimal)
    assert str(ref.negotiated[0].total) == "180000.00"  # the digits (and scale) of the JSON string
    assert [str(b.contracted_factor) for b in ref.billing_accounts] == ["0.94", "0.90", "0.88", "1.00"]
    assert len(ref.skus) == sum(len(s.skus) for s in ref.services) + len(ref.commitments)


def test_the_reference_loader_refuses_floats_unknown_keys_and_wrong_types() -> None:
    with pytest.raises(ValueError, match="must be a JSON string"):
        json.loads('{"price_usd": 0.1}', parse_float=demo_load._no_float)
    record = demo_load._Record({"name": "AWS", "tag_template": "{}", "extra": 1}, "providers[0]")
    with pytest.raises(ValueError, match=r"unknown keys \['extra'\]"):
        demo_load._fields(record, Provider)
    with pytest.raises(ValueError, match="is not int"):
        demo_load._Record({"span": True}, "sku").integer("span")
    with pytest.raises(ValueError, match="is not a decimal number"):
        demo_load._Record({"step": "NaN"}, "sku").decimal("step")


# -- the official validator ---------------------------------------------------------------------------


def export_csv(store: Store, table: str, path: Path) -> Path:
    """A FOCUS CSV of one table: UTC timestamps as YYYY-MM-DDTHH:MM:SSZ, decimals as plain text."""
    described = rows(store, f"DESCRIBE {table}")
    cols = [
        f"strftime({quote(name)}, '{FOCUS_TIMESTAMP_FORMAT}') AS {quote(name)}" if kind == "TIMESTAMP" else quote(name)
        for name, kind, *_ in described
        if not name.startswith("_")
    ]
    cur = store.cursor()
    try:
        cur.execute(f"COPY (SELECT {', '.join(cols)} FROM {table} ORDER BY _row_id) TO '{path}' (HEADER)")
    finally:
        cur.close()
    return path


def python312_available() -> bool:
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "focus-validator-1.3" / "venv" / ".ready"
    if cache.exists():
        return True
    root = os.environ.get("PYENV_ROOT") or str(Path.home() / ".pyenv")
    candidates = [*glob.glob(f"{root}/versions/3.12*/bin/python3.12"), shutil.which("python3.12")]
    check = "import sys; assert sys.version_info[:2] == (3, 12)"
    return any(p and subprocess.run([p, "-c", check], capture_output=True).returncode == 0 for p in candidates)


def validate(path: Path, dataset: str) -> str:
    done = subprocess.run(
        [str(VALIDATOR), str(path), "--dataset", dataset], capture_output=True, text=True, timeout=900
    )
    if "pip install failed" in done.stderr or "Python 3.12 not found" in done.stderr:
        pytest.fail(f"focus-validate could not set itself up (`make tools` prepares it): {done.stderr.strip()[-200:]}")
    assert re.search(r"^focus-validate: \d+ rules passed", done.stdout, re.M), done.stdout + done.stderr
    return done.stdout


@pytest.mark.slow
@pytest.mark.timeout(1200)  # two validator runs; its first use outside `make test` also builds its venv
def test_the_official_validator_finds_nothing_beyond_its_known_false_alarms(tmp_path: Path) -> None:
    assert VALIDATOR.is_file(), f"focus-validate not found at {VALIDATOR} (it comes with ../shared)"
    assert python312_available(), "focus-validate needs Python 3.12, which is not installed (e.g. pyenv install 3.12)"
    store = make_store(tmp_path / "store", rows=2_000, seed=3)
    try:
        usage = export_csv(store, CU_TABLE, tmp_path / "demo_cost_and_usage.csv")
        commitments = export_csv(store, CC_TABLE, tmp_path / "demo_contract_commitment.csv")
    finally:
        store.close()
    report = validate(usage, "CostAndUsage")
    assert "Failing rules to look at" not in report, report
    report = validate(commitments, "ContractCommitment")
    assert "Failing rules to look at" not in report and " 0 failed" in report, report
