"""Upstream mode: the tools' ``Source`` and the export service, served by a remote FOCUS API.

The seed's ``consumes`` block: the same five operations against a configured base URL, with
``FINOPS_FOUNDATION_TOKEN`` as bearer (``upstream_client`` does the HTTP; ``upstream_contract`` checks
every answer). This module owns the mapping between our side and theirs:

- **Page tokens.** The source cursor is the upstream's ``nextPageToken``, sealed (AES-GCM, key derived
  from our page-token secret) so the client never sees it; the handler then wraps the cursor in our own
  signed page token, bound to the filters. A cursor may also say "skip the first n rows of that upstream
  page", which lets the MCP size budget cut a page with nothing skipped or repeated.
- **Envelope.** ``totalRecords``, ``dataLastUpdated`` and ``dataCompleteness`` are the upstream's.
  Staleness is the upstream's to detect (its own tokens are bound to its data version); our data version
  is a constant per upstream URL.
- **Export jobs** are the upstream's, with namespaced ids ``up-<upstream id>.<mac>``: the MAC binds the
  id to the caller who started it (the upstream sees one principal for all our callers), and download
  URLs point at our REST route, which streams the upstream file through.
- **Scopes.** Account scopes cannot be enforced on an upstream that only knows our one credential, so a
  scoped principal is refused; scope the upstream token itself instead.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path
from typing import Any, Literal, overload
from urllib.parse import quote

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from server.exports import ExportDownload
from server.sources import upstream_contract as contract
from server.sources.upstream_client import UpstreamClient, UpstreamNotFound
from tools.context import ExportRequest
from tools.errors import Forbidden, InternalError, InvalidPageToken, NotFound
from tools.models import ExportCostAndUsageInput, ExportFile, ExportJob, format_instant
from tools.source import (
    CommitmentFilters,
    CostFilters,
    DataState,
    Envelope,
    ExportFormat,
    ExportResult,
    Page,
    Scope,
    Stats,
)

JOB_PREFIX = "up-"
# The most rows one upstream request asks for when a cut page is resumed (the first n are skipped).
UPSTREAM_MAX_PAGE = 10_000
_EXPORT_FIELDS = frozenset(ExportCostAndUsageInput.model_fields)


def derive_key(secret: bytes, purpose: str) -> bytes:
    return hmac.new(secret, f"focus-api upstream {purpose}".encode(), hashlib.sha256).digest()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _require_unscoped(scope: Scope) -> None:
    if not scope.unrestricted:
        raise Forbidden(
            "this token is limited to some accounts, and this server relays an upstream FOCUS API where that "
            "limit cannot be enforced; use an unscoped token here, or scope the upstream token itself",
            {"scope": scope.describe()},
        )


class CursorSeal:
    """Seals an upstream page token (and a skip count) into an opaque cursor only this server can read."""

    _AAD = b"focus-api upstream cursor v1"

    def __init__(self, secret: bytes) -> None:
        self._aead = AESGCM(derive_key(secret, "cursor"))

    def seal(self, token: str | None, skip: int = 0) -> str:
        nonce = os.urandom(12)
        payload = json.dumps({"t": token, "s": skip}, separators=(",", ":")).encode()
        return _b64(nonce + self._aead.encrypt(nonce, payload, self._AAD))

    def open(self, cursor: str) -> tuple[str | None, int]:
        try:
            raw = _unb64(cursor)
            data = json.loads(self._aead.decrypt(raw[:12], raw[12:], self._AAD))
            token, skip = data["t"], int(data["s"])
        except (ValueError, InvalidTag, KeyError, TypeError):
            raise InvalidPageToken(
                "pageToken does not hold a valid upstream position; start again", {"reason": "forged"}
            ) from None
        if (token is not None and not isinstance(token, str)) or skip < 0:
            raise InvalidPageToken("pageToken does not hold a valid upstream position; start again")
        return token, skip


class _Cursors(Sequence[str]):
    """The cursor after each row of a page: the same upstream page, skipping the rows already returned.

    Sealed only when asked for (a size budget cutting the page asks for one), not once per row.
    """

    def __init__(self, seal: CursorSeal, token: str | None, skip: int, count: int, next_cursor: str | None) -> None:
        self._seal, self._token, self._skip, self._count, self._next = seal, token, skip, count, next_cursor

    def __len__(self) -> int:
        return self._count

    @overload
    def __getitem__(self, index: int) -> str: ...

    @overload
    def __getitem__(self, index: slice) -> list[str]: ...

    def __getitem__(self, index: int | slice) -> str | list[str]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(self._count))]
        position = index + self._count if index < 0 else index
        if not 0 <= position < self._count:
            raise IndexError(index)
        if position == self._count - 1 and self._next is not None:
            return self._next
        return self._seal.seal(self._token, self._skip + position + 1)


def _cost_params(filters: CostFilters) -> dict[str, str]:
    values = {
        "billingPeriodStart": format_instant(filters.billing_period_start),
        "billingPeriodEnd": format_instant(filters.billing_period_end),
        "chargeCategory": filters.charge_category,
        "providerName": filters.service_provider_name,
        "serviceName": filters.service_name,
        "serviceCategory": filters.service_category,
        "region": filters.region_id,
        "resourceId": filters.resource_id,
        "subAccountId": filters.sub_account_id,
        "billingCurrency": filters.billing_currency,
    }
    return {k: v for k, v in values.items() if v is not None}


def _commitment_params(filters: CommitmentFilters) -> dict[str, str]:
    values = {
        "commitmentDiscountId": filters.contract_commitment_id,
        "billingAccountId": filters.billing_account_id,
        "contractId": filters.contract_id,
    }
    return {k: v for k, v in values.items() if v is not None}


class UpstreamSource:
    """FOCUS data from a remote FOCUS API (implements ``tools.source.Source``)."""

    def __init__(self, client: UpstreamClient, *, secret: bytes) -> None:
        self.client = client
        self._seal = CursorSeal(secret)
        base = client.config.base_url
        self._version = "upstream-" + hashlib.sha256(base.encode()).hexdigest()[:12]
        self._last_updated: datetime | None = None

    async def data_state(self) -> DataState:
        """A constant version per upstream (the upstream's own tokens catch its data changing) and the last
        dataLastUpdated it reported."""
        return DataState(version=self._version, last_updated=self._last_updated)

    async def _page(self, path: str, dataset: str, params: dict[str, str], cursor: str | None, limit: int) -> Page:
        token, skip = self._seal.open(cursor) if cursor is not None else (None, 0)
        size = min(skip + limit, UPSTREAM_MAX_PAGE)
        query = params | {"pageSize": str(size)} | ({"pageToken": token} if token else {})
        operation = f"GET {path}"
        answer = await self.client.get_json(
            path, query, lambda body: contract.list_page(body, dataset, operation, max_rows=size)
        )
        if answer.last_updated is not None:
            self._last_updated = answer.last_updated
        rows = answer.rows[skip:]
        next_cursor = self._seal.seal(answer.next_token) if answer.next_token else None
        return Page(
            rows=rows,
            next_cursor=next_cursor,
            total=answer.total,
            cursors=_Cursors(self._seal, token, skip, len(rows), next_cursor),
            envelope=Envelope(last_updated=answer.last_updated, completeness=answer.completeness),
        )

    async def list_cost_and_usage(self, filters: CostFilters, cursor: str | None, limit: int) -> Page:
        _require_unscoped(filters.scope)
        return await self._page("/cost-and-usage", "CostAndUsage", _cost_params(filters), cursor, limit)

    async def list_contract_commitments(self, filters: CommitmentFilters, cursor: str | None, limit: int) -> Page:
        _require_unscoped(filters.scope)
        params = _commitment_params(filters)
        return await self._page("/contract-commitments", "ContractCommitment", params, cursor, limit)

    async def completeness(self, filters: CostFilters) -> Literal["Complete", "Partial", "Empty"]:
        page = await self.list_cost_and_usage(filters, None, 1)
        assert page.envelope is not None
        return page.envelope.completeness

    async def stats(self, scope: Scope | None = None) -> Stats:
        _require_unscoped(scope or Scope())
        answer = await self.client.get_json("/schema", {}, lambda body: contract.schema(body, "GET /schema"))
        loaded = answer.loaded
        if loaded.dataLastUpdated is not None:
            self._last_updated = contract.instant(loaded.dataLastUpdated, "loaded.dataLastUpdated", "GET /schema")
        origin = loaded.origin.removesuffix(" (demo data)")
        return Stats(
            demo=loaded.demo,
            cost_and_usage_rows=loaded.costAndUsageRows,
            contract_commitment_rows=loaded.contractCommitmentRows,
            billing_periods=loaded.billingPeriods,
            providers=loaded.providers,
            currencies=loaded.currencies,
            custom_columns=answer.custom_columns(),
            origin=f"upstream FOCUS API at {self.client.config.base_url} (its origin: {origin})",
        )

    def write_export(self, filters: CostFilters, fmt: ExportFormat, path: Path, should_stop: Any) -> ExportResult:
        raise InternalError("in upstream mode exports run upstream (UpstreamExports), never in this process")

    def write_commitments_export(
        self, filters: CommitmentFilters, fmt: ExportFormat, path: Path, should_stop: Any
    ) -> ExportResult:
        raise InternalError("in upstream mode exports run upstream (UpstreamExports), never in this process")


class UpstreamExports:
    """Export jobs run by the upstream, under ids bound to the caller who started them."""

    def __init__(self, client: UpstreamClient, *, base_url: str, secret: bytes) -> None:
        self.client = client
        self.base_url = base_url.rstrip("/")
        self._key = derive_key(secret, "export job owner")

    def _mac(self, upstream_id: str, owner: str) -> str:
        message = json.dumps([upstream_id, owner]).encode()
        return _b64(hmac.new(self._key, message, hashlib.sha256).digest()[:16])

    def job_id(self, upstream_id: str, owner: str) -> str:
        return f"{JOB_PREFIX}{upstream_id}.{self._mac(upstream_id, owner)}"

    def upstream_id(self, job_id: str, owner: str) -> str:
        """The upstream's id inside one of our ids, if ``owner`` started it; NotFound otherwise."""
        upstream_id, _, mac = job_id.removeprefix(JOB_PREFIX).rpartition(".")
        if (
            not job_id.startswith(JOB_PREFIX)
            or not upstream_id
            or not hmac.compare_digest(mac, self._mac(upstream_id, owner))
        ):
            # Someone else's job is reported exactly like a missing one: ids reveal nothing.
            raise NotFound(
                f"no export job {job_id!r}; start one with exportcostandusage and use the jobId it returns",
                {"jobId": job_id},
            )
        return upstream_id

    def _ours(self, job: ExportJob, job_id: str) -> ExportJob:
        files = [
            f.model_copy(update={"downloadUrl": f"{self.base_url}/cost-and-usage/export/{job_id}/files/{f.name}"})
            for f in job.files
        ]
        main = next((f for f in files if f.dataset == "CostAndUsage"), files[0] if files else None)
        # The upstream's appliedScope describes this server's upstream credential, not our caller.
        return job.model_copy(
            update={
                "jobId": job_id,
                "files": files,
                "downloadUrl": main.downloadUrl if main and job.downloadUrl else None,
                "appliedScope": None,
            }
        )

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
        _require_unscoped(request.filters.scope)
        body = {k: v for k, v in request.request.items() if k in _EXPORT_FIELDS}
        operation = "POST /cost-and-usage/export"
        # The upstream sees one principal for all our callers: make each caller's key distinct there.
        headers = (
            {"Idempotency-Key": self._mac(request.idempotency_key, request.owner)} if request.idempotency_key else None
        )
        job = await self.client.post_json(
            "/cost-and-usage/export", body, lambda answer: contract.export_job(answer, operation), headers
        )
        return self._ours(job, self.job_id(job.jobId, request.owner))

    async def status(self, job_id: str, owner: str) -> ExportJob:
        return self._ours(await self._fetch(self.upstream_id(job_id, owner), job_id), job_id)

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
