"""Bench: what upstream mode costs: the extra hop for one page, and the throughput of a full page walk.

    .venv/bin/python bench/upstream.py [--rows 200000] [--requests 50]

A is ``focus-api serve`` on the demo dataset (``focus-api demo --rows N``, cached under bench/.data);
B is ``focus-api serve --upstream <A>``. Both run in this process's run, on this machine, so the ratios
compare like with like:

- hop: the same filtered 100-row page through A and through B, requests interleaved A, B, A, B ...;
  p50/p95 per path and the p50 ratio B/A, over REST and over MCP HTTP (B's MCP calls A's REST).
- walk: every row of the dataset, page by page over REST (pageSize 10 000, the REST maximum, and 1 000),
  through A and through B: rows/s and the ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import httpx2
from common import demo_store, machine, p50, pct, served
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

FILTERS = {
    "providerName": "AWS",
    "serviceCategory": "Compute",
    "billingPeriodStart": "2026-01-01T00:00:00Z",
    "billingPeriodEnd": "2026-07-01T00:00:00Z",
}
PAGE = 100
WARMUP = 3


async def rest_hop(a: str, b: str, n: int) -> tuple[list[float], list[float]]:
    """The same 100-row page through A and through B, interleaved; seconds per request."""
    times: dict[str, list[float]] = {a: [], b: []}
    params = {**FILTERS, "pageSize": str(PAGE)}
    async with aiohttp.ClientSession() as http:
        for i in range(n + WARMUP):
            for url in (a, b):
                started = time.perf_counter()
                async with http.get(f"{url}/cost-and-usage", params=params) as resp:
                    body = await resp.read()
                    assert resp.status == 200, body[:300]
                if i >= WARMUP:
                    times[url].append(time.perf_counter() - started)
    return times[a], times[b]


async def mcp_hop(a: str, b: str, n: int) -> tuple[list[float], list[float]]:
    times: dict[str, list[float]] = {a: [], b: []}
    args: dict[str, Any] = {**FILTERS, "pageSize": PAGE}
    async with (
        httpx2.AsyncClient(timeout=120) as http_a,
        httpx2.AsyncClient(timeout=120) as http_b,
        Client(streamable_http_client(a, http_client=http_a)) as client_a,
        Client(streamable_http_client(b, http_client=http_b)) as client_b,
    ):
        for i in range(n + WARMUP):
            for url, client in ((a, client_a), (b, client_b)):
                started = time.perf_counter()
                result = await client.call_tool("listcostandusage", args)
                assert not result.is_error, result.content
                if i >= WARMUP:
                    times[url].append(time.perf_counter() - started)
    return times[a], times[b]


async def walk(url: str, page_size: int) -> tuple[int, float]:
    """Every Cost and Usage row over REST, page by page: (rows, seconds)."""
    rows = 0
    params: dict[str, str] = {"pageSize": str(page_size)}
    started = time.perf_counter()
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None)) as http:
        while True:
            async with http.get(f"{url}/cost-and-usage", params=params) as resp:
                body = await resp.json(loads=_loads)
                assert resp.status == 200, body
            rows += len(body["data"])
            if body["nextPageToken"] is None:
                return rows, time.perf_counter() - started
            params["pageToken"] = body["nextPageToken"]


def _loads(text: str) -> Any:
    return json.loads(text, parse_float=Decimal)


def hop_row(name: str, samples: list[float], ref: list[float] | None = None) -> str:
    ratio = f"{p50(samples) / p50(ref):.2f}x" if ref else ""
    return f"| {name} | {p50(samples) * 1000:.1f} | {pct(samples, 0.95) * 1000:.1f} | {ratio} |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--requests", type=int, default=50)
    args = parser.parse_args()
    data_dir = demo_store(args.rows)

    with (
        tempfile.TemporaryDirectory() as b_dir,
        served(data_dir) as (a_rest, a_mcp),
        served(Path(b_dir), "--upstream", a_rest) as (b_rest, b_mcp),
    ):
        rest_a, rest_b = asyncio.run(rest_hop(a_rest, b_rest, args.requests))
        mcp_a, mcp_b = asyncio.run(mcp_hop(a_mcp, b_mcp, args.requests))
        walks: list[tuple[int, int, float, int, float]] = []
        for size in (10_000, 1_000):
            rows_a, secs_a = asyncio.run(walk(a_rest, size))
            rows_b, secs_b = asyncio.run(walk(b_rest, size))
            assert rows_a == rows_b, (rows_a, rows_b)
            walks.append((size, rows_a, secs_a, rows_b, secs_b))

    print(f"bench/upstream.py · {args.rows:,} demo rows · {machine()}")
    print(f"hop: filters {FILTERS}, pageSize {PAGE}, {args.requests} requests per path, A and B interleaved\n")
    print("| path | p50 ms | p95 ms | ratio |")
    print("|---|---|---|---|")
    print(hop_row("REST via A", rest_a))
    print(hop_row("REST via B -> A", rest_b, rest_a))
    print(hop_row("MCP HTTP via A", mcp_a))
    print(hop_row("MCP HTTP via B -> A (REST)", mcp_b, mcp_a))
    print("\nwalk: every row over REST, sequential pages\n")
    print("| pageSize | rows | via A s | via A rows/s | via B s | via B rows/s | B/A throughput |")
    print("|---|---|---|---|---|---|---|")
    for size, rows, secs_a, _, secs_b in walks:
        print(
            f"| {size:,} | {rows:,} | {secs_a:.2f} | {rows / secs_a:,.0f} | {secs_b:.2f} | {rows / secs_b:,.0f} "
            f"| {secs_a / secs_b:.2f}x |"
        )


if __name__ == "__main__":
    main()
