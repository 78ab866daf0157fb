"""The benchmark suite: focus-api against raw DuckDB, a bare aiohttp server and the peer, in one table.

    .venv/bin/python bench/suite.py --quick     # 1M rows  (make bench-quick)
    .venv/bin/python bench/suite.py             # 10M rows (make bench)
    .venv/bin/python bench/suite.py --quick --only pages,summary --no-write

The demo dataset (``focus-api demo``) is generated once per size and cached under bench/.data/, with two
private copies of its store: one served by ``focus-api serve``, one read straight by DuckDB, so the
reference runs side by side with the server. Cases (see bench/README.md): pages, summary, throughput,
exports, ingest, sync, peer. Every ratio compares measurements of one run; a case that cannot run says why in
its row, and the others still run. Prints the table and writes it to bench/RESULTS.md (machine, date,
commit), replacing that mode's section.
"""

from __future__ import annotations

import argparse
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, replace

import engine_limit
import exports
import ingest
import live
import pages
import peer
import summary
import sync
import throughput
from common import HERE, demo_store, git_commit, machine, server_process, store_file, working_copy
from report import Row, render, write_results

CASES = ("pages", "summary", "throughput", "exports", "ingest", "sync", "peer", "live")


@dataclass(frozen=True)
class Profile:
    mode: str
    rows: int
    page_requests: int  # per path and round
    page_rounds: int
    summary_requests: int
    summary_rounds: int
    load_requests: int  # page requests at 64 connections, per server
    load_rounds: int
    export_rounds: int
    ingest_rows: int
    ingest_rounds: int
    peer_requests: int  # per question and server
    throughput_uncached: bool  # also measure requests/s with the response cache off (an info row)
    export_periods: int | None  # export only this many trailing billing periods (keeps a quick run short)


QUICK = Profile("quick", 1_000_000, 6, 4, 4, 3, 600, 2, 1, 100_000, 1, 3, False, 2)
FULL = Profile("full", 10_000_000, 20, 3, 10, 3, 10_000, 4, 2, 1_000_000, 2, 7, True, None)


