"""focus-api's layout on a Spark cluster, and publishing a checked store to it (``load --engine spark``).

The tables mirror the embedded store's, table for table and column for column (so the one set of query
builders reads both): the four FOCUS datasets with ``_row_id`` (the keyset key: unique, stable, in load
order) and the store's small bookkeeping tables (loads, billing periods, quarantined scopes, meta...).
Cost and Usage is partitioned by billing period (``_billing_period``, ``YYYY-MM-DD`` of its start).

Publishing: the rows are checked, normalised and replaced per invoice scope by the one loader, into the data
dir's store (the ledger); then every billing period whose rows differ from what was last published (row count
and the sum of ``_row_id``, which every delete or append changes) is staged and overwritten on the cluster
with dynamic partition overwrite, vanished periods are dropped, and the small tables are replaced whole.
``meta`` (the data version page tokens are bound to) goes last. Plain Parquet tables give no multi-table
transaction: a reader during a publish can see some periods new and others old, never half a period.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import structlog

from server.store.db import Store
from server.store.schema import CU_TABLE, TABLES, quote
from tools.catalog import Dataset, DataType, stored

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

log = structlog.get_logger(__name__)

SPARK_TYPES = {
    DataType.STRING: "string",
    DataType.DECIMAL: "decimal(38,18)",
    DataType.DATETIME: "timestamp_ntz",
    DataType.JSON: "string",
}
PARTITION = "_billing_period"
PUBLISHED = "_published"
BATCH_ROWS = 50_000
# The bookkeeping tables the sources read, with their Spark columns (the embedded store's DDL, typed for Spark).
SMALL_TABLES: dict[str, list[tuple[str, str]]] = {
    "loads": [
        ("load_id", "int"),
        ("delivery_id", "string"),
        ("dataset", "string"),
        ("source", "string"),
        ("sha256", "string"),
        ("focus_version", "string"),
        ("rows", "bigint"),
        ("replaced_rows", "bigint"),
        ("loaded_at", "timestamp_ntz"),
        ("demo", "boolean"),
        ("report", "string"),
    ],
    "quarantined_scopes": [
        ("InvoiceIssuerName", "string"),
        ("BillingAccountId", "string"),
        ("BillingPeriodStart", "timestamp_ntz"),
        ("BillingPeriodEnd", "timestamp_ntz"),
        ("load_id", "int"),
        ("rejected_rows", "bigint"),
    ],
    "billing_periods": [
        ("BillingPeriodStart", "timestamp_ntz"),
        ("BillingPeriodEnd", "timestamp_ntz"),
        ("last_loaded_at", "timestamp_ntz"),
    ],
    "custom_columns": [("dataset", "string"), ("name", "string")],
    "sync_units": [
        ("source", "string"),
        ("unit", "string"),
        ("fingerprint", "string"),
        ("load_ids", "array<int>"),
        ("files", "string"),
        ("rows", "bigint"),
        ("synced_at", "timestamp_ntz"),
    ],
    "sync_sources": [("source", "string"), ("synced_at", "timestamp_ntz"), ("result", "string")],
    "meta": [("key", "string"), ("value", "string")],
}


def dataset_columns(dataset: Dataset, custom: list[str]) -> list[tuple[str, str]]:
    """A dataset table's Spark columns: the keys, every stored FOCUS column, then the loaded x_ columns."""
    focus = [(c.id, SPARK_TYPES[c.data_type]) for c in stored(dataset).columns]
    return [("_row_id", "bigint"), ("_load_id", "int"), *focus, *((name, "string") for name in custom)]


def _ddl(columns: list[tuple[str, str]]) -> str:
    return ", ".join(f"`{name}` {kind}" for name, kind in columns)


@dataclass(frozen=True, slots=True)
class PublishReport:
    periods_written: int
    periods_dropped: int
    periods_unchanged: int
    rows_written: int

    def as_dict(self) -> dict[str, int]:
        return {
            "periodsWritten": self.periods_written,
            "periodsDropped": self.periods_dropped,
            "periodsUnchanged": self.periods_unchanged,
            "rowsWritten": self.rows_written,
        }


