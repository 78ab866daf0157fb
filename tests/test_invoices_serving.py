"""The FOCUS 1.4 invoice tools served for real: ``focus-api serve`` on the demo data, over REST and MCP.

One server on loopback (the demo's Billing Period, Invoice Detail and Cost and Usage rows; an admin token
and a token scoped to one billing account), driven by aiohttp and the MCP SDK's streamable HTTP client;
a second server in upstream mode in front of it. Walks split the data into several pages; nothing sleeps.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from serving import SMALL_DEMO_ROWS, PageWalk, Server, copy_store, demo_dir, serving

pytestmark = pytest.mark.slow

ADMIN = "invoices-admin-token"
SCOPED = "invoices-scoped-token"
ACCOUNT = "483920175526"  # the demo's AWS billing account
# tool -> REST path, and how many rows the 600-row demo holds (6 months; the last one Open)
TOOLS = {
    "listbillingperiods": ("/billing-periods", 18),
    "listinvoicedetails": ("/invoice-details", 109),
    "reconcileinvoices": ("/invoices/reconciliation", 24),
}
PAGE = 7  # splits every dataset above into several pages


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("invoices-serving")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, work: Path) -> Iterator[Server]:
    tokens = work / "tokens.json"
    scoped = {"name": "aws-team", "sha256": hashlib.sha256(SCOPED.encode()).hexdigest(), "billingAccountIds": [ACCOUNT]}
    tokens.write_text(json.dumps({"tokens": [scoped]}))
    data = copy_store(demo_dir(tmp_path_factory, SMALL_DEMO_ROWS), work / "data")
    with serving(data, work / "server.log", FOCUS_API_TOKENS=ADMIN, FOCUS_API_TOKENS_FILE=str(tokens)) as running:
        yield running


@pytest.fixture(scope="module")
def relay(server: Server, work: Path) -> Iterator[Server]:
    """``focus-api serve --upstream`` in front of ``server``, sending the admin token upstream."""
    with serving(
        work / "relay-data",
        work / "relay.log",
        FOCUS_API_TOKENS=ADMIN,
        FOCUS_API_UPSTREAM_URL=server.rest,
        FINOPS_FOUNDATION_TOKEN=ADMIN,
    ) as running:
        yield running


def bearer(token: str = ADMIN) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def rest_get(http: aiohttp.ClientSession, url: str, params: dict[str, Any]) -> tuple[int, Any]:
    async with http.get(url, params=params) as resp:
        return resp.status, json.loads(await resp.text(), parse_float=Decimal)


async def rest_walk(base: str, path: str, size: int, token: str = ADMIN, **filters: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    params: dict[str, Any] = {"pageSize": size, **filters}
    walk = PageWalk(f"REST {path}")
    async with aiohttp.ClientSession(headers=bearer(token)) as http:
        while True:
            status, page = await rest_get(http, base + path, params)
            assert status == 200, page
            rows += page["data"]
            if walk.next(page["nextPageToken"]) is None:
                assert page["totalRecords"] == len(rows)
                return rows
            params["pageToken"] = page["nextPageToken"]


async def mcp_walk(server: Server, tool: str, size: int) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    token: str | None = None
    walk = PageWalk(f"MCP {tool}")
    async with (
        httpx2.AsyncClient(headers=bearer()) as http,
        Client(streamable_http_client(server.mcp, http_client=http)) as client,
    ):
        while True:
            result = await client.call_tool(tool, {"pageSize": size} | ({"pageToken": token} if token else {}))
            assert not result.is_error, result.content
            page = result.structured_content
            assert page is not None
            rows += page["data"]
            token = walk.next(page["nextPageToken"])
            if token is None:
                return rows


def as_rest(mcp: Any, rest: Any) -> Any:
    """MCP's value with REST's number types: where REST has a JSON number, MCP's decimal string is a Decimal."""
    if isinstance(mcp, dict) and isinstance(rest, dict):
        return {k: as_rest(v, rest.get(k)) for k, v in mcp.items()}
    if isinstance(mcp, list) and isinstance(rest, list):
        return [as_rest(v, r) for v, r in zip(mcp, rest, strict=False)]
    if isinstance(rest, int | Decimal) and not isinstance(rest, bool) and isinstance(mcp, str):
        return Decimal(mcp)
    return mcp


async def test_getschemametadata_judges_each_billing_period_by_the_same_rule_as_the_envelopes(server: Server) -> None:
    async with aiohttp.ClientSession(headers=bearer()) as http:
        _, body = await rest_get(http, server.rest + "/schema", {})
    periods = {p["billingPeriodStart"]: p for p in body["loaded"]["billingPeriods"]}
    june, may = periods["2026-06-01T00:00:00Z"], periods["2026-05-01T00:00:00Z"]
    assert (june["complete"], june["completenessRule"]) == (False, "BillingPeriodStatus")  # the demo's Open month
    assert (may["complete"], may["completenessRule"]) == (True, "BillingPeriodStatus")
    sectors = {s["TimeSectorStart"]: s["TimeSectorComplete"] for s in body["metadata"]["Recency"][0]["TimeSectors"]}
    assert sectors["2026-06-01T00:00:00Z"] is False and sectors["2026-05-01T00:00:00Z"] is True


