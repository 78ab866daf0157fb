"""``listbillingperiods`` and ``listinvoicedetails``: the FOCUS 1.4 Billing Period and Invoice Detail rows.

This module owns the two list tools and the filters every invoice tool shares (``reconcileinvoices`` in
``tools/reconciliation.py`` takes the same fields): each filter is a ``Condition`` on a column of the 1.4
datasets, so the SQL builders (``server/sources/invoice_sql.py``) and the upstream relay read one shape.
Rows are the 1.4 shapes, ``columns_at(dataset, "1.4")``; pages are keyset pages like the other lists.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, Field

from tools.catalog import Dataset, columns_at
from tools.context import ToolContext
from tools.envelope import (
    COMPLETENESS_HELP,
    COMPLETENESS_RULE_HELP,
    PAGE_SIZE_HELP,
    PAGE_TOKEN_HELP,
    AppliedScope,
    Truncation,
    list_page,
)
from tools.errors import InvalidArgument
from tools.filters import ToolInput
from tools.instants import DATE_HELP, format_instant, parse_instant
from tools.records import record_model
from tools.source import Completeness, CompletenessRule, Condition, InvoiceFilters, Scope
from tools.spec import MONEY, READ_ONLY, RestRoute, ToolSpec

BILLING_PERIOD = columns_at(Dataset.BILLING_PERIOD, "1.4")
INVOICE_DETAIL = columns_at(Dataset.INVOICE_DETAIL, "1.4")
BillingPeriodRecord = record_model("BillingPeriodRecord", Dataset.BILLING_PERIOD)
InvoiceDetailRecord = record_model("InvoiceDetailRecord", Dataset.INVOICE_DETAIL)

# caller's parameter -> (FOCUS column, operator); the instants compare BillingPeriodStart ([start, end)).
COLUMNS: dict[str, tuple[str, Literal["=", ">=", "<"]]] = {
    "invoiceIssuerName": ("InvoiceIssuerName", "="),
    "billingAccountId": ("BillingAccountId", "="),
    "invoiceId": ("InvoiceId", "="),
    "billingCurrency": ("BillingCurrency", "="),
    "chargeCategory": ("ChargeCategory", "="),
    "billingPeriodStatus": ("BillingPeriodStatus", "="),
    "billingPeriodStart": ("BillingPeriodStart", ">="),
    "billingPeriodEnd": ("BillingPeriodStart", "<"),
}
INSTANTS = frozenset({"billingPeriodStart", "billingPeriodEnd"})


def _instant(param: str) -> Any:
    def check(value: str | None) -> str | None:
        if value is not None:
            parse_instant(value, param)  # ValueError -> invalid_argument naming the field
        return value

    return AfterValidator(check)


def _one_of(param: str, allowed: tuple[str, ...]) -> Any:
    def check(value: str | None) -> str | None:
        if value is not None and value not in allowed:
            raise ValueError(f"{param} must be one of {', '.join(allowed)} (case-sensitive), not {value!r}")
        return value

    return AfterValidator(check)


Start = Annotated[
    str | None,
    _instant("billingPeriodStart"),
    Field(description=f"Rows whose BillingPeriodStart is at or after this instant (inclusive). {DATE_HELP}."),
]
End = Annotated[
    str | None,
    _instant("billingPeriodEnd"),
    Field(description=f"Rows whose BillingPeriodStart is before this instant (exclusive). {DATE_HELP}."),
]
Issuer = Annotated[str | None, Field(description="InvoiceIssuerName equals this (exact case), e.g. AWS.")]
Account = Annotated[str | None, Field(description="BillingAccountId equals this.")]
Invoice = Annotated[str | None, Field(description="InvoiceId equals this.")]
PageSize = Annotated[int | None, Field(ge=1, description=PAGE_SIZE_HELP)]
PageToken = Annotated[str | None, Field(description=PAGE_TOKEN_HELP)]


class InvoiceFilterFields(ToolInput):
    """The filter fields as ``InvoiceFilters``; subclasses declare which of ``COLUMNS`` they take."""

    def invoice_filters(self, scope: Scope, status: str | None = None) -> InvoiceFilters:
        conditions = []
        for param, (column, op) in COLUMNS.items():
            value = getattr(self, param, None)
            if value is not None:
                conditions.append(
                    Condition(param, column, op, parse_instant(value, param) if param in INSTANTS else value)
                )
        filters = InvoiceFilters(tuple(conditions), scope, status)
        given = {c.param: c.value for c in conditions}
        start, end = given.get("billingPeriodStart"), given.get("billingPeriodEnd")
        if isinstance(start, datetime) and isinstance(end, datetime) and end <= start:
            raise InvalidArgument(
                "billingPeriodEnd must be later than billingPeriodStart (start inclusive, end exclusive)",
                {"field": "billingPeriodEnd"},
            )
        return filters


def query_params(filters: InvoiceFilters) -> list[tuple[str, str]]:
    """The filters as this API's query parameters (what upstream mode sends, what a receipt shows)."""
    pairs = []
    for c in filters.conditions:
        pairs.append((c.param, (format_instant(c.value) or "") if isinstance(c.value, datetime) else str(c.value)))
    return pairs + ([("status", filters.status)] if filters.status else [])


