"""Bench (issue 16): focus-api over Spark Connect vs the same raw Spark query, DuckDB beside it for reference.

    .venv/bin/python bench/spark.py [--rows 1000000] [--seed 42] [--requests 10] [--rounds 2] [--no-write]
    make bench-spark

Starts a local Spark Connect server from the venv's pyspark (``$SPARK_HOME/sbin/start-connect-server.sh
--master local[2]``, bound to 127.0.0.1 on a free port in 15300-15399, its logs, pid file and warehouse in
a temporary folder under bench/.data/), publishes the cached demo dataset of ``--rows`` rows into the
database ``focus_bench`` with ``server.spark.layout.Publisher`` (what ``focus-api load --engine spark``
runs after its load), and serves it with a real ``focus-api serve --engine spark`` on free loopback ports
(REST response cache off). The server is stopped with ``stop-connect-server.sh`` at the end, always.

Cases, rounds alternating between the paths (the order flips every round), p50/p95 of the samples:

* filtered 100-row page: REST ``GET /cost-and-usage`` (bench/list.py's FILTERS) vs the page query
  (``sql.page_query``, rendered by ``server.spark.dialect.render``) issued straight through a Spark Connect
  session, rows fetched as Arrow; target <= 1.3x.
* top-20 ServiceName by month: REST summary vs the bare ``GROUP BY`` + ``row_number()`` a Spark user would
  write for the same top 20, through Spark Connect; the answers must agree to the cent; target <= 1.3x.
* export to Parquet: ``POST /cost-and-usage/export`` until Complete vs the same SELECT through Spark Connect,
  its Arrow batches streamed into a zstd Parquet file; throughput ratio target >= 0.8x. By default only the
  last two billing periods (``--export-periods``, 0 for every row: 1M rows ran a 4g local driver out of heap).

Each case also has an "info" row: the same query on DuckDB (a private read-only copy of the store), against
the raw Spark query, to show what the cluster's fixed costs are at this size.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
import exports
import pyarrow as pa
import pyarrow.parquet as pq
import summary
from common import (
    DATA,
    HERE,
    Server,
    demo_store,
    git_commit,
    machine,
    p50,
    pct,
    server_process,
    store_file,
    working_copy,
)
from list import FILTERS, PAGE, rest_round
from list import raw_round as duckdb_page_round
from questions import agreement, top_services_by_month
from report import Row, Target, ms, render, write_results

from server.exports.writers import _select
from server.sources import sql
from server.spark.dialect import render as spark_render
from server.spark.local_server import environment, spark_home, start_command
from server.store.schema import CU_TABLE
from tools.catalog import cost_and_usage
from tools.cost_and_usage import ListCostAndUsageInput
from tools.source import Scope

PORTS = range(15300, 15400)
DATABASE = "focus_bench"
STARTUP_SECONDS = 180
MODE = "spark"

# The top 20 (ServiceName, month) groups per currency, as a Spark user writes it (Spark SQL has no QUALIFY).
RAW_TOP20 = (
    "SELECT BillingCurrency, ServiceName, month, EffectiveCost FROM ("
    "SELECT BillingCurrency, ServiceName, date_format(date_trunc('MONTH', ChargePeriodStart), 'yyyy-MM') AS month, "
    "sum(EffectiveCost) AS EffectiveCost, row_number() OVER (PARTITION BY BillingCurrency "
    "ORDER BY sum(EffectiveCost) DESC, ServiceName, date_format(date_trunc('MONTH', ChargePeriodStart), 'yyyy-MM')) "
    "AS rn FROM cost_and_usage GROUP BY BillingCurrency, ServiceName, date_trunc('MONTH', ChargePeriodStart)) "
    "WHERE rn <= 20 ORDER BY BillingCurrency, EffectiveCost DESC, ServiceName, month"
)


def log(message: str) -> None:
    print(f"[bench-spark {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# --- the local Spark Connect server ------------------------------------------------------------------------


def free_bench_port() -> int:
    for port in PORTS:
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port in {PORTS.start}-{PORTS.stop - 1}")


def _server_log(root: Path) -> str:
    logs = sorted((root / "logs").glob("*.out"))
    return logs[-1].read_text(errors="replace")[-3000:] if logs else "(no server log)"


@contextlib.contextmanager
def spark_connect_server(root: Path, memory: str) -> Iterator[str]:
    """``sc://127.0.0.1:PORT`` of a local Spark Connect server, stopped with stop-connect-server.sh on exit."""
    from server.spark.session import connect
    from tools.errors import EngineUnavailable

    if shutil.which("java") is None:
        raise SystemExit("bench/spark.py needs Java 17 (java on PATH) for the local Spark Connect server")
    port = free_bench_port()
    env = environment(root, SPARK_IDENT_STRING=f"focus-bench-{os.getpid()}")
    sbin = spark_home() / "sbin"
    args = start_command(root, port, memory)
    remote = f"sc://127.0.0.1:{port}"
    started = time.perf_counter()
    try:
        subprocess.run(args, env=env, cwd=root, check=True, stdout=subprocess.DEVNULL)
        deadline = time.monotonic() + STARTUP_SECONDS
        while True:
            try:
                connect(remote, 10).stop()
                break
            except EngineUnavailable:
                if time.monotonic() > deadline:
                    raise RuntimeError(
                        f"the Spark Connect server did not answer within {STARTUP_SECONDS} s:\n{_server_log(root)}"
                    ) from None
                time.sleep(0.5)
        log(f"Spark Connect server {remote} ready after {time.perf_counter() - started:.1f} s")
        yield remote
    finally:
        done = subprocess.run(
            [str(sbin / "stop-connect-server.sh")], env=env, cwd=root, capture_output=True, text=True, check=False
        )
        log(f"stop-connect-server.sh: {(done.stdout + done.stderr).strip() or 'done'}")
        for pid_file in (root / "pid").glob("*.pid"):  # the stop script leaves the file when the pid is gone
            with contextlib.suppress(ValueError, ProcessLookupError, OSError):
                pid = int(pid_file.read_text().strip())
                os.kill(pid, 0)
                log(f"server pid {pid} still alive after the stop script; terminating it")
                os.kill(pid, 15)


