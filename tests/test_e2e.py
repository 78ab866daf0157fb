"""End to end: the real ``focus-api`` binary, driven the way clients drive it.

One server process per module (REST and MCP streamable HTTP on two free loopback ports, tokens on) is
driven by the MCP Inspector CLI, the MCP SDK HTTP client in both protocol eras, and plain aiohttp. Stdio
is driven by the SDK stdio client and the Inspector. Nothing here sleeps: readiness and export status are
polled with short, bounded retries.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import anyio
import httpx2
import pytest
from conftest import AWS_13, AWS_CC
from mcp import Client, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client
from serving import PageWalk, clean_env, copy_store, free_ports, node_env, node_tool

from tools.registry import TOOLS

pytestmark = pytest.mark.slow

FOCUS_API = Path(sys.executable).parent / "focus-api"
# `make tools` installs the Inspector CLI under .tools/node; it runs on the Node 22 binary installed beside it.
INSPECTOR = "@modelcontextprotocol/inspector/clients/launcher/build/index.js"
TOOL_NAMES = {spec.name for spec in TOOLS}
ROWS = 100  # rows in the AWS 1.3 Cost and Usage sample
STARTUP_SECONDS = 30
SHUTDOWN_SECONDS = 10


@dataclass(frozen=True)
class Running:
    rest: str  # http://127.0.0.1:<port>
    mcp: str  # http://127.0.0.1:<port>/mcp
    token: str
    log: Path

    @property
    def mcp_base(self) -> str:
        return self.mcp.removesuffix("/mcp")

    @property
    def bearer(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


# --- helpers ---------------------------------------------------------------------------------------------


def http_status(url: str) -> int | None:
    """The status of GET url, or None while nothing answers."""
    host_port, _, path = url.removeprefix("http://").partition("/")
    host, _, port = host_port.rpartition(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=2)
    try:
        conn.request("GET", "/" + path)
        return conn.getresponse().status
    except OSError:
        return None
    finally:
        conn.close()


def wait_until_ready(proc: subprocess.Popen[bytes], urls: list[str], log: Path) -> None:
    """Poll each URL until it answers 200; fail early if the process dies, or after STARTUP_SECONDS."""
    deadline = time.monotonic() + STARTUP_SECONDS
    pending = list(urls)
    while pending:
        if http_status(pending[0]) == 200:
            pending.pop(0)
            continue
        if time.monotonic() > deadline:
            raise AssertionError(f"server not ready after {STARTUP_SECONDS}s ({pending[0]}):\n{log.read_text()}")
        try:
            code = proc.wait(timeout=0.05)  # doubles as the retry interval
        except subprocess.TimeoutExpired:
            continue
        raise AssertionError(f"server exited with {code} before it was ready:\n{log.read_text()}")


def mcp_as_rest(mcp: Any, rest: Any) -> Any:
    """MCP's value with REST's number types: where REST has a JSON number, MCP's decimal string becomes Decimal."""
    if isinstance(mcp, dict) and isinstance(rest, dict):
        return {k: mcp_as_rest(v, rest.get(k)) for k, v in mcp.items()}
    if isinstance(mcp, list) and isinstance(rest, list):
        return [mcp_as_rest(v, rest[i] if i < len(rest) else None) for i, v in enumerate(mcp)]
    if isinstance(rest, int | Decimal) and not isinstance(rest, bool) and isinstance(mcp, str):
        return Decimal(mcp)
    return mcp


async def eventually(check: Callable[[], Awaitable[Any]], seconds: float = 20) -> Any:
    """Call ``check`` until it returns something truthy, with a short pause between tries; fail at the deadline."""
    deadline = time.monotonic() + seconds
    while True:
        result = await check()
        if result:
            return result
        assert time.monotonic() < deadline, f"gave up after {seconds}s"
        await anyio.sleep(0.05)


