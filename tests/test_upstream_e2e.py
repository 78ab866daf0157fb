"""Upstream mode end to end, no mocks: instance B fronts instance A and answers exactly what A answers.

Every tool (the seed's five, the summary and the distinct values, the commitment summaries, the export
wait), over REST and MCP.

A is ``focus-api serve`` on a data dir loaded with the shared samples (AWS 1.3 Cost and Usage and
Contract Commitment, the consolidated multi-provider file and GCP 1.2, in one ``load`` call); it accepts
only A's token. B is ``focus-api serve --upstream <A's REST URL>`` with ``FINOPS_FOUNDATION_TOKEN`` set
to A's token; it accepts only its own, different client token. So every answer B gives proves B sent
A's token upstream and never its client's. Nothing sleeps: readiness and export status are polled.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import httpx2
import pytest
from conftest import AWS_13, AWS_CC, CONSOLIDATED, GCP_12, decimal_sums
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from serving import FOCUS_API, PageWalk, Server, clean_env, free_ports

from tools import wire
from tools.catalog import DataType, contract_commitment, cost_and_usage

pytestmark = pytest.mark.slow

A_TOKEN = "upstream-a-" + os.urandom(8).hex()
B_TOKEN = "upstream-b-" + os.urandom(8).hex()
ROWS = 204  # Cost and Usage rows in the four sample files
COMMITMENTS = 10
JSON_COLUMNS = frozenset(
    c.id for catalog in (cost_and_usage(), contract_commitment()) for c in catalog.of_type(DataType.JSON)
)

COST_FILTERS: list[dict[str, str]] = [
    {},
    {"providerName": "AWS"},
    {"billingCurrency": "EUR"},
    {
        "serviceCategory": "Compute",
        "billingPeriodStart": "2026-05-01T00:00:00Z",
        "billingPeriodEnd": "2026-06-01T00:00:00Z",
    },
    {"chargeCategory": "Purchase", "region": "us-west-2"},
    {"subAccountId": "200000000011"},
    {"providerName": "nobody"},
]
COMMITMENT_FILTERS: list[dict[str, str]] = [
    {},
    {"billingAccountId": "100000000002"},
    {"commitmentDiscountId": "CC-RATECARD-AWS"},
    {"contractId": "CONTRACT-NEGOTIATED-AWS"},
]


@dataclass(frozen=True)
class Instance:
    server: Server
    token: str

    @property
    def rest(self) -> str:
        return self.server.rest

    @property
    def mcp(self) -> str:
        return self.server.mcp

    @property
    def bearer(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@contextmanager
def serving(work: Path, token: str, data_dir: Path, *args: str, **env: str) -> Iterator[Instance]:
    """``focus-api serve ARGS`` with ``token`` as its only client token; SIGTERM at the end must exit 0."""
    rest_port, mcp_port = free_ports(2)
    log = work / "server.log"
    environment = clean_env(FOCUS_API_TOKENS=token, FOCUS_API_TOKEN_SECRET=f"secret-of-{work.name}", **env)
    command = [FOCUS_API, "serve", "--rest-port", str(rest_port), "--mcp-port", str(mcp_port)]
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [*command, "--data-dir", data_dir, *args], stdout=out, stderr=subprocess.STDOUT, env=environment
        )
    server = Server(proc, rest_port, mcp_port, data_dir, log)
    try:
        server.wait_until_ready()
        yield Instance(server, token)
    finally:
        code = server.stop()
    text = server.log_text()
    assert code == 0, f"exited with {code} after SIGTERM:\n{text}"
    assert A_TOKEN not in text and B_TOKEN not in text, "a token leaked into a server log"


@pytest.fixture(scope="module")
def loaded_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("upstream-e2e") / "loaded"
    done = subprocess.run(
        [FOCUS_API, "load", "--data-dir", path, AWS_13, AWS_CC, CONSOLIDATED, GCP_12],
        capture_output=True,
        text=True,
        timeout=60,
        env=clean_env(),
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"loaded {ROWS + COMMITMENTS} rows" in done.stdout
    return path


@pytest.fixture(scope="module")
def a(loaded_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Instance]:
    with serving(tmp_path_factory.mktemp("a"), A_TOKEN, loaded_dir) as instance:
        yield instance


@pytest.fixture(scope="module")
def b(a: Instance, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Instance]:
    work = tmp_path_factory.mktemp("b")
    with serving(work, B_TOKEN, work / "data", "--upstream", a.rest, FINOPS_FOUNDATION_TOKEN=A_TOKEN) as instance:
        yield instance


# --- helpers ---------------------------------------------------------------------------------------


async def get(http: aiohttp.ClientSession, url: str, **params: Any) -> Any:
    async with http.get(url, params=params) as resp:
        text = await resp.text()
        assert resp.status == 200, text
        return json.loads(text, parse_float=Decimal)


async def rest_pages(server: Instance, path: str, filters: dict[str, str], page_size: int) -> list[dict[str, Any]]:
    """Every page of a REST list walk, in order."""
    pages: list[dict[str, Any]] = []
    params: dict[str, Any] = {**filters, "pageSize": page_size}
    walk = PageWalk(f"REST {path}")
    async with aiohttp.ClientSession(headers=server.bearer) as http:
        while True:
            page = await get(http, server.rest + path, **params)
            pages.append(page)
            if walk.next(page["nextPageToken"]) is None:
                return pages
            params["pageToken"] = page["nextPageToken"]


def without_receipt(answer: dict[str, Any]) -> dict[str, Any]:
    """An MCP answer without its receipt, which names the instance that answered (its URL, its data version)."""
    receipt = answer.get("receipt")
    assert isinstance(receipt, dict) and receipt["rest"]["url"], "every MCP answer carries a receipt"
    return {k: v for k, v in answer.items() if k != "receipt"}


async def mcp_pages(server: Instance, tool: str, filters: dict[str, str], page_size: int) -> list[dict[str, Any]]:
    """Every page of an MCP list walk through the SDK's streamable HTTP client."""
    pages: list[dict[str, Any]] = []
    args: dict[str, Any] = {**filters, "pageSize": page_size}
    async with (
        httpx2.AsyncClient(headers=server.bearer, timeout=30) as http,
        Client(streamable_http_client(server.mcp, http_client=http)) as client,
    ):
        walk = PageWalk(f"MCP {tool}")
        while True:
            result = await client.call_tool(tool, args)
            assert not result.is_error, result.content
            assert result.structured_content is not None
            pages.append(without_receipt(result.structured_content))
            if walk.next(result.structured_content["nextPageToken"]) is None:
                return pages
            args["pageToken"] = result.structured_content["nextPageToken"]


