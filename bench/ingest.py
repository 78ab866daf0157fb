"""Suite cases: ingest (what ``focus-api load`` runs: ``load_files``) vs DuckDB's own typed read into a table.

Reuses bench/load.py: the demo rows exported once (shuffled) as a FOCUS CSV and a Parquet file, then
``load_files`` into a fresh data dir (every check, the sort, ``_row_id``s, the commit) against
``CREATE TABLE t AS SELECT * FROM read_csv(..., explicit types)`` / ``read_parquet(...)`` in a fresh
DuckDB file, interleaved. Ratio = DuckDB wall seconds / ours (a throughput ratio); the CPU-time ratio,
steadier on a busy machine, is given in a note.
"""

from __future__ import annotations

from collections.abc import Callable

from common import p50
from load import Timing, baseline, csv_source, export
from load import ours as load_files_timing
from report import Row, Target


def run(rows: int, seed: int, rounds: int) -> list[Row]:
    csv_path, parquet_path = export(rows, seed)
    cases: list[tuple[str, Callable[[], Timing], Callable[[], Timing]]] = [
        ("CSV", lambda: load_files_timing(csv_path, rows), lambda: baseline(csv_source(csv_path))),
        # The Parquet's TIMESTAMP columns carry no zone: the loader reads them as UTC and reports that (a note, no
        # change of value), so this file counts as one with conversions.
        (
            "Parquet",
            lambda: load_files_timing(parquet_path, rows, conversions=True),
            lambda: baseline(f"read_parquet('{parquet_path}')"),
        ),
    ]
    out = []
    for label, ours, theirs in cases:
        mine: list[Timing] = []
        ref: list[Timing] = []
        for r in range(rounds):
            if r % 2:
                ref.append(theirs())
            mine.append(ours())
            if r % 2 == 0:
                ref.append(theirs())
        wall, ref_wall = p50([t.wall for t in mine]), p50([t.wall for t in ref])
        cpu, ref_cpu = p50([t.cpu for t in mine]), p50([t.cpu for t in ref])
        out.append(
            Row(
                f"ingest {rows:,} rows ({label}): load_files vs DuckDB read",
                f"{wall:.2f} s ({rows / wall:,.0f} rows/s)",
                f"{max(t.wall for t in mine):.2f} s",
                f"{ref_wall:.2f} s ({rows / ref_wall:,.0f} rows/s)",
                ref_wall / wall,
                Target(">=", 0.8),  # issue 17 (was 0.7)
                notes=[
                    f"ingest {label}: CPU seconds {cpu:.2f} vs DuckDB {ref_cpu:.2f} (CPU ratio {ref_cpu / cpu:.2f})"
                ],
            )
        )
    return out