def log(message: str) -> None:
    print(f"[suite {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


class Runner:
    """Runs case groups, turning a group that raises into NOT RUN rows that say why."""

    def __init__(self, only: set[str]) -> None:
        self.only = only
        self.rows: list[Row] = []

    def case(self, name: str, fn: Callable[[], list[Row]], fallback: list[str]) -> None:
        if name not in self.only:
            return
        log(f"{name} ...")
        started = time.perf_counter()
        try:
            self.rows += fn()
        except Exception as exc:
            traceback.print_exc(file=sys.stderr)
            reason = f"{type(exc).__name__}: {exc}".splitlines()[0][:300]
            self.rows += [Row.failed_case(case, reason) for case in fallback]
        log(f"{name} done in {time.perf_counter() - started:.1f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1M rows and fewer requests (make bench-quick)")
    parser.add_argument("--rows", type=int, help="demo rows (default: 1M with --quick, else 10M)")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--only", default=",".join(CASES), help=f"comma-separated subset of {', '.join(CASES)}")
    parser.add_argument("--no-write", action="store_true", help="print the table without writing RESULTS.md")
    args = parser.parse_args()
    profile = QUICK if args.quick else FULL
    if args.rows:
        profile = replace(profile, rows=args.rows, mode=profile.mode if args.rows == profile.rows else "custom")
    only = {c.strip() for c in args.only.split(",") if c.strip()}
    if unknown := only - set(CASES):
        parser.error(f"unknown cases {', '.join(sorted(unknown))}; choose from {', '.join(CASES)}")

    started = time.perf_counter()
    log(f"{profile.mode}: {profile.rows:,} rows; dataset ...")
    source = demo_store(profile.rows, args.seed)
    served_dir = working_copy(source, f"suite-serve-{profile.rows}-{args.seed}")
    raw_db = store_file(working_copy(source, f"suite-raw-{profile.rows}-{args.seed}"))
    log(f"dataset ready after {time.perf_counter() - started:.1f} s")
    run = Runner(only)
    p = profile
    if only & {"pages", "summary", "exports"}:
        # The latency cases measure the work behind an answer: the REST response cache is off, or every
        # repeat of the same page would be a cache hit.
        with server_process(served_dir, FOCUS_API_RESPONSE_CACHE_MB="0") as server:
            run.case(
                "pages",
                lambda: pages.run(server, served_dir, raw_db, p.page_requests, p.page_rounds),
                [
                    "filtered 100-row page: REST vs DuckDB direct",
                    "deep page vs page 1",
                    "MCP HTTP vs REST",
                    "MCP stdio",
                ],
            )
            run.case(
                "summary",
                lambda: summary.run(server, raw_db, p.summary_requests, p.summary_rounds),
                ["top-20 ServiceName by month: REST summary vs DuckDB GROUP BY"],
            )
            run.case(
                "exports",
                lambda: exports.run(server, served_dir, raw_db, p.export_rounds, last_periods=p.export_periods),
                ["export to Parquet", "export to CSV"],
            )
    if "throughput" in only:
        with server_process(served_dir) as server:  # as deployed: the response cache on
            run.case(
                "throughput",
                lambda: throughput.run(server, p.load_requests, p.load_rounds),
                ["REST requests/s at 64 connections vs bare aiohttp"],
            )
        with server_process(served_dir, FOCUS_API_RESPONSE_CACHE_MB="0") as server:
            run.case(
                "throughput",
                # At most 1,000 distinct requests a round: at 10M rows 5,000 took ~12 minutes for the same ratio.
                lambda: engine_limit.run(server, raw_db, min(p.load_requests // 2, 1_000), p.load_rounds),
                ["REST requests/s at 64 connections, distinct pages, cache off vs DuckDB direct"],
            )
            if p.throughput_uncached:
                run.case(
                    "throughput",
                    lambda: throughput.run(server, p.load_requests // 4, 1, cached=False),
                    ["REST requests/s at 64 connections, response cache off"],
                )
    run.case(
        "ingest",
        lambda: ingest.run(p.ingest_rows, args.seed, p.ingest_rounds),
        ["ingest (CSV)", "ingest (Parquet)"],
    )
    run.case(
        "sync",
        lambda: sync.run(p.ingest_rows, args.seed, p.ingest_rounds),
        ["sync from S3 emulator vs load from disk"],
    )
    run.case(
        "peer",
        lambda: peer.run(served_dir, raw_db, f"peer-parquet-{p.rows}-{args.seed}", p.peer_requests),
        [f"peer q{i}" for i in range(1, 5)],
    )

    if "live" in only:
        # The loads change the served data: a private copy of the store, not the one the other cases use.
        live_dir = working_copy(source, f"suite-live-{p.rows}-{args.seed}", fresh=True)
        with server_process(live_dir, FOCUS_API_RESPONSE_CACHE_MB="0") as server:
            run.case(
                "live",
                lambda: live.run(server, live_dir, source, p.rows, args.seed, p.ingest_rounds + 2, p.page_requests, 2),
                ["load one month: into the full store vs into an empty one", "load publish -> visible"],
            )

    seconds = time.perf_counter() - started
    context = (
        f"{p.rows:,} demo rows (seed {args.seed}) · commit {git_commit()} · {machine()} · "
        f"suite wall time {seconds:.0f} s (dataset cached)"
    )
    notes = [
        "ratio = focus-api / reference for latencies (lower is better); reference / focus-api for export and "
        "ingest times, focus-api / reference for requests/s (higher is better); memory in GiB of the server's peak.",
    ]
    section = render(f"{p.mode} ({p.rows:,} rows)", context, run.rows, notes)
    print(section)
    if not args.no_write:
        write_results(HERE / "RESULTS.md", p.mode, section)
        log(f"written to {HERE / 'RESULTS.md'}")


if __name__ == "__main__":
    main()