# --- fixtures --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def loaded_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data dir loaded with the AWS 1.3 samples by ``focus-api load`` (never the demo generator)."""
    path = tmp_path_factory.mktemp("e2e") / "loaded"
    done = subprocess.run(
        [FOCUS_API, "load", "--data-dir", path, AWS_13, AWS_CC],
        capture_output=True,
        text=True,
        timeout=60,
        env=clean_env(),
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"loaded   {AWS_13}: {ROWS} rows" in done.stdout
    assert "refused 0 rows" in done.stdout
    return path


@pytest.fixture(scope="module")
def server(loaded_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    """``focus-api serve`` with a token, ready on both ports; stopped with SIGTERM, which must exit 0."""
    work = tmp_path_factory.mktemp("serve")
    data_dir = copy_store(loaded_dir, work / "data")
    rest_port, mcp_port = free_ports(2)
    token = "e2e-" + os.urandom(12).hex()
    log = work / "server.log"
    env = clean_env(FOCUS_API_TOKENS=token, FOCUS_API_TOKEN_SECRET="e2e-page-token-secret")
    args: list[str | Path] = [
        "serve",
        "--data-dir",
        data_dir,
        "--rest-port",
        str(rest_port),
        "--mcp-port",
        str(mcp_port),
    ]
    with log.open("wb") as out:
        proc = subprocess.Popen([FOCUS_API, *args], stdout=out, stderr=subprocess.STDOUT, env=env)
    running = Running(f"http://127.0.0.1:{rest_port}", f"http://127.0.0.1:{mcp_port}/mcp", token, log)
    try:
        wait_until_ready(
            proc, [f"{running.rest}/healthz", f"{running.mcp_base}/.well-known/oauth-protected-resource/mcp"], log
        )
        yield running
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            code = proc.wait(timeout=SHUTDOWN_SECONDS)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            raise AssertionError(
                f"server still running {SHUTDOWN_SECONDS}s after SIGTERM:\n{log.read_text()}"
            ) from None
    assert code == 0, f"server exited with {code} after SIGTERM:\n{log.read_text()}"
    assert token not in log.read_text(), "the token leaked into the server log"


@pytest.fixture(scope="module")
def inspector(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., tuple[int, Any, str]]:
    """Run the Inspector CLI (``--format json -q``): (exit code, parsed stdout or None, stderr)."""
    command = node_tool(INSPECTOR)  # fails the test when `make tools` has not installed it
    home = tmp_path_factory.mktemp("inspector-home")  # its catalog and state stay out of the real home

    def run(*args: str | Path) -> tuple[int, Any, str]:
        done = subprocess.run(
            [*command, "--cli", *args, "--format", "json", "-q"],
            capture_output=True,
            text=True,
            timeout=90,
            env=node_env(HOME=str(home)),
        )
        out = json.loads(done.stdout) if done.stdout.strip() else None
        return done.returncode, out, done.stderr

    return run


# --- the MCP Inspector CLI over HTTP ---------------------------------------------------------------------

ERAS = ["legacy", "modern"]


@pytest.mark.parametrize("era", ERAS)
def test_the_inspector_lists_five_annotated_tools_over_http(
    server: Running, inspector: Callable[..., tuple[int, Any, str]], era: str
) -> None:
    code, out, err = inspector(
        server.mcp, "--header", f"Authorization: Bearer {server.token}", "--protocol-era", era, "--method", "tools/list"
    )
    assert code == 0, err
    tools = {t["name"]: t for t in out["result"]["tools"]}
    assert set(tools) == TOOL_NAMES
    for tool in tools.values():
        assert tool["inputSchema"]["type"] == "object"
        assert tool["outputSchema"]["type"] == "object"
        assert set(tool["annotations"]) >= {"readOnlyHint", "destructiveHint", "idempotentHint", "openWorldHint"}
    assert tools["listcostandusage"]["annotations"]["readOnlyHint"] is True
    assert tools["exportcostandusage"]["annotations"]["readOnlyHint"] is False


@pytest.mark.parametrize("era", ERAS)
def test_the_inspector_calls_listcostandusage_and_gets_one_page_with_decimal_strings(
    server: Running, inspector: Callable[..., tuple[int, Any, str]], era: str
) -> None:
    code, out, err = inspector(
        server.mcp,
        *("--header", f"Authorization: Bearer {server.token}", "--protocol-era", era),
        *("--method", "tools/call", "--tool-name", "listcostandusage", "--tool-args-json", '{"pageSize":5}'),
    )
    assert code == 0, err
    result = out["result"]
    assert result["isError"] is False
    page = result["structuredContent"]
    assert len(page["data"]) == 5
    assert page["totalRecords"] == ROWS
    assert isinstance(page["nextPageToken"], str)
    assert page["dataCompleteness"] == "Complete"
    assert all(isinstance(row["BilledCost"], str) for row in page["data"])
    assert result["content"][0]["text"].startswith(f"5 of {ROWS} records")


@pytest.mark.parametrize("era", ERAS)
def test_the_inspector_calls_getschemametadata_and_sees_what_is_loaded(
    server: Running, inspector: Callable[..., tuple[int, Any, str]], era: str
) -> None:
    code, out, err = inspector(
        server.mcp,
        *("--header", f"Authorization: Bearer {server.token}", "--protocol-era", era),
        *("--method", "tools/call", "--tool-name", "getschemametadata"),
    )
    assert code == 0, err
    meta = out["result"]["structuredContent"]
    assert meta["focusVersion"] == "1.3"
    assert meta["loaded"]["costAndUsageRows"] == ROWS
    assert meta["loaded"]["demo"] is False
    assert meta["loaded"]["providers"] == ["AWS"]
    assert meta["loaded"]["currencies"] == ["USD"]
    assert {d["id"] for d in meta["datasets"]} == {"CostAndUsage", "ContractCommitment"}


def test_the_inspector_without_a_token_reports_auth_required(
    server: Running, inspector: Callable[..., tuple[int, Any, str]]
) -> None:
    code, _, err = inspector(server.mcp, "--stored-auth-only", "--method", "tools/list")
    assert code == 3, err
    assert "auth_required" in err


def test_the_inspector_exits_5_when_a_tool_returns_an_error(
    server: Running, inspector: Callable[..., tuple[int, Any, str]]
) -> None:
    code, out, err = inspector(
        server.mcp,
        *("--header", f"X-API-Key: {server.token}"),
        *("--method", "tools/call", "--tool-name", "listcostandusage", "--tool-args-json", '{"pageSize":0}'),
    )
    assert code == 5, err
    body = json.loads(out["result"]["content"][0]["text"])
    assert set(body) == {"code", "message", "details"}
    assert body["code"] == "invalid_argument"


# --- the MCP SDK HTTP client, both protocol eras -----------------------------------------------------------


async def mcp_walk(client: Client, page_size: int) -> tuple[list[dict[str, Any]], int]:
    """Every row of listcostandusage, page by page; and how many pages it took."""
    rows: list[dict[str, Any]] = []
    token: str | None = None
    pages = 0
    walk = PageWalk("MCP listcostandusage")
    while True:
        args: dict[str, Any] = {"pageSize": page_size} | ({"pageToken": token} if token else {})
        result = await client.call_tool("listcostandusage", args)
        assert not result.is_error, result.content
        page = result.structured_content
        assert page is not None
        assert page["totalRecords"] == ROWS
        rows += page["data"]
        pages += 1
        token = walk.next(page["nextPageToken"])
        if token is None:
            return rows, pages


async def rest_get(http: aiohttp.ClientSession, url: str, **params: Any) -> Any:
    async with http.get(url, params=params) as resp:
        text = await resp.text()
        assert resp.status == 200, text
        return json.loads(text, parse_float=Decimal)


async def rest_walk(http: aiohttp.ClientSession, server: Running, page_size: int) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    params: dict[str, Any] = {"pageSize": page_size}
    walk = PageWalk("REST /cost-and-usage")
    while True:
        page = await rest_get(http, f"{server.rest}/cost-and-usage", **params)
        rows += page["data"]
        if walk.next(page["nextPageToken"]) is None:
            return rows
        params["pageToken"] = page["nextPageToken"]


@pytest.mark.parametrize(("mode", "version"), [("auto", "2026-07-28"), ("legacy", "2025-11-25")])
async def test_the_sdk_client_walks_every_page_once_and_gets_what_rest_gets(
    server: Running, mode: str, version: str
) -> None:
    async with (
        httpx2.AsyncClient(headers=server.bearer) as http,
        Client(streamable_http_client(server.mcp, http_client=http), mode=mode) as client,
    ):
        assert client.protocol_version == version
        assert {t.name for t in (await client.list_tools()).tools} == TOOL_NAMES
        mcp_rows, pages = await mcp_walk(client, page_size=7)
    async with aiohttp.ClientSession(headers=server.bearer) as rest:
        rest_rows = await rest_walk(rest, server, page_size=7)
        everything = (await rest_get(rest, f"{server.rest}/cost-and-usage", pageSize=1000))["data"]

    assert pages == -(-ROWS // 7)
    assert len(mcp_rows) == ROWS
    assert len({json.dumps(r, sort_keys=True) for r in mcp_rows}) == ROWS, "a row came back twice"
    assert rest_rows == everything, "the REST walk is not the one-page listing"
    assert all(isinstance(r["BilledCost"], str) for r in mcp_rows), "MCP decimals travel as strings"
    assert all(isinstance(r["BilledCost"], Decimal | int) for r in rest_rows), "REST decimals are JSON numbers"
    assert [mcp_as_rest(m, r) for m, r in zip(mcp_rows, rest_rows, strict=True)] == rest_rows


async def test_the_sdk_client_may_authenticate_with_x_api_key(server: Running) -> None:
    async with (
        httpx2.AsyncClient(headers={"X-API-Key": server.token}) as http,
        Client(streamable_http_client(server.mcp, http_client=http)) as client,
    ):
        result = await client.call_tool("listcostandusage", {"pageSize": 1})
    assert not result.is_error
    assert result.structured_content is not None
    assert len(result.structured_content["data"]) == 1


# --- plain HTTP --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("headers", "reason"), [({}, "missing"), ({"Authorization": "Bearer wrong"}, "invalid")])
async def test_rest_without_a_valid_token_is_401_with_a_challenge_and_an_error_body(
    server: Running, headers: dict[str, str], reason: str
) -> None:
    async with aiohttp.ClientSession(headers=headers) as http, http.get(f"{server.rest}/cost-and-usage") as resp:
        assert resp.status == 401
        assert resp.headers["WWW-Authenticate"].startswith("Bearer")
        body = await resp.json()
    assert set(body) == {"code", "message", "details"}
    assert body["code"] == "unauthorized"
    assert body["details"]["reason"] == reason


@pytest.mark.parametrize("scheme", ["bearer", "x-api-key"])
async def test_rest_accepts_the_token_as_bearer_or_x_api_key(server: Running, scheme: str) -> None:
    headers = server.bearer if scheme == "bearer" else {"X-API-Key": server.token}
    async with aiohttp.ClientSession(headers=headers) as http:
        page = await rest_get(http, f"{server.rest}/cost-and-usage", pageSize=2)
    assert len(page["data"]) == 2
    assert page["totalRecords"] == ROWS


async def test_healthz_and_openapi_need_no_token(server: Running) -> None:
    async with aiohttp.ClientSession() as http:
        health = await rest_get(http, f"{server.rest}/healthz")
        spec = await rest_get(http, f"{server.rest}/openapi.json")
    assert health["status"] == "ok"
    assert spec["openapi"].startswith("3.")
    assert {"/cost-and-usage", "/cost-and-usage/export", "/schema"} <= set(spec["paths"])


async def test_the_mcp_endpoint_without_a_token_is_401_pointing_at_resource_metadata(server: Running) -> None:
    initialize = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "e2e", "version": "0"}},
    }
    headers = {"Accept": "application/json, text/event-stream"}
    async with aiohttp.ClientSession() as http, http.post(server.mcp, json=initialize, headers=headers) as resp:
        assert resp.status == 401
        challenge = resp.headers["WWW-Authenticate"]
    assert challenge.startswith("Bearer")
    assert f'resource_metadata="{server.mcp_base}/.well-known/oauth-protected-resource/mcp"' in challenge


