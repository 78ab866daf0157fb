"""``reconcileinvoices``: each invoice's Invoice Detail total beside the Cost and Usage rows billed on it.

This module owns the judgement (pure, exact ``Decimal``; sources call ``reconcile`` on their sums) and the
tool. Per (InvoiceIssuerName, InvoiceId, BillingCurrency): the invoiced BilledCost (Invoice Detail), the sum
of Cost and Usage BilledCost with the same InvoiceIssuerName and InvoiceId, the difference, and whether it
is within FOCUS 1.4's rounding variance tolerance (digest section 2d):

    tolerance = MAX(100 x Subunit, SQRT(Rows) x 0.5 x Subunit)

- Subunit: the currency's ISO 4217 minor unit, 10^-digits: ``MINOR_DIGITS`` below lists the currencies
  whose minor unit is not 2 digits (JPY 0 digits: 1; BHD 3: 0.001); every other code has 0.01 (USD, EUR).
- Rows: the invoice's Cost and Usage rows in that currency, Tax rows not counted.
- Not applied to Tax lines: the Tax part must match exactly; the tolerance covers the non-Tax part.
- Not applied to Open invoices (an Invoice Detail line with InvoiceIssueStatus Open): status Open, not judged.
- The test is exact: |d| <= 100 x Subunit, or d^2 <= Rows x (0.5 x Subunit)^2 (no square root is rounded);
  the ``tolerance`` shown is the square root rounded down at 18 decimal places.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_DOWN, Decimal, localcontext
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, Field

from tools.context import ToolContext
from tools.envelope import (
    COMPLETENESS_HELP,
    COMPLETENESS_RULE_HELP,
    AppliedScope,
    Truncation,
    list_page,
)
from tools.errors import Forbidden
from tools.instants import format_instant
from tools.invoices import Account, End, Invoice, InvoiceFilterFields, Issuer, PageSize, PageToken, Start
from tools.source import Completeness, CompletenessRule, Row
from tools.spec import READ_ONLY, RestRoute, ToolSpec

# ISO 4217 currencies whose minor unit is not two digits (the rest: 2, i.e. a subunit of 0.01).
MINOR_DIGITS = {
    **dict.fromkeys(
        ("BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "PYG", "RWF", "UGX", "UYI", "VND", "VUV", "XAF",
         "XOF", "XPF"),
        0,
    ),
    **dict.fromkeys(("BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"), 3),
    **dict.fromkeys(("CLF", "UYW"), 4),
}  # fmt: skip
Status = Literal["Matched", "WithinTolerance", "Mismatch", "Open", "InvoiceDetailOnly", "CostAndUsageOnly"]
STATUSES: tuple[str, ...] = Status.__args__  # type: ignore[attr-defined]
_SCALE = Decimal(1).scaleb(-18)


def subunit(currency: str | None) -> Decimal:
    return Decimal(1).scaleb(-MINOR_DIGITS.get(currency or "", 2))


def within_tolerance(difference: Decimal, rows: int, unit: Decimal) -> bool:
    """|difference| <= MAX(100 x unit, SQRT(rows) x 0.5 x unit), decided without rounding a square root."""
    with localcontext() as exact:
        exact.prec = 100  # squares of 38-digit sums stay exact
        size = abs(difference)
        return size <= 100 * unit or size * size <= rows * (unit / 2) ** 2


def tolerance(rows: int, unit: Decimal) -> Decimal:
    with localcontext() as ctx:
        ctx.prec = 60
        root = Decimal(rows).sqrt() * Decimal("0.5") * unit
        return max(100 * unit, root).quantize(_SCALE, rounding=ROUND_DOWN).normalize()


@dataclass(frozen=True, slots=True)
class Sums:
    """One side's sums for one invoice and currency (as the SQL returns them)."""

    billed: Decimal
    tax: Decimal
    rows: int
    tolerance_rows: int
    accounts: list[str]
    start: datetime | None
    end: datetime | None
    open: bool = False
    voided: bool = False
    corrections: int = 0
    corrections_billed: Decimal = Decimal(0)


Key = tuple[str | None, str | None, str | None]


def reconcile(invoiced: dict[Key, Sums], costs: dict[Key, Sums], statuses: dict[tuple[Any, Any], str]) -> list[Row]:
    """Every invoice of either side, judged, ordered by billing period, issuer, invoice and currency.

    ``statuses`` holds BillingPeriodStatus by (InvoiceIssuerName, BillingPeriodStart)."""
    rows = [_judge(key, invoiced.get(key), costs.get(key), statuses) for key in invoiced.keys() | costs.keys()]
    return sorted(rows, key=lambda r: tuple("" if r[k] is None else r[k] for k in _ORDER))


