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
class Envelope:
    """What a source relaying another FOCUS API was told about one answer; the handler passes it on."""

    last_updated: datetime | None
    completeness: Completeness


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


class Source(Protocol):
    """A FOCUS 1.3 data source."""

    async def data_state(self) -> DataState: ...

    async def list_cost_and_usage(
        self, filters: CostFilters, cursor: str | None, limit: int, columns: tuple[str, ...] | None = None
    ) -> Page:
        """One page of rows; with ``columns``, only those (catalog or loaded x_ columns), in that order."""
        ...

    async def list_contract_commitments(
        self, filters: CommitmentFilters, cursor: str | None, limit: int, columns: tuple[str, ...] | None = None
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

    async def summarize_contract_commitments(self, query: BurnDownQuery) -> BurnDowns:
        """Burn-down per ContractCommitmentId of the commitments the caller may see."""
        ...

    async def summarize_commitment_discounts(self, filters: CostFilters, query: DiscountQuery) -> Summary:
        """Used / unused / savings / purchases per commitment discount group and currency, with totals."""
        ...
