"""Bench: ``load_files`` on a generated FOCUS file (CSV and Parquet) vs DuckDB's own typed read into a table.

    .venv/bin/python bench/load.py [--rows 1000000] [--seed 42] [--repeat 3] [--profile] [--quirks-only]

The demo generator makes ``rows`` Cost and Usage rows (cached data dir, see ``common.demo_store``); they
are exported once, in a shuffled order (an export is not sorted the way the store keeps rows), as a FOCUS
CSV (Date/Times written ``YYYY-MM-DDTHH:MM:SSZ``, JSON as text) and as Parquet (DECIMAL(38,18),
TIMESTAMP, VARCHAR), cached under ``bench/.data/load-<rows>-<seed>/``. Then, in the same run and
interleaved, the median of ``--repeat`` runs of:

* ``load_files`` of the CSV / the Parquet file into a fresh data dir (staging, checks, sort, write);
* the baseline: a fresh DuckDB file, ``CREATE TABLE t AS SELECT * FROM read_csv(file, header=true,
  columns={explicit types}, timestampformat=...)`` / ``read_parquet(file)``.

``ratio`` is baseline seconds / ours (a throughput ratio); the issue's target is >= 0.7. ``--profile``
also prints the loader's slowest SQL statements of the last run of each format.

Real exports (issue 19): the same CSV rewritten with every CSV quirk of real exports at once (date/times
in six forms, spaces, fractions, UTC, offsets; unquoted NULL for empty fields; lower-case allowed
values and currency; E notation and leading +; brace-less tags; 1.0-preview column names; an extra
``Id`` column; ``;`` delimiter) is loaded by the default, normalising ``load_files`` in the same run;
``quirks / clean`` is its seconds over the clean CSV's (target <= 1.3x). ``--quirks-only`` runs just
those two cases.
"""

from __future__ import annotations

import argparse
import resource
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any, NamedTuple

import duckdb
from common import DATA, demo_store, focus_select, machine, store_file

from server.store.db import Store
from server.store.loader import load_files
from server.store.schema import CU_SORT_KEY, CU_TABLE, DECIMAL_TYPE, FOCUS_TIMESTAMP_FORMAT, quote
from tools.catalog import DataType, cost_and_usage

TARGET = 0.7
QUIRKS_TARGET = 1.3
BASELINE_TYPES = {DataType.DECIMAL: DECIMAL_TYPE, DataType.DATETIME: "TIMESTAMP"}


def export(rows: int, seed: int) -> tuple[Path, Path]:
    """The demo's Cost and Usage rows as a FOCUS CSV and a typed Parquet file (made once, then cached)."""
    folder = DATA / f"load-{rows}-{seed}"
    csv_path, parquet_path = folder / "cost_and_usage.csv", folder / "cost_and_usage.parquet"
    if (folder / ".ready").exists():
        return csv_path, parquet_path
    source = demo_store(rows, seed)
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    started = time.perf_counter()
    con = duckdb.connect(str(store_file(source)), read_only=True)
    try:
        con.execute("SET enable_progress_bar = false")
        text = focus_select(lambda c: f"strftime({c}, '{FOCUS_TIMESTAMP_FORMAT}')")
        # A stable shuffle: the loader must sort, as it would for a real export.
        rows_sql = f"FROM {CU_TABLE} ORDER BY hash(_row_id, {seed})"
        con.execute(f"COPY (SELECT {text} {rows_sql}) TO '{csv_path}' (FORMAT csv, HEADER)")
        # The FOCUS 1.3 columns only: the store also keeps 1.4's, which a 1.3 file does not carry.
        typed = ", ".join(quote(c.id) for c in cost_and_usage().columns)
        con.execute(f"COPY (SELECT {typed} {rows_sql}) TO '{parquet_path}' (FORMAT parquet)")
    finally:
        con.close()
    (folder / ".ready").write_text(f"{time.perf_counter() - started:.1f}\n")
    return csv_path, parquet_path