def stop_session(session: Any, timeout: float = 15.0) -> None:
    """``session.stop()``, bounded: against a server that went away the client retries for minutes."""
    import threading

    def stop() -> None:
        with contextlib.suppress(Exception):
            session.stop()

    worker = threading.Thread(target=stop, daemon=True)
    worker.start()
    worker.join(timeout)
    if worker.is_alive():
        log(f"the Spark Connect session did not stop within {timeout:g} s; left to exit with the process")


# --- raw Spark queries ---------------------------------------------------------------------------------------


def _args(params: list[Any]) -> dict[str, Any]:
    """``?`` parameters as the named literals of a rendered query (``:p0``...), datetimes as timestamp_ntz."""
    from pyspark.sql import functions as F
    from pyspark.sql.connect.column import Column
    from pyspark.sql.connect.expressions import LiteralExpression
    from pyspark.sql.types import TimestampNTZType

    out: dict[str, Any] = {}
    for i, value in enumerate(params):
        if isinstance(value, datetime):
            out[f"p{i}"] = Column(LiteralExpression(value, TimestampNTZType()))
        else:
            out[f"p{i}"] = F.lit(value)
    return out


def page_filters() -> Any:
    return ListCostAndUsageInput.model_validate(FILTERS).cost_filters(Scope())


def spark_page_round(session: Any, names: list[str], n: int) -> list[float]:
    query, params = sql.page_query(page_filters(), None, PAGE, names)
    rendered = spark_render(query)
    assert not rendered.key_params
    times = []
    for i in range(n + 3):
        started = time.perf_counter()
        table = session.sql(rendered.sql, args=_args(params)).toArrow()
        assert table.num_rows == PAGE + 1, table.num_rows
        table.to_pylist()
        if i >= 3:
            times.append(time.perf_counter() - started)
    return times


