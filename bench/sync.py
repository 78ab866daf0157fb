"""Bench: ``focus-api sync`` of an AWS-shaped export from the S3 emulator vs ``load`` of the same files from disk.

    .venv/bin/python bench/sync.py [--rows 1000000] [--seed 42] [--parts 2] [--repeat 3]

The demo's Cost and Usage rows (cached data dir, ``common.demo_store``) are written once as Parquet parts,
``--parts`` per billing period, with the FOCUS 1.3 columns (``bench/.data/sync-<rows>-<seed>/``). A moto S3
server (its own process, so its memory is not ours) holds them in the AWS Data Exports layout: period
manifests naming the parts. Then, in the same run and alternating, ``--repeat`` times each, in a fresh
child process and a fresh data dir:

* sync: ``run_sync`` of ``s3://…/export/`` (list, manifests, streamed download to the cache, load per
  billing period, cache removed);
* load: ``load_files`` of the same Parquet files from local disk (what ``focus-api load FOLDER`` runs).

``ratio`` is load seconds / sync seconds (sync's throughput relative to a local load); the issue's target
is >= 0.8. Peak RSS is each child's own (``ru_maxrss``), the worst run of each.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
from common import DATA, demo_store, free_port, machine, store_file
from report import Row, Target

from server.store.schema import CU_TABLE, quote
from tools.catalog import cost_and_usage

TARGET = 0.8
BUCKET = "bench-billing"
ROOT = "focus/123456789012/bench-export/"
ENV = {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench", "AWS_REGION": "us-east-1"}


def parts(rows: int, seed: int, per_period: int) -> Path:
    """``data/BILLING_PERIOD=YYYY-MM/bench-export-0000N.snappy.parquet`` under a cached folder (made once)."""
    folder = DATA / f"sync-{rows}-{seed}-{per_period}"
    if (folder / ".ready").exists():
        return folder
    shutil.rmtree(folder, ignore_errors=True)
    source = demo_store(rows, seed)
    con = duckdb.connect(str(store_file(source)), read_only=True)
    try:
        con.execute("SET enable_progress_bar = false")
        columns = ", ".join(quote(c.id) for c in cost_and_usage().columns)
        periods = [
            r[0] for r in con.execute(f"SELECT DISTINCT BillingPeriodStart FROM {CU_TABLE} ORDER BY 1").fetchall()
        ]
        for start in periods:
            where = folder / "data" / f"BILLING_PERIOD={start:%Y-%m}"
            where.mkdir(parents=True)
            for part in range(per_period):
                target = where / f"bench-export-{part + 1:05d}.snappy.parquet"
                con.execute(
                    f"COPY (SELECT {columns} FROM {CU_TABLE} WHERE BillingPeriodStart = ? AND "
                    f"hash(_row_id, {seed}) % {per_period} = {part} ORDER BY hash(_row_id, {seed})) "
                    f"TO '{target}' (FORMAT parquet, COMPRESSION snappy)",
                    [start],
                )
    finally:
        con.close()
    (folder / ".ready").touch()
    return folder


@contextmanager
def moto(endpoint_port: int) -> Iterator[tuple[str, int]]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(endpoint_port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    endpoint = f"http://127.0.0.1:{endpoint_port}"
    try:
        import requests

        deadline = time.monotonic() + 60
        while True:
            try:
                requests.get(endpoint, timeout=1)
                break
            except requests.ConnectionError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError("moto did not start") from None
                with suppress(subprocess.TimeoutExpired):
                    proc.wait(timeout=0.1)
        requests.put(f"{endpoint}/{BUCKET}", timeout=30).raise_for_status()
        yield endpoint, proc.pid
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def upload(endpoint: str, folder: Path) -> int:
    import obstore
    from obstore.store import S3Store

    store = S3Store(BUCKET, endpoint=endpoint, client_options={"allow_http": True}, **_keys())
    total = 0
    for period in sorted((folder / "data").iterdir()):
        keys = []
        for part in sorted(period.iterdir()):
            key = f"{ROOT}data/{period.name}/{part.name}"
            obstore.put(store, key, part)
            keys.append(f"s3://{BUCKET}/{key}")
            total += part.stat().st_size
        manifest = {"executionId": f"bench-{period.name}", "dataFiles": keys, "columns": []}
        obstore.put(store, f"{ROOT}metadata/{period.name}/bench-export-Manifest.json", json.dumps(manifest).encode())
    return total


def _keys() -> dict[str, str]:
    return {"access_key_id": "bench", "secret_access_key": "bench", "region": "us-east-1"}


def child(mode: str, what: str, data_dir: str) -> None:
    """One measured run in this (fresh) process: prints seconds and peak RSS as JSON."""
    started = time.perf_counter()
    if mode == "sync":
        from server.cloud.sync import run_sync
        from server.settings import Settings

        result = run_sync(Settings(data_dir=Path(data_dir)), [what])
        rows = sum(u.rows for u in result.loaded)
    else:
        from server.store.db import Store
        from server.store.loader import expand_paths, load_files

        with Store(Path(data_dir)) as store:
            summary = load_files(store, expand_paths([what]))
        assert summary.ok
        rows = sum(f.rows for f in summary.files)
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps({"seconds": seconds, "rows": rows, "peak_rss": peak}))


def run_child(mode: str, what: str, env: dict[str, str]) -> dict[str, Any]:
    DATA.mkdir(parents=True, exist_ok=True)
    data_dir = tempfile.mkdtemp(prefix=f"sync-run-{mode}-", dir=DATA)
    try:
        done = subprocess.run(
            [sys.executable, __file__, "--child", mode, what, data_dir],
            capture_output=True,
            text=True,
            env=env,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"{mode} failed:\n{done.stderr[-4000:]}")
        result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
        return result
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


@dataclass(frozen=True)
class Measured:
    rows: int
    files: int
    size: int
    sync_seconds: float
    load_seconds: float
    sync_peak_rss: int
    load_peak_rss: int

    @property
    def ratio(self) -> float:
        return self.load_seconds / self.sync_seconds


def measure(rows: int, seed: int, per_period: int, repeat: int) -> Measured:
    """The two cases, alternating, ``repeat`` times each (see module doc)."""
    folder = parts(rows, seed, per_period)
    with moto(free_port()) as (endpoint, _):
        size = upload(endpoint, folder)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("FOCUS_API_", "AWS_"))}
        env |= ENV | {"AWS_ENDPOINT_URL": endpoint}
        url = f"s3://{BUCKET}/{ROOT}"
        syncs, loads = [], []
        for _ in range(repeat):
            syncs.append(run_child("sync", url, env))
            loads.append(run_child("load", str(folder / "data"), env))
    assert {r["rows"] for r in syncs} == {r["rows"] for r in loads} == {rows}, (syncs, loads)
    return Measured(
        rows,
        sum(1 for _ in (folder / "data").rglob("*.parquet")),
        size,
        statistics.median(r["seconds"] for r in syncs),
        statistics.median(r["seconds"] for r in loads),
        max(r["peak_rss"] for r in syncs),
        max(r["peak_rss"] for r in loads),
    )


def run(rows: int, seed: int, rounds: int) -> list[Row]:
    """The suite's row (bench/suite.py, case ``sync``)."""
    m = measure(rows, seed, 2, rounds)
    return [
        Row(
            f"sync {rows:,} rows (Parquet parts) from S3 emulator vs load from disk",
            f"{m.sync_seconds:.2f} s ({rows / m.sync_seconds:,.0f} rows/s)",
            f"peak RSS {m.sync_peak_rss / 2**30:.2f} GiB",
            f"{m.load_seconds:.2f} s ({rows / m.load_seconds:,.0f} rows/s)",
            m.ratio,
            Target(">=", TARGET),
            notes=[f"sync: {m.files} parts, {m.size / 2**20:.1f} MiB; load peak RSS {m.load_peak_rss / 2**30:.2f} GiB"],
        )
    ]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--parts", type=int, default=2, help="Parquet parts per billing period")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--child", nargs=3, metavar=("MODE", "WHAT", "DATA_DIR"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return
    print(machine())
    m = measure(args.rows, args.seed, args.parts, args.repeat)
    print(f"{m.rows} rows, {m.files} Parquet parts, {m.size / 2**20:.1f} MiB; median of {args.repeat}, alternating")
    print(f"{'case':<34} {'seconds':>8} {'rows/s':>10} {'peak RSS':>10}")
    for label, secs, peak in (
        ("sync from S3 emulator (moto)", m.sync_seconds, m.sync_peak_rss),
        ("load from local disk", m.load_seconds, m.load_peak_rss),
    ):
        print(f"{label:<34} {secs:>8.2f} {m.rows / secs:>10.0f} {peak / 2**20:>8.0f} MB")
    verdict = "PASS" if m.ratio >= TARGET else "FAIL"
    print(f"sync throughput / load throughput: {m.ratio:.2f}x (target >= {TARGET}x) {verdict}")


if __name__ == "__main__":
    main()