async def test_the_mcp_port_serves_rfc_9728_protected_resource_metadata(server: Running) -> None:
    async with aiohttp.ClientSession() as http:
        meta = await rest_get(http, f"{server.mcp_base}/.well-known/oauth-protected-resource/mcp")
    assert meta["resource"] == server.mcp
    assert "header" in meta["bearer_methods_supported"]


async def test_a_rest_export_completes_and_downloads_with_the_promised_checksum(server: Running) -> None:
    async with aiohttp.ClientSession(headers=server.bearer) as http:
        async with http.post(f"{server.rest}/cost-and-usage/export", json={"format": "csv"}) as resp:
            assert resp.status == 202, await resp.text()
            location = resp.headers["Location"]
            started = await resp.json()
        assert location == f"/cost-and-usage/export/{started['jobId']}"

        async def complete() -> Any:
            job = await rest_get(http, server.rest + location)
            assert job["status"] in ("Pending", "Processing", "Complete"), job
            return job if job["status"] == "Complete" else None

        job = await eventually(complete)
        assert job["recordCount"] == ROWS
        (file,) = job["files"]
        assert file["downloadUrl"] == job["downloadUrl"]
        async with http.get(job["downloadUrl"]) as resp:
            assert resp.status == 200
            assert resp.headers["Content-Type"].startswith("text/csv")
            assert resp.headers["X-Checksum-SHA256"] == job["sha256"]
            content = await resp.read()
    async with aiohttp.ClientSession() as anonymous, anonymous.get(job["downloadUrl"]) as resp:
        assert resp.status == 401

    assert len(content) == job["bytes"] == file["bytes"]
    assert hashlib.sha256(content).hexdigest() == job["sha256"] == file["sha256"]
    assert len(content.decode().splitlines()) == ROWS + 1  # header row


