"""The REST response cache: same answers from the cache, once per key under concurrency, bounded, per version."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import pytest
from aiohttp.test_utils import TestClient, TestServer

from server.auth import TokenStore
from server.pipeline import Pipeline
from server.rest.app import create_app
from server.rest.cache import ResponseCache
from server.rest.routes import CACHE
from server.services import Services


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
