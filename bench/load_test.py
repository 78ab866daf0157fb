"""Load test: 10 000 REST requests at 64 concurrent connections against a local ``focus-api serve``.

    .venv/bin/python bench/load_test.py [--rows 200000] [--requests 10000] [--concurrency 64] [--seed 7]
    .venv/bin/python bench/load_test.py --url http://127.0.0.1:8080 --token ...   # a server already running

Starts ``focus-api serve`` on free loopback ports over a cached demo dataset (``common.served``), or uses
``--url`` (loopback addresses only). The requests are a fixed, seeded mix of what a dashboard or an agent
sends, every page 100 rows:

* 60 % ``GET /cost-and-usage``: first pages under realistic filters (a billing period, a provider, a
  service category, a region, a sub account, a charge category, combinations of them), and next pages
  of those walks via ``nextPageToken``;
* 25 % ``GET /contract-commitments``: all, or those of one billing account;
* 15 % ``GET /schema``.

The filter values come from the data itself (one discovery page and ``/schema``). A warm-up of one
request per connection is not counted. Every answer must be 200 with a well-formed body; any error,
timeout or connection failure is reported and the script exits 1. It stops by itself: each request has a
timeout and the whole run a deadline (``--max-seconds``). Prints p50/p90/p99/max latency, requests/s,
and p50/p99 per kind.
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import json
import random
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from common import demo_store, machine, p50, pct, served

PAGE = "100"


@dataclass(frozen=True)
class Request:
    kind: str
    path: str
    params: dict[str, str]


@dataclass(frozen=True)
class Outcome:
    kind: str
    seconds: float
    error: str | None


def check_loopback(url: str) -> None:
    host = urlsplit(url).hostname or ""
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise SystemExit(f"load_test.py only drives a server on loopback (127.0.0.1, ::1, localhost), not {host!r}")


async def get_json(http: aiohttp.ClientSession, url: str, params: dict[str, str] | None = None) -> Any:
    async with http.get(url, params=params) as resp:
        body = await resp.read()
        if resp.status != 200:
            raise SystemExit(f"discovery request {url} {params} failed: {resp.status} {body[:300]!r}")
        return json.loads(body)


async def plan(http: aiohttp.ClientSession, base: str, count: int, seed: int) -> list[Request]:
    """A seeded mix of ``count`` requests built from values found in the data."""
    schema = await get_json(http, f"{base}/schema")
    sample = (await get_json(http, f"{base}/cost-and-usage", {"pageSize": "1000"}))["data"]
    periods = [p["billingPeriodStart"] for p in schema["loaded"]["billingPeriods"] if p.get("billingPeriodStart")]
    periods = sorted(set(periods))

    def values(column: str) -> list[str]:
        return sorted({str(r[column]) for r in sample if r.get(column)})

    rnd = random.Random(seed)
    filter_sets: list[dict[str, str]] = [{}]
    for start, end in zip(periods, [*periods[1:], None], strict=True):
        filter_sets.append({"billingPeriodStart": start} | ({"billingPeriodEnd": end} if end else {}))
    for provider in schema["loaded"]["providers"]:
        filter_sets.append({"providerName": provider})
    for column, param in (
        ("ServiceCategory", "serviceCategory"),
        ("RegionId", "region"),
        ("SubAccountId", "subAccountId"),
        ("ChargeCategory", "chargeCategory"),
        ("ServiceName", "serviceName"),
    ):
        for value in rnd.sample(values(column), min(4, len(values(column)))):
            filter_sets.append({param: value})
    for _ in range(12):  # combinations: a period, a provider and a category together
        combo = dict(rnd.choice(filter_sets[1 : len(periods) + 1]))
        combo |= {"providerName": rnd.choice(schema["loaded"]["providers"])}
        combo |= {"serviceCategory": rnd.choice(values("ServiceCategory"))}
        filter_sets.append(combo)

    # Second and third pages of the walks that have them (tokens are bound to the filters and the data).
    next_pages: list[dict[str, str]] = []
    for filters in filter_sets:
        params = filters | {"pageSize": PAGE}
        for _ in range(2):
            token = (await get_json(http, f"{base}/cost-and-usage", params))["nextPageToken"]
            if not token:
                break
            params = params | {"pageToken": token}
            next_pages.append(params)
    accounts = values("BillingAccountId")

    mix: list[Request] = []
    for _ in range(count):
        roll = rnd.random()
        if roll < 0.40:
            mix.append(Request("list page 1", "/cost-and-usage", rnd.choice(filter_sets) | {"pageSize": PAGE}))
        elif roll < 0.60:
            mix.append(Request("list next page", "/cost-and-usage", rnd.choice(next_pages)))
        elif roll < 0.85:
            params = {"pageSize": PAGE} | ({"billingAccountId": rnd.choice(accounts)} if rnd.random() < 0.6 else {})
            mix.append(Request("commitments", "/contract-commitments", params))
        else:
            mix.append(Request("schema", "/schema", {}))
    return mix


def body_problem(request: Request, body: bytes) -> str | None:
    """Why a 200 body is not what the request should get, or None."""
    try:
        data = json.loads(body)
    except ValueError:
        return "body is not JSON"
    if request.kind == "schema":
        return None if data.get("focusVersion") == "1.3" else "schema answer without focusVersion 1.3"
    rows = data.get("data")
    if not isinstance(rows, list) or len(rows) > int(PAGE) or "totalRecords" not in data:
        return f"not a page of at most {PAGE} rows"
    return None


async def drive(base: str, headers: dict[str, str], mix: list[Request], concurrency: int) -> list[Outcome]:
    timeout = aiohttp.ClientTimeout(total=60)
    connector = aiohttp.TCPConnector(limit=concurrency, limit_per_host=concurrency)
    outcomes: list[Outcome] = []
    queue: Iterator[Request] = iter(mix)

    async def one(http: aiohttp.ClientSession, request: Request) -> Outcome:
        started = time.perf_counter()
        try:
            async with http.get(base + request.path, params=request.params) as resp:
                body = await resp.read()
            error = f"{resp.status} {body[:200]!r}" if resp.status != 200 else body_problem(request, body)
        except (aiohttp.ClientError, TimeoutError) as exc:
            error = f"{type(exc).__name__}: {exc}"
        return Outcome(request.kind, time.perf_counter() - started, error)

    async def worker(http: aiohttp.ClientSession) -> None:
        for request in queue:  # one shared iterator: each request is sent exactly once
            outcomes.append(await one(http, request))

    async with aiohttp.ClientSession(headers=headers, timeout=timeout, connector=connector) as http:
        warm = await asyncio.gather(*(one(http, mix[i % len(mix)]) for i in range(concurrency)))
        if failed := [o.error for o in warm if o.error]:
            raise SystemExit(f"warm-up failed: {failed[:3]}")
        await asyncio.gather(*(worker(http) for _ in range(concurrency)))
    return outcomes


def report(outcomes: list[Outcome], seconds: float, args: argparse.Namespace, rows: str) -> int:
    errors = [o for o in outcomes if o.error]
    latencies = [o.seconds for o in outcomes]
    print(f"bench/load_test.py · {rows} · {machine()}")
    print(f"{len(outcomes):,} requests, {args.concurrency} concurrent connections, seed {args.seed}, pages of {PAGE}\n")
    print(f"errors: {len(errors)}")
    print(f"wall: {seconds:.2f} s   throughput: {len(outcomes) / seconds:,.0f} requests/s")
    print(
        f"latency ms: p50 {p50(latencies) * 1000:.1f}  p90 {pct(latencies, 0.90) * 1000:.1f}  "
        f"p99 {pct(latencies, 0.99) * 1000:.1f}  max {max(latencies) * 1000:.1f}\n"
    )
    print("| kind | requests | p50 ms | p99 ms |")
    print("|---|---|---|---|")
    kinds = Counter(o.kind for o in outcomes)
    for kind, n in sorted(kinds.items()):
        times = [o.seconds for o in outcomes if o.kind == kind]
        print(f"| {kind} | {n:,} | {p50(times) * 1000:.1f} | {pct(times, 0.99) * 1000:.1f} |")
    if errors:
        print(f"\nFAILED: {len(errors)} of {len(outcomes)} requests failed", file=sys.stderr)
        for (kind, error), n in Counter((o.kind, o.error) for o in errors).most_common(10):
            print(f"  {n}x {kind}: {error}", file=sys.stderr)
        return 1
    if len(outcomes) != args.requests:
        print(f"\nFAILED: {len(outcomes)} answers for {args.requests} requests", file=sys.stderr)
        return 1
    return 0


@contextmanager
def target(args: argparse.Namespace) -> Iterator[tuple[str, str]]:
    """The REST base URL to drive, and a description of its data."""
    if args.url:
        check_loopback(args.url)
        yield args.url.rstrip("/"), "an already running server"
        return
    with served(demo_store(args.rows)) as (rest, _mcp):
        check_loopback(rest)
        yield rest, f"{args.rows:,} demo rows"


async def run(args: argparse.Namespace, base: str) -> tuple[list[Outcome], float]:
    headers = {"Authorization": f"Bearer {args.token}"} if args.token else {}
    async with aiohttp.ClientSession(headers=headers, timeout=aiohttp.ClientTimeout(total=60)) as http:
        mix = await plan(http, base, args.requests, args.seed)
    started = time.perf_counter()
    outcomes = await asyncio.wait_for(drive(base, headers, mix, args.concurrency), timeout=args.max_seconds)
    return outcomes, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=200_000, help="demo rows to serve (ignored with --url)")
    parser.add_argument("--requests", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--max-seconds", type=float, default=1800, help="abort the run after this long")
    parser.add_argument("--url", help="drive this already running server (loopback only) instead of starting one")
    parser.add_argument("--token", help="bearer token for --url")
    args = parser.parse_args()
    with target(args) as (base, rows):
        try:
            outcomes, seconds = asyncio.run(run(args, base))
        except TimeoutError:
            raise SystemExit(f"FAILED: the run did not finish within --max-seconds {args.max_seconds:g}") from None
    sys.exit(report(outcomes, seconds, args, rows))


if __name__ == "__main__":
    main()
