"""Suite cases: export every Cost and Usage row to Parquet and to CSV vs DuckDB ``COPY (...) TO``, and server RSS.

(A quick run exports the last two billing periods only, with the same filter on both sides.)

Ours: ``POST /cost-and-usage/export {"format": ...}`` on the running server, polled every 20 ms until the
job is Complete (the time includes the job bookkeeping and the file's sha256, as a user waits for them).
The server's peak RSS is read from /proc/<pid>/status (VmHWM) after resetting it just before the export
(``/proc/<pid>/clear_refs``), so it is the peak of that export alone. The reference is DuckDB's own
``COPY (<the same SELECT the server streams>) TO ... (FORMAT parquet, COMPRESSION zstd)`` / ``(FORMAT csv,
HEADER)`` on a private read-only copy of the store, in this process. Throughput ratio = COPY seconds / ours.
Export files are deleted once measured.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import duckdb
from common import DATA, Server, p50, peak_rss, reset_peak_rss
from report import Row, Target

from server.exports.writers import _select
from server.store.schema import CU_TABLE
from tools.catalog import cost_and_usage

GiB = 2**30


def _json(url: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})  # noqa: S310
    with urllib.request.urlopen(request, timeout=60) as resp:  # noqa: S310 (loopback)
        answer: dict[str, Any] = json.loads(resp.read())
    return answer


def ours(server: Server, data_dir: Path, fmt: str, since: str | None = None) -> tuple[float, int, int | None]:
    """(seconds, rows, peak RSS bytes or None) of one export job of every row (billed from ``since`` on)."""
    watched = reset_peak_rss(server.pid)
    started = time.perf_counter()
    request = {"format": fmt} | ({"billingPeriodStart": f"{since}T00:00:00Z"} if since else {})
    job = _json(f"{server.rest}/cost-and-usage/export", request)
    while job["status"] in ("Pending", "Processing"):
        time.sleep(0.02)
        job = _json(f"{server.rest}/cost-and-usage/export/{job['jobId']}")
    seconds = time.perf_counter() - started
    rss = peak_rss(server.pid) if watched else None
    shutil.rmtree(data_dir / "exports" / job["jobId"], ignore_errors=True)
    if job["status"] != "Complete":
        raise RuntimeError(f"export {fmt} ended {job['status']}: {job.get('error')}")
    return seconds, int(job["recordCount"]), rss


def reference(raw_db: Path, fmt: str, since: str | None = None) -> tuple[float, int]:
    """(seconds, rows) of DuckDB COPY of the same SELECT to a file."""
    options = "FORMAT parquet, COMPRESSION zstd" if fmt == "parquet" else "FORMAT csv, HEADER"
    con = duckdb.connect(str(raw_db), read_only=True)
    with tempfile.TemporaryDirectory(dir=DATA) as folder:
        try:
            con.execute("SET enable_progress_bar = false")
            con.execute("SET TimeZone = 'UTC'")
            select = f"SELECT {_select(cost_and_usage(), list(cost_and_usage().ids), fmt)} FROM {CU_TABLE}"  # type: ignore[arg-type]
            if since:
                select += f" WHERE BillingPeriodStart >= TIMESTAMP '{since}'"
            started = time.perf_counter()
            row = con.execute(f"COPY ({select}) TO '{Path(folder) / ('out.' + fmt)}' ({options})").fetchone()
            seconds = time.perf_counter() - started
        finally:
            con.close()
    return seconds, int(row[0]) if row else 0


def since_period(raw_db: Path, periods_back: int) -> str:
    """The start (YYYY-MM-DD) of the ``periods_back``-th last billing period."""
    con = duckdb.connect(str(raw_db), read_only=True)
    try:
        periods = [
            r[0] for r in con.execute(f"SELECT DISTINCT BillingPeriodStart FROM {CU_TABLE} ORDER BY 1").fetchall()
        ]
    finally:
        con.close()
    return f"{periods[max(0, len(periods) - periods_back)]:%Y-%m-%d}"


def run(server: Server, data_dir: Path, raw_db: Path, rounds: int, *, last_periods: int | None = None) -> list[Row]:
    """Rows for Parquet and CSV; ``last_periods`` exports only that many trailing billing periods (quick runs)."""
    since = since_period(raw_db, last_periods) if last_periods else None
    rows: list[Row] = []
    for fmt, label in (("parquet", "Parquet"), ("csv", "CSV")):
        mine: list[float] = []
        theirs: list[float] = []
        peaks: list[int] = []
        count = 0
        for r in range(rounds):
            if r % 2:
                theirs.append(reference(raw_db, fmt, since)[0])
            seconds, count, rss = ours(server, data_dir, fmt, since)
            mine.append(seconds)
            if rss is not None:
                peaks.append(rss)
            if r % 2 == 0:
                theirs.append(reference(raw_db, fmt, since)[0])
        ratio = p50(theirs) / p50(mine)
        rows.append(
            Row(
                f"export {count:,} rows{f' (billed from {since})' if since else ''} to {label}: throughput vs DuckDB COPY",
                f"{p50(mine):.2f} s ({count / p50(mine):,.0f} rows/s)",
                f"{max(mine):.2f} s",
                f"{p50(theirs):.2f} s ({count / p50(theirs):,.0f} rows/s)",
                ratio,
                Target(">=", 0.8),
            )
        )
        if peaks:
            peak = max(peaks)
            rows.append(
                Row(
                    f"export to {label}: server peak RSS",
                    f"{peak / 2**20:,.0f} MiB",
                    "—",
                    "—",
                    peak / GiB,
                    Target("<", 1.0, "< 1 GiB"),
                    ratio_text=f"{peak / GiB:.2f} GiB",
                )
            )
        else:
            rows.append(Row.failed_case(f"export to {label}: server peak RSS", "cannot reset VmHWM of the server"))
    return rows
