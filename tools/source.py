"""What the tools need from a data source, and the plain values that cross that boundary.

Implemented in ``server/sources/`` (embedded DuckDB, upstream FOCUS API). Rows are dicts keyed by
FOCUS column ID holding ``Decimal`` for decimals, FOCUS-formatted UTC strings for date/times, parsed
JSON for JSON columns, and ``None`` for nulls. Cursors are opaque strings the source alone reads.
Exports are not a source's job: the export services (``server/exports``, upstream) own their writers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any, Literal, Protocol

Row = dict[str, Any]
ExportFormat = Literal["csv", "parquet", "json"]
Completeness = Literal["Complete", "Partial", "Empty"]
# The comparisons a filter may make; the SQL builders accept only these. "tag": the Tags key (value[0])
# holds exactly value[1]; "is null": the column is null.
Operator = Literal["=", ">=", "<", "tag", "is null"]


@dataclass(frozen=True, slots=True)
class Scope:
    """The accounts a caller may see; None means no restriction."""

    billing_account_ids: frozenset[str] | None = None
    sub_account_ids: frozenset[str] | None = None

    @property
    def unrestricted(self) -> bool:
        return self.billing_account_ids is None and self.sub_account_ids is None

    def describe(self) -> dict[str, Any]:
        return {
            "billingAccountIds": sorted(self.billing_account_ids) if self.billing_account_ids is not None else None,
            "subAccountIds": sorted(self.sub_account_ids) if self.sub_account_ids is not None else None,
        }

    def key(self) -> str:
        return "" if self.unrestricted else repr(sorted(self.describe().items()))


@dataclass(frozen=True, slots=True)
class Condition:
    """One filter as given: the caller's parameter, the FOCUS column it compares and how (tools/filters.py)."""

    param: str
    column: str
    op: Operator
    value: str | datetime | tuple[str, str] | None


@dataclass(frozen=True, slots=True)
class CostFilters:
    """The Cost and Usage filters of one call, all of which a row must meet, and the caller's scope."""

    conditions: tuple[Condition, ...] = ()
    scope: Scope = Scope()

    def value(self, param: str) -> str | datetime | tuple[str, str] | None:
        return next((c.value for c in self.conditions if c.param == param), None)

    def on(self, column: str) -> tuple[Condition, ...]:
        return tuple(c for c in self.conditions if c.column == column)

    def as_params(self) -> dict[str, Any]:
        """The filters as a JSON-able dict keyed by parameter (for fingerprints and export records)."""
        out: dict[str, Any] = {}
        for c in self.conditions:
            if c.op == "tag" and isinstance(c.value, tuple):
                out.setdefault(c.param, []).append("=".join(c.value))
            elif c.op == "is null":
                out[c.param] = "null"
            else:
                out[c.param] = c.value.isoformat() if isinstance(c.value, datetime) else c.value
        return out


@dataclass(frozen=True, slots=True)
class CommitmentFilters:
    contract_commitment_id: str | None = None
    billing_account_id: str | None = None
    contract_id: str | None = None
    scope: Scope = Scope()

    def as_params(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if k != "scope" and v is not None}


@dataclass(frozen=True, slots=True)
class InvoiceFilters:
    """The filters of one Billing Period, Invoice Detail or reconciliation call (tools/invoices.py), all of
    which a row must meet, and the caller's scope. ``status`` is a reconciliation status, judged after the
    sums, so it never reaches SQL."""

    conditions: tuple[Condition, ...] = ()
    scope: Scope = Scope()
    status: str | None = None

    def as_params(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            c.param: c.value.isoformat() if isinstance(c.value, datetime) else c.value for c in self.conditions
        }
        return out | ({"status": self.status} if self.status else {})


# How dataCompleteness was judged: every covered period by its Billing Period rows (Closed is final), every
# one by whether it had ended when last loaded (no Billing Period rows), or some periods each way.
CompletenessRule = Literal["BillingPeriodStatus", "PeriodEnded", "Mixed"]


@dataclass(frozen=True, slots=True)
class Verdict:
    """dataCompleteness and the rule it was judged by (None when nothing matched)."""

    completeness: Completeness
    rule: CompletenessRule | None = None


@dataclass(frozen=True, slots=True)
class Envelope:
    """What a source relaying another FOCUS API was told about one answer; the handler passes it on."""

    last_updated: datetime | None
    completeness: Completeness
    rule: CompletenessRule | None = None


@dataclass(frozen=True, slots=True)
class Page:
    rows: list[Row]
    next_cursor: str | None
    total: int
    # The cursor after each row, when the source can resume mid-page (lets a size budget cut a page).
    cursors: Sequence[str] | None = None
    # Set by relaying sources (upstream mode): dataLastUpdated and dataCompleteness as the upstream said.
    envelope: Envelope | None = None


@dataclass(frozen=True, slots=True)
class SummaryQuery:
    """A whitelisted grouping: dimension names and metrics come from tools.summary_models."""

    group_by: tuple[str, ...]
    metrics: tuple[str, ...]
    savings: bool
    top: int | None
    sort: str
    descending: bool
    max_groups: int


