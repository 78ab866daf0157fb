"""Answers an agent can afford: chosen columns, the size of a page, and a receipt that reproduces it."""

from __future__ import annotations

import csv
import json
import re
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pyarrow.parquet as pq
import pytest
from aiohttp.test_utils import TestClient, TestServer
from conftest import tool_context
from mcp.client import Client
from serving import PageWalk

from server.auth import LOCAL, TokenStore
from server.exports.service import ExportService
from server.mcp.server import FocusMCPServer
from server.pipeline import Pipeline
from server.rest.app import create_app
from server.services import Services, running_services
from server.settings import Settings
from server.store.db import Store
from server.store.demo import generate_demo
from tools import exports
from tools.context import REST_LIMITS
from tools.exports import ExportCostAndUsageInput
from tools.records import SUGGESTED_COLUMNS

COLUMNS = ["EffectiveCost", "ServiceName", "ChargePeriodStart", "Tags", "BillingCurrency"]


def exact(text: str) -> Any:
    return json.loads(text, parse_float=Decimal)


def decimals(value: Any) -> Any:
    """A JSON value with every number, and every decimal string (MCP's form of numbers), as a Decimal."""
    if isinstance(value, dict):
        return {k: decimals(v) for k, v in value.items()}
    if isinstance(value, list):
        return [decimals(v) for v in value]
    if isinstance(value, (int, float, Decimal)) and not isinstance(value, bool):
        return Decimal(str(value))
    if isinstance(value, str) and re.fullmatch(r"-?\d+(\.\d+)?", value):
        return Decimal(value)
    return value


def same(rest_rows: Any, mcp_rows: Any) -> bool:
    """REST writes exact JSON numbers, MCP exact decimal strings: the same rows, value for value."""
    return bool(decimals(rest_rows) == decimals(mcp_rows))