class ListBillingPeriodsInput(InvoiceFilterFields):
    invoiceIssuerName: Issuer = None
    billingPeriodStart: Start = None
    billingPeriodEnd: End = None
    billingPeriodStatus: Annotated[
        str | None,
        _one_of("billingPeriodStatus", ("Open", "Closed")),
        Field(description="BillingPeriodStatus equals this: Open or Closed."),
    ] = None
    pageSize: PageSize = None
    pageToken: PageToken = None


class ListInvoiceDetailsInput(InvoiceFilterFields):
    billingAccountId: Account = None
    invoiceId: Invoice = None
    invoiceIssuerName: Issuer = None
    billingPeriodStart: Start = None
    billingPeriodEnd: End = None
    chargeCategory: Annotated[
        str | None,
        _one_of("chargeCategory", INVOICE_DETAIL["ChargeCategory"].allowed_values or ()),
        Field(description="ChargeCategory equals this: one of Usage, Purchase, Tax, Credit, Adjustment."),
    ] = None
    pageSize: PageSize = None
    pageToken: PageToken = None


class _ListOutput(BaseModel):
    data: list[Any]  # narrowed by each list; declared first so that data leads the answer, as in the other lists
    nextPageToken: str | None = Field(description="null on the last page.")
    totalRecords: int = Field(description="Rows matching the filters, across all pages.")
    dataLastUpdated: str | None = Field(description="When the data last changed (UTC).")
    dataCompleteness: Completeness = Field(description=COMPLETENESS_HELP)
    dataCompletenessRule: CompletenessRule | None = Field(None, description=COMPLETENESS_RULE_HELP)
    truncated: Truncation | None = None
    appliedScope: AppliedScope | None = None


class ListBillingPeriodsOutput(_ListOutput):
    data: list[BillingPeriodRecord]  # type: ignore[valid-type]


class ListInvoiceDetailsOutput(_ListOutput):
    data: list[InvoiceDetailRecord]  # type: ignore[valid-type]


async def list_billing_periods(args: ListBillingPeriodsInput, ctx: ToolContext) -> ListBillingPeriodsOutput:
    filters = args.invoice_filters(ctx.scope)
    envelope = await list_page(
        ctx,
        tool="listbillingperiods",
        walk=filters.as_params(),
        page_token=args.pageToken,
        requested_size=args.pageSize,
        fetch=lambda cursor, size: ctx.source.list_billing_periods(filters, cursor, size),
        completeness=lambda: ctx.source.invoice_completeness(filters, Dataset.BILLING_PERIOD.value),
    )
    return ListBillingPeriodsOutput.model_construct(**envelope)


async def list_invoice_details(args: ListInvoiceDetailsInput, ctx: ToolContext) -> ListInvoiceDetailsOutput:
    filters = args.invoice_filters(ctx.scope)
    envelope = await list_page(
        ctx,
        tool="listinvoicedetails",
        walk=filters.as_params(),
        page_token=args.pageToken,
        requested_size=args.pageSize,
        fetch=lambda cursor, size: ctx.source.list_invoice_details(filters, cursor, size),
        completeness=lambda: ctx.source.invoice_completeness(filters, Dataset.INVOICE_DETAIL.value),
    )
    return ListInvoiceDetailsOutput.model_construct(**envelope)


SCOPE_NOTE = (
    "A token limited to some accounts sees Invoice Detail rows of its billing accounts only (a token limited "
    "to sub accounts sees none: invoice lines are per billing account), and Billing Period rows only of the "
    "invoice issuers whose Cost and Usage rows it can see."
)

LIST_BILLING_PERIODS = ToolSpec(
    name="listbillingperiods",
    title="List FOCUS billing periods",
    description=(
        "List FOCUS 1.4 Billing Period rows (6 columns): per InvoiceIssuerName and billing period "
        "(BillingPeriodStart inclusive, BillingPeriodEnd exclusive), BillingPeriodStatus Open or Closed (a "
        "Closed period is final: its invoice will not change), BillingPeriodCreated and "
        "BillingPeriodLastUpdated. Filters: invoiceIssuerName, billingPeriodStart / billingPeriodEnd (on "
        "BillingPeriodStart), billingPeriodStatus; exact and case-sensitive. Paginated like listcostandusage. "
        + SCOPE_NOTE
    ),
    input_model=ListBillingPeriodsInput,
    output_model=ListBillingPeriodsOutput,
    handler=list_billing_periods,
    hints=READ_ONLY,
    rest=RestRoute("GET", "/billing-periods"),
)
LIST_INVOICE_DETAILS = ToolSpec(
    name="listinvoicedetails",
    title="List FOCUS invoice details",
    description=(
        "List FOCUS 1.4 Invoice Detail rows (22 columns): the lines of the invoices an invoice issuer sent, "
        "each with InvoiceId, BilledCost in BillingCurrency, ChargeCategory, InvoiceIssueStatus (Open, Issued, "
        "Voided), payment terms and dates. Filters: billingAccountId, invoiceId, invoiceIssuerName, "
        "billingPeriodStart / billingPeriodEnd (on BillingPeriodStart), chargeCategory; exact and "
        "case-sensitive. " + MONEY + " Paginated like listcostandusage. To compare invoices with the Cost and "
        "Usage rows behind them use reconcileinvoices. " + SCOPE_NOTE
    ),
    input_model=ListInvoiceDetailsInput,
    output_model=ListInvoiceDetailsOutput,
    handler=list_invoice_details,
    hints=READ_ONLY,
    rest=RestRoute("GET", "/invoice-details"),
)
