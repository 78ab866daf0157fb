"""The export job service: durable job records, bounded concurrency, crash-safe files, expiry.

A job is a row in the store's ``export_jobs`` table from the moment it is accepted, so it survives a
restart. Files are written to a hidden temp name and renamed only once complete, with their row count,
size and sha256 recorded; a job that was Pending or Processing when the process died is marked Failed
("interrupted") at the next start and its partial files are removed. It is never reported Complete.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import threading
import uuid
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

import anyio
import structlog

from server.sources.export_writers import ExportCancelled
from server.store.db import Store, utc_now
from tools.context import ExportRequest, Exports
from tools.errors import Conflict, FocusApiError, NotFound, RateLimited
from tools.models import ExportFile, ExportJob, format_instant
from tools.source import CommitmentFilters, Source

log = structlog.get_logger(__name__)

MEDIA_TYPES = {"csv": "text/csv", "parquet": "application/vnd.apache.parquet", "json": "application/x-ndjson"}
SUFFIX = {"csv": "csv", "parquet": "parquet", "json": "jsonl"}
_JOBS_DDL = """CREATE TABLE IF NOT EXISTS export_jobs (
  job_id VARCHAR PRIMARY KEY, owner VARCHAR NOT NULL, status VARCHAR NOT NULL, format VARCHAR NOT NULL,
  request JSON NOT NULL, created_at TIMESTAMP NOT NULL, started_at TIMESTAMP, completed_at TIMESTAMP,
  record_count BIGINT, files JSON, error VARCHAR, idempotency_key VARCHAR)"""
_COLUMNS = "job_id, owner, status, format, request, created_at, started_at, completed_at, record_count, files, error"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True, slots=True)
class ExportDownload:
    """One completed export file, ready to send: a local ``path``, or ``chunks`` streamed from elsewhere."""

    file: ExportFile
    path: Path | None = None
    chunks: AsyncIterator[bytes] | None = None
    size: int | None = None  # of the streamed body, when known


class ExportBackend(Exports, Protocol):
    """What the adapters need of an export service: the tools' Exports, plus the files to download."""

    def open_download(self, job_id: str, name: str, owner: str) -> AbstractAsyncContextManager[ExportDownload]:
        """The file ``name`` of ``owner``'s Complete job; NotFound otherwise (someone else's job included)."""
        ...


