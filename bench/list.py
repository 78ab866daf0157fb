"""Bench: a filtered 100-row page through REST and MCP HTTP vs the same query straight on DuckDB.

    .venv/bin/python bench/list.py [--rows 10000000] [--requests 50]

Prints p50/p95 per path and the ratios the issue targets, all measured in this run:
REST p50 <= 1.3x raw DuckDB, MCP HTTP p50 <= 2x REST, page 10 000 p50 <= 1.2x page 1.
Raw DuckDB runs before and after the server (DuckDB lets one process write a file); its p50 is the median
of both rounds. The page-10 000 token is minted with the server's page-token secret for the cursor a walk
would reach, so the bench need not walk 10 000 pages first.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time
import urllib.request
from pathlib import Path
from typing import Any

import aiohttp
import duckdb
import httpx2
from common import FOCUS_API, SECRET, demo_store, machine, p50, pct, served, store_file
from mcp import Client, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import streamable_http_client

from server.sources import sql
from tools.catalog import DEFAULT_VERSION, cost_and_usage
from tools.cost_and_usage import ListCostAndUsageInput
from tools.pagination import PageTokens, fingerprint
from tools.source import Scope

FILTERS = {
    "providerName": "AWS",
    "serviceCategory": "Compute",
    "billingPeriodStart": "2026-01-01T00:00:00Z",
    "billingPeriodEnd": "2026-07-01T00:00:00Z",
}
PAGE = 100


def raw_round(db: str, n: int, after: int | None) -> list[float]:
    """The page query the DuckDB source runs, straight on DuckDB, rows fetched as Python tuples."""
    con = duckdb.connect(db, read_only=True)
    con.execute("SET enable_progress_bar = false")
    custom = [r[0] for r in con.execute("SELECT name FROM custom_columns WHERE dataset = 'CostAndUsage'").fetchall()]
    filters = ListCostAndUsageInput.model_validate(FILTERS).cost_filters(Scope())
    query, params = sql.page_query(filters, after, PAGE, [*cost_and_usage().ids, *custom])
    times = []
    for _ in range(n + 3):
        started = time.perf_counter()
        con.execute(query, params).fetchall()
        times.append(time.perf_counter() - started)
    con.close()
    return times[3:]


def cursor_at_page(db: str, page: int) -> int:
    """The _row_id a walk of PAGE-row pages has reached after ``page - 1`` pages."""
    con = duckdb.connect(db, read_only=True)
    filters = ListCostAndUsageInput.model_validate(FILTERS).cost_filters(Scope())
    where, params = sql.cost_where(filters)
    offset = (page - 1) * PAGE - 1
    row = con.execute(
        f"SELECT _row_id FROM cost_and_usage{sql.where_sql(where)} ORDER BY _row_id LIMIT 1 OFFSET {offset}", params
    ).fetchone()
    con.close()
    if row is None:
        raise SystemExit(f"the filter matches fewer than {page} pages; use more --rows")
    return int(row[0])


def page_token(rest_url: str, cursor: int) -> str:
    """The pageToken a walk of FILTERS reaches at ``cursor``, minted with the bench server's token secret."""
    filters = ListCostAndUsageInput.model_validate(FILTERS).cost_filters(Scope())
    state = json.loads(urllib.request.urlopen(f"{rest_url}/healthz").read())  # noqa: S310
    return PageTokens(SECRET.encode()).issue(
        fingerprint=fingerprint("listcostandusage", filters.as_params() | {"focusVersion": DEFAULT_VERSION}, ""),
        data_version=state["dataVersion"],
        cursor=str(cursor),
    )


async def rest_round(url: str, n: int, params: dict[str, str], path: str = "/cost-and-usage") -> list[float]:
    times = []
    async with aiohttp.ClientSession() as http:
        for i in range(n + 3):
            started = time.perf_counter()
            async with http.get(f"{url}{path}", params=params) as resp:
                body = await resp.read()
                assert resp.status == 200, body[:300]
            if i >= 3:
                times.append(time.perf_counter() - started)
    return times


async def _timed_calls(client: Client, n: int, args: dict[str, Any]) -> list[float]:
    """``n`` timed ``listcostandusage`` calls, after 3 untimed ones."""
    times = []
    for i in range(n + 3):
        started = time.perf_counter()
        result = await client.call_tool("listcostandusage", args)
        assert not result.is_error, result.content
        if i >= 3:
            times.append(time.perf_counter() - started)
    return times


async def mcp_round(url: str, n: int, args: dict[str, Any]) -> list[float]:
    async with httpx2.AsyncClient(timeout=60) as http, Client(streamable_http_client(url, http_client=http)) as c:
        return await _timed_calls(c, n, args)


async def mcp_stdio_round(data_dir: Path, n: int, args: dict[str, Any]) -> list[float]:
    """``n`` timed calls to a ``focus-api stdio`` this process launches on ``data_dir`` (after 3 untimed)."""
    env = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "TMPDIR")}
    params = StdioServerParameters(
        command=str(FOCUS_API),
        args=["stdio", "--data-dir", str(data_dir)],
        env=env | {"FOCUS_API_LOG_LEVEL": "warning", "FOCUS_API_TOKEN_SECRET": SECRET},
    )
    with open(os.devnull, "w") as quiet:
        async with Client(stdio_client(params, errlog=quiet)) as c:
            return await _timed_calls(c, n, args)


def row(name: str, samples: list[float], ref: float | None = None, target: str = "") -> str:
    ratio = f"{p50(samples) / ref:.2f}x" if ref else ""
    return f"| {name} | {p50(samples) * 1000:.1f} | {pct(samples, 0.95) * 1000:.1f} | {ratio} | {target} |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--requests", type=int, default=50)
    args = parser.parse_args()
    data_dir = demo_store(args.rows)
    db = str(store_file(data_dir))
    deep = cursor_at_page(db, 10_000) if args.rows >= 10_000 * PAGE * 4 else cursor_at_page(db, 100)
    deep_page = 10_000 if args.rows >= 10_000 * PAGE * 4 else 100
    raw = raw_round(db, args.requests, None)
    raw_deep = raw_round(db, args.requests, deep)

    with served(data_dir) as (rest_url, mcp_url):
        query = {**FILTERS, "pageSize": str(PAGE)}
        token = page_token(rest_url, deep)
        rest = asyncio.run(rest_round(rest_url, args.requests, query))
        rest_deep = asyncio.run(rest_round(rest_url, args.requests, {**query, "pageToken": token}))
        mcp = asyncio.run(mcp_round(mcp_url, args.requests, {**FILTERS, "pageSize": PAGE}))

    raw += raw_round(db, args.requests, None)
    raw_deep += raw_round(db, args.requests, deep)
    print(f"bench/list.py · {args.rows:,} rows · {machine()}")
    print(f"filters {FILTERS}, pageSize {PAGE}, {args.requests} requests per path, sequential\n")
    print("| path | p50 ms | p95 ms | ratio | target |")
    print("|---|---|---|---|---|")
    print(row("raw DuckDB, page 1", raw))
    print(row("REST, page 1", rest, p50(raw), "<= 1.3x raw"))
    print(row("MCP HTTP, page 1", mcp, p50(rest), "<= 2x REST"))
    print(row(f"raw DuckDB, page {deep_page:,}", raw_deep))
    print(row(f"REST, page {deep_page:,}", rest_deep, p50(rest), "<= 1.2x page 1"))


if __name__ == "__main__":
    main()
