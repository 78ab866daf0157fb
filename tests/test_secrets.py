"""No token ever leaves the server: not in its log, an answer, an export file or a job record.

A real ``focus-api serve`` runs at ``FOCUS_API_LOG_LEVEL=debug`` with an unscoped token A
(``FOCUS_API_TOKENS``) and a scoped principal B (``FOCUS_API_TOKENS_FILE``, stored as its SHA-256).
Both tokens, and a wrong one, are sent as ``Authorization: Bearer`` and as ``X-API-Key`` (and in a
malformed header) over REST and MCP streamable HTTP: successful calls, 401s, 403s, exports in every
format, downloads. After the server has stopped, none of the three tokens nor their SHA-256 hex digests
may appear in the log, in any response (body or header), in the export files or in the ``export_jobs``
rows of the store.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import sqlite3
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import anyio
import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from serving import SMALL_DEMO_ROWS, Server, copy_store, demo_dir, serving

from server.exports.jobs import JOBS_FILE

pytestmark = pytest.mark.slow

TOKEN_A = "tokA-" + secrets.token_hex(16)  # unscoped, FOCUS_API_TOKENS
TOKEN_B = "tokB-" + secrets.token_hex(16)  # scoped principal in FOCUS_API_TOKENS_FILE
WRONG = "tokW-" + secrets.token_hex(16)  # configured nowhere
SCOPED_ACCOUNT = "483920175526"
SECRETS = {
    "token A": TOKEN_A,
    "token B": TOKEN_B,
    "the wrong token": WRONG,
    **{f"sha256 of {name}": hashlib.sha256(t.encode()).hexdigest() for name, t in [("A", TOKEN_A), ("B", TOKEN_B)]},
    "sha256 of the wrong token": hashlib.sha256(WRONG.encode()).hexdigest(),
}


@dataclass
class Evidence:
    """Everything the server said, and what it left on disk, for one exercise of every auth path."""

    responses: list[str] = field(default_factory=list)  # "status headers body", one per REST/MCP answer
    statuses: list[int] = field(default_factory=list)
    mcp_errors: list[str] = field(default_factory=list)
    completed_jobs: int = 0
    log: str = ""
    export_files: dict[str, bytes] = field(default_factory=dict)
    job_rows: list[str] = field(default_factory=list)


def leaks(text: str | bytes) -> list[str]:
    """Which secrets occur in ``text`` (hex digests case-insensitively)."""
    haystack = text.decode("latin-1") if isinstance(text, bytes) else text
    lowered = haystack.lower()
    return [name for name, secret in SECRETS.items() if secret in haystack or secret.lower() in lowered]


async def rest(
    http: aiohttp.ClientSession,
    evidence: Evidence,
    method: str,
    url: str,
    headers: dict[str, str],
    **kwargs: Any,
) -> tuple[int, Any]:
    async with http.request(method, url, headers=headers, **kwargs) as resp:
        body = await resp.read()
    evidence.statuses.append(resp.status)
    evidence.responses.append(f"{resp.status} {dict(resp.headers)} {body.decode('latin-1')}")
    try:
        return resp.status, json.loads(body)
    except ValueError:
        return resp.status, None


async def rest_exercise(server: Server, evidence: Evidence) -> None:
    """Every REST auth path: A and B as Bearer and X-API-Key, the wrong token, malformed headers, exports."""
    bearer_a, key_a = {"Authorization": f"Bearer {TOKEN_A}"}, {"X-API-Key": TOKEN_A}
    bearer_b, key_b = {"Authorization": f"Bearer {TOKEN_B}"}, {"X-API-Key": TOKEN_B}
    wrong = [{"Authorization": f"Bearer {WRONG}"}, {"X-API-Key": WRONG}, {"Authorization": f"Basic {TOKEN_A}"}]
    base = server.rest
    async with aiohttp.ClientSession() as http:
        for headers in (bearer_a, key_a, bearer_b, key_b):
            status, _ = await rest(http, evidence, "GET", f"{base}/cost-and-usage", headers, params={"pageSize": "3"})
            assert status == 200
        for headers in (bearer_a, key_a):
            assert (await rest(http, evidence, "GET", f"{base}/schema", headers))[0] == 200
            assert (await rest(http, evidence, "GET", f"{base}/contract-commitments", headers))[0] == 200
        for headers in (bearer_b, key_b):  # B may not call these tools
            assert (await rest(http, evidence, "GET", f"{base}/schema", headers))[0] == 403
        for headers in wrong:
            assert (await rest(http, evidence, "GET", f"{base}/cost-and-usage", headers))[0] == 401
            status, _ = await rest(http, evidence, "POST", f"{base}/cost-and-usage/export", headers, json={})
            assert status == 401
        # Invalid input from a valid caller: the error names the field, never the caller's token.
        status, _ = await rest(http, evidence, "GET", f"{base}/cost-and-usage", bearer_a, params={"pageSize": "0"})
        assert status == 400
        status, _ = await rest(http, evidence, "GET", f"{base}/cost-and-usage", key_b, params={"pageToken": "x.y"})
        assert status == 400
        status, _ = await rest(http, evidence, "GET", f"{base}/cost-and-usage/export/{'0' * 32}", bearer_b)
        assert status == 404

        jobs: list[tuple[dict[str, str], str]] = []
        for headers, fmt in ((bearer_a, "csv"), (key_b, "json"), (bearer_b, "parquet")):
            extra = {"Idempotency-Key": f"secrets-{fmt}"}
            status, job = await rest(
                http, evidence, "POST", f"{base}/cost-and-usage/export", headers | extra, json={"format": fmt}
            )
            assert status == 202, job
            jobs.append((headers, job["jobId"]))
        for headers, job_id in jobs:

            async def complete(headers: dict[str, str] = headers, job_id: str = job_id) -> Any:
                job = (await rest(http, evidence, "GET", f"{base}/cost-and-usage/export/{job_id}", headers))[1]
                return job if job["status"] not in ("Pending", "Processing") else None

            job = await server.until_async(complete, f"export {job_id}")
            assert job["status"] == "Complete", job
            evidence.completed_jobs += 1
            assert (await rest(http, evidence, "GET", job["downloadUrl"], headers))[0] == 200
            assert (await rest(http, evidence, "GET", job["downloadUrl"], wrong[0]))[0] == 401


async def mcp_exercise(server: Server, evidence: Evidence) -> None:
    """MCP streamable HTTP: A as Bearer (tools and an export), B as X-API-Key (allowed and forbidden tools)."""
    for headers, calls in (
        ({"Authorization": f"Bearer {TOKEN_A}"}, [("listcostandusage", {"pageSize": 2}), ("getschemametadata", {})]),
        ({"X-API-Key": TOKEN_B}, [("listcostandusage", {"pageSize": 2}), ("listcontractcommitments", {})]),
    ):
        async with (
            httpx2.AsyncClient(headers=headers) as http,
            Client(streamable_http_client(server.mcp, http_client=http)) as client,
        ):
            evidence.responses.append((await client.list_tools()).model_dump_json())
            for name, args in calls:
                result = await client.call_tool(name, args)
                evidence.responses.append(result.model_dump_json())
                if result.is_error:
                    evidence.mcp_errors.append(name)
            if "Authorization" in headers:
                started = await client.call_tool("exportcostandusage", {"format": "csv", "subAccountId": "x"})
                evidence.responses.append(started.model_dump_json())
                assert started.structured_content is not None, started
                job_id = started.structured_content["jobId"]

                async def complete(client: Client = client, job_id: str = job_id) -> Any:
                    result = await client.call_tool("getcostandusageexportstatus", {"jobId": job_id})
                    evidence.responses.append(result.model_dump_json())
                    assert result.structured_content is not None
                    job = result.structured_content
                    return job if job["status"] not in ("Pending", "Processing") else None

                job = await server.until_async(complete, f"MCP export {job_id}")
                assert job["status"] == "Complete", job
                evidence.completed_jobs += 1
    initialize = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "0"}},
    }
    accept = {"Accept": "application/json, text/event-stream"}
    async with aiohttp.ClientSession() as raw:
        for headers in ({"Authorization": f"Bearer {WRONG}"}, {"X-API-Key": WRONG}, {"Authorization": TOKEN_B}):
            status, _ = await rest(raw, evidence, "POST", server.mcp, headers | accept, json=initialize)
            assert status == 401


def job_rows(data_dir: Path) -> list[str]:
    with closing(sqlite3.connect(data_dir / JOBS_FILE)) as db:
        return [repr(row) for row in db.execute("SELECT * FROM export_jobs").fetchall()]


@pytest.fixture(scope="module")
def evidence(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Evidence]:
    work = tmp_path_factory.mktemp("secrets")
    data_dir = copy_store(demo_dir(tmp_path_factory, SMALL_DEMO_ROWS), work / "data")
    tokens_file = work / "tokens.json"
    entry = {
        "name": "team-b",
        "sha256": hashlib.sha256(TOKEN_B.encode()).hexdigest(),
        "tools": ["listcostandusage", "exportcostandusage", "getcostandusageexportstatus", "listcontractcommitments"],
        "billingAccountIds": [SCOPED_ACCOUNT],
    }
    tokens_file.write_text(json.dumps({"tokens": [entry]}))
    found = Evidence()
    env = {"FOCUS_API_TOKENS": TOKEN_A, "FOCUS_API_TOKENS_FILE": str(tokens_file), "FOCUS_API_LOG_LEVEL": "debug"}
    with serving(data_dir, work / "server.log", **env) as server:

        async def exercise() -> None:
            await rest_exercise(server, found)
            await mcp_exercise(server, found)

        anyio.run(exercise)
        assert server.stop() == 0
    found.log = server.log_text()
    found.export_files = {
        str(p.relative_to(data_dir)): p.read_bytes() for p in data_dir.rglob("exports/**/*") if p.is_file()
    }
    found.job_rows = job_rows(data_dir)
    yield found


def test_the_exercise_covered_every_path_it_claims(evidence: Evidence) -> None:
    assert evidence.statuses.count(401) >= 9
    assert evidence.statuses.count(403) == 2
    assert {200, 202, 400, 404} <= set(evidence.statuses)
    assert evidence.mcp_errors == [], "B may call both MCP tools it used"
    assert evidence.completed_jobs == 4
    assert len(evidence.export_files) == 4
    assert len(evidence.job_rows) == 4
    assert "DEBUG " in evidence.log, "the server did not log at debug level: the log check would prove little"


def test_no_token_or_digest_appears_in_the_server_log(evidence: Evidence) -> None:
    assert leaks(evidence.log) == []


def test_no_token_or_digest_appears_in_any_answer_or_error(evidence: Evidence) -> None:
    leaked = {i: leaks(text) for i, text in enumerate(evidence.responses) if leaks(text)}
    assert leaked == {}, [evidence.responses[i][:500] for i in leaked]


def test_no_token_or_digest_appears_in_any_export_file(evidence: Evidence) -> None:
    assert {name: leaks(content) for name, content in evidence.export_files.items() if leaks(content)} == {}


def test_no_token_or_digest_appears_in_the_export_job_records(evidence: Evidence) -> None:
    assert {row: leaks(row) for row in evidence.job_rows if leaks(row)} == {}
    assert any("team-b" in row for row in evidence.job_rows), "jobs are owned by the principal's name"
