"""The caches in front of the store: the REST response cache (same answers, once per key under concurrency,
bounded, per version and scope) and the source's per-version memo of bookkeeping reads; neither may ever
change an answer, so a load or another scope is a new answer at the next call."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Awaitable, Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import anyio
import pytest
from aiohttp.test_utils import TestClient, TestServer
from conftest import GCP_12

from server.auth import TokenStore
from server.pipeline import Pipeline
from server.rest.app import create_app
from server.rest.cache import ResponseCache
from server.rest.routes import CACHE
from server.services import Services
from server.sources.version_memo import VersionMemo
from server.store.db import Store
from server.store.loader import load_files


async def test_concurrent_misses_compute_once_and_later_calls_hit() -> None:
    cache = ResponseCache(1 << 20)
    calls = 0

    async def compute() -> bytes:
        nonlocal calls
        calls += 1
        await anyio.sleep(0.05)
        return b"answer"

    results: list[bytes] = []

    async def ask() -> None:
        results.append(await cache.fetch("k", compute))

    async with anyio.create_task_group() as tg:
        for _ in range(5):
            tg.start_soon(ask)
    assert results == [b"answer"] * 5 and calls == 1
    assert await cache.fetch("k", compute) == b"answer" and calls == 1
    assert cache.stats()["hits"] == 5 and cache.stats()["misses"] == 1


async def test_errors_are_not_cached_and_waiters_compute_their_own() -> None:
    cache = ResponseCache(1 << 20)
    outcomes: list[Exception | bytes] = [RuntimeError("first fails"), b"second"]

    async def compute() -> bytes:
        outcome = outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    with pytest.raises(RuntimeError):
        await cache.fetch("k", compute)
    assert await cache.fetch("k", compute) == b"second"
    assert cache.stats()["entries"] == 1


async def test_least_recently_used_entries_go_beyond_the_byte_bound() -> None:
    cache = ResponseCache(100)

    def body(text: bytes) -> Callable[[], Awaitable[bytes]]:
        async def compute() -> bytes:
            return text

        return compute

    for key in ("a", "b", "c"):
        await cache.fetch(key, body(key.encode() * 25))
    await cache.fetch("a", body(b"x"))  # a hit: "a" is now the most recent
    for key in ("d", "e"):
        await cache.fetch(key, body(key.encode() * 25))
    assert cache.stats()["bytes"] == 100
    assert await cache.fetch("a", body(b"recomputed")) == b"a" * 25
    assert await cache.fetch("b", body(b"recomputed")) == b"recomputed"


async def test_a_disabled_cache_always_computes() -> None:
    cache = ResponseCache(0)
    answers = iter([b"1", b"2"])

    async def compute() -> bytes:
        return next(answers)

    assert [await cache.fetch("k", compute), await cache.fetch("k", compute)] == [b"1", b"2"]


async def test_rest_pages_repeat_from_the_cache_with_the_same_bytes(services: Services) -> None:
    async with TestClient(TestServer(create_app(Pipeline(services), TokenStore([])))) as client:
        params = {"pageSize": "5", "chargeCategory": "Usage"}
        first = await client.get("/cost-and-usage", params=params)
        second = await client.get("/cost-and-usage", params=params)
        other = await client.get("/cost-and-usage", params={"pageSize": "6", "chargeCategory": "Usage"})
        assert first.status == second.status == other.status == 200
        assert await first.read() == await second.read()
        assert len((await other.json())["data"]) == 6
        stats: dict[str, Any] = client.app[CACHE].stats()
        assert stats["hits"] == 1 and stats["misses"] == 2
        export_status = await client.get("/cost-and-usage/export/unknown")
        assert export_status.status == 404
        assert client.app[CACHE].stats()["misses"] == 2


def test_the_memo_keeps_a_value_until_the_data_version_moves() -> None:
    memo = VersionMemo(size=2)
    reads = iter(range(100))
    assert [memo.get(1, "k", lambda: next(reads)) for _ in range(3)] == [0, 0, 0]
    assert memo.get(2, "k", lambda: next(reads)) == 1  # a new version: computed again, the old one dropped
    assert len(memo) == 1
    assert memo.get(1, "k", lambda: next(reads)) == 2  # a reader still on the old version is answered for it


def test_a_peek_at_the_memo_never_computes_and_sees_only_the_current_version() -> None:
    memo = VersionMemo()
    assert memo.peek(1, "k") == (False, None)
    memo.get(1, "k", lambda: None)
    assert memo.peek(1, "k") == (True, None)  # a kept None is a value, not a miss
    assert memo.peek(2, "k") == (False, None)
    assert memo.peek(1, "other") == (False, None)


def test_the_memo_is_bounded_and_forgets_the_least_recently_used_key() -> None:
    memo = VersionMemo(size=2)
    for key in ("a", "b"):
        memo.get(1, key, lambda key=key: key)
    memo.get(1, "a", lambda: "recomputed")  # "a" is now the most recent
    memo.get(1, "c", lambda: "c")
    assert len(memo) == 2
    assert memo.get(1, "a", lambda: "recomputed") == "a"
    assert memo.get(1, "b", lambda: "recomputed") == "recomputed"


def test_a_value_computed_while_the_version_moved_on_is_not_kept() -> None:
    memo = VersionMemo()

    def slow_read() -> str:
        memo.get(2, "other", lambda: "newer")  # another thread sees version 2 while this one computes
        return "stale"

    assert memo.get(1, "k", slow_read) == "stale"
    assert memo.get(2, "k", lambda: "fresh") == "fresh"


def scoped_tokens(tmp_path: Path) -> TokenStore:
    entries = [
        {"name": "all", "sha256": hashlib.sha256(b"tok-all").hexdigest()},
        {"name": "b", "sha256": hashlib.sha256(b"tok-b").hexdigest(), "billingAccountIds": ["100000000002"]},
    ]
    path = tmp_path / "tokens.json"
    path.write_text(json.dumps({"tokens": entries}))
    return TokenStore([], path)


async def test_a_load_or_another_scope_is_answered_afresh_not_from_the_caches(
    services: Services, settings: Any, tmp_path: Path
) -> None:
    params = {"pageSize": "3"}
    summary = {"groupBy": "ServiceProviderName"}
    async with TestClient(TestServer(create_app(Pipeline(services), scoped_tokens(tmp_path)))) as client:

        async def ask(path: str, query: dict[str, str], token: str) -> dict[str, Any]:
            resp = await client.get(path, params=query, headers={"X-API-Key": token})
            assert resp.status == 200, await resp.text()
            body: dict[str, Any] = json.loads(await resp.text(), parse_float=Decimal)
            return body

        before = await ask("/cost-and-usage", params, "tok-all")
        assert await ask("/cost-and-usage", params, "tok-all") == before  # a hit
        scoped = await ask("/cost-and-usage", params, "tok-b")
        assert scoped["totalRecords"] < before["totalRecords"]
        assert {r["BillingAccountId"] for r in scoped["data"]} == {"100000000002"}
        providers_before = await ask("/cost-and-usage/summary", summary, "tok-all")

        with Store(settings.data_dir) as store:  # a load published while the server runs
            assert load_files(store, [GCP_12]).ok
        after = await ask("/cost-and-usage", params, "tok-all")
        providers_after = await ask("/cost-and-usage/summary", summary, "tok-all")
        stats = client.app[CACHE].stats()

    assert after["totalRecords"] == before["totalRecords"] + 100
    assert after["dataLastUpdated"] > before["dataLastUpdated"]

    def providers(body: dict[str, Any]) -> set[str]:
        return {row["ServiceProviderName"] for row in body["data"]}

    assert providers(providers_after) == providers(providers_before) | {"Google Cloud"}
    assert stats["hits"] == 1 and stats["misses"] == 5
