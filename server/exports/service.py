"""The export job service of the embedded store: admission, durable jobs, crash-safe files, expiry.

A job is a row of ``DATA_DIR/jobs.sqlite`` (``jobs.py``) from the moment it is accepted, so it survives a
restart and every process of the data dir sees it. Files are written by ``writers.py`` to a hidden temp name
and renamed only once complete, with their row count, size and sha256 recorded; a job that was Pending or
Processing when its process died is marked Failed ("interrupted") as soon as any process of the data dir
looks at it (or starts up), and its partial files are removed. It is never reported Complete. The local
user (stdio, an unauthenticated loopback serve) may read every job of the data dir: it owns the files.
Every DuckDB call runs in a worker thread. Download links are the transports' business: the jobs this
service answers carry file names, not URLs.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, Protocol

import anyio
import structlog

from server.auth import LOCAL
from server.exports.jobs import UNFINISHED, JobTable
from server.exports.writers import ExportCancelled, StoreWriter, WriteResult
from server.store.db import utc_now
from server.store.processes import is_alive
from tools.context import ExportRequest, Exports
from tools.errors import Conflict, FocusApiError, NotFound, RateLimited, Unavailable
from tools.exports import MEDIA_TYPES, ExportFile, ExportJob, ExportProgress
from tools.instants import format_instant
from tools.progress import REPORT_INTERVAL_SECONDS, Reporter
from tools.source import CommitmentFilters

log = structlog.get_logger(__name__)

SUFFIX = {"csv": "csv", "parquet": "parquet", "json": "jsonl"}
_EXPIRY_SWEEP_SECONDS = 60
# How often a wait re-reads a job another process of the data dir runs.
_POLL_SECONDS = 0.2


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _not_found(job_id: str) -> NotFound:
    # Someone else's job is reported exactly like a missing one: ids reveal nothing.
    return NotFound(
        f"no export job {job_id!r}; start one with exportcostandusage and use the jobId it returns", {"jobId": job_id}
    )


@dataclass(frozen=True, slots=True)
class ExportDownload:
    """One completed export file, ready to send: a local ``path``, or ``chunks`` streamed from elsewhere."""

    file: ExportFile
    path: Path | None = None
    chunks: AsyncIterator[bytes] | None = None
    size: int | None = None  # of the streamed body, when known


class ExportBackend(Exports, Protocol):
    """What the transports need of an export service: the tools' Exports, plus the files to download."""

    def open_download(self, job_id: str, name: str, owner: str) -> AbstractAsyncContextManager[ExportDownload]:
        """The file ``name`` of ``owner``'s Complete job; NotFound otherwise (someone else's job included)."""
        ...


