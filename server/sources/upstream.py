"""Upstream mode: the tools' ``Source`` served by a remote FOCUS API (exports: ``upstream_exports``).

The seed's ``consumes`` block: the same operations (the seed's five, plus the summary and values routes
when the upstream is a focus-api) against a configured base URL, with ``FINOPS_FOUNDATION_TOKEN`` as
bearer (``upstream_client`` does the HTTP; ``upstream_contract`` checks every answer). This module owns
the mapping between our side and theirs:

- **Page tokens.** The source cursor is the upstream's ``nextPageToken``, sealed (AES-GCM, key derived
  from our page-token secret) so the client never sees it; the handler then wraps the cursor in our own
  signed page token, bound to the filters. A cursor may also say "skip the first n rows of that upstream
  page", which lets the MCP size budget cut a page with nothing skipped or repeated.
- **Envelope.** ``totalRecords``, ``dataLastUpdated`` and ``dataCompleteness`` are the upstream's.
  Staleness is the upstream's to detect (its own tokens are bound to its data version); our data version
  is a constant per upstream URL.
- **Scopes.** Account scopes cannot be enforced on an upstream that only knows our one credential, so a
  scoped principal is refused; scope the upstream token itself instead.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any, TypeVar, overload

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from server.sources import sql
from server.sources import upstream_contract as contract
from server.sources.upstream_client import Params, UpstreamClient
from server.sources.upstream_failures import UpstreamNotFound
from server.sources.upstream_invoices import UpstreamInvoices, completeness_rule
from tools.burndown import SummarizeContractCommitmentsOutput
from tools.catalog import DEFAULT_VERSION, Dataset, columns_at, is_custom_column
from tools.discounts import SummarizeCommitmentDiscountsOutput
from tools.errors import Forbidden, InvalidPageToken, UpstreamError
from tools.filters import query_params
from tools.instants import format_instant
from tools.pagination import b64url, unb64url
from tools.source import (
    BurnDownQuery,
    BurnDowns,
    CommitmentFilters,
    Completeness,
    CompletenessRule,
    CostFilters,
    DataState,
    DiscountQuery,
    Envelope,
    Page,
    Scope,
    Stats,
    Summary,
    SummaryQuery,
    ValuesQuery,
)

# The most rows one upstream request asks for when a cut page is resumed (the first n are skipped).
UPSTREAM_MAX_PAGE = 10_000
_CU_RECORD = contract.focus_record("CostAndUsage")
_CC_RECORD = contract.focus_record("ContractCommitment")
T = TypeVar("T")


def derive_key(secret: bytes, purpose: str) -> bytes:
    return hmac.new(secret, f"focus-api upstream {purpose}".encode(), hashlib.sha256).digest()


def require_unscoped(scope: Scope) -> None:
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
        return b64url(nonce + self._aead.encrypt(nonce, payload, self._AAD))

    def open(self, cursor: str) -> tuple[str | None, int]:
        try:
            raw = unb64url(cursor)
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


def _commitment_params(filters: CommitmentFilters) -> dict[str, str]:
    values = {
        "commitmentDiscountId": filters.contract_commitment_id,
        "billingAccountId": filters.billing_account_id,
        "contractId": filters.contract_id,
    }
    return {k: v for k, v in values.items() if v is not None}


def _in_version(page: Page, dataset: Dataset, version: str, columns: tuple[str, ...] | None) -> Page:
    """Rows in FOCUS ``version``'s columns. The seed's upstream contract is FOCUS 1.3: its rows seen as 1.4
    lose ProviderName and PublisherName and carry 1.4's new columns as null, as 1.3 rows of the store do."""
    catalog = columns_at(dataset, version)
    if columns is not None:
        sql.chosen_columns(catalog, [c for c in columns if is_custom_column(c)], columns)  # refuses other versions'
    if version == DEFAULT_VERSION:
        return page
    ids = catalog.ids
    rows = [{c: row.get(c) for c in ids} | {k: v for k, v in row.items() if is_custom_column(k)} for row in page.rows]
    return replace(page, rows=rows)


def _project(page: Page, columns: tuple[str, ...] | None) -> Page:
    """Only ``columns`` of each row, in that order. Done here, not upstream: the seed's contract has no
    columns parameter, and any FOCUS API must be usable as the upstream. An x_ column the upstream's rows
    lack is null, as a column of no value would be."""
    if columns is None:
        return page
    return replace(page, rows=[{c: row.get(c) for c in columns} for row in page.rows])