@dataclass(frozen=True, slots=True)
class Summary:
    rows: list[Row]
    totals: list[Row]
    group_count: int
    # Set by relaying sources (upstream mode), as on Page.
    envelope: Envelope | None = None


@dataclass(frozen=True, slots=True)
class ValuesQuery:
    column: str
    search: str | None
    prefix: bool


@dataclass(frozen=True, slots=True)
class BurnDownQuery:
    """A contract commitment burn-down: which commitments, as of when, over which run-rate window."""

    filters: CommitmentFilters
    as_of: datetime | None  # None: the end of the loaded data the caller may see
    run_rate_days: int
    max_rows: int


@dataclass(frozen=True, slots=True)
class BurnDowns:
    """One row per commitment (the figures of ``tools/burndown.py``), the instant they hold at, and how
    many commitments matched before ``max_rows``."""

    rows: list[Row]
    as_of: datetime | None
    matched: int
    envelope: Envelope | None = None


@dataclass(frozen=True, slots=True)
class DiscountQuery:
    """A commitment discount utilization summary: whitelisted groups (tools/discounts.py)."""

    group_by: tuple[str, ...]
    top: int | None
    sort: str
    max_groups: int


@dataclass(frozen=True, slots=True)
class DataState:
    version: str
    last_updated: datetime | None


@dataclass(frozen=True, slots=True)
class Stats:
    demo: bool
    cost_and_usage_rows: int
    contract_commitment_rows: int
    billing_periods: list[dict[str, Any]]
    providers: list[str]
    currencies: list[str]
    custom_columns: dict[str, list[str]]
    origin: str
    # The latest loads with what each normalised and quarantined (newest first; empty for scoped callers).
    loads: list[dict[str, Any]] = field(default_factory=list)
    # Cost and Usage rows by the FOCUS version of the file they came from (a store mixes versions).
    rows_by_focus_version: dict[str, int] = field(default_factory=dict)
    billing_period_rows: int = 0
    invoice_detail_rows: int = 0
    # Cloud export syncs (server/cloud/state.py): the latest attempt and each source's last success.
    sync: dict[str, Any] | None = None


class Source(Protocol):
    """A FOCUS data source (rows served in FOCUS 1.3 or 1.4 columns)."""

    async def data_state(self) -> DataState: ...

    async def list_cost_and_usage(
        self,
        filters: CostFilters,
        cursor: str | None,
        limit: int,
        columns: tuple[str, ...] | None = None,
        version: str = "1.3",
    ) -> Page:
        """One page of rows in FOCUS ``version``'s columns; with ``columns``, only those (columns of that
        version or loaded x_ columns), in that order."""
        ...

    async def list_contract_commitments(
        self,
        filters: CommitmentFilters,
        cursor: str | None,
        limit: int,
        columns: tuple[str, ...] | None = None,
        version: str = "1.3",
    ) -> Page: ...

    async def completeness(self, filters: CostFilters) -> Completeness: ...

    async def summarize(self, filters: CostFilters, query: SummaryQuery) -> Summary:
        """Metric sums per group (BillingCurrency always among the groups) and per-currency totals."""
        ...

    async def distinct_values(self, filters: CostFilters, query: ValuesQuery, cursor: str | None, limit: int) -> Page:
        """Distinct values of one column with row counts and EffectiveCost per currency, most rows first."""
        ...

    async def stats(self, scope: Scope) -> Stats:
        """What is loaded, counted within ``scope``."""
        ...

    # FOCUS 1.4 Billing Period and Invoice Detail (tools/invoices.py, tools/reconciliation.py).

    async def completeness_verdict(self, filters: CostFilters) -> Verdict:
        """``completeness`` and the rule it used (Billing Period status where there are such rows)."""
        ...

    async def list_billing_periods(self, filters: InvoiceFilters, cursor: str | None, limit: int) -> Page:
        """Billing Period rows, only of invoice issuers whose Cost and Usage rows the scope admits."""
        ...

    async def list_invoice_details(self, filters: InvoiceFilters, cursor: str | None, limit: int) -> Page:
        """Invoice Detail rows (the 1.4 columns), only of the billing accounts the scope admits."""
        ...

    async def reconcile_invoices(self, filters: InvoiceFilters, cursor: str | None, limit: int) -> Page:
        """One reconciliation row per (InvoiceIssuerName, InvoiceId, BillingCurrency) (tools/reconciliation.py)."""
        ...

    async def invoice_completeness(self, filters: InvoiceFilters, dataset: str) -> Verdict:
        """dataCompleteness of the billing periods the matching rows of ``dataset`` cover."""

    async def summarize_contract_commitments(self, query: BurnDownQuery) -> BurnDowns:
        """Burn-down per ContractCommitmentId of the commitments the caller may see."""
        ...

    async def summarize_commitment_discounts(self, filters: CostFilters, query: DiscountQuery) -> Summary:
        """Used / unused / savings / purchases per commitment discount group and currency, with totals."""
        ...
