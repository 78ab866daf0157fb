"""Writing one file's rows into the store: sorted insert, replacement of re-delivered scopes, period bookkeeping.

Shared by the strict and the normalising load, which differ only in the SQL that makes each value.
The unit of replacement, per dataset (keys compared null-safely: a provider may leave InvoiceIssuerName
null, and its re-delivery must still replace):

- Cost and Usage: an invoice scope, (InvoiceIssuerName, BillingAccountId, BillingPeriodStart);
- Contract Commitment: a ContractCommitmentId;
- Billing Period: (InvoiceIssuerName, BillingPeriodStart), the dataset's natural key;
- Invoice Detail: an invoice, (InvoiceIssuerName, InvoiceId): a re-issued invoice replaces all its lines,
  so a line it no longer has does not linger.

Within one delivery a Billing Period key or an (InvoiceIssuerName, InvoiceDetailId) appears once.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import duckdb

from server.store.db import utc_now
from server.store.headers import Refused
from server.store.load_report import Problem
from server.store.schema import CU_TABLE, SORT_KEYS, TABLES, quote
from tools.catalog import Catalog, Dataset

# Null-safe scope key: a NUL byte cannot occur in a loaded text value's place by accident.
_SCOPE_KEY = "coalesce(InvoiceIssuerName, chr(0)), coalesce(BillingAccountId, chr(0)), BillingPeriodStart"
_REPLACED_BY = {
    Dataset.CONTRACT_COMMITMENT: "ContractCommitmentId",
    Dataset.BILLING_PERIOD: "coalesce(InvoiceIssuerName, chr(0)), BillingPeriodStart",
    Dataset.INVOICE_DETAIL: "coalesce(InvoiceIssuerName, chr(0)), InvoiceId",
}
_UNIQUE = {
    Dataset.BILLING_PERIOD: ("InvoiceIssuerName", "BillingPeriodStart"),
    Dataset.INVOICE_DETAIL: ("InvoiceIssuerName", "InvoiceDetailId"),
}


class Delivery(list[int]):
    """The loads of one delivery so far, and ``protected``: loads of other deliveries its rows must not replace.

    A cloud sync (``server.cloud.sync``) loads each delivery unit (an Azure subscription's month, an AWS
    export's billing period) as its own delivery and replaces a unit's rows itself; two units may carry the
    same invoice scope (two subscriptions of one billing account), so neither may delete the other's rows.
    """

    protected: tuple[int, ...] = ()


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
    return TABLES[catalog.dataset]


def derived(dataset: Dataset, column_id: str, present: set[str], value: Callable[[str], str]) -> str | None:
    """SQL for a Cost and Usage column a file lacks that its other columns determine (None: it stays null).

    ``value(c)`` is the SQL of present column ``c``. The rules (the loader's docstring says why):
    - before 1.3: ServiceProviderName = ProviderName; HostProviderName = ProviderName when PublisherName
      is the provider itself (equal, or its leading words);
    - 1.4 (ProviderName and PublisherName removed): ProviderName = HostProviderName, or ServiceProviderName
      where no host is named; PublisherName = ServiceProviderName (the spec's migration table, read back).
    """
    if dataset is not Dataset.COST_AND_USAGE:
        return None
    if column_id == "ServiceProviderName" and "ProviderName" in present:
        return value("ProviderName")
    if column_id == "HostProviderName" and {"ProviderName", "PublisherName"} <= present:
        provider, publisher = value("ProviderName"), value("PublisherName")
        return f"CASE WHEN {publisher} = {provider} OR starts_with({provider}, {publisher} || ' ') THEN {provider} END"
    if column_id == "ProviderName" and "ServiceProviderName" in present and "PublisherName" not in present:
        host = value("HostProviderName") if "HostProviderName" in present else "NULL"
        return f"coalesce({host}, {value('ServiceProviderName')})"
    if column_id == "PublisherName" and "ServiceProviderName" in present and "ProviderName" not in present:
        return value("ServiceProviderName")
    return None


def insert(cur: duckdb.DuckDBPyConnection, spec: Insert, load_id: int) -> int:
    """Insert the rows sorted by the table's key, numbered in that order; the count inserted."""
    catalog = spec.catalog
    table = table_of(catalog)
    for name, _ in spec.custom:
        cur.execute(f"ALTER TABLE {table} ADD COLUMN IF NOT EXISTS {quote(name)} VARCHAR")
        cur.execute("INSERT OR IGNORE INTO custom_columns VALUES (?, ?)", [catalog.dataset.value, name])
    names = [quote(c.id) for c in catalog.columns] + [quote(n) for n, _ in spec.custom]
    values = spec.values + [v for _, v in spec.custom]
    sort_key = SORT_KEYS[catalog.dataset]
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
    protected = prior_loads.protected if isinstance(prior_loads, Delivery) else ()
    delivery = ", ".join(str(i) for i in [*prior_loads, load_id])
    keep = ", ".join(str(i) for i in [*prior_loads, load_id, *protected])
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
        _refuse_repeated_keys(cur, catalog.dataset, table, delivery)
        key = _REPLACED_BY[catalog.dataset]
        deleted = cur.execute(
            f"DELETE FROM {table} WHERE ({key}) IN (SELECT DISTINCT {key} FROM {table} WHERE {this}) "
            f"AND _load_id NOT IN ({keep})"
        ).fetchone()
    return int(deleted[0]) if deleted else 0


def _refuse_repeated_keys(cur: duckdb.DuckDBPyConnection, dataset: Dataset, table: str, delivery: str) -> None:
    """A natural key twice in one delivery would count a period or an invoice line twice: refused."""
    key = _UNIQUE.get(dataset)
    if key is None:
        return
    cols = ", ".join(quote(k) for k in key)
    repeated = cur.execute(
        f"SELECT {cols}, count(*) FROM {table} WHERE _load_id IN ({delivery}) GROUP BY ALL HAVING count(*) > 1 "
        f"ORDER BY ALL LIMIT 5"
    ).fetchall()
    if repeated:
        total = cur.execute(
            f"SELECT count(*) FROM (SELECT 1 FROM {table} WHERE _load_id IN ({delivery}) GROUP BY {cols} "
            "HAVING count(*) > 1)"
        ).fetchone()
        raise Refused(
            Problem(
                "duplicate_key",
                f"{dataset.label} rows must be unique by ({', '.join(key)}) within a delivery; these repeat",
                count=int(total[0]) if total else len(repeated),
                examples=[{k: str(v) for k, v in zip([*key, "times"], r, strict=True)} for r in repeated],
            )
        )


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