class Publisher:
    """Copies a store's content into ``database`` on the cluster (the layout above)."""

    def __init__(self, session: SparkSession, database: str) -> None:
        self.session = session
        self.database = database

    def _name(self, table: str) -> str:
        return f"`{self.database}`.`{table}`"

    def _frame(self, table: pa.Table, columns: list[tuple[str, str]]) -> Any:
        # DuckDB's JSON and VARCHAR arrive as Arrow strings; the explicit schema types the rest exactly.
        return self.session.createDataFrame(table, schema=_ddl(columns))

    def _replace(self, table: str, columns: list[tuple[str, str]], batches: Iterable[pa.RecordBatch]) -> int:
        """Table ``table`` holds exactly the rows of ``batches`` (partitioned: the partitions they hold);
        staged first, so the table is overwritten by one statement. Returns the rows written."""
        staging = self._name(f"_staging_{table}")
        self.session.sql(f"DROP TABLE IF EXISTS {staging}")
        self.session.sql(f"CREATE TABLE {staging} ({_ddl(columns)}) USING parquet")
        rows = 0
        for batch in batches:  # none for an empty table: it is emptied
            if batch.num_rows:
                self._frame(_plain(pa.Table.from_batches([batch])), columns).write.insertInto(staging)
                rows += batch.num_rows
        names = ", ".join(f"`{n}`" for n, _ in columns)
        self.session.sql(f"INSERT OVERWRITE TABLE {self._name(table)} SELECT {names} FROM {staging}")
        self.session.sql(f"DROP TABLE {staging}")
        return rows

    def _local(self, cur: Any, query: str, params: list[Any] | None = None) -> Iterator[pa.RecordBatch]:
        yield from cur.sql(query, params=params or []).to_arrow_reader(batch_size=BATCH_ROWS)

    def _fingerprints(self, parts: dict[str, tuple[int, str]]) -> None:
        table = pa.table(
            {"part": list(parts), "rows": [v[0] for v in parts.values()], "checksum": [v[1] for v in parts.values()]},
            schema=pa.schema([("part", pa.string()), ("rows", pa.int64()), ("checksum", pa.string())]),
        )
        self._replace(PUBLISHED, [("part", "string"), ("rows", "bigint"), ("checksum", "string")], table.to_batches())

    def _ensure(self, custom: dict[str, list[str]]) -> None:
        self.session.sql(f"CREATE DATABASE IF NOT EXISTS `{self.database}`")
        for dataset, table in TABLES.items():
            columns = dataset_columns(dataset, custom.get(dataset.value, []))
            if dataset is Dataset.COST_AND_USAGE:
                columns = [*columns, (PARTITION, "string")]
                tail = f" USING parquet PARTITIONED BY (`{PARTITION}`)"
            else:
                tail = " USING parquet"
            self.session.sql(f"CREATE TABLE IF NOT EXISTS {self._name(table)} ({_ddl(columns)}){tail}")
            have = {f.name for f in self.session.table(self._name(table)).schema.fields}
            missing = [(n, k) for n, k in columns if n not in have]
            if missing:  # a custom column loaded since the last publish
                self.session.sql(f"ALTER TABLE {self._name(table)} ADD COLUMNS ({_ddl(missing)})")
        for table, columns in SMALL_TABLES.items():
            self.session.sql(f"CREATE TABLE IF NOT EXISTS {self._name(table)} ({_ddl(columns)}) USING parquet")
        fingerprints = "part string, rows bigint, checksum string"
        self.session.sql(f"CREATE TABLE IF NOT EXISTS {self._name(PUBLISHED)} ({fingerprints}) USING parquet")

    def publish(self, store: Store) -> PublishReport:
        cur = store.cursor()
        custom: dict[str, list[str]] = {}
        for dataset, name in cur.execute("SELECT dataset, name FROM custom_columns ORDER BY name").fetchall():
            custom.setdefault(str(dataset), []).append(str(name))
        self._ensure(custom)
        cu_columns = dataset_columns(Dataset.COST_AND_USAGE, custom.get(Dataset.COST_AND_USAGE.value, []))
        local = {
            str(part): (int(rows), str(checksum))
            for part, rows, checksum in cur.execute(
                f"SELECT strftime(BillingPeriodStart, '%Y-%m-%d'), count(*), CAST(sum(_row_id) AS VARCHAR) "
                f"FROM {CU_TABLE} GROUP BY 1"
            ).fetchall()
        }
        remote = {
            r["part"]: (int(r["rows"]), r["checksum"]) for r in self.session.table(self._name(PUBLISHED)).collect()
        }
        changed = sorted(p for p, fingerprint in local.items() if remote.get(p) != fingerprint)
        dropped = sorted(p for p in remote if p not in local)
        select = ", ".join(quote(n) for n, _ in cu_columns)
        rows_written = 0
        if changed or dropped:
            # Marked first: a publish that dies midway leaves these periods to be written again next time.
            self._fingerprints({p: f for p, f in remote.items() if p not in changed} | {p: (-1, "") for p in changed})
        if changed:
            rows_written = self._replace(
                CU_TABLE,
                [*cu_columns, (PARTITION, "string")],
                self._local(
                    cur,
                    f"SELECT {select}, strftime(BillingPeriodStart, '%Y-%m-%d') AS {PARTITION} FROM {CU_TABLE} "
                    "WHERE list_contains(?, strftime(BillingPeriodStart, '%Y-%m-%d')) ORDER BY _row_id",
                    [changed],
                ),
            )
        for part in dropped:
            self.session.sql(f"ALTER TABLE {self._name(CU_TABLE)} DROP IF EXISTS PARTITION (`{PARTITION}` = '{part}')")
        for dataset, table in TABLES.items():
            if dataset is Dataset.COST_AND_USAGE:
                continue
            columns = dataset_columns(dataset, custom.get(dataset.value, []))
            select = ", ".join(quote(n) for n, _ in columns)
            self._replace(table, columns, self._local(cur, f"SELECT {select} FROM {table} ORDER BY _row_id"))
        self._fingerprints(local)
        for table, columns in SMALL_TABLES.items():  # meta last: its data_version tells readers to move on
            select = ", ".join(quote(n) for n, _ in columns)
            self._replace(table, columns, self._local(cur, f"SELECT {select} FROM {table}"))
        report = PublishReport(len(changed), len(dropped), len(local) - len(changed), rows_written)
        log.info("spark_published", database=self.database, **report.as_dict())
        return report


def _plain(table: pa.Table) -> pa.Table:
    """DuckDB's Arrow output with extension types (JSON) made plain strings, for Spark's schema."""
    fields = []
    for field in table.schema:
        kind = field.type.storage_type if isinstance(field.type, pa.ExtensionType) else field.type
        fields.append(pa.field(field.name, kind))
    columns = [
        pa.chunked_array([chunk.storage for chunk in c.chunks], type=f.type)
        if isinstance(c.type, pa.ExtensionType)
        else c
        for c, f in zip(table.columns, fields, strict=True)
    ]
    return pa.Table.from_arrays(columns, schema=pa.schema(fields))
