"""A query result as the rows an answer carries: a dict per row, JSON columns as their stored text."""

from __future__ import annotations

from typing import Any

from tools.source import Row
from tools.wire import JsonText


def rows_of(cursor: Any, json_columns: frozenset[str] = frozenset()) -> list[Row]:
    """The rows of ``cursor``'s result (a DuckDB cursor or the Spark one); JSON columns stay text until
    an answer needs their parts (``tools.wire.JsonText``)."""
    names = [d[0] for d in cursor.description or []]
    out = []
    for values in cursor.fetchall():
        row = dict(zip(names, values, strict=True))
        for name in json_columns:
            if row.get(name) is not None:
                row[name] = JsonText(row[name])
        out.append(row)
    return out
