"""The DuckDB schema of the embedded store: FOCUS types mapped to exact DuckDB types, and the DDL.

Money, prices and quantities are ``DECIMAL(38, 18)``: the samples carry up to 14 decimal places and
``DECIMAL(38, 10)`` would round them silently; 18 places still leave 20 integer digits for sums.
Date/times are naive ``TIMESTAMP`` values that always mean UTC. JSON columns stay ``JSON``.
"""

from __future__ import annotations

from tools.catalog import Catalog, Dataset, DataType, columns_at, stored

DECIMAL_SCALE = 18
DECIMAL_TYPE = f"DECIMAL(38,{DECIMAL_SCALE})"
FOCUS_TIMESTAMP_FORMAT = "%Y-%m-%dT%H:%M:%SZ"

DUCKDB_TYPES = {
    DataType.STRING: "VARCHAR",
    DataType.DECIMAL: DECIMAL_TYPE,
    DataType.DATETIME: "TIMESTAMP",
    DataType.JSON: "JSON",
}

CU_TABLE = "cost_and_usage"
CC_TABLE = "contract_commitment"
BP_TABLE = "billing_period"  # the FOCUS 1.4 dataset (``billing_periods`` is the store's own period list)
ID_TABLE = "invoice_detail"
TABLES = {
    Dataset.COST_AND_USAGE: CU_TABLE,
    Dataset.CONTRACT_COMMITMENT: CC_TABLE,
    Dataset.BILLING_PERIOD: BP_TABLE,
    Dataset.INVOICE_DETAIL: ID_TABLE,
}
# The physical order of Cost and Usage rows (and so of ``_row_id``): zone maps then prune by billing
# period and service, and keyset pages on ``_row_id`` read few row groups (shared/notes/engine-duckdb.md).
CU_SORT_KEY = ("BillingPeriodStart", "ServiceName", "ChargePeriodStart")
CC_SORT_KEY = ("ContractCommitmentPeriodStart", "ContractCommitmentId")
SORT_KEYS = {
    Dataset.COST_AND_USAGE: CU_SORT_KEY,
    Dataset.CONTRACT_COMMITMENT: CC_SORT_KEY,
    Dataset.BILLING_PERIOD: ("BillingPeriodStart", "InvoiceIssuerName"),
    Dataset.INVOICE_DETAIL: ("BillingPeriodStart", "InvoiceIssuerName", "InvoiceId", "InvoiceDetailId"),
}


def literal(text: str) -> str:
    """A SQL string literal, for constant text and file paths spliced into a statement (never caller values)."""
    return "'" + text.replace("'", "''") + "'"


def quote(identifier: str) -> str:
    """Quote an identifier for DuckDB; callers only pass catalog-whitelisted names or ``x_`` columns."""
    return '"' + identifier.replace('"', '""') + '"'


def _columns_ddl(catalog: Catalog) -> str:
    return ",\n  ".join(f"{quote(c.id)} {DUCKDB_TYPES[c.data_type]}" for c in catalog.columns)


def _dataset_ddl(dataset: Dataset) -> list[str]:
    """A dataset's table as its first FOCUS version defined it, then the columns later versions added.

    A store made before a version existed gains that version's columns the same way as a new one.
    """
    layout = stored(dataset)
    first = columns_at(dataset, "1.3" if dataset in (Dataset.COST_AND_USAGE, Dataset.CONTRACT_COMMITMENT) else "1.4")
    table = TABLES[dataset]
    create = f"""CREATE TABLE IF NOT EXISTS {table} (
  _row_id BIGINT NOT NULL,
  _load_id INTEGER NOT NULL,
  {_columns_ddl(Catalog(dataset, tuple(layout[c] for c in first.ids)))}
)"""
    added = [
        f"ALTER TABLE {table} ADD COLUMN IF NOT EXISTS {quote(c.id)} {DUCKDB_TYPES[c.data_type]}"
        for c in layout.columns
        if c.id not in first
    ]
    return [create, *added]


def ddl() -> list[str]:
    return [
        *(statement for dataset in Dataset for statement in _dataset_ddl(dataset)),
        """CREATE TABLE IF NOT EXISTS loads (
  load_id INTEGER PRIMARY KEY,
  delivery_id VARCHAR NOT NULL,
  dataset VARCHAR NOT NULL,
  source VARCHAR NOT NULL,
  sha256 VARCHAR NOT NULL,
  focus_version VARCHAR NOT NULL,
  rows BIGINT NOT NULL,
  replaced_rows BIGINT NOT NULL,
  loaded_at TIMESTAMP NOT NULL,
  demo BOOLEAN NOT NULL
)""",
        # What a load normalised and quarantined (JSON), for the load history; added after the first release.
        "ALTER TABLE loads ADD COLUMN IF NOT EXISTS report VARCHAR",
        # Invoice scopes a quarantining load left incomplete: their periods read Partial until re-delivered.
        """CREATE TABLE IF NOT EXISTS quarantined_scopes (
  InvoiceIssuerName VARCHAR,
  BillingAccountId VARCHAR,
  BillingPeriodStart TIMESTAMP NOT NULL,
  BillingPeriodEnd TIMESTAMP NOT NULL,
  load_id INTEGER NOT NULL,
  rejected_rows BIGINT NOT NULL
)""",
        # One row per billing period held, for dataCompleteness and schema statistics.
        """CREATE TABLE IF NOT EXISTS billing_periods (
  BillingPeriodStart TIMESTAMP NOT NULL,
  BillingPeriodEnd TIMESTAMP NOT NULL,
  last_loaded_at TIMESTAMP NOT NULL,
  PRIMARY KEY (BillingPeriodStart, BillingPeriodEnd)
)""",
        "CREATE TABLE IF NOT EXISTS meta (key VARCHAR PRIMARY KEY, value VARCHAR NOT NULL)",
        "CREATE TABLE IF NOT EXISTS custom_columns (dataset VARCHAR, name VARCHAR, PRIMARY KEY (dataset, name))",
        # What `focus-api sync` last loaded per delivery unit of a cloud export (server/cloud/state.py): written
        # by the same writer as the rows, so data and sync state publish (or are abandoned) together.
        """CREATE TABLE IF NOT EXISTS sync_units (
  source VARCHAR NOT NULL,
  unit VARCHAR NOT NULL,
  fingerprint VARCHAR NOT NULL,
  load_ids INTEGER[] NOT NULL,
  files VARCHAR NOT NULL,
  rows BIGINT NOT NULL,
  synced_at TIMESTAMP NOT NULL,
  PRIMARY KEY (source, unit)
)""",
        """CREATE TABLE IF NOT EXISTS sync_sources (
  source VARCHAR PRIMARY KEY,
  synced_at TIMESTAMP NOT NULL,
  result VARCHAR NOT NULL
)""",
        # Export jobs moved to DATA_DIR/jobs.sqlite (server/exports/jobs.py): every process writes them.
        "DROP TABLE IF EXISTS export_jobs",
    ]
