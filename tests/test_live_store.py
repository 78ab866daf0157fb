"""The live store: ``focus-api load`` while real ``serve`` and ``stdio`` processes use the same data dir.

Every process checks for a newer published generation on each request, so the first answer after a load
has finished is already the new data: the tests ask once, without waiting. Killed loads and killed servers
(SIGKILL: no cleanup runs) leave the data served as it was and jobs that are Failed, never Complete.
"""

from __future__ import annotations

import json
import resource
import signal
import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

import anyio
import duckdb
import pytest
from conftest import AWS_13, GCP_12, decimal_sums, read_csv
from mcp import Client, StdioServerParameters
from serving import FOCUS_API, Server, clean_env, copy_store, demo_dir, serving

from server.store.db import Store
from server.store.generations import Layout
from server.store.loader import load_files

pytestmark = pytest.mark.slow

BIG_ROWS = 100_000


def loaded_dir(path: Path, *files: Path) -> Path:
    store = Store(path)
    try:
        assert load_files(store, list(files)).ok
    finally:
        store.close()
    return path


def expected_totals(*files: Path) -> dict[str, Decimal]:
    sums = decimal_sums([row for f in files for row in read_csv(f)], ("BilledCost",))
    return {currency: total for (currency, _), total in sums.items()}


def focus_load(data_dir: Path, *files: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [FOCUS_API, "load", "--json", "--data-dir", data_dir, *files],
        capture_output=True,
        text=True,
        timeout=300,
        env=clean_env(),
    )


def rest_totals(server: Server) -> dict[str, Decimal]:
    reply = server.call("GET", "/cost-and-usage/summary?metrics=BilledCost")
    assert reply.status == 200, reply.body
    totals = json.loads(reply.body, parse_float=Decimal)["totals"]  # REST numbers are exact JSON numbers
    return {t["BillingCurrency"]: Decimal(t["BilledCost"]) for t in totals}


@asynccontextmanager
async def stdio(data_dir: Path) -> AsyncIterator[Client]:
    params = StdioServerParameters(command=str(FOCUS_API), args=["stdio", "--data-dir", str(data_dir)], env=clean_env())
    async with Client(params) as client:
        yield client


async def call(client: Client, tool: str, arguments: dict[str, Any]) -> dict[str, Any]:
    result = await client.call_tool(tool, arguments)
    assert not result.is_error, result.content
    assert result.structured_content is not None
    return result.structured_content


async def mcp_totals(client: Client) -> dict[str, Decimal]:
    body = await call(client, "summarizecostandusage", {"metrics": ["BilledCost"]})
    return {t["BillingCurrency"]: Decimal(t["BilledCost"]) for t in body["totals"]}  # MCP: decimal strings


def generation_files(data_dir: Path) -> list[str]:
    return sorted(p.name for p in Layout(data_dir).folder.iterdir())


async def test_a_load_while_a_serve_and_two_stdio_processes_run_is_answered_by_each_of_them_at_once(
    tmp_path: Path,
) -> None:
    data_dir = loaded_dir(tmp_path / "data", AWS_13)
    before, after = expected_totals(AWS_13), expected_totals(AWS_13, GCP_12)

    with serving(data_dir, tmp_path / "serve.log") as server:
        async with stdio(data_dir) as one, stdio(data_dir) as two:
            assert rest_totals(server) == before
            assert await mcp_totals(one) == before and await mcp_totals(two) == before

            done = await anyio.to_thread.run_sync(focus_load, data_dir, GCP_12)
            assert done.returncode == 0, done.stderr

            assert rest_totals(server) == after
            assert await mcp_totals(one) == after
            assert await mcp_totals(two) == after
    assert generation_files(data_dir) == [Layout(data_dir).current().name]  # type: ignore[union-attr]


async def test_a_page_walk_across_a_load_ends_with_invalid_page_token_saying_the_data_changed(
    tmp_path: Path,
) -> None:
    data_dir = loaded_dir(tmp_path / "data", AWS_13)

    with serving(data_dir, tmp_path / "serve.log") as server:
        async with stdio(data_dir) as client:
            rest_first = server.call("GET", "/cost-and-usage?pageSize=7").json()
            mcp_first = await call(client, "listcostandusage", {"pageSize": 7})

            done = await anyio.to_thread.run_sync(focus_load, data_dir, GCP_12)
            assert done.returncode == 0, done.stderr

            rest_next = server.call("GET", f"/cost-and-usage?pageSize=7&pageToken={rest_first['nextPageToken']}")
            mcp_next = await client.call_tool(
                "listcostandusage", {"pageSize": 7, "pageToken": mcp_first["nextPageToken"]}
            )

    assert rest_next.status == 400
    assert rest_next.json()["code"] == "invalid_page_token" and "data changed" in rest_next.json()["message"]
    assert (mcp_next.is_error and mcp_next.structured_content is None) or mcp_next.is_error
    assert "invalid_page_token" in str(mcp_next.content) and "data changed" in str(mcp_next.content)


def big_csv(tmp_path: Path) -> Path:
    """AWS_13's rows repeated under 2,000 billing accounts: a file whose load takes seconds."""
    target = tmp_path / "big.csv"
    con = duckdb.connect()
    con.execute(
        f"COPY (SELECT * REPLACE (BillingAccountId || '-' || CAST(n AS VARCHAR) AS BillingAccountId) FROM "
        f"read_csv('{AWS_13}', all_varchar=true, header=true), range(2000) t(n)) TO '{target}' (HEADER)"
    )
    con.close()
    return target