def without_tokens(pages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The pages with each nextPageToken reduced to whether there is one (each server signs its own)."""
    return [page | {"nextPageToken": page["nextPageToken"] is not None} for page in pages]


def json_numbers_by_value(pages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """MCP pages with each number inside a JSON column as a Decimal, whether it came as number or string.

    MCP writes Decimals as strings and ints as numbers. A's store may hold ``1.0`` inside a JSON column
    (a Decimal, so ``"1"`` over MCP), but its REST wire writes that as ``1``, so B can only say ``1``:
    the same value, another JSON type. Top-level FOCUS columns have catalog types and need none of this.
    """

    def numbers(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: numbers(v) for k, v in value.items()}
        if isinstance(value, list):
            return [numbers(v) for v in value]
        if isinstance(value, str):
            try:
                return Decimal(value)
            except ArithmeticError:
                return value
        return Decimal(value) if isinstance(value, int) and not isinstance(value, bool) else value

    def row(record: dict[str, Any]) -> dict[str, Any]:
        return {k: numbers(v) if k in JSON_COLUMNS and v is not None else v for k, v in record.items()}

    return [page | {"data": [row(r) for r in page["data"]]} for page in pages]


def assert_same_walk(through_b: list[dict[str, Any]], from_a: list[dict[str, Any]]) -> None:
    assert without_tokens(through_b) == without_tokens(from_a)
    a_tokens = [p["nextPageToken"] for p in from_a if p["nextPageToken"]]
    b_payloads = b"".join(base64.urlsafe_b64decode(p["nextPageToken"].split(".")[0] + "==") for p in through_b[:-1])
    assert not any(t.split(".")[0].encode() in b_payloads for t in a_tokens), "B's tokens reveal A's"


# --- every tool, through B, is what A answers --------------------------------------------------------


@pytest.mark.parametrize("filters", COST_FILTERS, ids=lambda f: ",".join(f) or "all")
async def test_a_rest_walk_of_cost_and_usage_through_b_is_a_walk_on_a(
    a: Instance, b: Instance, filters: dict[str, str]
) -> None:
    from_a = await rest_pages(a, "/cost-and-usage", filters, page_size=7)
    through_b = await rest_pages(b, "/cost-and-usage", filters, page_size=7)
    assert_same_walk(through_b, from_a)
    rows = sum(len(p["data"]) for p in through_b)
    assert rows == through_b[0]["totalRecords"] == (ROWS if not filters else rows)
    assert (rows == 0) == (filters == {"providerName": "nobody"}), "every other filter matches something"


@pytest.mark.parametrize("filters", COMMITMENT_FILTERS, ids=lambda f: ",".join(f) or "all")
async def test_a_rest_walk_of_contract_commitments_through_b_is_a_walk_on_a(
    a: Instance, b: Instance, filters: dict[str, str]
) -> None:
    from_a = await rest_pages(a, "/contract-commitments", filters, page_size=3)
    through_b = await rest_pages(b, "/contract-commitments", filters, page_size=3)
    assert_same_walk(through_b, from_a)
    rows = sum(len(p["data"]) for p in through_b)
    assert 0 < rows == through_b[0]["totalRecords"] <= COMMITMENTS


@pytest.mark.parametrize(
    ("tool", "filters", "page_size"),
    [
        ("listcostandusage", {}, 40),
        ("listcostandusage", {"providerName": "Google Cloud", "region": "us-east1"}, 7),
        # Pages of 200 rows are beyond MCP's 256 KiB budget: both cut them, at the same rows.
        ("listcostandusage", {}, 200),
        ("listcontractcommitments", {"billingAccountId": "100000000002"}, 4),
    ],
)
async def test_an_mcp_walk_through_b_is_the_same_walk_on_a(
    a: Instance, b: Instance, tool: str, filters: dict[str, str], page_size: int
) -> None:
    from_a = await mcp_pages(a, tool, filters, page_size)
    through_b = await mcp_pages(b, tool, filters, page_size)
    assert_same_walk(json_numbers_by_value(through_b), json_numbers_by_value(from_a))
    assert all(isinstance(r.get("BilledCost", ""), str | None) for p in through_b for r in p["data"])
    if page_size == 200:
        assert through_b[0]["truncated"] is not None, "the budget cut the first page"


@pytest.mark.parametrize(
    "params",
    [
        {"groupBy": "ServiceName", "top": "3", "savings": "true"},
        {"groupBy": "ServiceProviderName,month", "metrics": "BilledCost,EffectiveCost", "sort": "+BilledCost"},
        {"groupBy": "ConsumedUnit", "metrics": "ConsumedQuantity", "providerName": "AWS"},
        {"groupBy": "tag:env"},
    ],
    ids=lambda p: p["groupBy"],
)
async def test_a_summary_through_b_is_as_a_sums_it(a: Instance, b: Instance, params: dict[str, str]) -> None:
    async with aiohttp.ClientSession(headers=a.bearer) as http:
        from_a = await get(http, f"{a.rest}/cost-and-usage/summary", **params)
    async with aiohttp.ClientSession(headers=b.bearer) as http:
        through_b = await get(http, f"{b.rest}/cost-and-usage/summary", **params)
    assert through_b == from_a
    assert through_b["totals"], "the summary is not empty"


@pytest.mark.parametrize(
    "params",
    [{"column": "ServiceName"}, {"column": "RegionId", "search": "us", "searchMode": "prefix"}],
    ids=lambda p: p["column"],
)
async def test_a_walk_of_distinct_values_through_b_is_a_walk_on_a(
    a: Instance, b: Instance, params: dict[str, str]
) -> None:
    from_a = await rest_pages(a, "/cost-and-usage/values", params, page_size=3)
    through_b = await rest_pages(b, "/cost-and-usage/values", params, page_size=3)
    assert_same_walk(through_b, from_a)
    assert len(through_b) > 1, "the walk took several pages"


async def test_a_summary_over_mcp_through_b_is_as_a_sums_it(a: Instance, b: Instance) -> None:
    args = {"groupBy": ["ServiceCategory", "BillingAccountId"], "metrics": ["EffectiveCost", "ListCost"]}
    answers = []
    for server in (a, b):
        async with (
            httpx2.AsyncClient(headers=server.bearer, timeout=30) as http,
            Client(streamable_http_client(server.mcp, http_client=http)) as client,
        ):
            result = await client.call_tool("summarizecostandusage", args)
        assert not result.is_error, result.content
        assert result.structured_content is not None
        answers.append(without_receipt(result.structured_content))
    from_a, through_b = answers
    assert through_b == from_a


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("/contract-commitments/summary", {}),
        ("/contract-commitments/summary", {"asOf": "2026-05-10T12:00:00Z", "runRateDays": "7"}),
        ("/contract-commitments/summary", {"billingAccountId": "100000000001"}),
        ("/commitment-discounts/summary", {"top": "2"}),
        ("/commitment-discounts/summary", {"groupBy": "CommitmentDiscountType,month", "providerName": "AWS"}),
    ],
    ids=repr,
)
async def test_commitment_summaries_through_b_are_as_a_computes_them(
    a: Instance, b: Instance, path: str, params: dict[str, str]
) -> None:
    async with aiohttp.ClientSession(headers=a.bearer) as http:
        from_a = await get(http, f"{a.rest}{path}", **params)
    async with aiohttp.ClientSession(headers=b.bearer) as http:
        through_b = await get(http, f"{b.rest}{path}", **params)
    assert through_b == from_a
    assert through_b["data"], "the summary is not empty"


async def test_an_export_status_through_b_waits_for_the_job(b: Instance) -> None:
    async with aiohttp.ClientSession(headers=b.bearer) as http:
        async with http.post(f"{b.rest}/cost-and-usage/export", json={"format": "csv"}) as resp:
            assert resp.status == 202, await resp.text()
            started = await resp.json()
        job = await get(http, f"{b.rest}/cost-and-usage/export/{started['jobId']}", waitSeconds="60")
    assert job["status"] == "Complete" and job["recordCount"] == ROWS


async def test_schema_metadata_through_b_is_as_a_with_its_origin_stated(a: Instance, b: Instance) -> None:
    async with aiohttp.ClientSession(headers=a.bearer) as http:
        from_a = await get(http, f"{a.rest}/schema")
    async with aiohttp.ClientSession(headers=b.bearer) as http:
        through_b = await get(http, f"{b.rest}/schema")
    assert through_b["loaded"].pop("origin") == f"upstream FOCUS API at {a.rest} (its origin: embedded DuckDB store)"
    from_a["loaded"].pop("origin")
    assert through_b == from_a
    assert through_b["loaded"]["costAndUsageRows"] == ROWS
    assert through_b["loaded"]["providers"] == ["AWS", "Datadog", "Google Cloud", "Microsoft Azure"]


async def test_an_export_through_b_downloads_what_a_lists_with_the_promised_checksum(a: Instance, b: Instance) -> None:
    request = {"format": "json", "providerName": "AWS", "includeContractCommitments": True}
    async with aiohttp.ClientSession(headers=b.bearer) as http:
        async with http.post(f"{b.rest}/cost-and-usage/export", json=request) as resp:
            assert resp.status == 202, await resp.text()
            started = await resp.json()
        assert started["jobId"].startswith("up-")
        assert resp.headers["Location"] == f"/cost-and-usage/export/{started['jobId']}"

        async def complete() -> Any:
            job = await get(http, f"{b.rest}/cost-and-usage/export/{started['jobId']}")
            assert job["status"] in ("Pending", "Processing", "Complete"), job
            return job if job["status"] == "Complete" else None

        job = await b.server.until_async(complete, "the export through B to complete")
        contents: dict[str, bytes] = {}
        for file in job["files"]:
            assert file["downloadUrl"].startswith(f"{b.rest}/cost-and-usage/export/{started['jobId']}/files/")
            async with http.get(file["downloadUrl"]) as resp:
                assert resp.status == 200
                assert resp.headers["X-Checksum-SHA256"] == file["sha256"]
                contents[file["dataset"]] = await resp.read()
            assert hashlib.sha256(contents[file["dataset"]]).hexdigest() == file["sha256"]
            assert len(contents[file["dataset"]]) == file["bytes"]
    async with aiohttp.ClientSession(headers=a.bearer) as http, http.get(job["downloadUrl"]) as resp:
        assert resp.status == 401, "A's token does not open B's download route"

    exported = [json.loads(line, parse_float=Decimal) for line in contents["CostAndUsage"].splitlines()]
    listed = [
        row for page in await rest_pages(a, "/cost-and-usage", {"providerName": "AWS"}, 1000) for row in page["data"]
    ]
    assert job["recordCount"] == len(exported) == len(listed)
    assert decimal_sums(exported) == decimal_sums(listed)

    def canonical(rows: list[dict[str, Any]]) -> list[bytes]:
        """Rows as our wire writes them (0E-18 and 0 are the same decimal), in a stable order."""
        return sorted(wire.dumps(dict(sorted(r.items()))) for r in rows)

    assert canonical(exported) == canonical(listed)
    commitments = contents["ContractCommitment"].splitlines()
    assert len(commitments) == COMMITMENTS


async def test_an_export_file_is_readable_as_an_mcp_resource_through_b(b: Instance) -> None:
    async with (
        httpx2.AsyncClient(headers=b.bearer, timeout=30) as http,
        Client(streamable_http_client(b.mcp, http_client=http)) as client,
    ):
        started = await client.call_tool("exportcostandusage", {"format": "csv", "billingCurrency": "EUR"})
        assert not started.is_error, started.content
        assert started.structured_content is not None
        job_id = started.structured_content["jobId"]

        async def complete() -> Any:
            result = await client.call_tool("getcostandusageexportstatus", {"jobId": job_id})
            assert result.structured_content is not None
            return result if result.structured_content["status"] == "Complete" else None

        done = await b.server.until_async(complete, "the MCP export through B to complete")
        (link,) = [c for c in done.content if getattr(c, "type", "") == "resource_link"]
        resource = await client.read_resource(str(link.uri))
    (content,) = resource.contents
    text = content.text if hasattr(content, "text") else base64.b64decode(content.blob).decode()
    assert hashlib.sha256(text.encode()).hexdigest() == done.structured_content["sha256"]
    assert len(text.splitlines()) == 1 + 1  # header and the one EUR row


# --- tokens: each side accepts only its own, and B forwards only A's --------------------------------


async def test_clients_of_b_cannot_use_as_token_on_b_nor_bs_token_on_a(a: Instance, b: Instance) -> None:
    for server, foreign in ((b, A_TOKEN), (a, B_TOKEN)):
        headers = {"Authorization": f"Bearer {foreign}"}
        async with aiohttp.ClientSession(headers=headers) as http, http.get(f"{server.rest}/schema") as resp:
            assert resp.status == 401
            assert (await resp.json())["code"] == "unauthorized"


async def test_a_page_token_of_a_is_refused_by_b(a: Instance, b: Instance) -> None:
    (first, *_) = await rest_pages(a, "/cost-and-usage", {}, page_size=150)
    async with aiohttp.ClientSession(headers=b.bearer) as http:
        url = f"{b.rest}/cost-and-usage"
        async with http.get(url, params={"pageSize": 150, "pageToken": first["nextPageToken"]}) as resp:
            body = await resp.json()
    assert resp.status == 400
    assert body["code"] == "invalid_page_token"


# --- an upstream that is down ------------------------------------------------------------------------


async def test_an_unreachable_upstream_is_upstream_unavailable_over_rest_and_mcp(tmp_path: Path) -> None:
    (closed,) = free_ports(1)
    upstream = f"http://127.0.0.1:{closed}"
    with serving(tmp_path, B_TOKEN, tmp_path / "data", "--upstream", upstream, FINOPS_FOUNDATION_TOKEN=A_TOKEN) as down:
        async with aiohttp.ClientSession(headers=down.bearer) as http, http.get(f"{down.rest}/cost-and-usage") as resp:
            body = await resp.json()
        async with (
            httpx2.AsyncClient(headers=down.bearer, timeout=30) as client_http,
            Client(streamable_http_client(down.mcp, http_client=client_http)) as client,
        ):
            result = await client.call_tool("getschemametadata", {})
    assert resp.status == 503
    assert body["code"] == "upstream_unavailable"
    assert body["details"]["reason"] == "connection refused"
    assert result.is_error
    assert json.loads(result.content[0].text)["code"] == "upstream_unavailable"  # type: ignore[union-attr]
    assert "Traceback" not in down.server.log_text()
