"""The Spark Connect session of a process, and cursors over it that speak like DuckDB's.

The sources and export writers run their queries through a DuckDB-style cursor (``execute`` with ``?``
parameters, ``fetchall``/``fetchone``/``fetchmany``, ``description``, ``sql(...).to_arrow_reader()``).
``SparkCursor`` offers the same calls over one shared Spark Connect session, rendering each query with
``server.spark.dialect``; so the handlers, filters and query builders are the ones DuckDB runs, not a copy.

Results arrive as Arrow: ``decimal(38,18)`` becomes ``Decimal`` and ``timestamp_ntz`` a naive datetime
(UTC), exactly as DuckDB's cursor gives them. The session is set up for exactness: decimal arithmetic that
would round raises instead (``allowPrecisionLoss`` off), times are UTC, identifiers case-sensitive.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import uuid
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

import pyarrow as pa
import structlog

from server.spark.dialect import json_key_of_path, render
from tools.errors import EngineError, EngineTableMissing, EngineUnavailable

if TYPE_CHECKING:
    from pyspark.sql import Column, SparkSession

log = structlog.get_logger(__name__)

DEFAULT_PORT = 15002
SESSION_CONF = {
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.decimalOperations.allowPrecisionLoss": "false",
    "spark.sql.caseSensitive": "true",
    "spark.sql.ansi.enabled": "true",
    "spark.sql.sources.partitionOverwriteMode": "dynamic",
}


def _address(remote: str) -> tuple[str, int]:
    url = urlparse(remote)
    if url.scheme != "sc" or not url.hostname:
        raise EngineUnavailable(
            "--spark-remote must be a Spark Connect URL like sc://HOST:15002 (the value given is not one; "
            "it is not repeated here because such URLs can carry a token)"
        )
    return url.hostname, url.port or DEFAULT_PORT


def shown(remote: str) -> str:
    """``remote`` as it may be shown in errors and logs: scheme, host and port, never the ``;token=...``."""
    host, port = _address(remote)
    return f"sc://{host}:{port}"


def connect(remote: str, timeout: float) -> SparkSession:
    """A new Spark Connect session to ``remote``, checked with one query; clear errors, no hang."""
    host, port = _address(remote)
    try:  # the client retries an unreachable server for minutes: find out at once instead
        with socket.create_connection((host, port), timeout=timeout):
            pass
    except OSError as exc:
        raise EngineUnavailable(
            f"the Spark Connect server {host}:{port} did not answer ({exc.strerror or exc}); start it "
            "(start-connect-server.sh) or fix --spark-remote",
            {"sparkRemote": shown(remote)},
        ) from None
    from pyspark.sql import SparkSession

    session: list[SparkSession] = []
    failure: list[BaseException] = []

    def start() -> None:
        try:
            s = SparkSession.builder.remote(remote).create()
            for key, value in SESSION_CONF.items():
                s.conf.set(key, value)
            s.sql("SELECT 1").collect()
            session.append(s)
        except Exception as exc:
            failure.append(exc)

    worker = threading.Thread(target=start, name="spark-connect", daemon=True)
    worker.start()
    worker.join(timeout)
    if not session:
        detail = f": {type(failure[0]).__name__}" if failure else f" within {timeout:g} s"
        raise EngineUnavailable(
            f"could not open a Spark Connect session at {host}:{port}{detail}; is it a Spark Connect server?",
            {"sparkRemote": shown(remote)},
        )
    return session[0]


def _literal(value: Any, key_path: bool) -> Column:
    """A query parameter as a Spark literal of the type DuckDB would have bound it as (``sql()`` takes only
    literals and collection constructors, so types are given to the literal, never cast afterwards)."""
    from pyspark.sql import functions as F
    from pyspark.sql.connect.column import Column
    from pyspark.sql.connect.expressions import LiteralExpression
    from pyspark.sql.types import StringType, TimestampNTZType

    if key_path:
        return F.lit(json_key_of_path(str(value)))
    if isinstance(value, datetime):  # DuckDB binds naive datetimes as they are: UTC, no zone
        naive = value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo else value
        return Column(LiteralExpression(naive, TimestampNTZType()))
    if isinstance(value, (list, tuple)):
        if not value:  # typed, so that array_contains compares strings; matches nothing, as DuckDB's []
            return F.array(Column(LiteralExpression(None, StringType())))
        return F.array(*(_literal(v, False) for v in value))
    if isinstance(value, Decimal | int | str | bool) or value is None:
        return F.lit(value)
    raise TypeError(f"no Spark literal for a {type(value).__name__} parameter")


def engine_error(exc: Exception) -> EngineError:
    """A Spark client exception as one of the error tree's engine errors (the detail goes to the log)."""
    from pyspark.errors import AnalysisException
    from pyspark.errors.exceptions.connect import SparkConnectGrpcException

    text = str(exc)
    log.warning("spark_query_failed", error=type(exc).__name__, detail=text[:2000])
    if isinstance(exc, AnalysisException) and "TABLE_OR_VIEW_NOT_FOUND" in text:
        return EngineTableMissing("a table focus-api serves is missing on the Spark cluster; load data first")
    if isinstance(exc, SparkConnectGrpcException) and ("UNAVAILABLE" in text or "Connection refused" in text):
        return EngineUnavailable("the Spark Connect server went away; try again when it is back")
    return EngineError("the Spark engine could not run the query; the server log has the detail")


