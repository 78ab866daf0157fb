"""Exports survive a crash: a real ``focus-api serve`` is SIGKILLed in the middle of writing an export.

The data dir holds enough demo rows (``focus-api demo --rows 100000``) that a JSON Lines export takes
seconds, so the kill lands while the hidden ``.<name>.partial`` file is being written. After a restart on
the same data dir the job must be Failed ("interrupted"), never Complete; no temp file may remain or be
served; and a new export must complete with a file matching its size and sha256. Idempotency keys are
stored with the job and so still name the same job after a restart.
"""

from __future__ import annotations

import hashlib
import http.client
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from serving import Server, copy_store, demo_dir, start

pytestmark = pytest.mark.slow

ROWS = 100_000
TOKEN = "crash-test-token-" + "7" * 16
AUTH = {"Authorization": f"Bearer {TOKEN}"}
ONE_MONTH = {"billingPeriodStart": "2026-01-01T00:00:00Z", "billingPeriodEnd": "2026-02-01T00:00:00Z"}


@dataclass(frozen=True)
class Downloaded:
    status: int
    bytes: int
    sha256: str
    lines: int


@pytest.fixture(scope="module")
def big_demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return demo_dir(tmp_path_factory, ROWS)


@pytest.fixture
def data_dir(big_demo: Path, tmp_path: Path) -> Path:
    return copy_store(big_demo, tmp_path / "data")


@pytest.fixture
def servers(data_dir: Path, tmp_path: Path) -> Iterator[list[Server]]:
    """The servers a test starts on its data dir, one after another; any still running is stopped after."""
    started: list[Server] = []
    yield started
    for server in started:
        if server.proc.poll() is None:
            server.stop()


def serve(servers: list[Server], data_dir: Path, tmp_path: Path) -> Server:
    server = start(data_dir, tmp_path / f"server-{len(servers) + 1}.log", FOCUS_API_TOKENS=TOKEN)
    servers.append(server)
    return server


def job_status(server: Server, job_id: str) -> dict[str, Any]:
    reply = server.call("GET", f"/cost-and-usage/export/{job_id}", headers=AUTH)
    assert reply.status == 200, reply.body
    job: dict[str, Any] = reply.json()
    return job


def start_export(server: Server, body: dict[str, Any], key: str | None = None) -> dict[str, Any]:
    headers = AUTH | ({"Idempotency-Key": key} if key else {})
    reply = server.call("POST", "/cost-and-usage/export", headers=headers, json_body=body)
    assert reply.status == 202, reply.body
    job: dict[str, Any] = reply.json()
    return job


def finished(server: Server, job_id: str) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        job = job_status(server, job_id)
        return None if job["status"] in ("Pending", "Processing") else job

    return server.until(done, f"export {job_id} to finish", seconds=120)


def partial_files(data_dir: Path) -> list[Path]:
    return sorted((data_dir / "exports").rglob(".*.partial"))


def download(server: Server, url: str) -> Downloaded:
    """GET a download URL, hashing and counting the body as it streams (files may be hundreds of MB)."""
    conn = http.client.HTTPConnection("127.0.0.1", server.rest_port, timeout=120)
    try:
        conn.request("GET", urlsplit(url).path, headers=AUTH)
        resp = conn.getresponse()
        digest, size, lines = hashlib.sha256(), 0, 0
        while block := resp.read(1 << 20):
            digest.update(block)
            size += len(block)
            lines += block.count(b"\n")
        return Downloaded(resp.status, size, digest.hexdigest(), lines)
    finally:
        conn.close()


def test_an_export_killed_mid_write_is_failed_interrupted_after_restart_and_a_new_one_completes(
    servers: list[Server], data_dir: Path, tmp_path: Path
) -> None:
    first = serve(servers, data_dir, tmp_path)
    job_id = start_export(first, {"format": "json"})["jobId"]
    job_dir = data_dir / "exports" / job_id

    def writing() -> bool:
        partial = sorted(job_dir.glob(".*.partial"))
        return job_status(first, job_id)["status"] == "Processing" and bool(partial) and partial[0].stat().st_size > 0

    first.until(writing, "the export to be Processing with a non-empty .partial file", seconds=120)
    first.kill()
    assert partial_files(data_dir), "the kill landed after the export finished writing; the test proves nothing"

    second = serve(servers, data_dir, tmp_path)
    job = job_status(second, job_id)
    assert job["status"] == "Failed", job
    assert "interrupted" in (job["error"] or ""), job
    assert job["downloadUrl"] is None
    assert job["files"] == []
    assert partial_files(data_dir) == [], "a temp file of the interrupted export is still on disk"
    for name in ("cost-and-usage.jsonl", ".cost-and-usage.jsonl.partial"):
        reply = second.call("GET", f"/cost-and-usage/export/{job_id}/files/{name}", headers=AUTH)
        assert reply.status == 404, (name, reply.body)
        assert reply.json()["code"] == "not_found"

    again = finished(second, start_export(second, {"format": "json"})["jobId"])
    assert again["status"] == "Complete", again
    got = download(second, again["downloadUrl"])
    assert got.status == 200
    assert got.bytes == again["bytes"]
    assert got.sha256 == again["sha256"]
    assert got.lines == again["recordCount"]  # JSON Lines: one record per line
    assert again["recordCount"] >= ROWS
    assert partial_files(data_dir) == []
    assert second.stop() == 0


def test_an_idempotency_key_names_the_same_job_after_a_restart(
    servers: list[Server], data_dir: Path, tmp_path: Path
) -> None:
    first = serve(servers, data_dir, tmp_path)
    request = {"format": "csv", **ONE_MONTH}
    job = finished(first, start_export(first, request, key="monthly-report-2026-01")["jobId"])
    assert job["status"] == "Complete", job
    assert first.stop() == 0

    second = serve(servers, data_dir, tmp_path)
    retried = start_export(second, request, key="monthly-report-2026-01")
    assert retried["jobId"] == job["jobId"]
    assert retried["status"] == "Complete"
    assert retried["sha256"] == job["sha256"]
    assert start_export(second, request, key="monthly-report-2026-01-rerun")["jobId"] != job["jobId"]
    conflict = second.call(
        "POST",
        "/cost-and-usage/export",
        headers=AUTH | {"Idempotency-Key": "monthly-report-2026-01"},
        json_body={"format": "parquet", **ONE_MONTH},
    )
    assert conflict.status == 409, conflict.body
    assert conflict.json()["details"]["jobId"] == job["jobId"]
