"""The demo's FOCUS 1.4 Billing Period and Invoice Detail files, derived from its Cost and Usage files.

This module owns the demo's invoices. They are computed from the generated Cost and Usage Parquet files
(after ``write_files``; nothing of the Cost and Usage or Contract Commitment generators changes), so they
agree with them by construction, except where they are meant not to:

- one Billing Period row per invoice issuer and month: every month Closed but the last, which is Open;
- one Invoice Detail line per invoice (InvoiceIssuerName, InvoiceId, BillingAccountId, BillingCurrency,
  billing period) and ChargeCategory with a non-zero BilledCost, the sum of its Cost and Usage rows;
  lines of the Open month are InvoiceIssueStatus Open (no issue or due date), the others Issued;
- one deliberate small mismatch beyond the rounding tolerance: the Usage line of the first billing
  account's invoice of the second month is ``MISMATCH`` higher than its Cost and Usage rows, so
  ``reconcileinvoices`` shows a Mismatch on a fresh install; and one rounding variance within it
  (``WITHIN``, the same account's invoice of the third month).

Deterministic: no clock, no randomness; the same Cost and Usage files give the same invoices.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import duckdb

from server.store.schema import literal

# Beyond MAX(100 x 0.01, SQRT(Rows) x 0.005) for any invoice of up to 300 000 rows (2.75 > 1.00).
MISMATCH = Decimal("2.75")
WITHIN = Decimal("0.004")  # below 100 x 0.01: what rounding each line to the cent can add up to
_TERMS = 30  # days: PaymentTerms "Net 30"


def _sources(paths: list[Path]) -> str:
    return "[" + ", ".join(literal(str(p)) for p in paths) + "]"


def billing_period_sql(paths: list[Path]) -> str:
    return f"""
    WITH periods AS (SELECT DISTINCT InvoiceIssuerName, BillingPeriodStart, BillingPeriodEnd
                     FROM read_parquet({_sources(paths)})),
         last AS (SELECT max(BillingPeriodStart) AS start FROM periods)
    SELECT BillingPeriodStart AS BillingPeriodCreated, BillingPeriodEnd,
           CASE WHEN BillingPeriodStart = last.start THEN BillingPeriodStart + INTERVAL 20 DAY
                ELSE BillingPeriodEnd + INTERVAL 2 DAY END AS BillingPeriodLastUpdated,
           BillingPeriodStart,
           CASE WHEN BillingPeriodStart = last.start THEN 'Open' ELSE 'Closed' END AS BillingPeriodStatus,
           InvoiceIssuerName
    FROM periods, last ORDER BY BillingPeriodStart, InvoiceIssuerName"""


def invoice_detail_sql(paths: list[Path]) -> str:
    return f"""
    WITH lines AS (
      SELECT InvoiceIssuerName, InvoiceId, BillingAccountId, BillingCurrency, BillingPeriodStart, BillingPeriodEnd,
             ChargeCategory, sum(BilledCost) AS BilledCost
      FROM read_parquet({_sources(paths)}) GROUP BY ALL),
    months AS (SELECT DISTINCT BillingPeriodStart FROM lines),
    marks AS (SELECT max(BillingPeriodStart) AS open_start,
                     (SELECT BillingPeriodStart FROM months ORDER BY 1 LIMIT 1 OFFSET 1) AS mismatch_start,
                     (SELECT BillingPeriodStart FROM months ORDER BY 1 LIMIT 1 OFFSET 2) AS within_start
              FROM months),
    target AS (SELECT min(BillingAccountId) AS account FROM lines WHERE ChargeCategory = 'Usage')
    SELECT
      CAST(BilledCost + CASE WHEN BillingAccountId <> target.account OR ChargeCategory <> 'Usage' THEN 0
                             WHEN BillingPeriodStart = mismatch_start THEN {MISMATCH}
                             WHEN BillingPeriodStart = within_start THEN {WITHIN} ELSE 0 END
           AS DECIMAL(38, 18)) AS BilledCost,
      BillingAccountId, BillingCurrency, BillingPeriodEnd, BillingPeriodStart, ChargeCategory,
      BillingPeriodEnd AS InvoiceDetailCreated,
      ChargeCategory || ' charges of invoice ' || InvoiceId AS InvoiceDetailDescription,
      json_object('x_GroupedBy', 'InvoiceId,BillingAccountId,BillingCurrency,ChargeCategory') AS InvoiceDetailGrain,
      'demo-' || InvoiceId || '-' || BillingCurrency || '-' || lower(ChargeCategory) AS InvoiceDetailId,
      CASE WHEN open THEN BillingPeriodStart + INTERVAL 20 DAY ELSE BillingPeriodEnd + INTERVAL 2 DAY END
        AS InvoiceDetailLastUpdated,
      InvoiceId,
      CASE WHEN open THEN NULL ELSE BillingPeriodEnd + INTERVAL 2 DAY END AS InvoiceIssueDate,
      CASE WHEN open THEN 'Open' ELSE 'Issued' END AS InvoiceIssueStatus,
      InvoiceIssuerName,
      CASE WHEN open THEN NULL ELSE BillingPeriodEnd + INTERVAL {2 + _TERMS} DAY END AS PaymentDueDate,
      'Net {_TERMS}' AS PaymentTerms,
      InvoiceId AS ReferenceInvoiceId
    FROM (SELECT *, BillingPeriodStart = open_start AS open FROM lines, marks), target
    WHERE BilledCost <> 0
    ORDER BY BillingPeriodStart, InvoiceIssuerName, InvoiceId, ChargeCategory"""


def write_invoice_files(cost_and_usage: list[Path], folder: Path) -> list[Path]:
    """Write the Billing Period and Invoice Detail Parquet files for these Cost and Usage files."""
    con = duckdb.connect()
    try:
        con.execute("SET enable_progress_bar = false")
        paths = [folder / "billing_period.parquet", folder / "invoice_detail.parquet"]
        for query, path in zip((billing_period_sql, invoice_detail_sql), paths, strict=True):
            con.execute(f"COPY ({query(cost_and_usage)}) TO {literal(str(path))} (FORMAT parquet, COMPRESSION zstd)")
        return paths
    finally:
        con.close()
