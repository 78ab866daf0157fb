"""The seed filters, alone and combined, return exactly what a plain Python filter over the CSVs returns."""

from __future__ import annotations

import csv
import itertools
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from conftest import AWS_13, decimal_sums, expected_rows, python_filter, read_csv, tool_context
from mcp.client import Client
from serving import PageWalk

from server.auth import TokenStore
from server.mcp.server import FocusMCPServer
from server.pipeline import Pipeline
from server.rest.app import create_app
from server.services import Services, running_services
from server.settings import Settings
from server.store.db import Store
from server.store.loader import load_files
from tools import cost_and_usage
from tools.context import REST_LIMITS
from tools.cost_and_usage import ListCostAndUsageInput
from tools.wire import decimal_text


async def walk(svc: Services, args: dict[str, Any], page_size: int = 1000) -> list[dict[str, Any]]:
    ctx = tool_context(svc, REST_LIMITS)
    rows: list[dict[str, Any]] = []
    token = None
    walk = PageWalk("listcostandusage")
    while True:
        page = await cost_and_usage.list_cost_and_usage(
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


BEYOND_THE_SEED = [
    {"chargePeriodStart": "2026-05-02T00:00:00Z"},
    {"chargePeriodEnd": "2026-05-02T00:00:00Z"},
    {"chargePeriodStart": "2026-05-01T09:00:00Z", "chargePeriodEnd": "2026-05-01T18:00:00Z"},
    {"chargePeriodStart": "2026-05-01"},  # a plain date is midnight UTC
    {"billingAccountId": "100000000002"},
    {"billingAccountId": "11C2D3-E4F506-A7B8C9"},
    {"chargeClass": "null"},
    {"chargeClass": "Correction"},
    {"pricingCategory": "Committed"},
    {"pricingCategory": "Standard"},
    {"commitmentDiscountId": "arn:aws:savingsplans:us-west-2::savingsplan/e72e310275dff6c1"},
    {"resourceType": "EC2 Instance"},
    {"resourceType": "ec2 instance"},  # case-sensitive: nothing
    {"tag": ["Environment=prod"]},
    {"tag": ["environment=prod"]},  # keys are case-sensitive too: other rows
    {"tag": ["Environment=prod", "Owner=team-data"]},  # all of them
    {"tag": ["Environment="]},  # an empty value is a value
    # combined with seed filters
    {"tag": ["Environment=prod"], "providerName": "AWS", "chargeCategory": "Usage"},
    {"billingAccountId": "100000000002", "billingCurrency": "USD", "pricingCategory": "Committed"},
    {"chargePeriodStart": "2026-05-02T00:00:00Z", "serviceCategory": "Compute", "billingPeriodStart": "2026-05-01"},
    {"resourceType": "Savings Plan", "chargeCategory": "Purchase", "subAccountId": "sub-2"},
]


@pytest.mark.parametrize("args", BEYOND_THE_SEED, ids=lambda a: ",".join(f"{k}={v}" for k, v in a.items()))
async def test_each_filter_beyond_the_seed_returns_exactly_the_rows_a_python_filter_returns_on_rest_and_mcp(
    multi: Services, args: dict[str, Any]
) -> None:
    expected = python_filter(expected_rows(), args)
    got = await walk(multi, args)
    assert sorted(map(key, got)) == sorted(map(key, expected))
    assert decimal_sums(got) == decimal_sums(expected)
    over_rest = await rest_walk(multi, args)
    over_mcp = await mcp_walk(multi, args)
    assert sorted(map(key, over_rest)) == sorted(map(key, over_mcp)) == sorted(map(key, expected))
    assert decimal_sums(over_rest) == decimal_sums(over_mcp) == decimal_sums(expected)


async def rest_walk(svc: Services, args: dict[str, Any]) -> list[dict[str, Any]]:
    params = [(k, v) for k, given in args.items() for v in (given if isinstance(given, list) else [given])]
    rows: list[dict[str, Any]] = []
    token: str | None = None
    async with TestClient(TestServer(create_app(Pipeline(svc), TokenStore([])))) as client:
        for _ in range(100):
            page = [*params, ("pageSize", "17"), *([("pageToken", token)] if token else [])]
            reply = await client.get("/cost-and-usage", params=page)
            body = json.loads(await reply.text(), parse_float=Decimal)
            assert reply.status == 200, body
            rows += body["data"]
            token = body["nextPageToken"]
            if token is None:
                return rows
    raise AssertionError("the REST walk did not end within 100 pages")


async def mcp_walk(svc: Services, args: dict[str, Any]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    token = None
    async with Client(FocusMCPServer(Pipeline(svc))) as client:
        for _ in range(100):
            result = await client.call_tool("listcostandusage", {**args, "pageSize": 23, "pageToken": token})
            assert not result.is_error and result.structured_content is not None, result.content
            rows += result.structured_content["data"]
            token = result.structured_content["nextPageToken"]
            if token is None:
                return rows
    raise AssertionError("the MCP walk did not end within 100 pages")


@pytest.mark.parametrize(
    ("args", "field"),
    [
        ({"tag": ["Environment"]}, "tag.0"),
        ({"tag": ["=prod"]}, "tag.0"),
        ({"chargeClass": "correction"}, "chargeClass"),
        ({"pricingCategory": "committed"}, "pricingCategory"),
        ({"chargePeriodStart": "yesterday"}, "chargePeriodStart"),
    ],
)
async def test_a_malformed_new_filter_is_invalid_argument_naming_the_field(
    multi: Services, args: dict[str, Any], field: str
) -> None:
    async with TestClient(TestServer(create_app(Pipeline(multi), TokenStore([])))) as client:
        params = [(k, v) for k, given in args.items() for v in (given if isinstance(given, list) else [given])]
        body = await (await client.get("/cost-and-usage", params=params)).json()
    assert body["code"] == "invalid_argument"
    assert [e["field"] for e in body["details"]["errors"]] == [field]


async def test_corrections_are_found_by_charge_class(tmp_path: Path) -> None:
    """The samples hold no Correction rows, so some are made: a rewrite of the AWS sample."""
    rows = read_csv(AWS_13)
    for row in rows[::7]:
        row["ChargeClass"] = "Correction"
    path = tmp_path / "corrections.csv"
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    store = Store(tmp_path / "store")
    try:
        assert load_files(store, [path]).ok
    finally:
        store.close()
    settings = Settings(data_dir=tmp_path / "store", token_secret="t")  # type: ignore[arg-type]
    async with running_services(settings, load_demo=False) as svc:
        for value in ("Correction", "null"):
            got = await walk(svc, {"chargeClass": value})
            expected = python_filter(rows, {"chargeClass": value})
            assert len(expected) == (15 if value == "Correction" else 85)
            assert sorted(map(key, got)) == sorted(map(key, expected))
            assert decimal_sums(got) == decimal_sums(expected)


async def test_sums_per_currency_are_exact_and_never_mixed(multi: Services) -> None:
    got = await walk(multi, {})
    sums = decimal_sums(got)
    assert sums == decimal_sums(expected_rows())
    assert {currency for currency, _ in sums} == {"USD", "EUR"}
    assert all(isinstance(r["BilledCost"], Decimal) for r in got)


@pytest.mark.parametrize("which", ["billingPeriod", "chargePeriod"])
async def test_an_end_not_after_its_start_is_invalid_argument(multi: Services, which: str) -> None:
    async with TestClient(TestServer(create_app(Pipeline(multi), TokenStore([])))) as client:
        params = {f"{which}Start": "2026-05-02", f"{which}End": "2026-05-02T00:00:00Z"}
        body = await (await client.get("/cost-and-usage", params=params)).json()
    assert body["code"] == "invalid_argument" and body["details"]["field"] == f"{which}End"
