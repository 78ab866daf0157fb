"""The packaged FOCUS 1.3 column catalog: complete, faithful to the spec digest, and self-contained."""

from __future__ import annotations

import json
import subprocess
import sys
from importlib import resources
from pathlib import Path

import pytest
from conftest import AWS_12, AWS_13, ROOT, read_csv

from tools.catalog import (
    FOCUS_VERSIONS,
    Dataset,
    DataType,
    columns_introduced_in,
    contract_commitment,
    cost_and_usage,
    cost_and_usage_ids_at,
    detect_version,
    is_custom_column,
)

SPEC = ROOT.parent / "shared" / "focus-spec"
SPEC_FILES = [("cost_and_usage_1_3.json", cost_and_usage), ("contract_commitment_1_3.json", contract_commitment)]


def test_cost_and_usage_has_the_65_columns_of_focus_1_3() -> None:
    catalog = cost_and_usage()

    assert catalog.dataset is Dataset.COST_AND_USAGE
    assert len(catalog.columns) == 65
    assert len(set(catalog.ids)) == 65


def test_contract_commitment_has_its_13_columns() -> None:
    catalog = contract_commitment()

    assert catalog.dataset is Dataset.CONTRACT_COMMITMENT
    assert len(catalog.columns) == 13
    assert "ContractCommitmentId" in catalog
    assert "BilledCost" not in catalog


@pytest.mark.parametrize(("name", "catalog"), SPEC_FILES, ids=["cost_and_usage", "contract_commitment"])
def test_the_packaged_catalog_matches_the_spec_digest_column_for_column(name: str, catalog: object) -> None:
    spec = sorted(json.loads((SPEC / name).read_text(encoding="utf-8")), key=lambda c: c["spec_order"])
    packaged = catalog()  # type: ignore[operator]

    assert list(packaged.ids) == [c["column_id"] for c in spec]
    for column, source in zip(packaged.columns, spec, strict=True):
        assert column.data_type.value == source["data_type"], column.id
        assert column.feature_level == source["feature_level"], column.id
        assert column.allows_nulls == source["allows_nulls"], column.id
        assert column.deprecated == source["deprecated"], column.id
        assert column.introduced_in == source["introduced_in"], column.id
        assert column.allowed_values == (tuple(source["allowed_values"]) if source["allowed_values"] else None)


def test_charge_category_allows_the_five_focus_values() -> None:
    column = cost_and_usage()["ChargeCategory"]

    assert set(column.allowed_values or ()) == {"Usage", "Purchase", "Tax", "Credit", "Adjustment"}
    assert column.is_mandatory
    assert not column.allows_nulls


def test_provider_name_and_publisher_name_are_deprecated() -> None:
    catalog = cost_and_usage()

    assert [c.id for c in catalog.columns if c.deprecated] == ["ProviderName", "PublisherName"]
    assert catalog["ProviderName"].replaced_by == "ServiceProviderName"
    assert catalog["PublisherName"].replaced_by is None
    assert not catalog["ServiceProviderName"].deprecated
    assert catalog["ServiceProviderName"].introduced_in == "1.3"
    assert catalog["HostProviderName"].introduced_in == "1.3"


def test_money_columns_are_decimal_and_periods_are_date_times() -> None:
    catalog = cost_and_usage()

    decimals = {c.id for c in catalog.of_type(DataType.DECIMAL)}
    assert {"BilledCost", "EffectiveCost", "ListCost", "ContractedCost"} <= decimals
    assert {"BillingPeriodStart", "ChargePeriodEnd"} <= {c.id for c in catalog.of_type(DataType.DATETIME)}
    assert {"Tags", "SkuPriceDetails", "ContractApplied"} <= {c.id for c in catalog.of_type(DataType.JSON)}
    assert contract_commitment()["ContractCommitmentCost"].data_type is DataType.DECIMAL


def test_each_version_adds_columns_and_all_of_them_make_up_1_3() -> None:
    added = {v: columns_introduced_in(v) for v in FOCUS_VERSIONS}

    assert all(added.values())
    assert sum(len(a) for v, a in added.items() if v != "1.4") == 65
    assert added["1.4"] == {"CommitmentProgramEligibilityDetails", "InvoiceDetailId"}
    assert cost_and_usage_ids_at("1.3") == frozenset(cost_and_usage().ids)
    assert cost_and_usage_ids_at("1.0") < cost_and_usage_ids_at("1.1") < cost_and_usage_ids_at("1.2")
    assert {"ServiceProviderName", "HostProviderName", "ContractApplied"} <= added["1.3"]


@pytest.mark.parametrize("version", FOCUS_VERSIONS)
def test_detect_version_names_the_version_of_a_column_set(version: str) -> None:
    assert detect_version(set(cost_and_usage_ids_at(version))) == version


def test_detect_version_reads_the_sample_headers() -> None:
    assert detect_version(set(read_csv(AWS_12)[0])) == "1.2"
    assert detect_version(set(read_csv(AWS_13)[0])) == "1.3"
    assert set(read_csv(AWS_12)[0]) == cost_and_usage_ids_at("1.2")


def test_detect_version_takes_the_newest_column_present() -> None:
    # A 1.0 file plus one 1.2 column is a (partial) 1.2 file; custom columns do not count.
    columns = set(cost_and_usage_ids_at("1.0")) | {"InvoiceId", "x_Anything"}

    assert detect_version(columns) == "1.2"
    assert detect_version({"BilledCost", "x_Custom"}) == "1.0"


def test_custom_columns_are_those_with_the_x_prefix() -> None:
    assert is_custom_column("x_CostCenter")
    assert not is_custom_column("CostCenter")
    assert not is_custom_column("X_CostCenter")


def test_the_catalog_ships_as_package_data() -> None:
    data = resources.files("tools.catalog_data")

    shipped = (
        ("v1_3/cost_and_usage.json", 65),
        ("v1_3/contract_commitment.json", 13),
        ("v1_4/cost_and_usage.json", 65),
        ("v1_4/contract_commitment.json", 30),
        ("v1_4/billing_period.json", 6),
        ("v1_4/invoice_detail.json", 22),
    )
    for name, size in shipped:
        assert data.joinpath(name).is_file(), name
        assert len(json.loads(data.joinpath(name).read_text(encoding="utf-8"))) == size


def test_the_catalog_loads_without_reading_the_shared_folder(tmp_path: Path) -> None:
    # A fresh interpreter, outside the repo, that records every file it opens.
    script = """
import json, sys
opened = []
sys.addaudithook(lambda event, args: opened.append(str(args[0])) if event == "open" else None)
from tools.catalog import contract_commitment, cost_and_usage
assert len(cost_and_usage().columns) == 65 and len(contract_commitment().columns) == 13
print(json.dumps(opened))
"""
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False
    )

    assert result.returncode == 0, result.stderr
    opened = [Path(p) for p in json.loads(result.stdout)]
    assert not [p for p in opened if "shared" in p.parts]
    assert {p.name for p in opened if p.parent.name == "v1_3"} >= {"cost_and_usage.json", "contract_commitment.json"}
