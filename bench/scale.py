"""Growth (``make bench-scale``): the page, summary and export cases at 1M, 3M and 10M rows, and how each grows.

    .venv/bin/python bench/scale.py [--sizes 1000000,3000000,10000000] [--no-write]

For each size: the demo dataset (generated once, cached under bench/.data/), a private copy served by
``focus-api serve`` with its response cache off and one read straight by DuckDB. At each size it measures
the filtered 100-row REST page (bench/list.py's FILTERS) and the top-20 summary (bench/summary.py) beside
the same queries on DuckDB, a Parquet export of every row beside DuckDB's COPY, and the 64-connection
distinct-page case (bench/engine_limit.py) with the server's peak RSS around it. The growth rows compare
each size with the smallest: a page must stay flat (p50 at most 1.5x the smallest size's, the noise of
this machine), a summary and an export grow at most linearly (time ratio / rows ratio <= 1.15, linear within this
machine's noise), and the server
stays under 1 GiB RSS at 64 connections. Writes the table to bench/RESULTS.md (section ``scale``).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from dataclasses import dataclass, field

import engine_limit
import exports
from common import (
    HERE,
    demo_store,
    git_commit,
    machine,
    p50,
    peak_rss,
    reset_peak_rss,
    server_process,
    store_file,
    working_copy,
)
from list import FILTERS, PAGE, raw_round, rest_round
from report import Row, Target, ms, render, write_results
from summary import PATH as SUMMARY_PATH
from summary import raw_round as summary_raw_round
from summary import rest_params as summary_params

REQUESTS = 10  # per path and round
ROUNDS = 2
LOAD_REQUESTS = 300  # distinct pages at 64 connections
# Linear growth is 1.0; an export or a summary is linear by nature, so the check is for worse than linear,
# with room for this machine's run-to-run noise (about 10 % between rounds of the same case).
LINEAR = 1.15


@dataclass
class Size:
    rows: int
    page: float = 0.0
    page_raw: float = 0.0
    summary: float = 0.0
    summary_raw: float = 0.0
    export: float = 0.0
    export_raw: float = 0.0
    export_rss: int | None = None
    load_rss: int | None = None
    load_rows: list[Row] = field(default_factory=list)


def log(message: str) -> None:
    print(f"[scale {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def measure(rows: int, seed: int) -> Size:
    source = demo_store(rows, seed)
    served = working_copy(source, f"suite-serve-{rows}-{seed}")
    raw_db = store_file(working_copy(source, f"suite-raw-{rows}-{seed}"))
    size = Size(rows)
    page: list[float] = []
    page_raw: list[float] = []
    summary: list[float] = []
    summary_raw: list[float] = []
    with server_process(served, FOCUS_API_RESPONSE_CACHE_MB="0") as server:
        query = {**FILTERS, "pageSize": str(PAGE)}
        for r in range(ROUNDS):
            steps = [
                lambda: page.extend(asyncio.run(rest_round(server.rest, REQUESTS, query))),
                lambda: page_raw.extend(raw_round(str(raw_db), REQUESTS, None)),
                lambda: summary.extend(asyncio.run(rest_round(server.rest, REQUESTS, summary_params(), SUMMARY_PATH))),
                lambda: summary_raw.extend(summary_raw_round(raw_db, REQUESTS)[0]),
            ]
            for step in steps if r % 2 == 0 else reversed(steps):
                step()
        size.page, size.page_raw = p50(page), p50(page_raw)
        size.summary, size.summary_raw = p50(summary), p50(summary_raw)
        log(f"{rows:,}: page and summary measured; exporting")
        size.export, _, size.export_rss = exports.ours(server, served, "parquet")
        size.export_raw = exports.reference(raw_db, "parquet")[0]
        log(f"{rows:,}: export measured; 64 connections")
        watched = reset_peak_rss(server.pid)
        size.load_rows = engine_limit.run(server, str(raw_db), LOAD_REQUESTS // 2, 2)
        size.load_rss = peak_rss(server.pid) if watched else None
    return size


def _gib(value: int | None) -> str:
    return "—" if value is None else f"{value / 2**30:.2f} GiB"


def rows_of(sizes: list[Size]) -> list[Row]:
    base = sizes[0]
    out: list[Row] = []
    for s in sizes:
        label = f"{s.rows / 1e6:g}M rows"
        out += [
            Row(
                f"{label}: filtered 100-row page, REST vs DuckDB direct",
                ms(s.page),
                "—",
                ms(s.page_raw),
                s.page / s.page_raw,
                None,
            ),
            Row(
                f"{label}: top-20 summary, REST vs DuckDB GROUP BY",
                ms(s.summary),
                "—",
                ms(s.summary_raw),
                s.summary / s.summary_raw,
                None,
            ),
            Row(
                f"{label}: Parquet export of every row vs DuckDB COPY",
                f"{s.export:.2f} s",
                f"peak RSS {_gib(s.export_rss)}",
                f"{s.export_raw:.2f} s",
                s.export_raw / s.export,
                None,
            ),
            *[
                Row(
                    f"{label}: {r.case}",
                    r.ours_p50,
                    r.ours_p95,
                    r.reference,
                    r.ratio,
                    r.target,
                    notes=[f"{label}: {n}" for n in r.notes],
                )
                for r in s.load_rows
            ],
            Row(
                f"{label}: server peak RSS at 64 connections",
                _gib(s.load_rss),
                "—",
                "—",
                None if s.load_rss is None else s.load_rss / 2**30,
                Target("<", 1.0, "< 1 GiB"),
                ratio_text=_gib(s.load_rss),
            ),
        ]
    for s in sizes[1:]:
        grown = s.rows / base.rows
        label = f"{s.rows / 1e6:g}M vs {base.rows / 1e6:g}M rows ({grown:g}x)"
        out += [
            Row(
                f"growth {label}: page p50",
                ms(s.page),
                "—",
                ms(base.page),
                s.page / base.page,
                Target("<=", 1.5, "flat (<= 1.5x)"),
            ),
            Row(
                f"growth {label}: summary p50 per row",
                ms(s.summary),
                "—",
                ms(base.summary),
                s.summary / base.summary / grown,
                Target("<=", LINEAR, "<= linear"),
            ),
            Row(
                f"growth {label}: export time per row",
                f"{s.export:.2f} s",
                "—",
                f"{base.export:.2f} s",
                s.export / base.export / grown,
                Target("<=", LINEAR, "<= linear"),
            ),
        ]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000000,3000000,10000000", help="comma-separated row counts")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--no-write", action="store_true", help="print the table without writing RESULTS.md")
    args = parser.parse_args()
    started = time.perf_counter()
    sizes = []
    for rows in sorted(int(s) for s in args.sizes.split(",")):
        log(f"{rows:,} rows ...")
        sizes.append(measure(rows, args.seed))
    context = (
        f"sizes {', '.join(f'{s.rows:,}' for s in sizes)} (demo, seed {args.seed}) · commit {git_commit()} · "
        f"{machine()} · wall time {time.perf_counter() - started:.0f} s · {REQUESTS} requests per path and round, "
        f"{ROUNDS} rounds; response cache off"
    )
    notes = [
        "per size: ratio = focus-api / DuckDB for latencies, DuckDB / focus-api seconds for the export. Growth: "
        "page p50 at this size / at the smallest; summary and export: (time ratio) / (rows ratio), so 1.0 is "
        "linear and less is better than linear."
    ]
    section = render("scale", context, rows_of(sizes), notes)
    print(section)
    if not args.no_write:
        write_results(HERE / "RESULTS.md", "scale", section)


if __name__ == "__main__":
    main()
