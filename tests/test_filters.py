"""The seed filters, alone and combined, return exactly what a plain Python filter over the CSVs returns."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from conftest import AWS_13, AWS_CREDITS, CONSOLIDATED, GCP_12, decimal_sums, read_csv

from server.services import Services, running_services
from server.settings import Settings
from server.store.db import Store
from server.store.loader import load_files
from tools import handlers
from tools.context import REST_LIMITS
from tools.models import ListCostAndUsageInput, parse_instant
from tools.wire import decimal_text

FILES = (AWS_13, AWS_CREDITS, CONSOLIDATED, GCP_12)
# seed parameter -> FOCUS column it matches
COLUMN = {
    "chargeCategory": "ChargeCategory",
    "providerName": "ServiceProviderName",
    "serviceName": "ServiceName",
    "serviceCategory": "ServiceCategory",
    "region": "RegionId",
    "resourceId": "ResourceId",
    "subAccountId": "SubAccountId",
    "billingCurrency": "BillingCurrency",
}


def expected_rows() -> list[dict[str, str]]:
    rows = []
    for path in FILES:
        for row in read_csv(path):
            row.setdefault("ServiceProviderName", row["ProviderName"])  # the 1.2 -> 1.3 mapping
            rows.append(row)
    return rows


def python_filter(rows: list[dict[str, str]], args: dict[str, Any]) -> list[dict[str, str]]:
    out = []
    for row in rows:
        if "billingPeriodStart" in args and parse_instant(row["BillingPeriodStart"], "x") < parse_instant(
            args["billingPeriodStart"], "x"
        ):
            continue
        if "billingPeriodEnd" in args and parse_instant(row["BillingPeriodStart"], "x") >= parse_instant(
            args["billingPeriodEnd"], "x"
        ):
            continue
        if all(row.get(COLUMN[k]) == v for k, v in args.items() if k in COLUMN):
            out.append(row)
    return out


@pytest.fixture(scope="module")
def multi_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("multi")
    store = Store(path)
    try:
        assert load_files(store, list(FILES)).ok
    finally:
        store.close()
    return path


@pytest.fixture
async def multi(multi_dir: Path) -> AsyncIterator[Services]:
    settings = Settings(data_dir=multi_dir, token_secret="t")  # type: ignore[arg-type]
    async with running_services(settings, load_demo=False) as svc:
        yield svc


async def walk(svc: Services, args: dict[str, Any], page_size: int = 1000) -> list[dict[str, Any]]:
    ctx = svc.context(REST_LIMITS)
    rows: list[dict[str, Any]] = []
    token = None
    while True:
        page = await handlers.list_cost_and_usage(
            ListCostAndUsageInput.model_validate({**args, "pageSize": page_size, "pageToken": token}), ctx
        )
        rows.extend(page.data)
        assert page.totalRecords == len(rows) or page.nextPageToken is not None
        token = page.nextPageToken
        if token is None:
            return rows


def key(row: dict[str, Any]) -> tuple[str, ...]:
    return (
        row["ResourceId"] or "",
        row["ChargePeriodStart"],
        decimal_text(Decimal(str(row["BilledCost"]))),
        row["ChargeDescription"] or "",
    )


SINGLE = [
    {"chargeCategory": "Usage"},
    {"chargeCategory": "Credit"},
    {"chargeCategory": "Tax"},
    {"providerName": "AWS"},
    {"providerName": "Google Cloud"},
    {"providerName": "Datadog"},
    {"serviceName": "AmazonEC2"},
    {"serviceCategory": "Compute"},
    {"region": "us-east-1"},
    {"resourceId": "arn:aws:ec2:instance/i-1"},
    {"subAccountId": "sub-2"},
    {"billingCurrency": "EUR"},
    {"billingCurrency": "USD"},
    {"billingPeriodStart": "2026-05-01T00:00:00Z"},
    {"billingPeriodEnd": "2026-05-01T00:00:00Z"},
    {"billingPeriodStart": "2026-05-01T00:00:00Z", "billingPeriodEnd": "2026-06-01T00:00:00Z"},
    {"providerName": "aws"},  # matches are case-sensitive: nothing
]


@pytest.mark.parametrize("args", SINGLE, ids=lambda a: ",".join(f"{k}={v}" for k, v in a.items()))
async def test_each_seed_filter_returns_exactly_the_rows_a_python_filter_returns(
    multi: Services, args: dict[str, Any]
) -> None:
    expected = python_filter(expected_rows(), args)
    got = await walk(multi, args)
    assert sorted(map(key, got)) == sorted(map(key, expected))
    assert decimal_sums(got) == decimal_sums(expected)


async def test_combined_filters_return_exactly_the_rows_a_python_filter_returns(multi: Services) -> None:
    rows = expected_rows()
    options = {
        "chargeCategory": ["Usage", "Purchase"],
        "providerName": ["AWS", "Google Cloud"],
        "serviceCategory": ["Compute", "Storage"],
        "billingCurrency": ["USD"],
        "billingPeriodStart": ["2026-05-01T00:00:00Z"],
    }
    checked = 0
    for a, b in itertools.combinations(options, 2):
        for va, vb in itertools.product(options[a], options[b]):
            args = {a: va, b: vb}
            expected = python_filter(rows, args)
            got = await walk(multi, args, page_size=13)
            assert sorted(map(key, got)) == sorted(map(key, expected)), args
            assert decimal_sums(got) == decimal_sums(expected), args
            checked += 1
    assert checked > 20


async def test_sums_per_currency_are_exact_and_never_mixed(multi: Services) -> None:
    got = await walk(multi, {})
    sums = decimal_sums(got)
    assert sums == decimal_sums(expected_rows())
    assert {currency for currency, _ in sums} == {"USD", "EUR"}
    assert all(isinstance(r["BilledCost"], Decimal) for r in got)
