"""getcostandusageexportstatus waits (waitSeconds) and long calls report progress to the MCP client.

A running export is held at a gate (the real writer, told to wait for a threading event before it writes)
that the test opens from its progress callback: so the job is provably running while the status call
waits, the client provably hears progress meanwhile, and the call provably returns when the job completes,
long before the wait would end. Over stdio the real binary serves (no gate there): the wait still reports
the rows written at its start and its end. Nothing sleeps; nothing is timed.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import httpx2
import pytest
import uvicorn
from aiohttp.test_utils import TestClient, TestServer
from mcp import Client, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client
from serving import FOCUS_API, clean_env

from server.auth import TokenStore
from server.exports.service import ExportService
from server.exports.writers import OnRows, ShouldStop, StoreWriter, WriteResult
from server.mcp.server import FocusMCPServer
from server.pipeline import Pipeline
from server.rest.app import create_app
from server.services import Services
from server.sources import query_progress
from tools.source import CostFilters, ExportFormat

ROWS = 100  # the AWS 1.3 sample the services fixture holds


class GatedWriter(StoreWriter):
    """The store's writer, which starts writing only once ``gate`` is set."""

    def __init__(self, writer: StoreWriter, gate: threading.Event) -> None:
        super().__init__(writer.source)
        self.gate = gate

    def cost_and_usage(
        self,
        filters: CostFilters,
        fmt: ExportFormat,
        path: Path,
        should_stop: ShouldStop,
        columns: tuple[str, ...] | None = None,
        version: str = "1.3",
        on_rows: OnRows | None = None,
    ) -> WriteResult:
        assert self.gate.wait(60), "the test never opened the gate"
        return super().cost_and_usage(filters, fmt, path, should_stop, columns, version, on_rows)


class Progress:
    """Notifications heard by the client; the first one opens the gate."""

    def __init__(self, gate: threading.Event | None = None) -> None:
        self.heard: list[tuple[float, float | None, str | None]] = []
        self.gate = gate

    async def __call__(self, progress: float, total: float | None, message: str | None) -> None:
        self.heard.append((progress, total, message))
        if self.gate is not None:
            self.gate.set()


@pytest.fixture
def gate(services: Services) -> threading.Event:
    event = threading.Event()
    assert isinstance(services.exports, ExportService)
    services.exports.writer = GatedWriter(services.exports.writer, event)
    return event


async def wait_through(client: Client, progress: Progress) -> dict[str, Any]:
    started = await client.call_tool("exportcostandusage", {"format": "csv"})
    assert started.structured_content is not None, started.content
    job_id = started.structured_content["jobId"]
    result = await client.call_tool(
        "getcostandusageexportstatus", {"jobId": job_id, "waitSeconds": 60}, progress_callback=progress
    )
    assert not result.is_error, result.content
    assert result.structured_content is not None
    return result.structured_content


def check_heard(progress: Progress, job: dict[str, Any], gated: bool) -> None:
    assert job["status"] == "Complete" and job["recordCount"] == ROWS
    assert job["progress"] is None  # only running jobs carry it
    assert progress.heard, "no progress notification reached the client"
    assert progress.heard[-1][:2] == (ROWS, ROWS), progress.heard
    if gated:  # heard while the job was held: nothing written yet (the total once the job has counted it)
        written, total, message = progress.heard[0]
        assert written == 0 and total in (None, ROWS), progress.heard
        assert (message or "").startswith(("Pending", "Processing")), progress.heard


async def test_a_running_export_returns_when_it_completes_with_progress_in_memory(
    services: Services, gate: threading.Event
) -> None:
    progress = Progress(gate)
    async with Client(FocusMCPServer(Pipeline(services))) as client:
        job = await wait_through(client, progress)
    check_heard(progress, job, gated=True)


@pytest.fixture
async def mcp_http(services: Services) -> AsyncIterator[str]:
    """The MCP streamable HTTP app of these services, on a loopback port of this event loop."""
    app = FocusMCPServer(Pipeline(services), transport="mcp-http").streamable_http_app()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen()  # listening before uvicorn starts: the client's first connect waits in the backlog
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    async with anyio.create_task_group() as tg:
        tg.start_soon(server.serve, [sock])
        try:
            yield f"http://127.0.0.1:{port}/mcp"
        finally:
            server.should_exit = True
    sock.close()


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_a_running_export_returns_when_it_completes_with_progress_over_http(
    mcp_http: str, gate: threading.Event, mode: str
) -> None:
    progress = Progress(gate)
    async with httpx2.AsyncClient() as http, Client(streamable_http_client(mcp_http, http_client=http), mode=mode) as c:
        job = await wait_through(c, progress)
    check_heard(progress, job, gated=True)


async def test_the_wait_reports_progress_over_stdio(data_dir: Path) -> None:
    params = StdioServerParameters(command=str(FOCUS_API), args=["stdio", "--data-dir", str(data_dir)], env=clean_env())
    progress = Progress()
    async with Client(params) as client:
        job = await wait_through(client, progress)
    check_heard(progress, job, gated=False)


async def test_an_unknown_job_is_not_found_at_once_and_61_seconds_is_refused(services: Services) -> None:
    async with Client(FocusMCPServer(Pipeline(services))) as client:
        missing = await client.call_tool("getcostandusageexportstatus", {"jobId": "nope", "waitSeconds": 60})
        too_long = await client.call_tool("getcostandusageexportstatus", {"jobId": "nope", "waitSeconds": 61})
    assert missing.is_error and '"code": "not_found"' in missing.content[0].text  # type: ignore[union-attr]
    assert too_long.is_error and '"code": "invalid_argument"' in too_long.content[0].text  # type: ignore[union-attr]
    async with TestClient(TestServer(create_app(Pipeline(services), TokenStore([])))) as rest:
        resp = await rest.get("/cost-and-usage/export/nope", params={"waitSeconds": "60"})
        assert resp.status == 404 and (await resp.json())["code"] == "not_found"
        resp = await rest.get("/cost-and-usage/export/nope", params={"waitSeconds": "61"})
        assert resp.status == 400 and (await resp.json())["code"] == "invalid_argument"


async def test_rest_waits_too_and_a_running_job_carries_its_progress(services: Services, gate: threading.Event) -> None:
    async with TestClient(TestServer(create_app(Pipeline(services), TokenStore([])))) as rest:
        resp = await rest.post("/cost-and-usage/export", json={"format": "json"})
        job_id = (await resp.json())["jobId"]
        running = await (await rest.get(f"/cost-and-usage/export/{job_id}")).json()
        assert running["status"] in ("Pending", "Processing")
        assert running["progress"]["rowsWritten"] == 0
        gate.set()
        done = await (await rest.get(f"/cost-and-usage/export/{job_id}", params={"waitSeconds": "60"})).json()
    assert done["status"] == "Complete" and done["recordCount"] == ROWS and done["progress"] is None


async def test_a_long_query_reports_progress_when_asked(services: Services, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(query_progress, "REPORT_AFTER_SECONDS", 0.0)  # every query counts as long
    asked = Progress()
    async with Client(FocusMCPServer(Pipeline(services))) as client:
        answer = await client.call_tool("summarizecostandusage", {"groupBy": ["ServiceName"]}, progress_callback=asked)
    assert not answer.is_error
    assert asked.heard and asked.heard[-1][:2] == (100.0, 100.0)
    assert all(total == 100.0 for _, total, _ in asked.heard)
