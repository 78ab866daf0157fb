"""Suite case: REST requests/s at 64 connections with the response cache off, over distinct page queries,
vs the engine limit for serving them.

No two requests are alike: each is a filter set from the data (a period, a provider, a category, a
sub-account, combinations) narrowed by its own charge-period window, and half of them start at their own
keyset cursor (a minted ``pageToken``), so neither a response cache nor the server's per-version memo of
counts can answer one from another. The engine limit runs the same requests' queries straight on DuckDB
from Python: as many worker threads as the server has query cursors (``FOCUS_API_QUERY_THREADS``, default
4), each request its page query (the source's own SQL: ``_row_id``s, then the rows between them) and its
count, turned into the JSON bytes the API returns (rows as objects with exact decimal numbers, JSON columns
as JSON, ``totalRecords``, the token). The server's answer also carries ``dataCompleteness``, checked per
request; that query is its own work, so the reference leaves it out. Rounds alternate between the two.
"""

from __future__ import annotations

import asyncio
import queue
import random
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import duckdb
import orjson
from common import SECRET, Server, pct
from load_test import Request, drive, get_json
from report import Row, Target, ms

from server.settings import Settings
from server.sources import sql
from tools import wire
from tools.catalog import DEFAULT_VERSION, Dataset, DataType, cost_and_usage, stored
from tools.cost_and_usage import ListCostAndUsageInput
from tools.pagination import PageTokens, fingerprint
from tools.source import Scope

CONCURRENCY = 64
PAGE = 100
JSON_COLUMNS = frozenset(c.id for c in stored(Dataset.COST_AND_USAGE).of_type(DataType.JSON))
FILTER_COLUMNS = (
    ("ServiceCategory", "serviceCategory"),
    ("RegionId", "region"),
    ("SubAccountId", "subAccountId"),
    ("ChargeCategory", "chargeCategory"),
    ("ServiceName", "serviceName"),
)


@dataclass(frozen=True)
class Distinct:
    """One distinct page request: its filters, the keyset cursor it starts after, and its REST query."""

    filters: dict[str, Any]
    after: int | None
    query: dict[str, str]  # the filters, pageSize and (with a cursor) the minted pageToken