async def rest_pages(client: TestClient[Any, Any], params: dict[str, str]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    walk = PageWalk("columns walk")
    token = None
    while True:
        page = exact(
            await (await client.get("/cost-and-usage", params=params | ({"pageToken": token} if token else {}))).text()
        )
        rows += page["data"]
        token = walk.next(page["nextPageToken"])
        if token is None:
            return rows


async def test_rows_carry_exactly_the_asked_columns_in_order_with_the_full_rows_values(services: Services) -> None:
    async with TestClient(TestServer(create_app(Pipeline(services), TokenStore([])))) as client:
        full = await rest_pages(client, {"pageSize": "9"})
        narrow = await rest_pages(client, {"pageSize": "9", "columns": ",".join(COLUMNS)})
    assert len(narrow) == len(full) == 100
    assert all(list(row) == COLUMNS for row in narrow)
    assert narrow == [{c: row[c] for c in COLUMNS} for row in full]


async def test_a_page_token_stays_valid_when_the_columns_change_mid_walk(services: Services) -> None:
    async with TestClient(TestServer(create_app(Pipeline(services), TokenStore([])))) as client:
        first = exact(await (await client.get("/cost-and-usage", params={"pageSize": "40"})).text())
        rest = await rest_pages(client, {"pageSize": "40", "columns": "BilledCost,ResourceId"})
        again = exact(
            await (
                await client.get(
                    "/cost-and-usage",
                    params={"pageSize": "40", "columns": "BilledCost,ResourceId", "pageToken": first["nextPageToken"]},
                )
            ).text()
        )
    assert again["data"] == [{k: r[k] for k in ("BilledCost", "ResourceId")} for r in rest[40:80]]


async def test_mcp_rows_carry_the_asked_columns_and_the_commitments_list_too(services: Services) -> None:
    async with Client(FocusMCPServer(Pipeline(services))) as client:
        page = await client.call_tool("listcostandusage", {"columns": COLUMNS, "pageSize": 5})
        commitments = await client.call_tool(
            "listcontractcommitments", {"columns": ["ContractCommitmentId", "ContractCommitmentCost"]}
        )
    assert page.structured_content is not None and commitments.structured_content is not None
    # Over MCP, chosen columns come as arrays under a header: the names are not repeated on every row.
    assert page.structured_content["rowFormat"] == "arrays" and page.structured_content["columns"] == COLUMNS
    assert [len(r) for r in page.structured_content["data"]] == [len(COLUMNS)] * 5
    assert commitments.structured_content["columns"] == ["ContractCommitmentId", "ContractCommitmentCost"]


async def test_rows_as_arrays_hold_the_same_values_as_rows_as_objects_on_both_transports(services: Services) -> None:
    async with Client(FocusMCPServer(Pipeline(services))) as client:
        arrays = await client.call_tool("listcostandusage", {"columns": COLUMNS, "pageSize": 20})
        objects = await client.call_tool(
            "listcostandusage", {"columns": COLUMNS, "pageSize": 20, "rowFormat": "objects"}
        )
    async with TestClient(TestServer(create_app(Pipeline(services), TokenStore([])))) as rest:
        params = {"columns": ",".join(COLUMNS), "pageSize": "20", "rowFormat": "arrays"}
        over_rest = exact(await (await rest.get("/cost-and-usage", params=params)).text())
    assert arrays.structured_content is not None and objects.structured_content is not None
    as_objects = [dict(zip(COLUMNS, r, strict=True)) for r in arrays.structured_content["data"]]
    assert as_objects == objects.structured_content["data"]
    assert over_rest["columns"] == COLUMNS and len(over_rest["data"]) == 20


@pytest.mark.parametrize(
    ("columns", "needle"),
    [("BilledCosts", "BilledCost"), ("ServiceNam,EffectiveCost", "ServiceName"), ("BilledCost,BilledCost", "twice")],
)
async def test_unknown_or_repeated_columns_are_invalid_argument_with_close_matches(
    services: Services, columns: str, needle: str
) -> None:
    async with TestClient(TestServer(create_app(Pipeline(services), TokenStore([])))) as client:
        reply = await client.get("/cost-and-usage", params={"columns": columns})
        body = await reply.json()
    assert reply.status == 400 and body["code"] == "invalid_argument"
    assert needle in body["message"] and body["details"]["errors"][0]["field"] == "columns"


async def test_an_x_column_the_data_does_not_have_is_invalid_argument(services: Services) -> None:
    async with TestClient(TestServer(create_app(Pipeline(services), TokenStore([])))) as client:
        body = await (await client.get("/cost-and-usage", params={"columns": "BilledCost,x_Nope"})).json()
    assert body["code"] == "invalid_argument" and "x_Nope" in body["message"]


@pytest.mark.parametrize("fmt", ["csv", "parquet", "json"])
async def test_an_export_with_columns_has_exactly_those_columns_in_every_format(services: Services, fmt: str) -> None:
    ctx = tool_context(services, REST_LIMITS)
    job = await exports.export_cost_and_usage(ExportCostAndUsageInput(format=fmt, columns=COLUMNS), ctx)  # type: ignore[arg-type]
    service = services.exports
    assert isinstance(service, ExportService)
    job = await service.wait(job.jobId, LOCAL.name, timeout=60)
    assert job.status == "Complete", job.error
    path: Path = service.root / job.jobId / job.files[0].name
    if fmt == "csv":
        with path.open(newline="") as f:
            assert next(csv.reader(f)) == COLUMNS
    elif fmt == "parquet":
        assert pq.read_schema(path).names == COLUMNS
    else:
        lines = path.read_text().splitlines()
        assert len(lines) == 100 and all(list(json.loads(line)) == COLUMNS for line in lines)


async def test_a_page_of_every_column_tells_the_agent_its_size_and_what_to_ask_for(services: Services) -> None:
    async with Client(FocusMCPServer(Pipeline(services))) as client:
        wide = await client.call_tool("listcostandusage", {"pageSize": 10})
        narrow = await client.call_tool("listcostandusage", {"pageSize": 10, "columns": list(SUGGESTED_COLUMNS)})
    wide_text, narrow_text = wide.content[0].text, narrow.content[0].text  # type: ignore[union-attr]
    assert "bytes of structured content" in wide_text and '"ChargePeriodStart"' in wide_text
    assert "bytes of structured content" not in narrow_text


async def test_a_100_row_mcp_page_of_the_suggested_columns_is_under_15_kb(tmp_path: Path) -> None:
    store = Store(tmp_path)
    try:
        generate_demo(store, rows=2000)
    finally:
        store.close()
    settings = Settings(data_dir=tmp_path, token_secret="t")  # type: ignore[arg-type]
    async with running_services(settings, load_demo=False) as svc, Client(FocusMCPServer(Pipeline(svc))) as client:
        page = await client.call_tool("listcostandusage", {"columns": list(SUGGESTED_COLUMNS)})
    assert page.structured_content is not None
    rows = page.structured_content["data"]
    data_only = {k: v for k, v in page.structured_content.items() if k != "receipt"}
    size = len(json.dumps(data_only, separators=(",", ":")))
    assert len(rows) == 100 and size < 15_000, size


@pytest.mark.parametrize(
    "arguments",
    [
        {"providerName": "AWS", "pageSize": 7, "columns": ["BilledCost", "ServiceName"]},
        {"tag": ["Environment=prod"], "chargeCategory": "Usage"},
        {},  # every column: the size budget cuts the page, and the receipt asks for just what was kept
    ],
)
async def test_the_receipts_rest_url_with_the_same_token_returns_the_same_rows(
    services: Services, arguments: dict[str, Any]
) -> None:
    pipeline = Pipeline(services)
    async with Client(FocusMCPServer(pipeline)) as mcp:
        token = None
        for _ in range(2):  # the first page and the second: receipts carry the page token
            answer = await mcp.call_tool("listcostandusage", arguments | ({"pageToken": token} if token else {}))
            assert answer.structured_content is not None
            receipt = answer.structured_content["receipt"]
            url = urlsplit(receipt["rest"]["url"])
            assert receipt["rest"]["method"] == "GET" and "token" not in url.query.lower().replace("pagetoken", "")
            async with TestClient(TestServer(create_app(pipeline, TokenStore(["reader"])))) as rest:
                reply = await rest.get(f"{url.path}?{url.query}", headers={"Authorization": "Bearer reader"})
                body = exact(await reply.text())
            assert reply.status == 200
            assert same(body["data"], answer.structured_content["data"])
            assert receipt["dataVersion"] and receipt["arguments"].get("pageToken") == token
            token = answer.structured_content["nextPageToken"]
            if token is None:
                break
