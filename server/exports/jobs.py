"""Export job records: every read and write of a job, in ``DATA_DIR/jobs.sqlite``.

The jobs live beside the store, not in it: every ``serve`` and ``stdio`` process of a data dir starts,
runs and reports jobs, while the store's generations are read-only to them (``server.store.generations``).
SQLite in WAL mode is made for this: many processes, short transactions, readers never blocked by the
writer, each change durable when its transaction commits. Each job records the process running it
(``server.store.processes``), so a process starting up fails only the jobs of processes that are gone,
and the rows it has written so far, so a wait in another process reports progress too.

Blocking calls: the export service runs each in a worker thread, never on the event loop.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from contextlib import closing, contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

from tools.context import ExportRequest

JOBS_FILE = "jobs.sqlite"
_COLUMNS: tuple[str, ...] = ("job_id", "owner", "status", "format", "request", "created_at", "started_at")
_COLUMNS += ("completed_at", "record_count", "files", "error", "process_id", "rows_written", "rows_expected")
_INSTANTS = frozenset({"created_at", "started_at", "completed_at"})
UNFINISHED = ("Pending", "Processing")
_DDL = """CREATE TABLE IF NOT EXISTS export_jobs (
  job_id TEXT PRIMARY KEY, owner TEXT NOT NULL, status TEXT NOT NULL, format TEXT NOT NULL,
  request TEXT NOT NULL, created_at TEXT NOT NULL, started_at TEXT, completed_at TEXT,
  record_count INTEGER, files TEXT, error TEXT, idempotency_key TEXT, process_id TEXT,
  rows_written INTEGER, rows_expected INTEGER
)"""


class JobTable:
    """The jobs of one data dir; ``process_id`` is the process this table's writes are made by."""

    def __init__(self, data_dir: Path, process_id: str) -> None:
        self.path = data_dir / JOBS_FILE
        self.process_id = process_id
        data_dir.mkdir(parents=True, exist_ok=True)
        with self._connect() as db:
            db.execute("PRAGMA journal_mode = WAL")
            db.execute(_DDL)
            db.execute("CREATE INDEX IF NOT EXISTS export_jobs_status ON export_jobs (status)")

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        """One short transaction; other processes' writers are waited for (busy timeout), not refused."""
        with closing(sqlite3.connect(self.path, timeout=30)) as db, db:
            db.execute("PRAGMA synchronous = FULL")
            yield db

    def unfinished(self) -> list[tuple[str, str | None]]:
        """Unfinished jobs and the process running each."""
        with self._connect() as db:
            rows = db.execute("SELECT job_id, process_id FROM export_jobs WHERE status IN (?, ?)", UNFINISHED)
            return [(str(r[0]), r[1]) for r in rows.fetchall()]

    def completed_before(self, cutoff: datetime) -> list[str]:
        with self._connect() as db:
            rows = db.execute(
                "SELECT job_id FROM export_jobs WHERE status = 'Complete' AND completed_at < ?", [cutoff.isoformat()]
            ).fetchall()
        return [str(r[0]) for r in rows]

    def by_idempotency_key(self, owner: str, key: str) -> tuple[str, dict[str, Any]] | None:
        """The job ``owner`` started with ``key``, with its request."""
        with self._connect() as db:
            row = db.execute(
                "SELECT job_id, request FROM export_jobs WHERE owner = ? AND idempotency_key = ?", [owner, key]
            ).fetchone()
        return None if row is None else (str(row[0]), json.loads(row[1]))

    def running(self, owner: str) -> tuple[int, int]:
        """Unfinished jobs of ``owner``, and in all (every process of the data dir)."""
        with self._connect() as db:
            row = db.execute(
                "SELECT count(*) FILTER (WHERE owner = ?), count(*) FROM export_jobs WHERE status IN (?, ?)",
                [owner, *UNFINISHED],
            ).fetchone()
        return (int(row[0]), int(row[1])) if row else (0, 0)

    def insert(self, job_id: str, request: ExportRequest, now: datetime) -> None:
        with self._connect() as db:
            db.execute(
                "INSERT INTO export_jobs (job_id, owner, status, format, request, created_at, idempotency_key, "
                "process_id) VALUES (?, ?, 'Pending', ?, ?, ?, ?, ?)",
                [
                    job_id,
                    request.owner,
                    request.format,
                    json.dumps(request.request),
                    now.isoformat(),
                    request.idempotency_key,
                    self.process_id,
                ],
            )

    def fetch(self, job_id: str) -> dict[str, Any] | None:
        with self._connect() as db:
            values = db.execute(f"SELECT {', '.join(_COLUMNS)} FROM export_jobs WHERE job_id = ?", [job_id]).fetchone()
        if values is None:
            return None
        row = dict(zip(_COLUMNS, values, strict=True))
        return row | {k: datetime.fromisoformat(row[k]) for k in _INSTANTS if row[k] is not None}

    def update(self, job_id: str, **values: Any) -> None:
        unknown = set(values) - set(_COLUMNS)
        if unknown:  # column names are interpolated below: only the table's own
            raise ValueError(f"not export_jobs columns: {sorted(unknown)}")
        stored = {k: v.isoformat() if isinstance(v, datetime) else v for k, v in values.items()}
        assignments = ", ".join(f"{k} = ?" for k in stored)
        with self._connect() as db:
            db.execute(f"UPDATE export_jobs SET {assignments} WHERE job_id = ?", [*stored.values(), job_id])