def _instant(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


async def distinct_mix(server: Server, raw_db: str, count: int, seed: int = 11) -> list[Distinct]:
    """``count`` distinct page requests, built from values found in the data."""
    rnd = random.Random(seed)
    con = duckdb.connect(raw_db, read_only=True)
    try:
        first, last, top = con.execute(
            f"SELECT min(ChargePeriodStart), max(ChargePeriodStart), max(_row_id) FROM {sql.CU_TABLE}"
        ).fetchone() or (None, None, None)
        values = {
            param: [
                r[0]
                for r in con.execute(
                    f"SELECT DISTINCT {column} FROM {sql.CU_TABLE} WHERE {column} IS NOT NULL"
                ).fetchall()
            ]
            for column, param in [*FILTER_COLUMNS, ("ServiceProviderName", "providerName")]
        }
    finally:
        con.close()
    assert first is not None and last is not None and top is not None, "the store holds no Cost and Usage rows"
    first = first.replace(tzinfo=UTC) if first.tzinfo is None else first
    days = max(1, (last.replace(tzinfo=UTC) - first).days)
    async with aiohttp.ClientSession() as http:
        version = (await get_json(http, f"{server.rest}/healthz"))["dataVersion"]
    tokens = PageTokens(SECRET.encode())
    seen: set[str] = set()
    mix: list[Distinct] = []
    while len(mix) < count:
        params: dict[str, Any] = {}
        for param in rnd.sample(sorted(values), rnd.choice((0, 1, 1, 2))):
            params[param] = rnd.choice(sorted(values[param]))
        start = first + timedelta(days=rnd.randrange(days))
        params["chargePeriodStart"] = _instant(start)
        params["chargePeriodEnd"] = _instant(start + timedelta(days=rnd.randint(1, 60)))
        after = rnd.randrange(int(top)) if rnd.random() < 0.5 else None
        key = orjson.dumps([params, after], option=orjson.OPT_SORT_KEYS).decode()
        if key in seen:
            continue
        seen.add(key)
        query = {k: str(v) for k, v in params.items()} | {"pageSize": str(PAGE)}
        if after is not None:
            filters = ListCostAndUsageInput.model_validate(params).cost_filters(Scope())
            bound = fingerprint("listcostandusage", filters.as_params() | {"focusVersion": DEFAULT_VERSION}, "")
            query["pageToken"] = tokens.issue(fingerprint=bound, data_version=version, cursor=str(after))
        mix.append(Distinct(params, after, query))
    return mix


def _answer(cur: duckdb.DuckDBPyConnection, request: Distinct, names: list[str], token: str) -> bytes:
    """One request straight on DuckDB: the page, its count and the JSON bytes of the answer."""
    filters = ListCostAndUsageInput.model_validate(request.filters).cost_filters(Scope())
    after = request.after
    ids = cur.execute(*sql.page_ids_query(filters, after, PAGE)).fetchall()
    rows: list[dict[str, Any]] = []
    if ids:
        cur.execute(*sql.page_query(filters, after, PAGE, names, (int(ids[0][0]), int(ids[-1][0]))))
        columns = [d[0] for d in cur.description or []]
        for values in cur.fetchall()[:PAGE]:
            row = dict(zip(columns, values, strict=True))
            del row["_row_id"]
            for name in JSON_COLUMNS:
                if row.get(name) is not None:
                    row[name] = orjson.Fragment(row[name])
            rows.append(row)
    total = cur.execute(*sql.count_query(filters)).fetchone()
    envelope = {
        "data": rows,
        "nextPageToken": token if len(ids) > PAGE else None,
        "totalRecords": total[0] if total else 0,
    }
    return wire.dumps(envelope)


def engine_round(raw_db: str, mix: list[Distinct], threads: int) -> tuple[float, list[float], int]:
    """(wall seconds, per-request seconds, bytes) for the mix on ``threads`` DuckDB cursors."""
    con = duckdb.connect(raw_db, read_only=True)
    con.execute("SET enable_progress_bar = false")
    custom = [r[0] for r in con.execute("SELECT name FROM custom_columns WHERE dataset = 'CostAndUsage'").fetchall()]
    names = [*cost_and_usage().ids, *custom]
    token = "x" * 120  # the length of a real token; the reference need not sign one
    cursors = [con.cursor() for _ in range(threads)]
    free: queue.SimpleQueue[duckdb.DuckDBPyConnection] = queue.SimpleQueue()
    for c in cursors:
        free.put(c)
    pool = ThreadPoolExecutor(threads)

    def one(request: Distinct) -> tuple[float, int]:
        cur = free.get()
        try:
            started = time.perf_counter()
            body = _answer(cur, request, names, token)
            return time.perf_counter() - started, len(body)
        finally:
            free.put(cur)

    try:
        started = time.perf_counter()
        results = list(pool.map(one, mix))
        wall = time.perf_counter() - started
    finally:
        pool.shutdown()
        for c in cursors:
            c.close()
        con.close()
    return wall, [s for s, _ in results], sum(b for _, b in results)


def server_round(server: Server, mix: list[Distinct]) -> tuple[float, list[float], list[str]]:
    requests = [Request("distinct page", "/cost-and-usage", d.query) for d in mix]
    started = time.perf_counter()
    outcomes = asyncio.run(drive(server.rest, {}, requests, CONCURRENCY))
    wall = time.perf_counter() - started
    return wall, [o.seconds for o in outcomes], [o.error for o in outcomes if o.error]


def run(server: Server, raw_db: str, requests: int, rounds: int) -> list[Row]:
    """The requests/s row against the engine limit; ``server`` must run with its response cache off."""
    threads = Settings().query_threads
    mix = asyncio.run(distinct_mix(server, raw_db, requests * rounds))
    chunk = len(mix) // rounds
    ours: list[float] = []
    ref: list[float] = []
    errors: list[str] = []
    wall = {"ours": 0.0, "ref": 0.0}
    for r in range(rounds):
        part = mix[r * chunk : (r + 1) * chunk]
        for name in ("ours", "ref") if r % 2 == 0 else ("ref", "ours"):
            if name == "ours":
                seconds, latencies, failed = server_round(server, part)
                ours += latencies
                errors += failed
            else:
                seconds, latencies, _ = engine_round(raw_db, part, threads)
                ref += latencies
            wall[name] += seconds
    ours_rps, ref_rps = len(ours) / wall["ours"], len(ref) / wall["ref"]
    notes = [
        f"distinct pages at {CONCURRENCY} connections, response cache off: {len(ours):,} requests, latency p50 "
        f"{ms(pct(ours, 0.5))}, p95 {ms(pct(ours, 0.95))}; engine limit on {threads} DuckDB cursors (the "
        f"server's FOCUS_API_QUERY_THREADS): query+JSON p50 {ms(pct(ref, 0.5))}, p95 {ms(pct(ref, 0.95))}"
    ]
    if errors:
        notes.append(f"{len(errors)} requests failed, e.g. {errors[0]}")
    return [
        Row(
            f"REST requests/s at {CONCURRENCY} connections, distinct pages, cache off vs DuckDB direct",
            f"{ours_rps:,.1f} req/s",
            f"lat. p95 {ms(pct(ours, 0.95))}",
            f"{ref_rps:,.1f} req/s",
            ours_rps / ref_rps,
            Target(">=", 0.7),
            result="FAIL" if errors else "",
            notes=notes,
        )
    ]
