"""Writing one file's rows into the store: sorted insert, replacement of re-delivered scopes, period bookkeeping.

Shared by the strict and the normalising load, which differ only in the SQL that makes each value.
The unit of replacement is an invoice scope, (InvoiceIssuerName, BillingAccountId, BillingPeriodStart),
compared null-safely (a provider may leave InvoiceIssuerName null: its re-delivery must still replace).
Contract Commitment rows are replaced by ContractCommitmentId.
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb

from server.store.db import utc_now
from server.store.schema import CC_SORT_KEY, CC_TABLE, CU_SORT_KEY, CU_TABLE, quote
from tools.catalog import Catalog, Dataset

_SCOPE = ("InvoiceIssuerName", "BillingAccountId", "BillingPeriodStart")
# Null-safe scope key: a NUL byte cannot occur in a loaded text value's place by accident.
_SCOPE_KEY = "coalesce(InvoiceIssuerName, chr(0)), coalesce(BillingAccountId, chr(0)), BillingPeriodStart"


class NothingInserted(Exception):
    """The statement inserted no row (the caller decides what that means)."""


@dataclass(frozen=True, slots=True)
class Insert:
    catalog: Catalog
    rows: str  # the relation the rows come from
    values: list[str]  # one SQL value per catalog column, in catalog order
    custom: list[tuple[str, str]]  # (x_ column, SQL value)
    guard: str | None = None  # a condition true for a row that must make the statement fail
    where: str | None = None  # rows to skip (quarantined)


def table_of(catalog: Catalog) -> str:
    return CU_TABLE if catalog.dataset is Dataset.COST_AND_USAGE else CC_TABLE


def insert(cur: duckdb.DuckDBPyConnection, spec: Insert, load_id: int) -> int:
    """Insert the rows sorted by the table's key, numbered in that order; the count inserted."""
    catalog = spec.catalog
    table = table_of(catalog)
    for name, _ in spec.custom:
        cur.execute(f"ALTER TABLE {table} ADD COLUMN IF NOT EXISTS {quote(name)} VARCHAR")
        cur.execute("INSERT OR IGNORE INTO custom_columns VALUES (?, ?)", [catalog.dataset.value, name])
    names = [quote(c.id) for c in catalog.columns] + [quote(n) for n, _ in spec.custom]
    values = spec.values + [v for _, v in spec.custom]
    sort_key = CU_SORT_KEY if catalog.dataset is Dataset.COST_AND_USAGE else CC_SORT_KEY
    typed = {c.id: e for c, e in zip(catalog.columns, spec.values, strict=True)}
    order = ", ".join(f"{typed[k]} NULLS LAST" for k in sort_key) + ", _row"
    load = str(load_id)
    if spec.guard:
        load = f"CASE WHEN {spec.guard} THEN error('a row breaks a FOCUS rule') ELSE {load} END"
    where = f" WHERE {spec.where}" if spec.where else ""
    base_row = cur.execute(f"SELECT coalesce(max(_row_id), 0) FROM {table}").fetchone()
    assert base_row is not None
    # _row_id numbers the rows in the sort order: the streaming row_number() keeps its input's order.
    inserted = cur.execute(
        f"INSERT INTO {table} (_row_id, _load_id, {', '.join(names)}) "
        f"SELECT {int(base_row[0])} + row_number() OVER (), * FROM "
        f"(SELECT {load}, {', '.join(values)} FROM {spec.rows}{where} ORDER BY {order})"
    ).fetchone()
    count = int(inserted[0]) if inserted else 0
    if count == 0:
        raise NothingInserted
    return count


def replace_earlier(cur: duckdb.DuckDBPyConnection, catalog: Catalog, load_id: int, prior_loads: list[int]) -> int:
    """Delete what this load re-delivers from loads of earlier runs; refresh the periods. Rows deleted."""
    table = table_of(catalog)
    keep = ", ".join(str(i) for i in [*prior_loads, load_id])
    this = f"_load_id = {load_id}"
    if catalog.dataset is Dataset.COST_AND_USAGE:
        carried = f"SELECT DISTINCT {_SCOPE_KEY} FROM {table} WHERE {this}"
        deleted = cur.execute(
            f"DELETE FROM {table} WHERE ({_SCOPE_KEY}) IN ({carried}) AND _load_id NOT IN ({keep})"
        ).fetchone()
        # A clean re-delivery of a scope ends the quarantine an earlier run left on it.
        cur.execute(f"DELETE FROM quarantined_scopes WHERE ({_SCOPE_KEY}) IN ({carried}) AND load_id NOT IN ({keep})")
        # Periods wholly replaced by this delivery must not linger in the statistics.
        cur.execute(
            "DELETE FROM billing_periods WHERE (BillingPeriodStart, BillingPeriodEnd) NOT IN "
            f"(SELECT DISTINCT BillingPeriodStart, BillingPeriodEnd FROM {CU_TABLE})"
        )
        cur.execute(
            "INSERT OR REPLACE INTO billing_periods "
            f"SELECT DISTINCT BillingPeriodStart, BillingPeriodEnd, ? FROM {CU_TABLE} WHERE {this}",
            [utc_now()],
        )
    else:
        deleted = cur.execute(
            f"DELETE FROM {table} WHERE ContractCommitmentId IN "
            f"(SELECT ContractCommitmentId FROM {table} WHERE {this}) AND _load_id NOT IN ({keep})"
        ).fetchone()
    return int(deleted[0]) if deleted else 0


def quarantine_scopes(cur: duckdb.DuckDBPyConnection, load_id: int, rejected: str, rejected_rows: int) -> None:
    """Mark the scopes of quarantined rows (``rejected``: their scope columns, where readable) Partial.

    A rejected row whose scope cannot be read marks every scope this load carries.
    """
    cols = "InvoiceIssuerName, BillingAccountId, BillingPeriodStart, BillingPeriodEnd"
    unreadable = cur.execute(
        f"SELECT count(*) FROM {rejected} WHERE BillingPeriodStart IS NULL OR BillingPeriodEnd IS NULL"
    ).fetchone()
    readable = "BillingPeriodStart IS NOT NULL AND BillingPeriodEnd IS NOT NULL"
    sources = [f"SELECT DISTINCT {cols} FROM {rejected} WHERE {readable}"]
    if unreadable and unreadable[0]:
        sources.append(f"SELECT DISTINCT {cols} FROM {CU_TABLE} WHERE _load_id = {load_id}")
    cur.execute(
        f"INSERT INTO quarantined_scopes SELECT DISTINCT {cols}, {load_id}, {rejected_rows} FROM "
        f"({' UNION '.join(sources)})"
    )
