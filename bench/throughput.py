"""Suite case: REST requests/s at 64 connections vs a bare aiohttp handler returning a fixed page of the same size.

The requests are bench/load_test.py's seeded mix, keeping only its Cost and Usage page requests (first
pages under realistic filters and next pages via ``nextPageToken``, 100 rows each). The same requests go
to ``focus-api serve`` and to ``bench/bare.py`` (its own process, answering every GET with the bytes of
a real 100-row page), through load_test's driver at 64 connections. The requests are split into rounds
that alternate between the two servers; requests/s is requests over wall time of each side's rounds.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager

import aiohttp
from common import HERE, Server, free_port, pct
from list import FILTERS, PAGE
from load_test import Outcome, Request, drive, plan
from report import Row, Target, ms

CONCURRENCY = 64


async def page_mix(base: str, count: int, seed: int = 7) -> list[Request]:
    """``count`` Cost and Usage page requests from load_test's mix (values discovered from the data)."""
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=120)) as http:
        mix = await plan(http, base, count * 2, seed)
    pages = [r for r in mix if r.path == "/cost-and-usage"]
    while len(pages) < count:
        pages += pages
    return pages[:count]


@contextmanager
def bare_server(body: bytes) -> Iterator[str]:
    """``bench/bare.py`` on a free port answering with ``body``; yields its base URL."""
    with tempfile.NamedTemporaryFile(suffix=".json") as f:
        f.write(body)
        f.flush()
        port = free_port()
        proc = subprocess.Popen([sys.executable, str(HERE / "bare.py"), "--port", str(port), "--body", f.name])
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    urllib.request.urlopen(url, timeout=1).read()
                    break
                except OSError:
                    if proc.poll() is not None or time.monotonic() > deadline:
                        raise RuntimeError("bench/bare.py did not start") from None
                    time.sleep(0.1)
            yield url
        finally:
            proc.terminate()
            proc.wait(timeout=10)


def fixed_page(rest: str) -> bytes:
    query = urllib.parse.urlencode({**FILTERS, "pageSize": str(PAGE)})
    with urllib.request.urlopen(f"{rest}/cost-and-usage?{query}", timeout=60) as resp:  # noqa: S310 (loopback)
        return bytes(resp.read())


def timed(base: str, mix: list[Request]) -> tuple[list[Outcome], float]:
    started = time.perf_counter()
    outcomes = asyncio.run(drive(base, {}, mix, CONCURRENCY))
    return outcomes, time.perf_counter() - started


def run(server: Server, requests: int, rounds: int, *, cached: bool = True) -> list[Row]:
    """The requests/s row; ``cached=False`` labels a server started with its response cache off (info only)."""
    mix = asyncio.run(page_mix(server.rest, requests))
    body = fixed_page(server.rest)
    chunk = max(1, len(mix) // rounds)
    ours: list[Outcome] = []
    bare: list[Outcome] = []
    wall = {"ours": 0.0, "bare": 0.0}
    with bare_server(body) as bare_url:
        for r in range(rounds):
            part = mix[r * chunk : (r + 1) * chunk]
            order = [("ours", server.rest), ("bare", bare_url)]
            for name, base in order if r % 2 == 0 else reversed(order):
                outcomes, seconds = timed(base, part)
                (ours if name == "ours" else bare).extend(outcomes)
                wall[name] += seconds
    errors = [o.error for o in ours + bare if o.error]
    ours_rps, bare_rps = len(ours) / wall["ours"], len(bare) / wall["bare"]
    latencies = [o.seconds for o in ours]
    notes = [
        f"REST at {CONCURRENCY} connections: {len(ours):,} page requests, latency p50 "
        f"{ms(pct(latencies, 0.5))}, p95 {ms(pct(latencies, 0.95))}; bare handler body {len(body):,} bytes"
    ]
    with urllib.request.urlopen(f"{server.rest}/healthz", timeout=30) as resp:  # noqa: S310 (loopback)
        cache = json.loads(resp.read()).get("responseCache")
    if cache and cache["hits"] + cache["misses"]:
        notes.append(
            f"server response cache after the run: {cache['hits']:,} hits, {cache['misses']:,} misses, "
            f"{cache['bytes'] / 2**20:.0f} MiB (FOCUS_API_RESPONSE_CACHE_MB=0 turns it off)"
        )
    if errors:
        notes.append(f"{len(errors)} requests failed, e.g. {errors[0]}")
    label = "" if cached else ", response cache off"
    return [
        Row(
            f"REST requests/s at {CONCURRENCY} connections vs bare aiohttp{label}",
            f"{ours_rps:,.0f} req/s",
            f"lat. p95 {ms(pct(latencies, 0.95))}",
            f"{bare_rps:,.0f} req/s",
            ours_rps / bare_rps,
            Target(">=", 0.5) if cached else None,
            result="FAIL" if errors else "",
            notes=notes,
        )
    ]