def quirky(csv_path: Path) -> Path:
    """The clean CSV with every CSV quirk of real exports applied, row by row the same data (made once)."""
    target = csv_path.with_name("cost_and_usage_quirks.csv")
    if target.exists():
        return target
    catalog = cost_and_usage()
    preview = {"ProviderName": "Provider", "PublisherName": "Publisher", "InvoiceIssuerName": "InvoiceIssuer"}
    header = csv_path.open(encoding="utf-8").readline().rstrip("\n").split(",")
    spec = ", ".join(f"'{c}': 'VARCHAR'" for c in header)
    out = ["row_number() OVER () AS Id"]
    for name in header:
        c, column = quote(name), catalog[name]
        if column.data_type is DataType.DATETIME:
            # Six forms, by row: space and no zone, milliseconds, no seconds, UTC, +00:00, +05:30.
            t = f"strptime({c}, '{FOCUS_TIMESTAMP_FORMAT}')"
            forms = [
                f"strftime({t}, '%Y-%m-%d %H:%M:%S')",
                f"strftime({t}, '%Y-%m-%dT%H:%M:%S.000Z')",
                f"strftime({t}, '%Y-%m-%dT%H:%MZ')",
                f"strftime({t}, '%Y-%m-%d %H:%M:%S UTC')",
                f"strftime({t}, '%Y-%m-%dT%H:%M:%S+00:00')",
                f"strftime({t} + INTERVAL 330 MINUTE, '%Y-%m-%dT%H:%M:%S+05:30')",
            ]
            expr = "CASE hash(" + c + ") % 6 " + " ".join(f"WHEN {i} THEN {f}" for i, f in enumerate(forms)) + " END"
        elif column.data_type is DataType.DECIMAL:
            # Exact E notation (digits without the point, exponent minus the fraction's length) or a leading +.
            e = f"replace({c}, '.', '') || 'E-' || length(split_part({c}, '.', 2))"
            expr = f"CASE WHEN {c} = '' OR {c} IS NULL THEN 'NULL' WHEN contains({c}, '.') THEN {e} ELSE '+' || {c} END"
        elif column.data_type is DataType.JSON:
            expr = f"CASE WHEN coalesce({c}, '') = '' THEN 'NULL' WHEN length({c}) > 2 THEN {c}[2:-2] ELSE {c} END"
        elif column.allowed_values or name == "BillingCurrency":
            expr = f"coalesce(NULLIF(lower({c}), ''), 'NULL')"
        else:
            expr = f"coalesce(NULLIF({c}, ''), 'NULL')"
        out.append(f"{expr} AS {quote(preview.get(name, name))}")
    con = duckdb.connect()
    try:
        con.execute("SET enable_progress_bar = false")
        source = f"read_csv('{csv_path}', header=true, auto_detect=false, columns={{{spec}}})"
        con.execute(
            f"COPY (SELECT {', '.join(out)} FROM {source}) TO '{target}.partial' (FORMAT csv, HEADER, DELIM ';')"
        )
    finally:
        con.close()
    Path(f"{target}.partial").rename(target)
    return target


@contextmanager
def scratch() -> Iterator[Path]:
    DATA.mkdir(parents=True, exist_ok=True)
    path = Path(tempfile.mkdtemp(prefix="run-", dir=DATA))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


class Profiler:
    """Times every SQL statement the loader runs (its cursors are wrapped while active)."""

    def __init__(self) -> None:
        self.statements: list[tuple[float, str]] = []
        self.active = False

    def install(self) -> None:
        original = Store.cursor
        profiler = self

        class Timed:
            def __init__(self, cur: duckdb.DuckDBPyConnection) -> None:
                self._cur = cur

            def execute(self, sql: str, *args: Any) -> Any:
                started = time.perf_counter()
                try:
                    return self._cur.execute(sql, *args)
                finally:
                    if profiler.active:
                        profiler.statements.append((time.perf_counter() - started, " ".join(sql.split())))

            def __getattr__(self, name: str) -> Any:
                return getattr(self._cur, name)

        Store.cursor = lambda store: Timed(original(store))  # type: ignore[assignment,method-assign,return-value]

    def report(self, title: str, top: int = 6) -> None:
        total = sum(t for t, _ in self.statements)
        print(f"\n{title}: {total:.2f} s in {len(self.statements)} statements; the slowest:")
        for seconds, sql in sorted(self.statements, reverse=True)[:top]:
            print(f"  {seconds:7.2f} s  {sql[:110]}")
        self.statements.clear()


