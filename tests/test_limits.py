"""Bounded resources: idempotent export retries, export and request limits, timeouts, expiry, dropped clients."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from aiohttp.test_utils import TestClient, TestServer
from conftest import tool_context

from server.auth import TokenStore
from server.pipeline import Pipeline
from server.rest.app import create_app
from server.rest.routes import STREAMS
from server.services import Services, running_services
from server.settings import Settings
from server.store.db import Store
from server.store.demo import generate_demo
from tools import cost_and_usage
from tools.context import REST_LIMITS
from tools.cost_and_usage import ListCostAndUsageInput
from tools.errors import QueryTimeout


async def client_for(services: Services) -> TestClient[Any, Any]:
    return TestClient(TestServer(create_app(Pipeline(services), TokenStore([]))))


async def wait_done(client: TestClient[Any, Any], job_id: str) -> dict[str, Any]:
    with anyio.fail_after(60):
        while True:
            job: dict[str, Any] = await (await client.get(f"/cost-and-usage/export/{job_id}")).json()
            if job["status"] not in ("Pending", "Processing"):
                return job
            await anyio.sleep(0.02)


async def test_a_retried_export_with_the_same_idempotency_key_returns_the_same_job(services: Services) -> None:
    async with await client_for(services) as client:
        headers = {"Idempotency-Key": "retry-1"}
        first = await client.post("/cost-and-usage/export", json={"format": "csv"}, headers=headers)
        second = await client.post("/cost-and-usage/export", json={"format": "csv"}, headers=headers)
        assert first.status == second.status == 202
        job_id = (await first.json())["jobId"]
        assert (await second.json())["jobId"] == job_id
        await wait_done(client, job_id)
        other = await client.post("/cost-and-usage/export", json={"format": "csv"}, headers={"Idempotency-Key": "2"})
        assert (await other.json())["jobId"] != job_id
        await wait_done(client, (await other.json())["jobId"])


async def test_the_same_idempotency_key_for_a_different_export_is_a_conflict(services: Services) -> None:
    async with await client_for(services) as client:
        headers = {"Idempotency-Key": "k"}
        first = await client.post("/cost-and-usage/export", json={"format": "csv"}, headers=headers)
        clash = await client.post("/cost-and-usage/export", json={"format": "parquet"}, headers=headers)
        body = await clash.json()
        assert clash.status == 409 and body["code"] == "conflict"
        assert body["details"]["jobId"] == (await first.json())["jobId"]
        await wait_done(client, body["details"]["jobId"])


@pytest.fixture
async def one_export_each(settings: Settings) -> AsyncIterator[Services]:
    tight = settings.model_copy(update={"exports_per_principal": 1, "export_concurrency": 1})
    async with running_services(tight, load_demo=False) as svc:
        yield svc


async def test_exports_beyond_the_per_principal_limit_get_429_with_retry_after(one_export_each: Services) -> None:
    async with await client_for(one_export_each) as client:
        first = await client.post("/cost-and-usage/export", json={"format": "json"})
        second = await client.post("/cost-and-usage/export", json={"format": "json"})
        job_id = (await first.json())["jobId"]
        job = await (await client.get(f"/cost-and-usage/export/{job_id}")).json()
        if job["status"] in ("Pending", "Processing"):  # still running: the second must have been refused
            assert second.status == 429 and (await second.json())["code"] == "rate_limited"
            assert int(second.headers["Retry-After"]) >= 1
        await wait_done(client, job_id)
        third = await client.post("/cost-and-usage/export", json={"format": "csv"})
        assert third.status == 202  # the slot is free again
        await wait_done(client, (await third.json())["jobId"])


async def test_requests_beyond_the_rate_limit_get_429_with_retry_after(settings: Settings) -> None:
    limited = settings.model_copy(update={"rate_limit_per_second": 0.001, "rate_limit_burst": 3})
    async with running_services(limited, load_demo=False) as svc:
        app = create_app(Pipeline(svc), TokenStore(["tok"]))
        async with TestClient(TestServer(app)) as client:
            statuses = [(await client.get("/schema", headers={"Authorization": "Bearer tok"})).status for _ in range(5)]
            resp = await client.get("/schema", headers={"Authorization": "Bearer tok"})
            body = await resp.json()
    assert statuses == [200, 200, 200, 429, 429]
    assert resp.status == 429 and body["code"] == "rate_limited" and int(resp.headers["Retry-After"]) >= 1


async def test_a_query_past_the_timeout_is_stopped_with_query_timeout(settings: Settings) -> None:
    hasty = settings.model_copy(update={"query_timeout_seconds": 1e-9})
    async with running_services(hasty, load_demo=False) as svc:
        with pytest.raises(QueryTimeout) as caught:
            await cost_and_usage.list_cost_and_usage(ListCostAndUsageInput(), tool_context(svc, REST_LIMITS))
    assert caught.value.code == "query_timeout" and caught.value.status == 503


async def test_expired_exports_lose_their_files_and_say_why(services: Services) -> None:
    async with await client_for(services) as client:
        job_id = (await (await client.post("/cost-and-usage/export", json={"format": "csv"})).json())["jobId"]
        job = await wait_done(client, job_id)
        download = job["files"][0]["downloadUrl"].split("8080", 1)[1]
        assert (await client.get(download)).status == 200
        services.exports.ttl = services.exports.ttl * 0 - services.exports.ttl  # everything is past its TTL
        assert await anyio.to_thread.run_sync(services.exports.expire) == 1
        expired = await (await client.get(f"/cost-and-usage/export/{job_id}")).json()
        assert expired["status"] == "Expired" and "expired" in expired["error"]
        assert expired["downloadUrl"] is None
        assert (await client.get(download)).status == 404
        assert not (services.exports.root / job_id / job["files"][0]["name"]).exists()


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """5 000 demo rows: a stream of ~13 MB, far more than the socket buffers hold."""
    path = tmp_path_factory.mktemp("demo")
    store = Store(path)
    try:
        generate_demo(store, rows=5000)
    finally:
        store.close()
    return path


async def test_a_client_that_drops_an_ndjson_stream_stops_the_walk_and_frees_it(demo_dir: Path) -> None:
    settings = Settings(data_dir=demo_dir, token_secret="t")  # type: ignore[arg-type]
    async with running_services(settings, load_demo=False) as svc:
        app = create_app(Pipeline(svc), TokenStore([]))
        async with TestClient(TestServer(app)) as client:
            resp = await client.get(
                "/cost-and-usage", params={"pageSize": "50"}, headers={"Accept": "application/x-ndjson"}
            )
            total = int(resp.headers["X-Total-Records"])
            assert (await resp.content.readline()).startswith(b"{")
            assert (await (await client.get("/healthz")).json())["activeStreams"] == 1
            resp.close()  # the client goes away after the first line
            with anyio.fail_after(30):
                while (await (await client.get("/healthz")).json())["activeStreams"]:
                    await anyio.sleep(0.01)
            assert app[STREAMS].rows_sent < total  # the walk stopped; it did not run to the end
