"""Upstream mode for the FOCUS 1.4 invoice tools: ``listbillingperiods``, ``listinvoicedetails`` and
``reconcileinvoices`` relayed to an upstream focus-api (``GET /billing-periods``, ``/invoice-details``,
``/invoices/reconciliation``), paged and sealed like the other lists (``upstream.py``).

A mixin of ``UpstreamSource``. It owns the record checks of these answers: Billing Period and Invoice
Detail rows carry only their 1.4 column IDs (or ``x_`` columns) with values of the column's type, and
reconciliation rows are the ``ReconciliationRow`` model with decimals as JSON numbers. A plain FOCUS API
without these routes answers 404, which becomes ``upstream_error`` saying the upstream lacks the tool.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from pydantic import ValidationError

from server.sources.upstream_client import Params
from server.sources.upstream_contract import ContractViolation
from server.sources.upstream_failures import UpstreamNotFound
from tools.catalog import Catalog, DataType
from tools.errors import UpstreamError
from tools.invoices import BILLING_PERIOD, INVOICE_DETAIL, query_params
from tools.reconciliation import ReconciliationRow
from tools.source import CompletenessRule, CostFilters, InvoiceFilters, Page, Verdict

_INSTANT = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\Z")
_DECIMALS = tuple(n for n, f in ReconciliationRow.model_fields.items() if "Decimal" in str(f.annotation))
RowCheck = Callable[[Any, str, str], dict[str, Any]]
_RULES: tuple[CompletenessRule, ...] = ("BillingPeriodStatus", "PeriodEnded", "Mixed")


def completeness_rule(body: Any, operation: str) -> CompletenessRule | None:
    """A list answer's ``dataCompletenessRule``: absent (an upstream older than FOCUS 1.4 serving) is null."""
    value = body.get("dataCompletenessRule") if isinstance(body, dict) else None
    for rule in _RULES:
        if value == rule:
            return rule
    if value is not None:
        raise ContractViolation(operation, f"dataCompletenessRule is {value!r}, expected one of {', '.join(_RULES)}")
    return None


def _problem(value: Any, kind: DataType) -> bool:
    if value is None:
        return False
    if kind is DataType.DECIMAL:
        return type(value) not in (Decimal, int)
    if kind is DataType.DATETIME:
        return type(value) is not str or not _INSTANT.match(value)
    if kind is DataType.JSON:
        return type(value) not in (dict, list)
    return type(value) is not str


def record_check(catalog: Catalog) -> RowCheck:
    """The row check of a 1.4 dataset: column IDs and value types from its catalog."""

    def check(value: Any, where: str, operation: str) -> dict[str, Any]:
        if type(value) is not dict:
            raise ContractViolation(operation, f"{where} is not a record object")
        for key, cell in value.items():
            column = catalog.get(key)
            if column is None and not (isinstance(key, str) and key.startswith("x_")):
                raise ContractViolation(
                    operation, f"{where} has the column {key!r}, neither a FOCUS 1.4 {catalog.dataset.label} "
                    "column nor an x_ custom column",
                )  # fmt: skip
            if column is not None and _problem(cell, column.data_type):
                raise ContractViolation(operation, f"{where}.{key} is not {column.data_type.value} or null")
        record = {c: value.get(c) for c in catalog.ids}
        record.update((k, v) for k, v in value.items() if k not in record)
        return {k: Decimal(v) if type(v) is int and k in catalog and catalog[k].data_type is DataType.DECIMAL else v
                for k, v in record.items()}  # fmt: skip

    return check


def reconciliation_check(value: Any, where: str, operation: str) -> dict[str, Any]:
    if type(value) is not dict:
        raise ContractViolation(operation, f"{where} is not a reconciliation object")
    for key in _DECIMALS:
        if value.get(key) is not None and type(value[key]) not in (Decimal, int):
            raise ContractViolation(operation, f"{where}.{key} is not a decimal JSON number")
    try:
        return ReconciliationRow.model_validate(value).model_dump()
    except ValidationError as exc:
        first = exc.errors()[0]
        place = ".".join(str(p) for p in first.get("loc", ()))
        raise ContractViolation(operation, f"{where}.{place}: {first.get('msg', 'invalid')}") from None


class UpstreamInvoices:
    """The invoice tools of ``UpstreamSource``."""

    _page: Callable[..., Any]
    list_cost_and_usage: Callable[..., Any]

    async def _relay(
        self, tool: str, path: str, check: RowCheck, filters: InvoiceFilters, cursor: Any, limit: int
    ) -> Page:
        from server.sources.upstream import require_unscoped  # upstream.py imports this module

        require_unscoped(filters.scope)
        params: Params = query_params(filters)
        try:
            page: Page = await self._page(path, check, params, cursor, limit)
        except UpstreamNotFound as exc:
            raise UpstreamError(
                f"the upstream FOCUS API does not offer {tool} (GET {path} answered 404); it is not a focus-api "
                "serving FOCUS 1.4 invoices",
                exc.details,
            ) from None
        return page

    async def list_billing_periods(self, filters: InvoiceFilters, cursor: str | None, limit: int) -> Page:
        return await self._relay(
            "listbillingperiods", "/billing-periods", record_check(BILLING_PERIOD), filters, cursor, limit
        )

    async def list_invoice_details(self, filters: InvoiceFilters, cursor: str | None, limit: int) -> Page:
        return await self._relay(
            "listinvoicedetails", "/invoice-details", record_check(INVOICE_DETAIL), filters, cursor, limit
        )

    async def reconcile_invoices(self, filters: InvoiceFilters, cursor: str | None, limit: int) -> Page:
        return await self._relay(
            "reconcileinvoices", "/invoices/reconciliation", reconciliation_check, filters, cursor, limit
        )

    async def invoice_completeness(self, filters: InvoiceFilters, dataset: str) -> Verdict:
        # Only reached without a relayed envelope, which every upstream page has: ask for one row.
        pages = {"BillingPeriod": self.list_billing_periods, "InvoiceDetail": self.list_invoice_details}
        page = await pages.get(dataset, self.reconcile_invoices)(filters, None, 1)
        assert page.envelope is not None
        return Verdict(page.envelope.completeness, page.envelope.rule)

    async def completeness_verdict(self, filters: CostFilters) -> Verdict:
        page: Page = await self.list_cost_and_usage(filters, None, 1)
        assert page.envelope is not None
        return Verdict(page.envelope.completeness, page.envelope.rule)