async def test_ndjson_streams_every_row_as_one_line(server: Running) -> None:
    headers = server.bearer | {"Accept": "application/x-ndjson"}
    async with (
        aiohttp.ClientSession(headers=headers) as http,
        http.get(f"{server.rest}/cost-and-usage", params={"pageSize": 30}) as resp,
    ):
        assert resp.status == 200
        assert resp.headers["Content-Type"].startswith("application/x-ndjson")
        assert resp.headers["X-Total-Records"] == str(ROWS)
        lines = (await resp.text()).splitlines()
    rows = [json.loads(line, parse_float=Decimal) for line in lines]
    assert len(rows) == ROWS
    assert len({json.dumps(r, sort_keys=True, default=str) for r in rows}) == ROWS
    assert all(isinstance(r["BilledCost"], Decimal | int) for r in rows), "decimals travel as JSON numbers"


# --- startup refusal -------------------------------------------------------------------------------------


def test_serve_refuses_a_public_bind_without_tokens(loaded_dir: Path, tmp_path: Path) -> None:
    rest_port, mcp_port = free_ports(2)
    data_dir = copy_store(loaded_dir, tmp_path / "data")
    public = "0.0.0.0"
    args: list[str | Path] = ["serve", "--host", public, "--data-dir", data_dir, "--rest-port", str(rest_port)]
    done = subprocess.run(
        [FOCUS_API, *args, "--mcp-port", str(mcp_port)],
        capture_output=True,
        text=True,
        timeout=30,
        env=clean_env(),
    )
    assert done.returncode != 0
    assert "FOCUS_API_TOKENS" in done.stderr


