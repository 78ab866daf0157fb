"""REST and MCP serve the same handlers: identical records, the same error codes, complete page walks."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from conftest import AWS_13, decimal_sums, read_csv
from mcp import Client
from serving import PageWalk

from server.auth import TokenStore
from server.mcp.server import FocusMCPServer
from server.pipeline import Pipeline
from server.rest.app import create_app
from server.services import Services

ERAS = ["auto", "legacy"]  # 2026-07-28 (discover, sessionless) and the 2025-11-25 handshake


@pytest.fixture
async def rest(services: Services) -> AsyncIterator[TestClient[Any, Any]]:
    async with TestClient(TestServer(create_app(Pipeline(services), TokenStore([])))) as client:
        yield client


def exact(text: str) -> Any:
    return json.loads(text, parse_float=Decimal)


def same(rest_value: Any, mcp_value: Any) -> bool:
    """Equal records across transports: REST sends decimals as JSON numbers, MCP as exact strings."""
    if isinstance(rest_value, dict) and isinstance(mcp_value, dict):
        return rest_value.keys() == mcp_value.keys() and all(same(rest_value[k], mcp_value[k]) for k in rest_value)
    if isinstance(rest_value, list) and isinstance(mcp_value, list):
        return len(rest_value) == len(mcp_value) and all(map(same, rest_value, mcp_value))
    if isinstance(rest_value, (Decimal, int)) and not isinstance(rest_value, bool) and isinstance(mcp_value, str):
        return rest_value == Decimal(mcp_value)
    return bool(rest_value == mcp_value) and type(rest_value) is type(mcp_value)


async def rest_walk(client: TestClient[Any, Any], page_size: int, **filters: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    token = None
    walk = PageWalk("REST /cost-and-usage")
    while True:
        params = {**filters, "pageSize": str(page_size), **({"pageToken": token} if token else {})}
        resp = await client.get("/cost-and-usage", params=params)
        assert resp.status == 200, await resp.text()
        body = exact(await resp.text())
        rows.extend(body["data"])
        token = walk.next(body["nextPageToken"])
        if token is None:
            return rows


async def mcp_walk(client: Client, page_size: int, **filters: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    token = None
    walk = PageWalk("MCP listcostandusage")
    while True:
        args: dict[str, Any] = {**filters, "pageSize": page_size}
        if token:
            args["pageToken"] = token
        result = await client.call_tool("listcostandusage", args)
        assert not result.is_error, result.content
        assert result.structured_content is not None
        rows.extend(result.structured_content["data"])
        token = walk.next(result.structured_content["nextPageToken"])
        if token is None:
            return rows


def ids(rows: list[dict[str, Any]]) -> list[tuple[str, str, str]]:
    return [(r["ResourceId"] or "", r["ChargePeriodStart"], r["ChargeDescription"] or "") for r in rows]


@pytest.mark.parametrize("page_size", [7, 1000])
async def test_walking_every_rest_page_returns_each_row_once_and_equals_the_unpaged_set(
    rest: TestClient[Any, Any], page_size: int
) -> None:
    walked = await rest_walk(rest, page_size)
    unpaged = exact(await (await rest.get("/cost-and-usage", params={"pageSize": "10000"})).text())["data"]
    assert walked == unpaged
    assert len(walked) == 100 == len({json.dumps(r, default=str, sort_keys=True) for r in walked})
    assert decimal_sums(walked) == decimal_sums(read_csv(AWS_13))


@pytest.mark.parametrize("mode", ERAS)
async def test_mcp_in_memory_walk_equals_the_rest_walk_in_both_protocol_eras(
    services: Services, rest: TestClient[Any, Any], mode: str
) -> None:
    rest_rows = await rest_walk(rest, 7)
    async with Client(FocusMCPServer(Pipeline(services)), mode=mode) as client:  # type: ignore[arg-type]
        mcp_rows = await mcp_walk(client, 7)
    assert len(mcp_rows) == len(rest_rows) == 100
    assert all(map(same, rest_rows, mcp_rows))
    assert decimal_sums(mcp_rows) == decimal_sums(read_csv(AWS_13))


async def test_rest_decimals_are_exact_json_numbers(rest: TestClient[Any, Any]) -> None:
    text = await (await rest.get("/cost-and-usage", params={"pageSize": "1"})).text()
    assert '"BilledCost":0.087992153,' in text or '"BilledCost":' in text
    record = exact(text)["data"][0]
    assert isinstance(record["BilledCost"], Decimal)


async def test_mcp_tools_carry_annotations_and_output_schemas(services: Services) -> None:
    async with Client(FocusMCPServer(Pipeline(services))) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
    assert set(tools) == {
        "listcostandusage",
        "exportcostandusage",
        "getcostandusageexportstatus",
        "listcontractcommitments",
        "getschemametadata",
        "summarizecostandusage",
        "listcostandusagevalues",
        "listbillingperiods",
        "listinvoicedetails",
        "reconcileinvoices",
        "summarizecontractcommitments",
        "summarizecommitmentdiscounts",
    }
    for tool in tools.values():
        assert tool.output_schema is not None and tool.annotations is not None
        assert tool.annotations.read_only_hint is (tool.name != "exportcostandusage")
        assert tool.annotations.destructive_hint is False


BAD_CASES = [
    ({"pageSize": 0}, "invalid_argument", "pageSize"),
    ({"pageSize": 10001}, "invalid_argument", "pageSize"),
    ({"pageSize": "abc"}, "invalid_argument", "pageSize"),
    ({"billingPeriodStart": "05/01/2026"}, "invalid_argument", "billingPeriodStart"),
    ({"billingPeriodStart": "2026-05-01T00:00:00"}, "invalid_argument", "billingPeriodStart"),
    ({"chargeCategory": "usage"}, "invalid_argument", "chargeCategory"),
    ({"colour": "red"}, "invalid_argument", "colour"),
    ({"pageToken": "forged.token"}, "invalid_page_token", None),
]


@pytest.mark.parametrize(("args", "code", "field"), BAD_CASES)
async def test_bad_input_gets_the_same_error_code_on_rest(
    rest: TestClient[Any, Any], args: dict[str, Any], code: str, field: str | None
) -> None:
    resp = await rest.get("/cost-and-usage", params={k: str(v) for k, v in args.items()})
    body = await resp.json()
    assert resp.status == 400 and body["code"] == code
    assert set(body) == {"code", "message", "details"}
    if field:
        assert field in body["message"]


@pytest.mark.parametrize(("args", "code", "field"), BAD_CASES)
async def test_bad_input_gets_the_same_error_code_on_mcp(
    services: Services, args: dict[str, Any], code: str, field: str | None
) -> None:
    if args.get("pageSize") == 10001:
        args = {"pageSize": 1001}  # the MCP maximum is 1000
    async with Client(FocusMCPServer(Pipeline(services))) as client:
        result = await client.call_tool("listcostandusage", args)
    assert result.is_error
    body = json.loads(result.content[0].text)  # type: ignore[union-attr]
    assert body["code"] == code
    if field:
        assert field in body["message"]


async def test_a_token_from_other_filters_is_rejected_on_both_transports(
    services: Services, rest: TestClient[Any, Any]
) -> None:
    first = await (await rest.get("/cost-and-usage", params={"pageSize": "5"})).json()
    resp = await rest.get(
        "/cost-and-usage", params={"pageSize": "5", "chargeCategory": "Usage", "pageToken": first["nextPageToken"]}
    )
    assert resp.status == 400 and (await resp.json())["code"] == "invalid_page_token"
    async with Client(FocusMCPServer(Pipeline(services))) as client:
        page = await client.call_tool("listcostandusage", {"pageSize": 5})
        token = page.structured_content["nextPageToken"]  # type: ignore[index]
        result = await client.call_tool("listcostandusage", {"pageSize": 5, "region": "x", "pageToken": token})
    assert result.is_error and json.loads(result.content[0].text)["code"] == "invalid_page_token"  # type: ignore[union-attr]


async def test_an_unknown_job_id_is_not_found_on_both_transports(
    services: Services, rest: TestClient[Any, Any]
) -> None:
    resp = await rest.get("/cost-and-usage/export/nope")
    assert resp.status == 404 and (await resp.json())["code"] == "not_found"
    async with Client(FocusMCPServer(Pipeline(services))) as client:
        result = await client.call_tool("getcostandusageexportstatus", {"jobId": "nope"})
    assert result.is_error and json.loads(result.content[0].text)["code"] == "not_found"  # type: ignore[union-attr]


async def test_unknown_routes_and_methods_answer_with_the_error_body(rest: TestClient[Any, Any]) -> None:
    resp = await rest.get("/nope")
    assert resp.status == 404 and (await resp.json())["code"] == "not_found"
    resp = await rest.delete("/cost-and-usage")
    assert resp.status == 405 and (await resp.json())["code"] == "method_not_allowed"
    resp = await rest.post("/cost-and-usage/export", data="{not json", headers={"Content-Type": "application/json"})
    assert resp.status == 400 and (await resp.json())["code"] == "invalid_argument"


async def test_the_ndjson_stream_carries_every_row(rest: TestClient[Any, Any]) -> None:
    resp = await rest.get("/cost-and-usage", params={"pageSize": "9"}, headers={"Accept": "application/x-ndjson"})
    assert resp.status == 200 and resp.headers["Content-Type"].startswith("application/x-ndjson")
    lines = (await resp.text()).splitlines()
    rows = [exact(line) for line in lines]
    assert len(rows) == 100 == int(resp.headers["X-Total-Records"])
    assert decimal_sums(rows) == decimal_sums(read_csv(AWS_13))


async def test_the_mcp_size_budget_cuts_a_page_says_so_and_loses_nothing(services: Services) -> None:
    async with Client(FocusMCPServer(Pipeline(services))) as client:
        first = await client.call_tool("listcostandusage", {"pageSize": 1000})
        data = first.structured_content
        assert data is not None
        rows = list(data["data"])
        walk = PageWalk("MCP listcostandusage")
        token = walk.next(data["nextPageToken"])
        while token:
            page = await client.call_tool("listcostandusage", {"pageSize": 1000, "pageToken": token})
            rows += page.structured_content["data"]  # type: ignore[index]
            token = walk.next(page.structured_content["nextPageToken"])  # type: ignore[index]
    # 100 sample rows of ~2.7 KB each exceed the 256 KiB budget: the first page is cut, nothing is lost.
    cut = data["truncated"]
    assert cut is not None and cut["rowsReturned"] == len(data["data"]) < 100
    assert "pageToken" in cut["howToGetTheRest"]
    assert len(rows) == 100 == len({json.dumps(r, sort_keys=True) for r in rows})


async def test_schema_metadata_describes_both_datasets_and_what_is_loaded(rest: TestClient[Any, Any]) -> None:
    body = await (await rest.get("/schema")).json()
    assert body["focusVersion"] == "1.3"
    assert [d["id"] for d in body["datasets"]] == ["CostAndUsage", "ContractCommitment"]
    assert sum(1 for c in body["columns"] if c["dataset"] == "CostAndUsage") == 65
    assert sum(1 for c in body["columns"] if c["dataset"] == "ContractCommitment") == 13
    assert body["loaded"]["costAndUsageRows"] == 100 and body["loaded"]["currencies"] == ["USD"]
    assert {s["DatasetInstanceId"] for s in body["metadata"]["Schema"]} == {
        d["DatasetInstanceId"] for d in body["metadata"]["DatasetInstance"]
    }
    deprecated = {
        c["ColumnName"] for s in body["metadata"]["Schema"] for c in s["ColumnDefinition"] if c.get("Deprecated")
    }
    assert deprecated == {"ProviderName", "PublisherName"}
