"""The ``export_jobs`` table (defined with the store schema): every read and write of a job record.

Blocking DuckDB calls: the export service runs each in a worker thread, never on the event loop.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from server.store.db import Store
from tools.context import ExportRequest

_COLUMNS: tuple[str, ...] = ("job_id", "owner", "status", "format", "request", "created_at", "started_at")
_COLUMNS += ("completed_at", "record_count", "files", "error")
UNFINISHED = ("Pending", "Processing")


class JobTable:
    def __init__(self, store: Store) -> None:
        self.store = store

    def unfinished(self) -> list[str]:
        with self.store.open_cursor() as cur:
            rows = cur.execute("SELECT job_id FROM export_jobs WHERE status IN (?, ?)", list(UNFINISHED)).fetchall()
        return [str(r[0]) for r in rows]

    def completed_before(self, cutoff: datetime) -> list[str]:
        with self.store.open_cursor() as cur:
            rows = cur.execute(
                "SELECT job_id FROM export_jobs WHERE status = 'Complete' AND completed_at < ?", [cutoff]
            ).fetchall()
        return [str(r[0]) for r in rows]

    def by_idempotency_key(self, owner: str, key: str) -> tuple[str, dict[str, Any]] | None:
        """The job ``owner`` started with ``key``, with its request."""
        with self.store.open_cursor() as cur:
            row = cur.execute(
                "SELECT job_id, request FROM export_jobs WHERE owner = ? AND idempotency_key = ?", [owner, key]
            ).fetchone()
        return None if row is None else (str(row[0]), json.loads(row[1]))

    def running(self, owner: str) -> tuple[int, int]:
        """Unfinished jobs of ``owner``, and in all."""
        with self.store.open_cursor() as cur:
            row = cur.execute(
                "SELECT count(*) FILTER (WHERE owner = ?), count(*) FROM export_jobs WHERE status IN (?, ?)",
                [owner, *UNFINISHED],
            ).fetchone()
        return (int(row[0]), int(row[1])) if row else (0, 0)

    def insert(self, job_id: str, request: ExportRequest, now: datetime) -> None:
        with self.store.open_cursor() as cur:
            cur.execute(
                "INSERT INTO export_jobs (job_id, owner, status, format, request, created_at, idempotency_key) "
                "VALUES (?, ?, 'Pending', ?, ?, ?, ?)",
                [job_id, request.owner, request.format, json.dumps(request.request), now, request.idempotency_key],
            )

    def fetch(self, job_id: str) -> dict[str, Any] | None:
        with self.store.open_cursor() as cur:
            values = cur.execute(f"SELECT {', '.join(_COLUMNS)} FROM export_jobs WHERE job_id = ?", [job_id]).fetchone()
        return None if values is None else dict(zip(_COLUMNS, values, strict=True))

    def update(self, job_id: str, **values: Any) -> None:
        unknown = set(values) - set(_COLUMNS)
        if unknown:  # column names are interpolated below: only the table's own
            raise ValueError(f"not export_jobs columns: {sorted(unknown)}")
        assignments = ", ".join(f"{k} = ?" for k in values)
        with self.store.open_cursor() as cur:
            cur.execute(f"UPDATE export_jobs SET {assignments} WHERE job_id = ?", [*values.values(), job_id])
