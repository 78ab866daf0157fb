"""The seed filters, alone and combined, return exactly what a plain Python filter over the CSVs returns."""

from __future__ import annotations

import itertools
from decimal import Decimal
from typing import Any

import pytest
from conftest import decimal_sums, expected_rows, python_filter
from serving import PageWalk

from server.services import Services
from tools import handlers
from tools.context import REST_LIMITS
from tools.models import ListCostAndUsageInput
from tools.wire import decimal_text


async def walk(svc: Services, args: dict[str, Any], page_size: int = 1000) -> list[dict[str, Any]]:
    ctx = svc.context(REST_LIMITS)
    rows: list[dict[str, Any]] = []
    token = None
    walk = PageWalk("listcostandusage")
    while True:
        page = await handlers.list_cost_and_usage(
            ListCostAndUsageInput.model_validate({**args, "pageSize": page_size, "pageToken": token}), ctx
        )
        rows.extend(page.data)
        assert page.totalRecords == len(rows) or page.nextPageToken is not None
        token = walk.next(page.nextPageToken)
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