class ExportService:
    """Runs exports of the embedded store in worker threads and serves their records."""

    def __init__(
        self,
        data_dir: Path,
        writer: StoreWriter,
        *,
        process_id: str,
        concurrency: int = 2,
        ttl_seconds: int = 86_400,
        per_principal: int = 2,
        queue_limit: int = 16,
    ) -> None:
        self.jobs = JobTable(data_dir, process_id)
        self.data_dir = data_dir
        self.writer = writer
        self.per_principal = per_principal
        self.queue_limit = queue_limit
        self.ttl = timedelta(seconds=ttl_seconds)
        self.root = data_dir / "exports"
        self._slots = anyio.Semaphore(concurrency)
        self._admission = anyio.Lock()  # check-then-insert of limits and idempotency keys is atomic
        self._stopping = threading.Event()
        self._finished: dict[str, anyio.Event] = {}
        # Running jobs' [rows written, rows expected] (written by the worker thread, read by status).
        self._progress: dict[str, list[int | None]] = {}
        self._task_group: anyio.abc.TaskGroup | None = None

    # -- lifecycle --------------------------------------------------------------------------------

    def recover(self) -> None:
        """Jobs a crashed process left unfinished are Failed, never Complete, and their partial files go.

        Only jobs of processes that are gone: another live process of the data dir keeps running its own.
        """
        self.root.mkdir(exist_ok=True)
        for job_id, process_id in self.jobs.unfinished():
            self._fail_if_orphaned(job_id, process_id)

    def _fail_if_orphaned(self, job_id: str, process_id: str | None) -> bool:
        """Fail the unfinished job when the process running it is gone (its partial files go with it)."""
        if process_id == self.jobs.process_id or is_alive(self.data_dir, process_id):
            return False
        shutil.rmtree(self.root / job_id, ignore_errors=True)
        error = "interrupted: the server stopped before the export finished; start it again"
        self.jobs.update(job_id, status="Failed", completed_at=utc_now(), error=error)
        return True

    async def run(self, task_status: Any = anyio.TASK_STATUS_IGNORED) -> None:
        """Recover, then own the background jobs and the expiry sweep until cancelled."""
        await anyio.to_thread.run_sync(self.recover)
        async with anyio.create_task_group() as tg:
            self._task_group = tg
            task_status.started()
            try:
                while True:
                    await anyio.to_thread.run_sync(self.expire)
                    await anyio.sleep(_EXPIRY_SWEEP_SECONDS)
            finally:
                self._stopping.set()
                self._task_group = None

    def expire(self) -> int:
        """Delete files of Complete jobs older than the TTL; the job then says Expired and why."""
        expired = self.jobs.completed_before(utc_now() - self.ttl)
        for job_id in expired:
            shutil.rmtree(self.root / job_id, ignore_errors=True)
            error = f"expired: files are kept {int(self.ttl.total_seconds())} s after completion; export again"
            self.jobs.update(job_id, status="Expired", error=error)
        return len(expired)

    # -- the Exports protocol -----------------------------------------------------------------------

    async def submit(self, request: ExportRequest) -> ExportJob:
        if self._task_group is None:
            raise Unavailable("the export service is not running; try again once the server has started")
        async with self._admission:
            existing = await anyio.to_thread.run_sync(self._admit, request)
            if existing is not None:
                return await self.status(existing, request.owner)
            job_id = uuid.uuid4().hex
            await anyio.to_thread.run_sync(self.jobs.insert, job_id, request, utc_now())
        self._finished[job_id] = anyio.Event()
        self._task_group.start_soon(self._execute, job_id, request)
        return await self.status(job_id, request.owner)

    def _admit(self, request: ExportRequest) -> str | None:
        """The job an Idempotency-Key already names, or None once the limits allow a new one."""
        if request.idempotency_key is not None:
            found = self.jobs.by_idempotency_key(request.owner, request.idempotency_key)
            if found is not None:
                job_id, earlier = found
                if earlier != request.request:
                    raise Conflict(
                        "this Idempotency-Key was used for a different export; use a new key for a new request",
                        {"jobId": job_id},
                    )
                return job_id
        mine, queued = self.jobs.running(request.owner)
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

    async def status(self, job_id: str, owner: str) -> ExportJob:
        row = await anyio.to_thread.run_sync(self.jobs.fetch, job_id)
        if row is None or (row["owner"] != owner and owner != LOCAL.name):
            raise _not_found(job_id)
        # A job another process ran until it died is reported Failed at once, not when a process next starts.
        if row["status"] in UNFINISHED and await anyio.to_thread.run_sync(
            self._fail_if_orphaned, job_id, row["process_id"]
        ):
            row = await anyio.to_thread.run_sync(self.jobs.fetch, job_id) or row
        job = _job(row)
        if job.status in UNFINISHED:
            written, expected = self._progress.get(job_id) or (row["rows_written"], row["rows_expected"])
            job.progress = ExportProgress(rowsWritten=written or 0, rowsExpected=expected)
        return job

    async def wait(self, job_id: str, owner: str, timeout: float, report: Reporter | None = None) -> ExportJob:
        """The job once it is no longer Pending or Processing, or as it is when ``timeout`` seconds pass.

        With ``report``, the rows written are reported when the wait starts, every
        ``REPORT_INTERVAL_SECONDS`` while the job runs, and once more when the wait ends.
        """
        job = await self.status(job_id, owner)
        finished = self._finished.get(job_id)
        with anyio.move_on_after(timeout):
            while job.status in UNFINISHED:
                if report is not None:
                    await report_job(report, job)
                if finished is not None:  # this process runs the job: its end is an event
                    with anyio.move_on_after(REPORT_INTERVAL_SECONDS if report is not None else timeout):
                        await finished.wait()
                else:  # another process of the data dir runs it: its record is the only signal there is
                    await anyio.sleep(_POLL_SECONDS)
                job = await self.status(job_id, owner)
        job = await self.status(job_id, owner)
        if report is not None:
            await report_job(report, job)
        return job

    @asynccontextmanager
    async def open_download(self, job_id: str, name: str, owner: str) -> AsyncIterator[ExportDownload]:
        job = await self.status(job_id, owner)
        match = next((f for f in job.files if f.name == name), None)
        if job.status != "Complete" or match is None:
            raise NotFound(f"export {job_id} has no completed file {name!r}; check getcostandusageexportstatus")
        yield ExportDownload(match, path=self.root / job_id / name)

    # -- running a job ------------------------------------------------------------------------------

    async def _execute(self, job_id: str, request: ExportRequest) -> None:
        try:
            async with self._slots:
                await self._update(job_id, status="Processing", started_at=utc_now())
                try:
                    files = await anyio.to_thread.run_sync(self._write_files, job_id, request, abandon_on_cancel=False)
                except Exception as exc:
                    await anyio.to_thread.run_sync(shutil.rmtree, self.root / job_id, True)
                    await self._update(job_id, status="Failed", completed_at=utc_now(), error=_failure(exc, job_id))
                    return
                await self._update(
                    job_id,
                    status="Complete",
                    completed_at=utc_now(),
                    record_count=files[0].recordCount,
                    files=json.dumps([f.model_dump() for f in files]),
                )
        finally:
            self._progress.pop(job_id, None)
            finished = self._finished.pop(job_id, None)
            if finished is not None:
                finished.set()

    async def _update(self, job_id: str, **values: Any) -> None:
        await anyio.to_thread.run_sync(lambda: self.jobs.update(job_id, **values))

    def _write_files(self, job_id: str, request: ExportRequest) -> list[ExportFile]:
        folder = self.root / job_id
        folder.mkdir(parents=True, exist_ok=True)
        stop = self._stopping.is_set
        plans: list[tuple[str, str, Callable[[Path], WriteResult]]] = [
            (
                "CostAndUsage",
                "cost-and-usage",
                lambda p: self.writer.cost_and_usage(
                    request.filters,
                    request.format,
                    p,
                    stop,
                    request.columns,
                    request.focus_version,
                    on_rows,
                ),
            )
        ]
        if request.include_contract_commitments:
            commitments = CommitmentFilters(scope=request.filters.scope)
            plans.append(
                (
                    "ContractCommitment",
                    "contract-commitment",
                    lambda p: self.writer.contract_commitments(
                        commitments, request.format, p, stop, request.focus_version
                    ),
                )
            )
        progress: list[int | None] = [0, None]
        self._progress[job_id] = progress
        progress[1] = self.writer.count(request.filters)
        self.jobs.update(job_id, rows_written=0, rows_expected=progress[1])
        shared_at = [time.monotonic()]

        def on_rows(count: int) -> None:
            progress[0] = count
            # Other processes' waits read the job's record: keep it current, but not on every batch.
            if time.monotonic() - shared_at[0] >= REPORT_INTERVAL_SECONDS:
                shared_at[0] = time.monotonic()
                self.jobs.update(job_id, rows_written=count)

        files = []
        for dataset, stem, write in plans:
            name = f"{stem}.{SUFFIX[request.format]}"
            partial, final = folder / f".{name}.partial", folder / name
            result = write(partial)
            partial.rename(final)
            files.append(
                ExportFile(
                    dataset=dataset,
                    name=name,
                    format=request.format,
                    mediaType=MEDIA_TYPES[request.format],
                    recordCount=result.record_count,
                    bytes=final.stat().st_size,
                    sha256=file_sha256(final),
                )
            )
        return files


async def report_job(report: Reporter, job: ExportJob) -> None:
    """One progress notification for a job: rows written of rows expected (all of them once Complete)."""
    if job.progress is not None:
        written, expected = job.progress.rowsWritten, job.progress.rowsExpected
    else:
        written = expected = job.recordCount or 0
    total = f" of {expected}" if expected is not None else ""
    await report(float(written), None if expected is None else float(expected), f"{job.status}: {written}{total} rows")


def _failure(exc: Exception, job_id: str) -> str:
    if isinstance(exc, ExportCancelled):
        return "interrupted: the server stopped"
    if isinstance(exc, FocusApiError):
        return exc.message
    log.error("export failed", job_id=job_id, exc_info=exc)
    return "internal error while writing"


def _job(row: dict[str, Any]) -> ExportJob:
    complete = row["status"] == "Complete"
    files = [ExportFile(**f) for f in json.loads(row["files"])] if row["files"] and complete else []
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
        recordCount=row["record_count"],
        bytes=main.bytes if main else None,
        sha256=main.sha256 if main else None,
        files=files,
        error=row["error"],
        request=request,
        appliedScope=scope,
    )