class _BatchReader:
    """Arrow record batches of one Spark query, streamed as the server sends them (bounded memory)."""

    def __init__(self, session: SparkSession, query: str, args: dict[str, Any]) -> None:
        frame = session.sql(query, args=args)
        from pyspark.sql.pandas.types import to_arrow_schema

        self.schema = to_arrow_schema(frame.schema, timezone="UTC")
        self._frame = frame

    def __iter__(self) -> Iterator[pa.RecordBatch]:
        from pyspark.errors import PySparkException

        # The public toArrow() collects the whole result; the client's iterator is what it is built on.
        frame: Any = self._frame
        plan = frame._plan.to_proto(frame._session.client)
        try:
            for part in frame._session.client.to_table_as_iterator(plan, frame._plan.observations):
                if isinstance(part, pa.Table):
                    yield from part.cast(self.schema).to_batches()
        except PySparkException as exc:
            raise engine_error(exc) from None


class _Relation:
    def __init__(self, cursor: SparkCursor, query: str, params: Sequence[Any]) -> None:
        self._cursor, self._query, self._params = cursor, query, params

    def to_arrow_reader(self, batch_size: int = 0) -> _BatchReader:
        rendered, args = self._cursor.bind(self._query, self._params)
        reader: _BatchReader = self._cursor.guarded(lambda: _BatchReader(self._cursor.session, rendered, args))
        return reader

    def to_arrow_table(self) -> pa.Table:
        reader = self.to_arrow_reader()
        return pa.Table.from_batches(list(reader), schema=reader.schema)


class SparkCursor:
    """The DuckDB cursor calls the sources use, over a shared Spark Connect session (one per query thread)."""

    def __init__(self, session: SparkSession) -> None:
        self.session = session
        self.tag = f"focus-api-{uuid.uuid4().hex}"
        self.description: list[tuple[str]] | None = None
        self._rows: list[tuple[Any, ...]] = []
        self._at = 0

    def bind(self, query: str, params: Sequence[Any]) -> tuple[str, dict[str, Any]]:
        rendered = render(query)
        args = {f"p{i}": _literal(v, i in rendered.key_params) for i, v in enumerate(params)}
        return rendered.sql, args

    def guarded(self, run: Any) -> Any:
        """``run()`` tagged (so ``interrupt`` can stop it) with Spark's errors mapped to the error tree."""
        from pyspark.errors import PySparkException

        self.session.addTag(self.tag)
        try:
            return run()
        except PySparkException as exc:
            raise engine_error(exc) from None
        finally:
            self.session.removeTag(self.tag)

    def execute(self, query: str, params: Sequence[Any] = ()) -> SparkCursor:
        if query.lstrip()[:4].upper() == "SET ":  # DuckDB's own engine settings: Spark's are set per session
            return self
        rendered, args = self.bind(query, params)
        table: pa.Table = self.guarded(lambda: self.session.sql(rendered, args=args).toArrow())
        self.description = [(name,) for name in table.schema.names]
        columns = [column.to_pylist() for column in table.columns]
        self._rows = list(zip(*columns, strict=True)) if columns else []
        self._at = 0
        return self

    def sql(self, query: str, params: Sequence[Any] = ()) -> _Relation:
        return _Relation(self, query, params)

    def fetchall(self) -> list[tuple[Any, ...]]:
        rows, self._rows, self._at = self._rows[self._at :], [], 0
        return rows

    def fetchone(self) -> tuple[Any, ...] | None:
        if self._at >= len(self._rows):
            return None
        self._at += 1
        return self._rows[self._at - 1]

    def fetchmany(self, size: int) -> list[tuple[Any, ...]]:
        chunk = self._rows[self._at : self._at + size]
        self._at += len(chunk)
        return chunk

    def interrupt(self) -> None:
        with contextlib.suppress(Exception):  # already finished, or the server is gone
            self.session.interruptTag(self.tag)

    def query_progress(self) -> float:
        return -1.0  # Spark reports progress per stage, not per query: nothing to send

    def close(self) -> None:
        self._rows = []