_ORDER = ("billingPeriodStart", "InvoiceIssuerName", "InvoiceId", "BillingCurrency")


def _judge(key: Key, inv: Sums | None, cu: Sums | None, statuses: dict[tuple[Any, Any], str]) -> Row:
    issuer, invoice_id, currency = key
    unit = subunit(currency)
    either = inv or cu
    assert either is not None
    start = min(s.start for s in (inv, cu) if s is not None and s.start is not None) if either.start else None
    end = max(s.end for s in (inv, cu) if s is not None and s.end is not None) if either.end else None
    accounts = sorted({a for s in (inv, cu) if s is not None for a in s.accounts if a is not None})
    difference = tax_difference = limit = within = None
    rows = cu.tolerance_rows if cu else 0
    if inv is None:
        status: Status = "CostAndUsageOnly"
    elif cu is None:
        status = "InvoiceDetailOnly"
    else:
        difference, tax_difference = inv.billed - cu.billed, inv.tax - cu.tax
        if inv.open:
            status = "Open"
        else:
            limit = tolerance(rows, unit)
            within = tax_difference == 0 and within_tolerance(difference - tax_difference, rows, unit)
            status = "Matched" if difference == 0 else "WithinTolerance" if within else "Mismatch"
    return {
        "InvoiceIssuerName": issuer,
        "InvoiceId": invoice_id,
        "BillingCurrency": currency,
        "billingAccountIds": accounts,
        "billingPeriodStart": format_instant(start),
        "billingPeriodEnd": format_instant(end),
        "billingPeriodStatus": statuses.get((issuer, start)),
        "invoiceIssueStatus": None if inv is None else "Open" if inv.open else "Voided" if inv.voided else "Issued",
        "invoicedBilledCost": inv.billed if inv else None,
        "costAndUsageBilledCost": cu.billed if cu else None,
        "difference": difference,
        "invoicedTax": inv.tax if inv else None,
        "costAndUsageTax": cu.tax if cu else None,
        "taxDifference": tax_difference,
        "invoiceDetailRows": inv.rows if inv else 0,
        "costAndUsageRows": cu.rows if cu else 0,
        "toleranceRows": rows,
        "subunit": unit,
        "tolerance": limit,
        "withinTolerance": within,
        "closedPeriodCorrectionRows": cu.corrections if cu else 0,
        "closedPeriodCorrectionBilledCost": cu.corrections_billed if cu else Decimal(0),
        "status": status,
    }


class ReconcileInvoicesInput(InvoiceFilterFields):
    invoiceIssuerName: Issuer = None
    invoiceId: Invoice = None
    billingAccountId: Account = None
    billingCurrency: Annotated[str | None, Field(description="BillingCurrency equals this ISO 4217 code.")] = None
    billingPeriodStart: Start = None
    billingPeriodEnd: End = None
    status: Annotated[
        str | None,
        AfterValidator(lambda v: _status(v)),
        Field(description="Only invoices with this status: " + ", ".join(STATUSES) + "."),
    ] = None
    pageSize: PageSize = None
    pageToken: PageToken = None


def _status(value: str | None) -> str | None:
    if value is not None and value not in STATUSES:
        raise ValueError(f"status must be one of {', '.join(STATUSES)} (case-sensitive), not {value!r}")
    return value