def test_a_load_killed_mid_file_leaves_the_data_served_as_it_was_and_the_next_load_succeeds(tmp_path: Path) -> None:
    data_dir = loaded_dir(tmp_path / "data", AWS_13)
    big = big_csv(tmp_path)
    layout = Layout(data_dir)
    base = layout.current()
    assert base is not None

    with serving(data_dir, tmp_path / "serve.log") as server:
        killed = subprocess.Popen([FOCUS_API, "load", "--data-dir", data_dir, big], env=clean_env())
        try:

            def writing() -> bool:
                fresh = [p for p in layout.folder.iterdir() if p != base and p.suffix == ".duckdb"]
                return bool(fresh) and fresh[0].stat().st_size > base.stat().st_size + (4 << 20)

            server.until(writing, "the load to be writing its new generation", seconds=120)
            assert killed.poll() is None, "the load finished before it could be killed: the test proves nothing"
        finally:
            killed.kill()
            killed.wait()

        assert rest_totals(server) == expected_totals(AWS_13)
        assert len(generation_files(data_dir)) > 1  # the killed load's unpublished generation

        done = focus_load(data_dir, GCP_12)
        assert done.returncode == 0, done.stderr
        assert rest_totals(server) == expected_totals(AWS_13, GCP_12)
    assert generation_files(data_dir) == [layout.current().name]  # type: ignore[union-attr]
    # Every process is gone now (the server stopped): any spill folder left would be the killed load's.
    assert not [d for d in (data_dir / "tmp").iterdir() if d.is_dir()], "the killed load's spill folder is still there"


def test_a_load_that_runs_out_of_disk_leaves_the_data_served_as_it_was_and_no_garbage(tmp_path: Path) -> None:
    data_dir = loaded_dir(tmp_path / "data", AWS_13)
    layout = Layout(data_dir)
    base = layout.current()
    assert base is not None
    limit = base.stat().st_size + (2 << 20)  # the copy of the current generation fits; the load does not

    def full_disk() -> None:
        # A file-size limit stands in for a full disk: a write past it fails with EFBIG (SIGXFSZ ignored).
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    with serving(data_dir, tmp_path / "serve.log") as server:
        failed = subprocess.run(
            [FOCUS_API, "load", "--data-dir", data_dir, big_csv(tmp_path)],
            capture_output=True,
            text=True,
            timeout=300,
            env=clean_env(),
            preexec_fn=full_disk,
        )
        assert failed.returncode != 0, failed.stdout
        assert "Traceback" not in failed.stderr and "nothing of it was published" in failed.stderr, failed.stderr
        assert layout.current() == base and rest_totals(server) == expected_totals(AWS_13)

        done = focus_load(data_dir, GCP_12)
        assert done.returncode == 0, done.stderr
        assert rest_totals(server) == expected_totals(AWS_13, GCP_12)
    assert generation_files(data_dir) == [layout.current().name]  # type: ignore[union-attr]
    assert not any((data_dir / "tmp").iterdir()), "the failed load left spill files behind"


def test_a_refused_load_publishes_nothing(tmp_path: Path) -> None:
    data_dir = loaded_dir(tmp_path / "data", AWS_13)
    before = Layout(data_dir).current()
    broken = tmp_path / "broken.csv"
    broken.write_text(AWS_13.read_text().replace("Usage", "Usagee", 1), encoding="utf-8")

    done = focus_load(data_dir, tmp_path / "broken.csv")

    assert done.returncode == 1
    assert Layout(data_dir).current() == before and generation_files(data_dir) == [before.name]  # type: ignore[union-attr]


@pytest.fixture(scope="module")
def big_demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return demo_dir(tmp_path_factory, BIG_ROWS)


async def test_export_jobs_are_shared_by_the_processes_of_a_data_dir_and_a_killed_servers_job_fails(
    big_demo: Path, tmp_path: Path
) -> None:
    data_dir = copy_store(big_demo, tmp_path / "data")
    with serving(data_dir, tmp_path / "serve.log") as server:
        async with stdio(data_dir) as watcher:

            def start_export() -> str:
                reply = server.call("POST", "/cost-and-usage/export", json_body={"format": "json"})
                assert reply.status == 202, reply.body
                job_id: str = reply.json()["jobId"]
                return job_id

            def writing(job_id: str) -> bool:
                partial = sorted((data_dir / "exports" / job_id).glob(".*.partial"))
                status = server.call("GET", f"/cost-and-usage/export/{job_id}").json()["status"]
                return status == "Processing" and bool(partial) and partial[0].stat().st_size > 0

            first = start_export()
            server.until(lambda: writing(first), "the first export to be writing", seconds=120)
            # A process that starts up while another one runs a job leaves that job alone.
            async with stdio(data_dir) as newcomer:
                seen = await call(newcomer, "getcostandusageexportstatus", {"jobId": first})
            assert seen["status"] in ("Processing", "Complete"), seen
            if seen["status"] == "Processing":  # the running process shares its progress through the record
                assert seen["progress"]["rowsExpected"] == BIG_ROWS, seen
            # Polled through stdio, started through serve: the wait follows the shared record to the end.
            done = await call(watcher, "getcostandusageexportstatus", {"jobId": first, "waitSeconds": 60})
            assert done["status"] == "Complete", done

            second = start_export()
            server.until(lambda: writing(second), "the second export to be writing", seconds=120)
            server.kill()

            failed = await call(watcher, "getcostandusageexportstatus", {"jobId": second})
    assert failed["status"] == "Failed" and "interrupted" in (failed["error"] or ""), failed
    assert not list((data_dir / "exports" / second).glob(".*.partial"))
