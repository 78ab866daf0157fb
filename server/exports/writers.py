"""Writing the store's rows to CSV, Parquet or JSON Lines files in bounded memory.

The engine hands Arrow record batches (or finished JSON lines) to a writer batch by batch; no ORDER BY: a
plain scan of the table already returns ``_row_id`` order, and sorting would buffer the whole result.
Decimals stay exact (decimal128 in Parquet, full digits in CSV and JSON), date/times are FOCUS UTC text
in CSV and JSON and UTC timestamps in Parquet, and JSON columns are written as the loaded text, so no
number inside them is ever re-parsed into a binary float.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from server.sources import sql
from server.sources.duckdb_source import DuckDBSource
from server.store.schema import CC_TABLE, CU_TABLE, FOCUS_TIMESTAMP_FORMAT, literal, quote
from tools.catalog import Catalog, Dataset, DataType, columns_at
from tools.errors import Unavailable
from tools.source import CommitmentFilters, CostFilters, ExportFormat

# Rows per Arrow batch (and Parquet row group): the export's working set is a few batches of ~66 wide
# columns; 65 536 rows made a 1M-row export peak near 1 GB RSS, 16 384 near 0.5 GB at the same speed.
BATCH_ROWS = 16_384
ShouldStop = Callable[[], bool]
# Told the rows written so far after each batch (an export job's progress).
OnRows = Callable[[int], None]


class ExportCancelled(Exception):
    """The server is shutting down or the job was cancelled; the partial file is discarded."""


@dataclass(frozen=True, slots=True)
class WriteResult:
    record_count: int


def _select(catalog: Catalog, names: list[str], fmt: ExportFormat) -> str:
    items = []
    for name in names:
        q = quote(name)
        column = catalog.get(name)
        if column is None:
            items.append(q)
        elif column.data_type is DataType.DATETIME:
            if fmt == "parquet":
                items.append(f"CAST({q} AS TIMESTAMPTZ) AS {q}")
            else:
                items.append(f"strftime({q}, '{FOCUS_TIMESTAMP_FORMAT}') AS {q}")
        elif column.data_type is DataType.JSON:
            items.append(f"CAST({q} AS VARCHAR) AS {q}")
        else:
            items.append(q)
    return ", ".join(items)


def _json_line(catalog: Catalog, names: list[str]) -> str:
    """One JSON object per row, built by the engine. JSON columns are spliced in as their stored text:
    ``to_json`` would re-parse them and round long numbers (490.26721242503204 became 490.267212425032).
    Line breaks in that text can only be whitespace between tokens (JSON strings escape them), so
    replacing them with spaces keeps the value and the one-line-per-record rule."""
    parts = []
    for name in names:
        key = literal(json.dumps(name) + ":")
        column = catalog.get(name)
        if column is not None and column.data_type is DataType.JSON:
            value = f"coalesce(replace(replace({quote(name)}, chr(10), ' '), chr(13), ' '), 'null')"
        elif column is not None and column.data_type is DataType.DECIMAL:
            # The plain digits are the JSON number (Spark's to_json writes 0E-18 where this writes 0.000…)
            value = f"coalesce(CAST({quote(name)} AS VARCHAR), 'null')"
        else:
            value = f"coalesce(CAST(to_json({quote(name)}) AS VARCHAR), 'null')"
        parts.append(f"{key} || {value}")
    return "'{' || " + " || ',' || ".join(parts) + " || '}'"


def write_query(
    cur: duckdb.DuckDBPyConnection,
    catalog: Catalog,
    names: list[str],
    table: str,
    where: list[str],
    params: list[Any],
    fmt: ExportFormat,
    path: Path,
    should_stop: ShouldStop,
    on_rows: OnRows | None = None,
) -> WriteResult:
    """Write the rows of ``table`` matching ``where`` to ``path``; returns the record count."""
    query = f"SELECT {_select(catalog, names, fmt)} FROM {table}{sql.where_sql(where)}"
    cur.execute("SET TimeZone = 'UTC'")
    try:
        if fmt == "json":
            return _write_json_lines(
                cur, f"SELECT {_json_line(catalog, names)} FROM ({query})", params, path, should_stop, on_rows
            )
        return _write_arrow(cur, query, params, fmt, path, should_stop, on_rows)
    except duckdb.Error as exc:
        raise Unavailable("the export query failed; try again later") from exc


def _write_arrow(
    cur: duckdb.DuckDBPyConnection,
    query: str,
    params: list[Any],
    fmt: ExportFormat,
    path: Path,
    should_stop: ShouldStop,
    on_rows: OnRows | None = None,
) -> WriteResult:
    count = 0
    reader = cur.sql(query, params=params).to_arrow_reader(batch_size=BATCH_ROWS)
    writer: Any = None
    try:
        for batch in reader:
            if should_stop():
                raise ExportCancelled
            if writer is None:
                writer = (
                    pq.ParquetWriter(path, batch.schema, compression="zstd")
                    if fmt == "parquet"
                    else pa_csv.CSVWriter(path, batch.schema)
                )
            writer.write_batch(batch)
            count += batch.num_rows
            if on_rows is not None:
                on_rows(count)
        if writer is None:  # no rows: still a valid file with the header / schema
            empty = pa.Table.from_batches([], schema=reader.schema)
            if fmt == "parquet":
                pq.write_table(empty, path, compression="zstd")
            else:
                pa_csv.write_csv(empty, path)
    finally:
        if writer is not None:
            writer.close()
    return WriteResult(record_count=count)


def _write_json_lines(
    cur: duckdb.DuckDBPyConnection,
    query: str,
    params: list[Any],
    path: Path,
    should_stop: ShouldStop,
    on_rows: OnRows | None = None,
) -> WriteResult:
    count = 0
    reader = cur.sql(query, params=params).to_arrow_reader(batch_size=BATCH_ROWS)
    with path.open("w", encoding="utf-8", newline="\n") as out:
        for batch in reader:
            if should_stop():
                raise ExportCancelled
            if not batch.num_rows:
                continue
            out.write("\n".join(batch.column(0).to_pylist()))
            out.write("\n")
            count += batch.num_rows
            if on_rows is not None:
                on_rows(count)
    return WriteResult(record_count=count)


class StoreWriter:
    """Writes the two datasets of the embedded store, within the request's scope."""

    def __init__(self, source: DuckDBSource) -> None:
        self.source = source

    def cost_and_usage(
        self,
        filters: CostFilters,
        fmt: ExportFormat,
        path: Path,
        should_stop: ShouldStop,
        columns: tuple[str, ...] | None = None,
        version: str = "1.3",
        on_rows: OnRows | None = None,
    ) -> WriteResult:
        with self.source.store.open_cursor() as cur:
            where, params = sql.cost_where(filters)
            catalog = columns_at(Dataset.COST_AND_USAGE, version)
            names = sql.chosen_columns(catalog, self.source.custom_columns(cur, "CostAndUsage"), columns)
            return write_query(cur, catalog, names, CU_TABLE, where, params, fmt, path, should_stop, on_rows)

    def count(self, filters: CostFilters) -> int:
        """How many Cost and Usage rows an export of ``filters`` will write (its progress total)."""
        with self.source.store.open_cursor() as cur:
            query, params = sql.count_query(filters)
            row = cur.execute(query, params).fetchone()
            return int(row[0]) if row else 0

    def contract_commitments(
        self,
        filters: CommitmentFilters,
        fmt: ExportFormat,
        path: Path,
        should_stop: ShouldStop,
        version: str = "1.3",
    ) -> WriteResult:
        with self.source.store.open_cursor() as cur:
            allowed = self.source.allowed_commitments(cur, filters)
            where: list[str] = []
            params: list[Any] = []
            if allowed is not None:
                where.append("list_contains(?, ContractCommitmentId)")
                params.append(allowed)
            catalog = columns_at(Dataset.CONTRACT_COMMITMENT, version)
            return write_query(cur, catalog, list(catalog.ids), CC_TABLE, where, params, fmt, path, should_stop)