# --- stdio -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("mode", "version"), [("auto", "2026-07-28"), ("legacy", "2025-11-25")])
async def test_the_sdk_stdio_client_lists_tools_and_calls_listcostandusage(
    loaded_dir: Path, tmp_path: Path, mode: str, version: str
) -> None:
    data_dir = copy_store(loaded_dir, tmp_path / "data")
    params = StdioServerParameters(command=str(FOCUS_API), args=["stdio", "--data-dir", str(data_dir)])
    async with Client(params, mode=mode) as client:
        assert client.protocol_version == version
        assert {t.name for t in (await client.list_tools()).tools} == TOOL_NAMES
        result = await client.call_tool("listcostandusage", {"pageSize": 3})
    assert not result.is_error, result.content
    assert result.structured_content is not None
    assert len(result.structured_content["data"]) == 3
    assert result.structured_content["totalRecords"] == ROWS


def test_the_inspector_lists_tools_over_stdio(
    loaded_dir: Path, tmp_path: Path, inspector: Callable[..., tuple[int, Any, str]]
) -> None:
    data_dir = copy_store(loaded_dir, tmp_path / "data")
    code, out, err = inspector(FOCUS_API, "stdio", "--data-dir", data_dir, "--method", "tools/list")
    assert code == 0, err
    assert {t["name"] for t in out["result"]["tools"]} == TOOL_NAMES
