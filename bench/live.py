"""Suite case ``live`` (issue 13): loading into a store that is being served.

* **load cost**: one new month (the demo's last billing period moved six months on: ~1/6 of the rows, new
  invoice scopes) loaded with ``load_files`` into an empty data dir vs into a copy of the whole demo store,
  alternating, median of the repeats. A load copies the current generation before writing into it, so the
  ratio shows what that costs as the store grows (target <= 1.3x).
* **visibility**: a ``focus-api serve`` runs on a data dir while this process loads the month into it; the
  time from the load's publish (``Store.close`` returning) until ``/healthz`` reports the new data version.
* **page p50 before / after**: the filtered 100-row REST page (bench/list.py's FILTERS) just before the
  loads and just after, against the same page query straight on DuckDB on the generation each one served.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import statistics
import tempfile
import time
import urllib.request
from pathlib import Path

import duckdb
from common import DATA, Server, focus_select, p50, pct, store_file
from list import FILTERS, PAGE, raw_round, rest_round
from report import Row, Target, ms

from server.store.db import Store
from server.store.loader import load_files
from server.store.schema import CU_TABLE

LOAD_TARGET = 1.3
PAGE_TARGET = 1.3
_SKIP = shutil.ignore_patterns(".ready", "tmp", "exports", "jobs.sqlite*", "locks")


def month_file(source: Path, rows: int, seed: int) -> Path:
    """The demo's last billing period as a FOCUS 1.3 Parquet file, six months later (made once, cached)."""
    target = DATA / f"live-month-{rows}-{seed}.parquet"
    if target.exists():
        return target
    select = focus_select(lambda c: f"{c} + INTERVAL 6 MONTH")
    con = duckdb.connect(str(store_file(source)), read_only=True)
    try:
        last = f"(SELECT max(BillingPeriodStart) FROM {CU_TABLE})"
        partial = target.with_suffix(".partial")
        con.execute(
            f"COPY (SELECT {select} FROM {CU_TABLE} WHERE BillingPeriodStart = {last} ORDER BY _row_id) "
            f"TO '{partial}' (FORMAT parquet)"
        )
    finally:
        con.close()
    partial.rename(target)
    return target


def load_seconds(data_dir: Path, month: Path) -> float:
    """One ``focus-api load`` of ``month``: the writer's open (the generation copy), the load, the publish."""
    started = time.perf_counter()
    store = Store(data_dir)
    try:
        report = load_files(store, [month])
        assert report.ok, report
    finally:
        store.close()
    return time.perf_counter() - started


def load_cost(source: Path, month: Path, repeats: int) -> Row:
    empty, full = [], []
    for r in range(repeats):
        for case in ("empty", "full") if r % 2 == 0 else ("full", "empty"):
            DATA.mkdir(parents=True, exist_ok=True)
            scratch = Path(tempfile.mkdtemp(prefix="live-", dir=DATA))
            try:
                if case == "full":
                    shutil.copytree(source, scratch / "data", ignore=_SKIP)
                # The copy's dirty pages would be written back during the timed load: a store at rest has none.
                os.sync()
                (empty if case == "empty" else full).append(load_seconds(scratch / "data", month))
            finally:
                shutil.rmtree(scratch, ignore_errors=True)
    return Row(
        "load one month: into the full store vs into an empty one",
        f"{p50(full):.2f} s",
        f"{max(full):.2f} s",
        f"{p50(empty):.2f} s",
        p50(full) / p50(empty),
        Target("<=", LOAD_TARGET),
        notes=[f"load: {month.stat().st_size / 2**20:.0f} MiB Parquet month, medians of {repeats} alternating runs"],
    )


def data_version(server: Server) -> str:
    with urllib.request.urlopen(f"{server.rest}/healthz", timeout=10) as reply:  # noqa: S310
        return str(json.loads(reply.read())["dataVersion"])


def visibility(server: Server, data_dir: Path, month: Path, loads: int) -> list[float]:
    """Seconds from each load's publish until the running server answers from the new generation."""
    latencies = []
    for _ in range(loads):
        before = data_version(server)
        load_seconds(data_dir, month)
        published = time.perf_counter()
        while data_version(server) == before:
            if time.perf_counter() - published > 30:
                raise RuntimeError("the server did not see the load within 30 s")
        latencies.append(time.perf_counter() - published)
    return latencies


def page_samples(server: Server, data_dir: Path, n: int, rounds: int) -> tuple[list[float], list[float]]:
    """REST page times and the same page query's times on DuckDB, on the generation being served."""
    rest: list[float] = []
    raw: list[float] = []
    query = {**FILTERS, "pageSize": str(PAGE)}
    for r in range(rounds):
        for path in ("rest", "raw") if r % 2 == 0 else ("raw", "rest"):
            if path == "rest":
                rest += asyncio.run(rest_round(server.rest, n, query))
            else:
                raw += raw_round(str(store_file(data_dir)), n, None)
    return rest, raw


def latency_row(case: str, ours: list[float], reference: list[float]) -> Row:
    return Row(
        case,
        ms(p50(ours)),
        ms(pct(ours, 0.95)),
        ms(p50(reference)),
        p50(ours) / p50(reference),
        Target("<=", PAGE_TARGET),
    )


def run(
    server: Server, served_dir: Path, source: Path, rows: int, seed: int, repeats: int, n: int, rounds: int
) -> list[Row]:
    month = month_file(source, rows, seed)
    rest_before, raw_before = page_samples(server, served_dir, n, rounds)
    seen = visibility(server, served_dir, month, max(3, repeats))
    rest_after, raw_after = page_samples(server, served_dir, n, rounds)
    visible = Row(
        "load publish -> visible through a running server",
        ms(statistics.median(seen)),
        ms(max(seen)),
        "—",
        None,
        None,
        notes=[f"visibility: /healthz polled back to back after each of {len(seen)} loads; the issue allows 2 s"],
    )
    return [
        load_cost(source, month, repeats),
        visible,
        latency_row("filtered 100-row page before a load: REST vs DuckDB direct", rest_before, raw_before),
        latency_row("filtered 100-row page after loads: REST vs DuckDB direct", rest_after, raw_after),
        latency_row("filtered 100-row page: REST after loads vs REST before", rest_after, rest_before),
    ]