def spark_summary_round(session: Any, n: int) -> tuple[list[float], list[dict[str, Any]]]:
    times: list[float] = []
    rows: list[dict[str, Any]] = []
    for i in range(n + 2):
        started = time.perf_counter()
        rows = session.sql(RAW_TOP20).toArrow().to_pylist()
        if i >= 2:
            times.append(time.perf_counter() - started)
    return times, rows


def export_select(names: list[str], since: str | None) -> str:
    """The SELECT a Parquet export of every column streams (``server.exports.writers``), in DuckDB's dialect."""
    select = f"SELECT {_select(cost_and_usage(), names, 'parquet')} FROM {CU_TABLE}"
    if since:
        select += f" WHERE BillingPeriodStart >= TIMESTAMP '{since}'"
    return select


def spark_export(session: Any, names: list[str], since: str | None) -> tuple[float, int]:
    """(seconds, rows) of the export's SELECT through Spark Connect, Arrow batches streamed to zstd Parquet."""
    rendered = spark_render(export_select(names, since))
    with tempfile.TemporaryDirectory(dir=DATA) as folder:
        started = time.perf_counter()
        frame: Any = session.sql(rendered.sql)
        plan = frame._plan.to_proto(frame._session.client)
        writer: pq.ParquetWriter | None = None
        rows = 0
        try:
            for part in frame._session.client.to_table_as_iterator(plan, frame._plan.observations):
                if not isinstance(part, pa.Table):
                    continue  # the schema message
                if writer is None:
                    writer = pq.ParquetWriter(Path(folder) / "out.parquet", part.schema, compression="zstd")
                writer.write_table(part)
                rows += part.num_rows
        finally:
            if writer is not None:
                writer.close()
        return time.perf_counter() - started, rows


# --- the cases -----------------------------------------------------------------------------------------------


def alternate(paths: dict[str, Callable[[], list[float]]], rounds: int) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {name: [] for name in paths}
    for r in range(rounds):
        for name in list(paths) if r % 2 == 0 else reversed(list(paths)):
            times[name] += paths[name]()
    return times


def latency_rows(case: str, times: dict[str, list[float]], ours: str, ref: str, info: str) -> list[Row]:
    return [
        Row(
            f"{case}: focus-api REST over Spark vs raw Spark Connect",
            ms(p50(times[ours])),
            ms(pct(times[ours], 0.95)),
            ms(p50(times[ref])),
            p50(times[ours]) / p50(times[ref]),
            Target("<=", 1.3),
        ),
        Row(
            f"{case}: DuckDB direct (reference) vs raw Spark Connect",
            ms(p50(times[info])),
            ms(pct(times[info], 0.95)),
            ms(p50(times[ref])),
            None,
            None,
            ratio_text=f"{p50(times[info]) / p50(times[ref]):.2f}x",
        ),
    ]


def page_case(server: Server, session: Any, raw_db: Path, names: list[str], n: int, rounds: int) -> list[Row]:
    query = {**FILTERS, "pageSize": str(PAGE)}
    times = alternate(
        {
            "spark": lambda: spark_page_round(session, names, n),
            "rest": lambda: asyncio.run(rest_round(server.rest, n, query)),
            "duckdb": lambda: duckdb_page_round(str(raw_db), n, None),
        },
        rounds,
    )
    return latency_rows("filtered 100-row page", times, "rest", "spark", "duckdb")


