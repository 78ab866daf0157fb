"""Exact decimals on the wire: JSON numbers with their exact digits (REST) or decimal strings (MCP).

Stored decimals carry the store's fixed scale (``0.087992153000000000``); on the wire they are written
with the trailing fraction zeros dropped (``0.087992153``), which is the same number. Never a float.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import orjson
from pydantic import BaseModel


def decimal_text(value: Decimal) -> str:
    """Plain (never exponent) text of a decimal without trailing fraction zeros."""
    # str() is the fast path (a page writes ~1 200 decimals); it uses an exponent only for very small or
    # very large magnitudes, which format "f" writes out in full.
    text = str(value)
    if "E" in text:
        text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def _fragment(value: Any) -> Any:
    if isinstance(value, Decimal):
        return orjson.Fragment(decimal_text(value).encode())
    raise TypeError(f"cannot serialise {type(value).__name__}")


def dumps(value: Any) -> bytes:
    """JSON bytes with decimals as exact JSON numbers."""
    return orjson.dumps(value, default=_fragment)


def plain(output: BaseModel) -> dict[str, Any]:
    """An answer as plain JSON-able values (decimals still Decimal), for ``dumps`` or ``with_decimal_strings``.

    A page's rows are already plain: the source builds them as dicts (or lists) and the handler puts them
    in with ``model_construct``. pydantic would only copy them value by value (about 1 ms for a 100-row
    page), so they are passed through as they are and only the envelope is dumped.
    """
    data = getattr(output, "data", None)
    if not isinstance(data, list) or not all(type(row) is dict or type(row) is list for row in data):
        return output.model_dump(mode="python", warnings=False)
    body = output.model_dump(mode="python", warnings=False, exclude={"data"})
    return {
        name: data if name == "data" else body[name]
        for name in type(output).model_fields
        if name in body or name == "data"
    }


def _text(value: Any) -> str:
    if isinstance(value, Decimal):
        return decimal_text(value)
    raise TypeError(f"cannot serialise {type(value).__name__}")


_PLAIN = frozenset({str, int, float, bool, type(None)})


def with_decimal_strings(value: Any) -> Any:
    """A copy of a JSON-able structure with every Decimal as its exact text (for MCP structured content)."""
    try:
        # One pass through orjson (C) instead of a Python walk: about half the time for a 100-row page.
        return orjson.loads(orjson.dumps(value, default=_text))
    except orjson.JSONEncodeError:  # an integer beyond 64 bits: the walk keeps it exact
        return _walk(value)


def _walk(value: Any) -> Any:
    # Plain values are copied without a call per value: a 100-row page has ~6 600 of them (bench/suite.py).
    if type(value) is dict:
        return {k: v if type(v) in _PLAIN else _walk(v) for k, v in value.items()}
    if type(value) is list:
        return [v if type(v) in _PLAIN else _walk(v) for v in value]
    if isinstance(value, Decimal):
        return decimal_text(value)
    if isinstance(value, dict):
        return {k: _walk(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_walk(v) for v in value]
    return value