class Timing(NamedTuple):
    wall: float
    cpu: float  # user + system seconds of this process (DuckDB's threads included)


@contextmanager
def timed() -> Iterator[list[Timing]]:
    result: list[Timing] = []
    wall, cpu = time.perf_counter(), _cpu()
    yield result
    result.append(Timing(time.perf_counter() - wall, _cpu() - cpu))


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def ours(path: Path, rows: int, *, conversions: bool = False) -> Timing:
    with scratch() as data_dir:
        store = Store(data_dir)
        try:
            with timed() as result:
                summary = load_files(store, [path])
            normalised = summary.files[0].normalised_values if summary.files else 0
            if not summary.ok or summary.files[0].rows != rows or bool(normalised) != conversions:
                raise SystemExit(f"load_files failed on {path}: {summary.as_json()}")
            check_row_order(store)
            FINGERPRINTS[path] = fingerprint(store)
        finally:
            store.close()
    return result[0]


FINGERPRINTS: dict[Path, tuple[Any, ...]] = {}


def fingerprint(store: Store) -> tuple[Any, ...]:
    """Untimed: an order-independent digest of every FOCUS value stored, and the money totals."""
    ids = ", ".join(quote(c) for c in cost_and_usage().ids)
    row = store.con.execute(
        f"SELECT count(*), bit_xor(hash({ids})), sum(BilledCost), sum(EffectiveCost) FROM {CU_TABLE}"
    ).fetchone()
    assert row is not None
    return tuple(row)


def check_row_order(store: Store) -> None:
    """Untimed: _row_id is 1..n in sort-key order, and the rows are stored in _row_id order."""
    key = ", ".join(CU_SORT_KEY)
    bad = store.con.execute(
        f"SELECT count(*) FILTER (WHERE _row_id <> n), count(*) FILTER (WHERE k < prev), "
        f"count(*) FILTER (WHERE _row_id <> physical) FROM (SELECT _row_id, row_number() OVER (ORDER BY _row_id) n, "
        f"row_number() OVER (ORDER BY rowid) physical, ({key}) k, lag(({key})) OVER (ORDER BY _row_id) prev "
        f"FROM {CU_TABLE})"
    ).fetchone()
    if bad != (0, 0, 0):
        raise SystemExit(f"rows out of order after load_files: {bad}")


def baseline(source: str) -> Timing:
    with scratch() as folder:
        con = duckdb.connect(str(folder / "raw.duckdb"), config={"temp_directory": str(folder / "tmp")})
        try:
            con.execute("SET enable_progress_bar = false")
            with timed() as result:
                con.execute(f"CREATE TABLE t AS SELECT * FROM {source}")
            return result[0]
        finally:
            con.close()


def csv_source(path: Path) -> str:
    header = path.open(encoding="utf-8").readline().rstrip("\n").split(",")
    catalog = cost_and_usage()
    types = ", ".join(f"'{c}': '{BASELINE_TYPES.get(catalog[c].data_type, 'VARCHAR')}'" for c in header)
    return f"read_csv('{path}', header=true, timestampformat='{FOCUS_TIMESTAMP_FORMAT}', columns={{{types}}})"


