"""Upstream mode's export service: export jobs run by the remote FOCUS API, relayed to our callers.

Owns the mapping of jobs between our side and theirs. Job ids are namespaced ``up-<upstream id>.<mac>``:
the MAC binds the id to the caller who started it (the upstream sees one principal, this server's
``FINOPS_FOUNDATION_TOKEN``, for all our callers), so someone else's id is ``not_found`` here. Download
links point at our REST route, which streams the upstream file through (``open_download``); an
``Idempotency-Key`` goes upstream made distinct per caller.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from urllib.parse import quote

import anyio

from server.exports.jobs import UNFINISHED
from server.exports.service import ExportDownload, report_job
from server.sources import upstream_contract as contract
from server.sources.upstream import derive_key, require_unscoped
from server.sources.upstream_client import UpstreamClient
from server.sources.upstream_failures import UpstreamNotFound
from tools.context import ExportRequest
from tools.errors import NotFound
from tools.exports import ExportCostAndUsageInput, ExportFile, ExportJob
from tools.pagination import b64url
from tools.progress import Reporter

# How often a waiting call asks the upstream again (and reports progress): at least once a second.
UPSTREAM_POLL_SECONDS = 1.0

JOB_PREFIX = "up-"
_EXPORT_FIELDS = frozenset(ExportCostAndUsageInput.model_fields)


class UpstreamExports:
    """Export jobs run by the upstream, under ids bound to the caller who started them."""

    def __init__(
        self, client: UpstreamClient, *, secret: bytes, sleep: Callable[[float], Awaitable[None]] = anyio.sleep
    ) -> None:
        self.client = client
        self._sleep = sleep  # between the polls of a wait; injectable so tests never wait for real
        self._key = derive_key(secret, "export job owner")
        self._idempotency_key = derive_key(secret, "export idempotency key")

    def _mac(self, value: str, owner: str, key: bytes | None = None) -> str:
        message = json.dumps([value, owner]).encode()
        return b64url(hmac.new(key or self._key, message, hashlib.sha256).digest()[:16])

    def job_id(self, upstream_id: str, owner: str) -> str:
        return f"{JOB_PREFIX}{upstream_id}.{self._mac(upstream_id, owner)}"

    def upstream_id(self, job_id: str, owner: str) -> str:
        """The upstream's id inside one of our ids, if ``owner`` started it; NotFound otherwise."""
        upstream_id, _, mac = job_id.removeprefix(JOB_PREFIX).rpartition(".")
        if (
            not job_id.startswith(JOB_PREFIX)
            or not upstream_id
            or not hmac.compare_digest(mac.encode(), self._mac(upstream_id, owner).encode())
        ):
            # Someone else's job is reported exactly like a missing one: ids reveal nothing.
            raise NotFound(
                f"no export job {job_id!r}; start one with exportcostandusage and use the jobId it returns",
                {"jobId": job_id},
            )
        return upstream_id

    def _ours(self, job: ExportJob, job_id: str) -> ExportJob:
        """The upstream's job under our id. Its download links are the upstream's: the handler puts ours on,
        pointing at our REST route, which streams the upstream file through (``open_download``)."""
        # The upstream's appliedScope describes this server's upstream credential, not our caller.
        return job.model_copy(update={"jobId": job_id, "appliedScope": None})

    async def _fetch(self, upstream_id: str, job_id: str) -> ExportJob:
        path = f"/cost-and-usage/export/{quote(upstream_id, safe='')}"
        try:
            return await self.client.get_json(path, {}, lambda body: contract.export_job(body, "GET " + path))
        except UpstreamNotFound:
            raise NotFound(
                f"no export job {job_id!r} upstream (it may have been removed there); start a new export",
                {"jobId": job_id},
            ) from None

    async def submit(self, request: ExportRequest) -> ExportJob:
        require_unscoped(request.filters.scope)
        body = {k: v for k, v in request.request.items() if k in _EXPORT_FIELDS}
        operation = "POST /cost-and-usage/export"
        # The upstream sees one principal for all our callers: make each caller's key distinct there.
        headers = None
        if request.idempotency_key:
            key = self._mac(request.idempotency_key, request.owner, self._idempotency_key)
            headers = {"Idempotency-Key": key}
        job = await self.client.post_json(
            "/cost-and-usage/export", body, lambda answer: contract.export_job(answer, operation), headers
        )
        return self._ours(job, self.job_id(job.jobId, request.owner))

    async def status(self, job_id: str, owner: str) -> ExportJob:
        return self._ours(await self._fetch(self.upstream_id(job_id, owner), job_id), job_id)

    async def wait(self, job_id: str, owner: str, timeout: float, report: Reporter | None = None) -> ExportJob:
        """Poll the upstream (any FOCUS API: the seed's status route has no wait) until the job leaves
        Pending/Processing or ``timeout`` passes, reporting the upstream's progress at every poll."""
        job = await self.status(job_id, owner)
        with anyio.move_on_after(timeout):
            while job.status in UNFINISHED:
                if report is not None:
                    await report_job(report, job)
                await self._sleep(UPSTREAM_POLL_SECONDS)
                job = await self.status(job_id, owner)
        if report is not None:
            await report_job(report, job)
        return job

    @asynccontextmanager
    async def open_download(self, job_id: str, name: str, owner: str) -> AsyncIterator[ExportDownload]:
        job = await self._fetch(self.upstream_id(job_id, owner), job_id)
        match: ExportFile | None = next((f for f in job.files if f.name == name), None)
        if job.status != "Complete" or match is None:
            raise NotFound(f"export {job_id} has no completed file {name!r}; check getcostandusageexportstatus")
        ours = self._ours(job, job_id)
        file = next(f for f in ours.files if f.name == name)
        async with self.client.stream(match.downloadUrl) as (size, chunks):
            yield ExportDownload(file, chunks=chunks, size=size)