@pytest.mark.parametrize("tool", TOOLS)
async def test_a_walk_in_small_pages_over_rest_and_over_mcp_is_exactly_the_one_page_listing(
    server: Server, tool: str
) -> None:
    path, count = TOOLS[tool]
    everything = await rest_walk(server.rest, path, 1000)
    assert len(everything) == count
    assert await rest_walk(server.rest, path, PAGE) == everything
    mcp_rows = await mcp_walk(server, tool, PAGE)
    assert [as_rest(m, r) for m, r in zip(mcp_rows, everything, strict=True)] == everything


async def test_the_demo_reconciles_with_one_mismatch_one_variance_and_the_open_month_unjudged(server: Server) -> None:
    rows = await rest_walk(server.rest, "/invoices/reconciliation", 1000)
    statuses = [r["status"] for r in rows]
    assert (statuses.count("Matched"), statuses.count("Open")) == (18, 4)
    (mismatch,) = [r for r in rows if r["status"] == "Mismatch"]
    (variance,) = [r for r in rows if r["status"] == "WithinTolerance"]
    assert (mismatch["difference"], mismatch["tolerance"], mismatch["billingPeriodStatus"]) == (
        Decimal("2.75"),
        1,
        "Closed",
    )
    assert variance["difference"] == Decimal("0.004")
    assert {r["billingPeriodStart"] for r in rows if r["status"] == "Open"} == {"2026-06-01T00:00:00Z"}


async def test_an_agent_reads_the_reconciliation_as_a_table_with_the_mismatch_in_it(server: Server) -> None:
    async with (
        httpx2.AsyncClient(headers=bearer()) as http,
        Client(streamable_http_client(server.mcp, http_client=http)) as client,
    ):
        result = await client.call_tool("reconcileinvoices", {"status": "Mismatch"})
    text = result.content[0].text  # type: ignore[union-attr]
    assert text.startswith("| issuer | invoice | currency | period | invoiced | cost and usage | difference |")
    assert "| 2.75 | 1 | Mismatch | 0 |" in text and "1 of 1 invoices" in text
    assert "/invoices/reconciliation?status=Mismatch&pageSize=100" in text  # the receipt


async def test_a_page_token_of_one_tool_is_refused_by_another_over_rest_and_mcp(server: Server) -> None:
    async with aiohttp.ClientSession(headers=bearer()) as http:
        _, first = await rest_get(http, server.rest + "/billing-periods", {"pageSize": 2})
        token = first["nextPageToken"]
        for path in ("/invoice-details", "/invoices/reconciliation", "/cost-and-usage"):
            status, body = await rest_get(http, server.rest + path, {"pageSize": 2, "pageToken": token})
            assert (status, body["code"], body["details"]["reason"]) == (400, "invalid_page_token", "foreign"), path
    async with (
        httpx2.AsyncClient(headers=bearer()) as client_http,
        Client(streamable_http_client(server.mcp, http_client=client_http)) as client,
    ):
        result = await client.call_tool("listinvoicedetails", {"pageSize": 2, "pageToken": token})
    assert result.is_error and json.loads(result.content[0].text)["code"] == "invalid_page_token"  # type: ignore[union-attr]


async def test_a_scoped_token_over_rest_sees_only_its_accounts_invoices_and_issuers(server: Server) -> None:
    lines = await rest_walk(server.rest, "/invoice-details", PAGE, token=SCOPED)
    assert lines and {r["BillingAccountId"] for r in lines} == {ACCOUNT}
    reconciled = await rest_walk(server.rest, "/invoices/reconciliation", PAGE, token=SCOPED)
    assert len(reconciled) == 6 and {tuple(r["billingAccountIds"]) for r in reconciled} == {(ACCOUNT,)}
    periods = await rest_walk(server.rest, "/billing-periods", PAGE, token=SCOPED)
    assert {r["InvoiceIssuerName"] for r in periods} == {"AWS"} and len(periods) == 6


async def test_a_closed_period_is_complete_and_the_open_one_partial_by_the_billing_period_rule(server: Server) -> None:
    async with aiohttp.ClientSession(headers=bearer()) as http:
        _, closed = await rest_get(
            http, server.rest + "/cost-and-usage", {"billingPeriodEnd": "2026-06-01", "pageSize": 1}
        )
        _, open_ = await rest_get(
            http, server.rest + "/cost-and-usage", {"billingPeriodStart": "2026-06-01", "pageSize": 1}
        )
        _, bad = await rest_get(http, server.rest + "/invoice-details", {"billingPeriodStart": "June"})
    assert (closed["dataCompleteness"], closed["dataCompletenessRule"]) == ("Complete", "BillingPeriodStatus")
    assert (open_["dataCompleteness"], open_["dataCompletenessRule"]) == ("Partial", "BillingPeriodStatus")
    assert bad["code"] == "invalid_argument" and "billingPeriodStart 'June' is not a date-time" in bad["message"]


@pytest.mark.parametrize("tool", TOOLS)
async def test_upstream_mode_relays_every_page_exactly(server: Server, relay: Server, tool: str) -> None:
    path, count = TOOLS[tool]
    direct = await rest_walk(server.rest, path, 1000)
    relayed = await rest_walk(relay.rest, path, PAGE)
    assert relayed == direct and len(relayed) == count
    async with aiohttp.ClientSession(headers=bearer()) as http:
        _, page = await rest_get(http, relay.rest + path, {"pageSize": 1})
    assert (page["dataCompleteness"], page["dataCompletenessRule"]) == ("Partial", "BillingPeriodStatus")
    assert await rest_walk(relay.rest, path, 1000, invoiceIssuerName="AWS") == [
        r for r in direct if r["InvoiceIssuerName"] == "AWS"
    ]
