"""Hand-built, parameterised DuckDB SQL over the FOCUS 1.4 Billing Period and Invoice Detail tables.

Owns the queries of ``listbillingperiods``, ``listinvoicedetails`` and the two per-invoice sums that
``reconcileinvoices`` compares, with the caller's scope applied inside each query:

- Invoice Detail rows by BillingAccountId (a sub-account scope admits none: invoice lines are per billing
  account, so they would show other sub accounts' spend);
- Billing Period rows only of invoice issuers that the scope admits Cost and Usage rows of;
- the Cost and Usage side of a reconciliation by the usual Cost and Usage scope.

As in ``sql.py``: identifiers come from the catalog and are quoted, values travel as ``?`` parameters.
"""

from __future__ import annotations

from typing import Any

from server.sources.sql import condition_clauses, output_columns, scope_clauses, where_sql
from server.store.schema import BP_TABLE, CU_TABLE, ID_TABLE
from tools.catalog import Catalog, Dataset, columns_at
from tools.source import InvoiceFilters, Scope

BILLING_PERIOD = columns_at(Dataset.BILLING_PERIOD, "1.4")
INVOICE_DETAIL = columns_at(Dataset.INVOICE_DETAIL, "1.4")


def visible_issuers(scope: Scope) -> tuple[str, list[Any]]:
    """``InvoiceIssuerName IN (issuers of the Cost and Usage rows the scope admits)``."""
    where, params = scope_clauses(scope)
    return f"InvoiceIssuerName IN (SELECT DISTINCT InvoiceIssuerName FROM {CU_TABLE}{where_sql(where)})", params


def account_scope(scope: Scope) -> tuple[list[str], list[Any]]:
    """The Invoice Detail scope: the scope's billing accounts; nothing at all under a sub-account scope."""
    if scope.sub_account_ids is not None:
        return ["FALSE"], []
    if scope.billing_account_ids is not None:
        return ["list_contains(?, BillingAccountId)"], [sorted(scope.billing_account_ids)]
    return [], []


def billing_period_where(filters: InvoiceFilters) -> tuple[list[str], list[Any]]:
    where, params = condition_clauses(filters.conditions)
    if not filters.scope.unrestricted:
        clause, scope_params = visible_issuers(filters.scope)
        where.append(clause)
        params += scope_params
    return where, params


def invoice_detail_where(filters: InvoiceFilters) -> tuple[list[str], list[Any]]:
    where, params = condition_clauses(filters.conditions)
    scope_where, scope_params = account_scope(filters.scope)
    return where + scope_where, params + scope_params


def _page(
    table: str, catalog: Catalog, where: list[str], params: list[Any], after: int | None, limit: int
) -> tuple[str, list[Any]]:
    if after is not None:
        where, params = [*where, "_row_id > ?"], [*params, after]
    select = ", ".join(["_row_id", *output_columns(catalog, list(catalog.ids))])
    # limit + 1 rows tell whether another page exists without a second query.
    return f"SELECT {select} FROM {table}{where_sql(where)} ORDER BY _row_id LIMIT {int(limit) + 1}", params


def billing_period_page(filters: InvoiceFilters, after: int | None, limit: int) -> tuple[str, list[Any]]:
    where, params = billing_period_where(filters)
    return _page(BP_TABLE, BILLING_PERIOD, where, params, after, limit)


def invoice_detail_page(filters: InvoiceFilters, after: int | None, limit: int) -> tuple[str, list[Any]]:
    where, params = invoice_detail_where(filters)
    return _page(ID_TABLE, INVOICE_DETAIL, where, params, after, limit)


def billing_period_statuses(filters: InvoiceFilters) -> tuple[str, list[Any]]:
    where, params = billing_period_where(filters)
    return f"SELECT DISTINCT BillingPeriodStatus FROM {BP_TABLE}{where_sql(where)} ORDER BY 1", params


def count(table: str, where: list[str], params: list[Any]) -> tuple[str, list[Any]]:
    return f"SELECT count(*) FROM {table}{where_sql(where)}", params


def periods(table: str, where: list[str], params: list[Any]) -> tuple[str, list[Any]]:
    """The (InvoiceIssuerName, BillingPeriodStart, BillingPeriodEnd) the matching rows of ``table`` cover."""
    return (
        f"SELECT DISTINCT InvoiceIssuerName, BillingPeriodStart, BillingPeriodEnd FROM {table}{where_sql(where)}",
        params,
    )


_KEY = "InvoiceIssuerName, InvoiceId, BillingCurrency"
_TAX = "ChargeCategory = 'Tax'"


def invoiced_sums(filters: InvoiceFilters) -> tuple[str, list[Any]]:
    """Per invoice and currency, from Invoice Detail: all lines, the Tax lines, counts, accounts, period,
    and whether a line is still Open (an Open invoice is not judged against the tolerance)."""
    where, params = invoice_detail_where(filters)
    return (
        f"""SELECT {_KEY}, sum(BilledCost), coalesce(sum(BilledCost) FILTER (WHERE {_TAX}), 0), count(*),
        list(DISTINCT BillingAccountId ORDER BY BillingAccountId), min(BillingPeriodStart), max(BillingPeriodEnd),
        bool_or(InvoiceIssueStatus = 'Open'), bool_and(InvoiceIssueStatus = 'Voided')
        FROM {ID_TABLE}{where_sql(where)} GROUP BY ALL""",
        params,
    )


def cost_sums(filters: InvoiceFilters) -> tuple[str, list[Any]]:
    """Per invoice and currency, from Cost and Usage: BilledCost of every row, of the Tax rows, the non-Tax
    row count (the tolerance's Rows), accounts, period, and the Correction rows whose billing period the
    invoice issuer's Billing Period rows call Closed."""
    where, params = cost_where(filters)
    return (
        f"""SELECT {_KEY}, sum(BilledCost), coalesce(sum(BilledCost) FILTER (WHERE {_TAX}), 0), count(*),
        count(*) FILTER (WHERE NOT coalesce({_TAX}, false)),
        list(DISTINCT BillingAccountId ORDER BY BillingAccountId), min(BillingPeriodStart), max(BillingPeriodEnd),
        count(*) FILTER (WHERE closed), coalesce(sum(BilledCost) FILTER (WHERE closed), 0)
        FROM (SELECT *, ChargeClass = 'Correction' AND (InvoiceIssuerName, BillingPeriodStart) IN
              (SELECT InvoiceIssuerName, BillingPeriodStart FROM {BP_TABLE} WHERE BillingPeriodStatus = 'Closed')
              AS closed
              FROM {CU_TABLE}{where_sql(where)})
        GROUP BY ALL""",
        params,
    )


def period_statuses() -> str:
    """Every Billing Period row's status by (InvoiceIssuerName, BillingPeriodStart)."""
    return f"SELECT InvoiceIssuerName, BillingPeriodStart, BillingPeriodStatus FROM {BP_TABLE}"


def cost_issuer_periods() -> str:
    """The (BillingPeriodStart, InvoiceIssuerName) pairs the Cost and Usage rows hold (cached per version)."""
    return f"SELECT DISTINCT BillingPeriodStart, InvoiceIssuerName FROM {CU_TABLE}"


def cost_where(filters: InvoiceFilters) -> tuple[list[str], list[Any]]:
    where, params = condition_clauses(filters.conditions)
    scope_where, scope_params = scope_clauses(filters.scope)
    return where + scope_where, params + scope_params