class ExportService:
    """Runs exports in worker threads against a Source and serves their records."""

    def __init__(
        self,
        store: Store,
        source: Source,
        *,
        base_url: str,
        concurrency: int = 2,
        ttl_seconds: int = 86_400,
        per_principal: int = 2,
        queue_limit: int = 16,
    ) -> None:
        self.store = store
        self.per_principal = per_principal
        self.queue_limit = queue_limit
        self.source = source
        self.base_url = base_url
        self.ttl = timedelta(seconds=ttl_seconds)
        self.root = store.data_dir / "exports"
        self.root.mkdir(exist_ok=True)
        self._slots = anyio.Semaphore(concurrency)
        self._admission = anyio.Lock()  # check-then-insert of limits and idempotency keys is atomic
        self._stopping = threading.Event()
        self._task_group: anyio.abc.TaskGroup | None = None
        cur = store.cursor()
        try:
            cur.execute(_JOBS_DDL)
        finally:
            cur.close()
        self._recover()

    # -- lifecycle --------------------------------------------------------------------------------

    def _recover(self) -> None:
        """Jobs left unfinished by a crash are Failed, never Complete; their partial files go."""
        cur = self.store.cursor()
        try:
            rows = cur.execute("SELECT job_id FROM export_jobs WHERE status IN ('Pending', 'Processing')").fetchall()
            for (job_id,) in rows:
                shutil.rmtree(self.root / job_id, ignore_errors=True)
                cur.execute(
                    "UPDATE export_jobs SET status = 'Failed', completed_at = ?, error = ? WHERE job_id = ?",
                    [utc_now(), "interrupted: the server stopped before the export finished; start it again", job_id],
                )
        finally:
            cur.close()
        for stray in self.root.glob("*/.*.partial"):
            stray.unlink(missing_ok=True)

    async def run(self, task_status: Any = anyio.TASK_STATUS_IGNORED) -> None:
        """Own the background jobs and the expiry sweep until cancelled."""
        async with anyio.create_task_group() as tg:
            self._task_group = tg
            task_status.started()
            try:
                while True:
                    await anyio.to_thread.run_sync(self.expire)
                    await anyio.sleep(60)
            finally:
                self._stopping.set()
                self._task_group = None

    def expire(self) -> int:
        """Delete files of Complete jobs older than the TTL; the job then says Expired and why."""
        cutoff = utc_now() - self.ttl
        cur = self.store.cursor()
        try:
            rows = cur.execute(
                "SELECT job_id FROM export_jobs WHERE status = 'Complete' AND completed_at < ?", [cutoff]
            ).fetchall()
            for (job_id,) in rows:
                shutil.rmtree(self.root / job_id, ignore_errors=True)
                cur.execute(
                    "UPDATE export_jobs SET status = 'Expired', error = ? WHERE job_id = ?",
                    [
                        f"expired: files are kept {int(self.ttl.total_seconds())} s after completion; export again",
                        job_id,
                    ],
                )
            return len(rows)
        finally:
            cur.close()

    # -- the Exports protocol -----------------------------------------------------------------------

    async def submit(self, request: ExportRequest) -> ExportJob:
        if self._task_group is None:
            raise FocusApiError("the export service is not running")
        async with self._admission:
            existing = await anyio.to_thread.run_sync(self._admit, request)
            if existing is not None:
                return await self.status(existing, request.owner)
            job_id = uuid.uuid4().hex
            await anyio.to_thread.run_sync(self._insert, job_id, request, utc_now())
        self._task_group.start_soon(self._execute, job_id, request)
        return await self.status(job_id, request.owner)

    def _admit(self, request: ExportRequest) -> str | None:
        """The job an Idempotency-Key already names, or None once the limits allow a new one."""
        cur = self.store.cursor()
        try:
            if request.idempotency_key is not None:
                row = cur.execute(
                    "SELECT job_id, request FROM export_jobs WHERE owner = ? AND idempotency_key = ?",
                    [request.owner, request.idempotency_key],
                ).fetchone()
                if row is not None:
                    if json.loads(row[1]) != request.request:
                        raise Conflict(
                            "this Idempotency-Key was used for a different export; use a new key for a new request",
                            {"jobId": row[0]},
                        )
                    return str(row[0])
            mine, queued = cur.execute(
                "SELECT count(*) FILTER (WHERE owner = ?), count(*) FROM export_jobs "
                "WHERE status IN ('Pending', 'Processing')",
                [request.owner],
            ).fetchone() or (0, 0)
        finally:
            cur.close()
        if mine >= self.per_principal:
            raise RateLimited(
                f"you already have {mine} exports running (the limit is {self.per_principal}); wait for one to "
                "finish (poll getcostandusageexportstatus) and try again",
                {"limit": self.per_principal},
                retry_after=5,
            )
        if queued >= self.queue_limit:
            raise RateLimited(
                f"the export queue is full ({queued} jobs); try again shortly",
                {"limit": self.queue_limit},
                retry_after=10,
            )
        return None

    def _insert(self, job_id: str, request: ExportRequest, now: datetime) -> None:
        cur = self.store.cursor()
        try:
            cur.execute(
                "INSERT INTO export_jobs (job_id, owner, status, format, request, created_at, idempotency_key) "
                "VALUES (?, ?, 'Pending', ?, ?, ?, ?)",
                [job_id, request.owner, request.format, json.dumps(request.request), now, request.idempotency_key],
            )
        finally:
            cur.close()

    async def status(self, job_id: str, owner: str) -> ExportJob:
        row = await anyio.to_thread.run_sync(self._fetch, job_id)
        # Someone else's job is reported exactly like a missing one: ids reveal nothing.
        if row is None or row["owner"] != owner:
            raise NotFound(
                f"no export job {job_id!r}; start one with exportcostandusage and use the jobId it returns",
                {"jobId": job_id},
            )
        return self._job(row)

    def _fetch(self, job_id: str) -> dict[str, Any] | None:
        cur = self.store.cursor()
        try:
            cur.execute(f"SELECT {_COLUMNS} FROM export_jobs WHERE job_id = ?", [job_id])
            values = cur.fetchone()
            if values is None:
                return None
            return dict(zip([c.strip() for c in _COLUMNS.split(",")], values, strict=True))
        finally:
            cur.close()

    def file_path(self, job_id: str, name: str) -> Path:
        return self.root / job_id / name

    @asynccontextmanager
    async def open_download(self, job_id: str, name: str, owner: str) -> AsyncIterator[ExportDownload]:
        job = await self.status(job_id, owner)
        match = next((f for f in job.files if f.name == name), None)
        if job.status != "Complete" or match is None:
            raise NotFound(f"export {job_id} has no completed file {name!r}; check getcostandusageexportstatus")
        yield ExportDownload(match, path=self.file_path(job_id, name))

    def _job(self, row: dict[str, Any]) -> ExportJob:
        files = [ExportFile(**f) for f in json.loads(row["files"])] if row["files"] else []
        request = json.loads(row["request"])
        scope = request.pop("appliedScope", None)
        main = files[0] if files else None
        return ExportJob(
            jobId=row["job_id"],
            status=row["status"],
            format=row["format"],
            createdAt=format_instant(row["created_at"]) or "",
            startedAt=format_instant(row["started_at"]),
            completedAt=format_instant(row["completed_at"]),
            downloadUrl=main.downloadUrl if main and row["status"] == "Complete" else None,
            recordCount=row["record_count"],
            bytes=main.bytes if main else None,
            sha256=main.sha256 if main else None,
            files=files if row["status"] == "Complete" else [],
            error=row["error"],
            request=request,
            appliedScope=scope,
        )

    # -- running a job ------------------------------------------------------------------------------

    async def _execute(self, job_id: str, request: ExportRequest) -> None:
        async with self._slots:
            self._set(job_id, status="Processing", started_at=utc_now())
            try:
                files = await anyio.to_thread.run_sync(self._write_files, job_id, request, abandon_on_cancel=False)
            except ExportCancelled:
                shutil.rmtree(self.root / job_id, ignore_errors=True)
                self._set(job_id, status="Failed", completed_at=utc_now(), error="interrupted: the server stopped")
                return
            except FocusApiError as exc:
                shutil.rmtree(self.root / job_id, ignore_errors=True)
                self._set(job_id, status="Failed", completed_at=utc_now(), error=exc.message)
                return
            except Exception:
                log.exception("export failed", job_id=job_id)
                shutil.rmtree(self.root / job_id, ignore_errors=True)
                self._set(job_id, status="Failed", completed_at=utc_now(), error="internal error while writing")
                return
            self._set(
                job_id,
                status="Complete",
                completed_at=utc_now(),
                record_count=files[0].recordCount,
                files=json.dumps([f.model_dump() for f in files]),
            )

    def _write_files(self, job_id: str, request: ExportRequest) -> list[ExportFile]:
        folder = self.root / job_id
        folder.mkdir(parents=True, exist_ok=True)
        suffix = SUFFIX[request.format]
        plans: list[tuple[str, Any]] = [
            (
                "CostAndUsage",
                lambda p: self.source.write_export(request.filters, request.format, p, self._stopping.is_set),
            )
        ]
        if request.include_contract_commitments:
            commitment_filters = CommitmentFilters(scope=request.filters.scope)
            plans.append(
                (
                    "ContractCommitment",
                    lambda p: self.source.write_commitments_export(
                        commitment_filters, request.format, p, self._stopping.is_set
                    ),
                )
            )
        files = []
        for dataset, write in plans:
            name = f"{'cost-and-usage' if dataset == 'CostAndUsage' else 'contract-commitment'}.{suffix}"
            partial = folder / f".{name}.partial"
            result = write(partial)
            partial.rename(folder / name)
            final = folder / name
            files.append(
                ExportFile(
                    dataset=dataset,
                    name=name,
                    format=request.format,
                    mediaType=MEDIA_TYPES[request.format],
                    downloadUrl=f"{self.base_url}/cost-and-usage/export/{job_id}/files/{name}",
                    recordCount=result.record_count,
                    bytes=final.stat().st_size,
                    sha256=_sha256(final),
                )
            )
        return files

    def _set(self, job_id: str, **values: Any) -> None:
        assignments = ", ".join(f"{k} = ?" for k in values)
        cur = self.store.cursor()
        try:
            cur.execute(f"UPDATE export_jobs SET {assignments} WHERE job_id = ?", [*values.values(), job_id])
        finally:
            cur.close()