class UpstreamSource(UpstreamInvoices):
    """FOCUS data from a remote FOCUS API (implements ``tools.source.Source``; the FOCUS 1.4 invoice tools are
    in ``upstream_invoices``)."""

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

    async def _page(
        self,
        path: str,
        row: Callable[[Any, str, str], dict[str, Any]],
        params: Params,
        cursor: str | None,
        limit: int,
    ) -> Page:
        token, skip = self._seal.open(cursor) if cursor is not None else (None, 0)
        size = min(skip + limit, UPSTREAM_MAX_PAGE)
        query = [*params, ("pageSize", str(size)), *([("pageToken", token)] if token else [])]
        operation = f"GET {path}"
        rules: list[CompletenessRule | None] = []  # the upstream's dataCompletenessRule, passed on

        def check(body: Any) -> contract.UpstreamList:
            rules.append(completeness_rule(body, operation))
            return contract.list_page(body, operation, max_rows=size, row=row)

        answer = await self.client.get_json(path, query, check)
        self._seen(answer.last_updated)
        rows = answer.rows[skip:]
        next_cursor = self._seal.seal(answer.next_token) if answer.next_token else None
        return Page(
            rows=rows,
            next_cursor=next_cursor,
            total=answer.total,
            cursors=_Cursors(self._seal, token, skip, len(rows), next_cursor),
            envelope=Envelope(
                last_updated=answer.last_updated, completeness=answer.completeness, rule=rules[-1] if rules else None
            ),
        )

    async def list_cost_and_usage(
        self,
        filters: CostFilters,
        cursor: str | None,
        limit: int,
        columns: tuple[str, ...] | None = None,
        version: str = DEFAULT_VERSION,
    ) -> Page:
        require_unscoped(filters.scope)
        page = await self._page("/cost-and-usage", _CU_RECORD, query_params(filters), cursor, limit)
        return _project(_in_version(page, Dataset.COST_AND_USAGE, version, columns), columns)

    async def list_contract_commitments(
        self,
        filters: CommitmentFilters,
        cursor: str | None,
        limit: int,
        columns: tuple[str, ...] | None = None,
        version: str = DEFAULT_VERSION,
    ) -> Page:
        require_unscoped(filters.scope)
        params = list(_commitment_params(filters).items())
        page = await self._page("/contract-commitments", _CC_RECORD, params, cursor, limit)
        return _project(_in_version(page, Dataset.CONTRACT_COMMITMENT, version, columns), columns)

    async def summarize(self, filters: CostFilters, query: SummaryQuery) -> Summary:
        """The upstream's ``GET /cost-and-usage/summary``, cut to this transport's groups per currency."""
        require_unscoped(filters.scope)
        params = {
            "metrics": ",".join(query.metrics),
            "sort": ("" if query.descending else "+") + query.sort,
        }
        if query.group_by:
            params["groupBy"] = ",".join(query.group_by)
        if query.savings:
            params["savings"] = "true"
        if query.top is not None:
            params["top"] = str(query.top)
        path = "/cost-and-usage/summary"
        rules: list[CompletenessRule | None] = []  # the upstream's dataCompletenessRule, passed on

        def check(body: Any) -> contract.UpstreamSummary:
            rules.append(completeness_rule(body, f"GET {path}"))
            return contract.summary(body, f"GET {path}", query.group_by, query.metrics)

        answer = await self._optional("summarizecostandusage", path, [*query_params(filters), *params.items()], check)
        self._seen(answer.last_updated)
        rows = answer.rows
        if query.top is None:
            # The upstream cut at its own limit; a smaller transport limit here (MCP) cuts further.
            kept: dict[Any, int] = {}
            rows = []
            for row in answer.rows:
                currency = row.get("BillingCurrency")
                kept[currency] = kept.get(currency, 0) + 1
                if kept[currency] <= query.max_groups:
                    rows.append(row)
        return Summary(
            rows=rows,
            totals=answer.totals,
            group_count=answer.group_count,
            envelope=Envelope(
                last_updated=answer.last_updated, completeness=answer.completeness, rule=rules[-1] if rules else None
            ),
        )

    async def distinct_values(self, filters: CostFilters, query: ValuesQuery, cursor: str | None, limit: int) -> Page:
        """The upstream's ``GET /cost-and-usage/values``, paged like the lists."""
        require_unscoped(filters.scope)
        params = {
            "column": query.column,
            "searchMode": "prefix" if query.prefix else "contains",
        }
        if query.search is not None:
            params["search"] = query.search
        token, skip = self._seal.open(cursor) if cursor is not None else (None, 0)
        if skip:
            raise InvalidPageToken("pageToken does not hold a valid position; start again", {"reason": "forged"})
        path = "/cost-and-usage/values"
        params["pageSize"] = str(limit)
        if token:
            params["pageToken"] = token
        answer = await self._optional(
            "listcostandusagevalues",
            path,
            [*query_params(filters), *params.items()],
            lambda body: contract.list_page(body, f"GET {path}", max_rows=limit, row=contract.value_count),
        )
        self._seen(answer.last_updated)
        return Page(
            rows=answer.rows,
            next_cursor=self._seal.seal(answer.next_token) if answer.next_token else None,
            total=answer.total,
            envelope=Envelope(last_updated=answer.last_updated, completeness=answer.completeness),
        )

    async def summarize_contract_commitments(self, query: BurnDownQuery) -> BurnDowns:
        """The upstream's ``GET /contract-commitments/summary`` (a focus-api offers it), checked against the
        tool's own output model."""
        require_unscoped(query.filters.scope)
        params = [
            *(
                ("contractCommitmentId" if k == "commitmentDiscountId" else k, v)
                for k, v in _commitment_params(query.filters).items()
            ),
            ("runRateDays", str(query.run_rate_days)),
            *([("asOf", format_instant(query.as_of) or "")] if query.as_of else []),
        ]
        path = "/contract-commitments/summary"
        answer: SummarizeContractCommitmentsOutput = await self._optional(
            "summarizecontractcommitments",
            path,
            params,
            lambda body: contract.model(SummarizeContractCommitmentsOutput, body, f"GET {path}"),
        )
        last_updated = contract.instant(answer.dataLastUpdated, "dataLastUpdated", f"GET {path}")
        self._seen(last_updated)
        return BurnDowns(
            rows=[r.model_dump() for r in answer.data][: query.max_rows],
            as_of=contract.instant(answer.asOf, "asOf", f"GET {path}"),
            matched=answer.totalRecords,
            envelope=Envelope(last_updated=last_updated, completeness=answer.dataCompleteness),
        )

    async def summarize_commitment_discounts(self, filters: CostFilters, query: DiscountQuery) -> Summary:
        """The upstream's ``GET /commitment-discounts/summary``, checked against the tool's output model."""
        require_unscoped(filters.scope)
        params = [*query_params(filters), ("groupBy", ",".join(query.group_by)), ("sort", query.sort)]
        if query.top is not None:
            params.append(("top", str(query.top)))
        path = "/commitment-discounts/summary"
        answer: SummarizeCommitmentDiscountsOutput = await self._optional(
            "summarizecommitmentdiscounts",
            path,
            params,
            lambda body: contract.model(SummarizeCommitmentDiscountsOutput, body, f"GET {path}"),
        )
        last_updated = contract.instant(answer.dataLastUpdated, "dataLastUpdated", f"GET {path}")
        self._seen(last_updated)
        return Summary(
            rows=[r.model_dump() for r in answer.data],
            totals=[t.model_dump() for t in answer.totals],
            group_count=answer.groupCount,
            envelope=Envelope(last_updated=last_updated, completeness=answer.dataCompleteness),
        )

    async def _optional(self, tool: str, path: str, params: Params, check: Callable[[Any], T]) -> T:
        """A call to an operation beyond the seed's five, which a plain FOCUS API may not offer."""
        try:
            return await self.client.get_json(path, params, check)
        except UpstreamNotFound as exc:
            raise UpstreamError(
                f"the upstream FOCUS API does not offer {tool} (GET {path} answered 404); list the rows with "
                "listcostandusage and sum them instead",
                exc.details,
            ) from None

    def _seen(self, last_updated: datetime | None) -> None:
        if last_updated is not None:
            self._last_updated = last_updated

    async def completeness(self, filters: CostFilters) -> Completeness:
        page = await self.list_cost_and_usage(filters, None, 1)
        assert page.envelope is not None
        return page.envelope.completeness

    async def stats(self, scope: Scope | None = None) -> Stats:
        require_unscoped(scope or Scope())
        answer = await self.client.get_json("/schema", {}, lambda body: contract.schema(body, "GET /schema"))
        loaded = answer.loaded
        self._seen(contract.instant(loaded.dataLastUpdated, "loaded.dataLastUpdated", "GET /schema"))
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
            loads=loaded.loads,
            rows_by_focus_version=loaded.costAndUsageRowsByFocusVersion,
            billing_period_rows=loaded.billingPeriodRows,
            invoice_detail_rows=loaded.invoiceDetailRows,
        )