class ReconciliationRow(BaseModel):
    InvoiceIssuerName: str | None
    InvoiceId: str | None = Field(description="null: Cost and Usage rows that name no invoice.")
    BillingCurrency: str | None
    billingAccountIds: list[str]
    billingPeriodStart: str | None
    billingPeriodEnd: str | None
    billingPeriodStatus: str | None = Field(description="The issuer's Billing Period row: Open, Closed or null.")
    invoiceIssueStatus: str | None = Field(description="Open if a line is Open, Voided if all are, else Issued.")
    invoicedBilledCost: Decimal | None = Field(description="Sum of the invoice's Invoice Detail BilledCost.")
    costAndUsageBilledCost: Decimal | None = Field(description="Sum of BilledCost of its Cost and Usage rows.")
    difference: Decimal | None = Field(description="invoicedBilledCost - costAndUsageBilledCost.")
    invoicedTax: Decimal | None
    costAndUsageTax: Decimal | None
    taxDifference: Decimal | None = Field(description="The Tax part of difference; must be 0 (no tolerance).")
    invoiceDetailRows: int
    costAndUsageRows: int
    toleranceRows: int = Field(description="Rows of the tolerance: Cost and Usage rows, Tax not counted.")
    subunit: Decimal = Field(description="The currency's ISO 4217 minor unit (USD 0.01, JPY 1).")
    tolerance: Decimal | None = Field(description="MAX(100 x subunit, SQRT(toleranceRows) x 0.5 x subunit).")
    withinTolerance: bool | None = Field(description="null when not judged (Open, or one side only).")
    closedPeriodCorrectionRows: int = Field(description="ChargeClass Correction rows in a Closed billing period.")
    closedPeriodCorrectionBilledCost: Decimal
    status: Status


class ReconcileInvoicesOutput(BaseModel):
    data: list[ReconciliationRow]
    nextPageToken: str | None = Field(description="null on the last page.")
    totalRecords: int = Field(description="Invoices (per currency) matching the filters, across all pages.")
    dataLastUpdated: str | None
    dataCompleteness: Completeness = Field(description=COMPLETENESS_HELP)
    dataCompletenessRule: CompletenessRule | None = Field(None, description=COMPLETENESS_RULE_HELP)
    truncated: Truncation | None = None
    appliedScope: AppliedScope | None = None


async def reconcile_invoices(args: ReconcileInvoicesInput, ctx: ToolContext) -> ReconcileInvoicesOutput:
    if ctx.scope.sub_account_ids is not None:
        raise Forbidden(
            "this token is limited to sub accounts, and invoices are per billing account (their totals would "
            "show other sub accounts' spend); use a token scoped by billingAccountIds",
            {"scope": ctx.scope.describe()},
        )
    filters = args.invoice_filters(ctx.scope, args.status)
    envelope = await list_page(
        ctx,
        tool="reconcileinvoices",
        walk=filters.as_params(),
        page_token=args.pageToken,
        requested_size=args.pageSize,
        fetch=lambda cursor, size: ctx.source.reconcile_invoices(filters, cursor, size),
        completeness=lambda: ctx.source.invoice_completeness(filters, "Reconciliation"),
    )
    return ReconcileInvoicesOutput.model_construct(**envelope)


RECONCILE = ToolSpec(
    name="reconcileinvoices",
    title="Reconcile invoices with cost and usage",
    description=(
        "FOCUS 1.4 Invoice Reconciliation: one row per (InvoiceIssuerName, InvoiceId, BillingCurrency) with the "
        "invoiced BilledCost (sum of the Invoice Detail lines) beside the sum of Cost and Usage BilledCost with the "
        "same InvoiceIssuerName and InvoiceId, their difference (invoiced minus Cost and Usage), exact decimals, "
        "never summed across currencies. status: Matched (difference 0), WithinTolerance, Mismatch, Open (an "
        "Invoice Detail line is InvoiceIssueStatus Open: not judged), InvoiceDetailOnly or CostAndUsageOnly "
        "(present on one side only). Rounding Variance Tolerance (FOCUS 1.4): MAX(100 x Subunit, SQRT(Rows) x "
        "0.5 x Subunit), where Subunit is the currency's ISO 4217 minor unit (0.01 for USD, EUR and every "
        "two-digit currency; 1 for JPY, KRW and other zero-digit ones; 0.001 for BHD, KWD and other three-digit "
        "ones) and Rows the invoice's Cost and Usage rows in that currency, Tax rows not counted; it is not "
        "applied to Tax lines (taxDifference must be 0) nor to Open invoices. closedPeriodCorrectionRows flags "
        "Cost and Usage rows with ChargeClass Correction whose billing period the issuer's Billing Period rows "
        "call Closed. Filters: invoiceIssuerName, invoiceId, billingAccountId, billingCurrency, "
        "billingPeriodStart / billingPeriodEnd (on BillingPeriodStart), status. A token limited to some billing "
        "accounts reconciles only their invoices; one limited to sub accounts is refused."
    ),
    input_model=ReconcileInvoicesInput,
    output_model=ReconcileInvoicesOutput,
    handler=reconcile_invoices,
    hints=READ_ONLY,
    rest=RestRoute("GET", "/invoices/reconciliation"),
)
