"""Serving a FOCUS table the user already has on the cluster (``--spark-table``), read where it lies.

The table is checked once at start: every FOCUS 1.3 Cost and Usage column that is Mandatory must be there,
money and quantities must be ``decimal`` (at most 18 places: a ``double`` cannot be served exactly and is
refused, not rounded), date/times ``timestamp``/``timestamp_ntz``, and the ordering key an integer column
the user declares (``--spark-key``) that is proven unique (one aggregate: count = count distinct, no nulls).
Then session views give it focus-api's layout, so the one set of queries reads it: ``cost_and_usage`` casts
the columns to the layout's types (absent Optional columns read as null, ContractApplied's 1.3 keys
``ContractCommitmentID`` recased as the loader stores them), and the bookkeeping views say what
can be said of a table focus-api did not load (each billing period present counts as last seen at start).
Contract Commitment and the FOCUS 1.4 datasets are empty views: the tools answer with no rows.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

from server.spark.layout import SMALL_TABLES, SPARK_TYPES, dataset_columns
from server.store.schema import TABLES
from tools.catalog import Dataset, DataType, columns_at, is_custom_column, stored
from tools.errors import EngineTableInvalid, EngineTableMissing

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

_INTEGER_TYPES = ("bigint", "int", "smallint", "tinyint")


def _empty(columns: list[tuple[str, str]]) -> str:
    items = ", ".join(f"CAST(NULL AS {kind}) AS `{name}`" for name, kind in columns)
    return f"SELECT {items} WHERE false"


def _accepts(data_type: DataType, spark_type: str) -> bool:
    if data_type is DataType.DECIMAL:
        if not spark_type.startswith("decimal("):
            return False
        precision, scale = (int(x) for x in spark_type[8:-1].split(","))
        return scale <= 18 and precision - scale <= 20
    if data_type is DataType.DATETIME:
        return spark_type in ("timestamp", "timestamp_ntz")
    return spark_type == "string"


def serve_table(session: SparkSession, table: str, key: str | None) -> list[str]:
    """Check ``table`` and create the layout's views over it; returns the x_ columns it serves."""
    from pyspark.errors import AnalysisException

    try:
        fields = {f.name: f.dataType.simpleString() for f in session.table(table).schema.fields}
    except AnalysisException:
        raise EngineTableMissing(
            f"--spark-table {table} does not exist (or this session may not read it); name it as "
            "catalog.database.table or database.table",
            {"sparkTable": table},
        ) from None
    if key is None:
        if "_row_id" not in fields:
            raise EngineTableInvalid(
                f"{table} has no _row_id column: name its unique integer ordering key with --spark-key",
                {"sparkTable": table},
            )
        key = "_row_id"
    if key not in fields or fields[key] not in _INTEGER_TYPES:
        raise EngineTableInvalid(
            f"--spark-key {key} must be an integer column of {table} (it has {fields.get(key, 'no such column')})",
            {"sparkTable": table, "sparkKey": key},
        )
    catalog = columns_at(Dataset.COST_AND_USAGE, "1.3")
    missing = [c.id for c in catalog.columns if c.is_mandatory and c.id not in fields]
    wrong = [
        f"{c.id} is {fields[c.id]}, not {SPARK_TYPES[c.data_type]}"
        for c in stored(Dataset.COST_AND_USAGE).columns
        if c.id in fields and not _accepts(c.data_type, fields[c.id])
    ]
    if missing or wrong:
        raise EngineTableInvalid(
            f"{table} is not a FOCUS 1.3 Cost and Usage table: "
            + "; ".join(([f"missing Mandatory columns {', '.join(missing)}"] if missing else []) + wrong),
            {"sparkTable": table, "missing": missing, "wrongTypes": wrong},
        )
    found = session.sql(f"SELECT count(*) AS n, count(DISTINCT `{key}`) AS d, count(`{key}`) AS k FROM {table}")
    n, distinct, non_null = found.collect()[0]
    if not n == distinct == non_null:
        raise EngineTableInvalid(
            f"--spark-key {key} is not a unique, non-null key of {table} ({n} rows, {distinct} distinct values, "
            f"{n - non_null} nulls): keyset pages need one",
            {"sparkTable": table, "sparkKey": key},
        )
    # x_ columns served as they are named; only plain names, so none needs quoting inside SQL text
    custom = sorted(n for n, kind in fields.items() if is_custom_column(n) and kind == "string" and n.isidentifier())
    items = [f"CAST(`{key}` AS bigint) AS `_row_id`", "0 AS `_load_id`"]
    for name, kind in dataset_columns(Dataset.COST_AND_USAGE, custom)[2:]:
        source = f"`{name}`" if name in fields else "NULL"
        if name == "ContractApplied" and name in fields:  # the store's key spelling (see normalise._recased)
            source = f"""regexp_replace({source}, '"Contract(Commitment)?ID"(\\\\s*):', '"Contract$1Id"$2:')"""
        items.append(f"CAST({source} AS {kind}) AS `{name}`")
    session.sql(f"CREATE OR REPLACE TEMPORARY VIEW cost_and_usage AS SELECT {', '.join(items)} FROM {table}")
    for dataset, view in TABLES.items():
        if dataset is not Dataset.COST_AND_USAGE:
            session.sql(f"CREATE OR REPLACE TEMPORARY VIEW {view} AS {_empty(dataset_columns(dataset, []))}")
    started = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S")
    views = {name: _empty(columns) for name, columns in SMALL_TABLES.items()}
    views["billing_periods"] = (
        "SELECT DISTINCT BillingPeriodStart, BillingPeriodEnd, "
        f"CAST('{started}' AS timestamp_ntz) AS last_loaded_at FROM cost_and_usage"
    )
    pairs = [f"('CostAndUsage', '{name}')" for name in custom]
    if pairs:
        views["custom_columns"] = f"SELECT * FROM VALUES {', '.join(pairs)} AS t(dataset, name)"
    # A table focus-api did not load has no version of its own: one per start of the server.
    views["meta"] = f"SELECT * FROM VALUES ('data_version', '{int(datetime.now(UTC).timestamp())}') AS t(key, value)"
    for name, query in views.items():
        session.sql(f"CREATE OR REPLACE TEMPORARY VIEW {name} AS {query}")
    return custom
