"""The embedded store's FOCUS 1.4 Billing Period and Invoice Detail answers, and the completeness rule.

A mixin of ``DuckDBSource`` (which supplies ``_query``, ``_version`` and the store): the two list tools,
``reconcileinvoices`` (two grouped sums, judged by ``tools.reconciliation.reconcile``) and
``dataCompleteness``. A billing period is final by its Billing Period rows where it has any, for every
invoice issuer holding Cost and Usage rows in it (all Closed: final; any Open, or an issuer without a row:
not final); a period without Billing Period rows is final once it had ended when last loaded (the rule
before FOCUS 1.4). A period a quarantining load left rows out of is never final.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

import duckdb

from server.sources import invoice_sql as q
from server.sources import sql
from server.sources.result_rows import rows_of
from server.store.schema import BP_TABLE, CU_TABLE, ID_TABLE
from tools.catalog import DataType
from tools.errors import InvalidPageToken
from tools.reconciliation import Key, Sums, reconcile
from tools.source import CompletenessRule, CostFilters, InvoiceFilters, Page, Verdict

T = TypeVar("T")
Period = tuple[datetime, datetime]
Rows = Callable[[str], list[Any]]  # a bookkeeping read: the rows of a query, kept once per data version
_ID_JSON = frozenset(c.id for c in q.INVOICE_DETAIL.of_type(DataType.JSON))


_COMPARE: dict[str, Callable[[Any, Any], bool]] = {"=": operator.eq, ">=": operator.ge, "<": operator.lt}


def _covers(filters: CostFilters, start: datetime, end: datetime) -> bool:
    """Whether the filters cover the billing period [start, end): its BillingPeriodStart conditions admit it
    and it overlaps the charge-period window. A condition that is no comparison with an instant (``is
    null``) admits no stored period, as in SQL."""
    for condition in filters.on("BillingPeriodStart"):
        compare, value = _COMPARE.get(condition.op), condition.value
        if compare is None or not isinstance(value, datetime) or not compare(start, value):
            return False
    for condition in filters.on("ChargePeriodStart"):
        value = condition.value
        if not isinstance(value, datetime) or not (end > value if condition.op == ">=" else start < value):
            return False
    return True


def _after(cursor: str | None) -> int | None:
    try:
        return None if cursor is None else int(cursor)
    except ValueError:
        raise InvalidPageToken("pageToken does not hold a valid position; start again", {"reason": "forged"}) from None


@dataclass(frozen=True, slots=True)
class Covered:
    """A billing period an answer covers: its start, the invoice issuers in it, whether it had ended when last
    loaded, and whether a quarantining load left rows of it out."""

    start: datetime
    issuers: set[str]
    ended: bool
    quarantined: bool = False


_PERIODS = (
    "SELECT BillingPeriodStart, BillingPeriodEnd, last_loaded_at >= BillingPeriodEnd, "
    "(BillingPeriodStart, BillingPeriodEnd) IN (SELECT BillingPeriodStart, BillingPeriodEnd FROM "
    "quarantined_scopes) FROM billing_periods ORDER BY BillingPeriodStart"
)


def _rule(rules: set[str]) -> CompletenessRule | None:
    if not rules:
        return None
    if len(rules) > 1:
        return "Mixed"
    return "BillingPeriodStatus" if rules == {"BillingPeriodStatus"} else "PeriodEnded"


class InvoiceQueries:
    """Billing Period, Invoice Detail and reconciliation queries of the embedded store."""

    _query: Callable[..., Any]
    _version: Callable[[duckdb.DuckDBPyConnection], int]
    remembered: Callable[..., list[Any]]
    _kept_or_query: Callable[..., Any]
    _reads: Callable[[duckdb.DuckDBPyConnection], Rows]

    # -- completeness -------------------------------------------------------------------------------

    def _cost_issuers(self, rows: Rows) -> dict[datetime, set[str]]:
        """The invoice issuers holding Cost and Usage rows, per BillingPeriodStart."""
        found: dict[datetime, set[str]] = {}
        for start, issuer in rows(q.cost_issuer_periods()):
            found.setdefault(start, set()).add(issuer)
        return found

    def _statuses(self, rows: Rows) -> dict[tuple[Any, Any], str]:
        return {(issuer, start): status for issuer, start, status in rows(q.period_statuses())}

    def _judge_periods(self, rows: Rows, covered: list[Covered]) -> Verdict:
        """Each covered period judged by the module's rule."""
        if not covered:
            return Verdict("Empty")
        statuses = self._statuses(rows)
        rules: set[str] = set()
        final = True
        for period in covered:
            known = {issuer: s for (issuer, at), s in statuses.items() if at == period.start}
            if known:
                rules.add("BillingPeriodStatus")
                # Every issuer with rows in the period must say Closed; one without a row is not final.
                closed = all(known.get(i) == "Closed" for i in period.issuers or known)
                final &= closed and not period.quarantined
            else:
                rules.add("PeriodEnded")
                final &= period.ended and not period.quarantined
        return Verdict("Complete" if final else "Partial", _rule(rules))

    async def completeness_verdict(self, filters: CostFilters) -> Verdict:
        def judge(rows: Rows, version: int) -> Verdict:
            # Every billing period once per data version (a store holds one row per period), then the
            # ones the filters cover chosen here: a query per call cost more than the rest of the verdict.
            periods = rows(_PERIODS)
            issuers = self._cost_issuers(rows)
            covered = [
                Covered(start, issuers.get(start, set()), bool(ended), bool(cut))
                for start, end, ended, cut in periods
                if _covers(filters, start, end)
            ]
            return self._judge_periods(rows, covered)

        verdict: Verdict = await self._kept_or_query(judge)
        return verdict

    async def invoice_completeness(self, filters: InvoiceFilters, dataset: str) -> Verdict:
        def run(cur: duckdb.DuckDBPyConnection) -> Verdict:
            if dataset == "BillingPeriod":
                statuses = [s for (s,) in cur.execute(*q.billing_period_statuses(filters)).fetchall()]
                if not statuses:
                    return Verdict("Empty")
                return Verdict("Complete" if statuses == ["Closed"] else "Partial", "BillingPeriodStatus")
            pairs: set[tuple[Any, datetime, datetime]] = set()
            where, params = q.invoice_detail_where(filters)
            pairs |= set(cur.execute(*q.periods(ID_TABLE, where, params)).fetchall())
            if dataset == "Reconciliation":
                pairs |= set(cur.execute(*q.periods(CU_TABLE, *q.cost_where(filters))).fetchall())
            last = self.remembered(cur, sql.LAST_LOAD)
            loaded = last[0][0] if last else None
            by_period: dict[Period, set[str]] = {}
            for issuer, start, end in pairs:
                by_period.setdefault((start, end), set()).add(issuer)
            covered = [Covered(s, i, loaded is not None and loaded >= e) for (s, e), i in sorted(by_period.items())]
            return self._judge_periods(self._reads(cur), covered)

        verdict: Verdict = await self._query(run)
        return verdict

    # -- the two 1.4 datasets -----------------------------------------------------------------------

    async def _list(
        self,
        page_query: tuple[str, list[Any]],
        count_query: tuple[str, list[Any]],
        limit: int,
        json_cols: frozenset[str],
    ) -> Page:
        def run(cur: duckdb.DuckDBPyConnection) -> Page:
            cur.execute(*page_query)
            rows = rows_of(cur, json_cols)
            more = len(rows) > limit
            rows = rows[:limit]
            cursors = [str(row.pop("_row_id")) for row in rows]
            total = cur.execute(*count_query).fetchone()
            return Page(rows, cursors[-1] if more and rows else None, int(total[0]) if total else 0, cursors)

        page: Page = await self._query(run)
        return page

    async def list_billing_periods(self, filters: InvoiceFilters, cursor: str | None, limit: int) -> Page:
        where, params = q.billing_period_where(filters)
        page_query = q.billing_period_page(filters, _after(cursor), limit)
        return await self._list(page_query, q.count(BP_TABLE, where, params), limit, frozenset())

    async def list_invoice_details(self, filters: InvoiceFilters, cursor: str | None, limit: int) -> Page:
        where, params = q.invoice_detail_where(filters)
        page_query = q.invoice_detail_page(filters, _after(cursor), limit)
        return await self._list(page_query, q.count(ID_TABLE, where, params), limit, _ID_JSON)

    # -- reconciliation -----------------------------------------------------------------------------

    async def reconcile_invoices(self, filters: InvoiceFilters, cursor: str | None, limit: int) -> Page:
        # The cursor is an offset into the judged, ordered list: the token binding it to the data version
        # keeps the list the same from page to page.
        offset = _after(cursor) or 0

        def run(cur: duckdb.DuckDBPyConnection) -> Page:
            invoiced: dict[Key, Sums] = {}
            for issuer, invoice, currency, billed, tax, n, accounts, start, end, is_open, voided in cur.execute(
                *q.invoiced_sums(filters)
            ).fetchall():
                invoiced[(issuer, invoice, currency)] = Sums(
                    billed, tax, n, 0, list(accounts), start, end, bool(is_open), bool(voided)
                )
            costs: dict[Key, Sums] = {}
            for issuer, invoice, currency, billed, tax, n, rows, accounts, start, end, fixes, fixed in cur.execute(
                *q.cost_sums(filters)
            ).fetchall():
                costs[(issuer, invoice, currency)] = Sums(
                    billed, tax, n, rows, list(accounts), start, end, corrections=fixes, corrections_billed=fixed
                )
            judged = reconcile(invoiced, costs, self._statuses(self._reads(cur)))
            if filters.status is not None:
                judged = [r for r in judged if r["status"] == filters.status]
            page = judged[offset : offset + limit]
            more = offset + limit < len(judged)
            cursors = [str(offset + i + 1) for i in range(len(page))]
            return Page(page, cursors[-1] if more and page else None, len(judged), cursors)

        result: Page = await self._query(run)
        return result