def summary_case(server: Server, session: Any, raw_db: Path, n: int, rounds: int) -> list[Row]:
    expected: list[dict[str, Any]] = []

    def raw() -> list[float]:
        nonlocal expected
        times, expected = spark_summary_round(session, n)
        return times

    times = alternate(
        {
            "spark": raw,
            "rest": lambda: asyncio.run(summary.rest_round(server.rest, n, summary.rest_params(), summary.PATH)),
            "duckdb": lambda: summary.raw_round(raw_db, n)[0],
        },
        rounds,
    )
    question = top_services_by_month()
    agree, how = agreement(question.ours(summary.rest_answer(server)), question.theirs(expected))
    rows = latency_rows("top-20 ServiceName by month", times, "rest", "spark", "duckdb")
    if not agree:
        rows[0] = replace(rows[0], result="DIFFER")
    rows[0].notes.append(f"top-20 answers, REST over Spark vs raw Spark: {how}")
    return rows


def export_case(
    server: Server, data_dir: Path, session: Any, raw_db: Path, names: list[str], rounds: int, since: str | None
) -> list[Row]:
    mine: list[float] = []
    raw: list[float] = []
    duck: list[float] = []
    count = raw_count = 0
    for r in range(rounds):
        steps: list[Callable[[], None]] = [
            lambda: mine.append(exports.ours(server, data_dir, "parquet", since)[0]),
            lambda: raw.append(spark_export(session, names, since)[0]),
            lambda: duck.append(exports.reference(raw_db, "parquet", since)[0]),
        ]
        for step in steps if r % 2 == 0 else reversed(steps):
            step()
    count = exports.ours(server, data_dir, "parquet", since)[1] if rounds else 0  # untimed: the row count
    raw_count = spark_export(session, names, since)[1]
    scope = f" (billed from {since})" if since else ""
    notes = [] if count == raw_count else [f"export row counts differ: focus-api {count:,}, raw Spark {raw_count:,}"]

    def rate(seconds: list[float]) -> str:
        return f"{p50(seconds):.2f} s ({count / p50(seconds):,.0f} rows/s)"

    return [
        Row(
            f"export {count:,} rows{scope} to Parquet: focus-api over Spark vs raw Spark Arrow stream",
            rate(mine),
            f"{max(mine):.2f} s",
            rate(raw),
            p50(raw) / p50(mine),
            Target(">=", 0.8),
            result="DIFFER" if notes else "",
            notes=notes,
        ),
        Row(
            f"export {count:,} rows{scope} to Parquet: DuckDB COPY (reference) vs raw Spark Arrow stream",
            rate(duck),
            f"{max(duck):.2f} s",
            rate(raw),
            None,
            None,
            ratio_text=f"{p50(raw) / p50(duck):.2f}x",
        ),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--requests", type=int, default=10, help="sequential requests per path and round")
    parser.add_argument("--rounds", type=int, default=2, help="alternating rounds per case")
    parser.add_argument("--export-rounds", type=int, default=2)
    parser.add_argument(
        "--export-periods",
        type=int,
        default=2,
        help="export only this many trailing billing periods (default 2, ~1/3 of the rows, as the suite's quick "
        "run; 0: every row, which needs a larger --driver-memory: 1M rows ran the local server out of 4g)",
    )
    parser.add_argument("--driver-memory", default="4g", help="spark.driver.memory of the local server")
    parser.add_argument("--no-write", action="store_true", help="print the table without writing RESULTS.md")
    args = parser.parse_args()

    from server.spark.layout import Publisher
    from server.spark.session import connect
    from server.store.db import Store

    started = time.perf_counter()
    log(f"{args.rows:,} rows; dataset ...")
    source = demo_store(args.rows, args.seed)
    raw_db = store_file(working_copy(source, f"suite-raw-{args.rows}-{args.seed}"))
    ledger_dir = working_copy(source, f"spark-ledger-{args.rows}-{args.seed}")
    con = duckdb.connect(str(raw_db), read_only=True)
    try:
        custom = [
            r[0] for r in con.execute("SELECT name FROM custom_columns WHERE dataset = 'CostAndUsage'").fetchall()
        ]
    finally:
        con.close()
    names = [*cost_and_usage().ids, *custom]
    since = exports.since_period(raw_db, args.export_periods) if args.export_periods else None
    rows: list[Row] = []
    notes: list[str] = []
    DATA.mkdir(parents=True, exist_ok=True)
    root = Path(tempfile.mkdtemp(prefix="spark-bench-", dir=DATA))
    try:
        with spark_connect_server(root, args.driver_memory) as remote:
            session = connect(remote, 30)
            try:
                t0 = time.perf_counter()
                with Store(ledger_dir) as ledger:
                    report = Publisher(session, DATABASE).publish(ledger)
                    ledger.abandon()
                publish_s = time.perf_counter() - t0
                log(f"published in {publish_s:.1f} s: {report.as_dict()}")
                rows.append(
                    Row(
                        f"publish {report.rows_written:,} rows to Spark (Publisher, {report.periods_written} periods)",
                        f"{publish_s:.1f} s ({report.rows_written / publish_s:,.0f} rows/s)",
                        "—",
                        "—",
                        None,
                        None,
                    )
                )
                session.catalog.setCurrentDatabase(DATABASE)
                serve_dir = root / "serve-data"
                serve_dir.mkdir()
                t0 = time.perf_counter()
                with server_process(
                    serve_dir,
                    "--engine",
                    "spark",
                    "--spark-remote",
                    remote,
                    "--spark-database",
                    DATABASE,
                    FOCUS_API_RESPONSE_CACHE_MB="0",
                ) as server:
                    notes.append(
                        f"focus-api serve --engine spark answered /healthz {time.perf_counter() - t0:.1f} s after start"
                    )
                    for name, run, fallback in (
                        (
                            "pages",
                            lambda: page_case(server, session, raw_db, names, args.requests, args.rounds),
                            "filtered 100-row page",
                        ),
                        (
                            "summary",
                            lambda: summary_case(server, session, raw_db, max(2, args.requests // 2), args.rounds),
                            "top-20 ServiceName by month",
                        ),
                        (
                            "export",
                            lambda: export_case(server, serve_dir, session, raw_db, names, args.export_rounds, since),
                            "export to Parquet",
                        ),
                    ):
                        log(f"{name} ...")
                        t1 = time.perf_counter()
                        try:
                            rows += run()
                        except Exception as exc:  # a case that cannot run says why; the rest still run
                            import traceback

                            traceback.print_exc(file=sys.stderr)
                            rows.append(Row.failed_case(fallback, f"{type(exc).__name__}: {exc}".splitlines()[0][:300]))
                        log(f"{name} done in {time.perf_counter() - t1:.1f} s")
            finally:
                stop_session(session)
    finally:
        shutil.rmtree(root, ignore_errors=True)

    seconds = time.perf_counter() - started
    import pyspark

    context = (
        f"{args.rows:,} demo rows (seed {args.seed}) · commit {git_commit()} · {machine()} · pyspark "
        f"{pyspark.__version__}, local Spark Connect server, local[2], shuffle partitions 4, driver memory "
        f"{args.driver_memory} · {args.requests} requests per path and round, {args.rounds} rounds · wall time "
        f"{seconds:.0f} s (Spark start and publish included)"
    )
    notes = [
        "ratio = focus-api / raw Spark p50 for latencies (lower is better); raw Spark seconds / focus-api seconds "
        "for the export (higher is better). The raw Spark query runs through a Spark Connect session in this "
        "process (same session settings as focus-api: UTC, allowPrecisionLoss off, ANSI); DuckDB rows are info: "
        "DuckDB / raw Spark (or raw Spark / DuckDB seconds for the export).",
        *notes,
    ]
    section = render(f"spark ({args.rows:,} rows)", context, rows, notes)
    print(section)
    if not args.no_write:
        write_results(HERE / "RESULTS.md", MODE, section)
        log(f"written to {HERE / 'RESULTS.md'}")


if __name__ == "__main__":
    main()
    # pyspark's client keeps thread pools (reattach, release) that the interpreter joins at exit; once the
    # Spark server is stopped they retry for minutes. Everything is written and stopped: leave now.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)