def check_same_totals(csv_path: Path, parquet_path: Path) -> Decimal:
    """The two files hold the same money (so both cases load the same data)."""
    con = duckdb.connect()
    try:
        a = con.execute(f"SELECT sum(BilledCost) FROM {csv_source(csv_path)}").fetchone()
        b = con.execute(f"SELECT sum(BilledCost) FROM read_parquet('{parquet_path}')").fetchone()
    finally:
        con.close()
    assert a is not None and b is not None and a[0] == b[0], (a, b)
    return Decimal(a[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--profile", action="store_true", help="print the loader's slowest SQL statements")
    parser.add_argument("--quirks-only", action="store_true", help="only the clean vs every-quirk CSV cases")
    args = parser.parse_args()

    print(machine())
    csv_path, parquet_path = export(args.rows, args.seed)
    quirks_path = quirky(csv_path)
    total = check_same_totals(csv_path, parquet_path)
    mib = {p: p.stat().st_size / 2**20 for p in (csv_path, parquet_path)}
    print(
        f"{args.rows:,} rows (BilledCost total {total}); CSV {mib[csv_path]:.0f} MiB, Parquet {mib[parquet_path]:.0f} MiB"
    )
    print(f"{csv_path.parent}\n")

    profiler = Profiler()
    if args.profile:
        profiler.install()
    cases: list[tuple[str, Callable[[], Timing]]] = [
        ("load_files CSV", lambda: ours(csv_path, args.rows)),
        ("load_files CSV quirks", lambda: ours(quirks_path, args.rows, conversions=True)),
    ]
    if not args.quirks_only:
        cases += [
            ("duckdb read_csv", lambda: baseline(csv_source(csv_path))),
            # Zone-less Parquet timestamps are read as UTC and reported as such (bench/ingest.py says so too).
            ("load_files Parquet", lambda: ours(parquet_path, args.rows, conversions=True)),
            ("duckdb read_parquet", lambda: baseline(f"read_parquet('{parquet_path}')")),
        ]
    times: dict[str, list[Timing]] = {name: [] for name, _ in cases}
    for run in range(args.repeat):
        for name, case in cases:
            profiler.active = args.profile and run == args.repeat - 1
            times[name].append(case())
            if profiler.active and name.startswith("load_files"):
                profiler.report(f"{name}, last run")
            last = times[name][-1]
            print(f"  run {run + 1}/{args.repeat} {name}: {last.wall:.2f} s (cpu {last.cpu:.2f} s)", file=sys.stderr)

    if FINGERPRINTS[quirks_path] != FINGERPRINTS[csv_path]:
        raise SystemExit(f"the quirks CSV stored other values than the clean one: {FINGERPRINTS}")
    wall = {name: statistics.median(t.wall for t in runs) for name, runs in times.items()}
    cpu = {name: statistics.median(t.cpu for t in runs) for name, runs in times.items()}
    print(
        f"\n{'case':<22}{'rows':>11}{'seconds':>9}{'rows/s':>10}{'ratio':>7}{'target':>8}  result"
        f"{'cpu s':>8}{'cpu ratio':>11}"
    )
    for name, _ in cases:
        line = f"{name:<22}{args.rows:>11,}{wall[name]:>9.2f}{args.rows / wall[name]:>10,.0f}"
        if name == "load_files CSV quirks":
            ratio = wall[name] / wall["load_files CSV"]
            cpu_ratio = cpu[name] / cpu["load_files CSV"]
            line += f"{ratio:>7.2f}{QUIRKS_TARGET:>8.1f}  {'PASS' if ratio <= QUIRKS_TARGET else 'FAIL'}"
            line += f"{cpu[name]:>10.2f}{cpu_ratio:>11.2f}   (quirks / clean: lower is better)"
        elif name.startswith("load_files") and not args.quirks_only:
            base = "duckdb read_csv" if name.endswith("CSV") else "duckdb read_parquet"
            ratio = wall[base] / wall[name]
            line += f"{ratio:>7.2f}{TARGET:>8.1f}  {'PASS' if ratio >= TARGET else 'FAIL'}"
            line += f"{cpu[name]:>10.2f}{cpu[base] / cpu[name]:>11.2f}"
        else:
            line += f"{'':>23}{cpu[name]:>10.2f}"
        print(line)
    print(
        f"\nmedian of {args.repeat}; ratio = DuckDB seconds / load_files seconds (wall-clock throughput ratio); "
        "cpu = user+system seconds of this process, steadier than wall time on a busy machine; "
        f"quirks ratio = every-quirk CSV seconds / clean CSV seconds, both normalising loads (target <= {QUIRKS_TARGET})"
    )


if __name__ == "__main__":
    main()
