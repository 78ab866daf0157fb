"""Exact decimals on the wire: JSON numbers with their exact digits (REST) or decimal strings (MCP).

Stored decimals carry the store's fixed scale (``0.087992153000000000``); on the wire they are written
with the trailing fraction zeros dropped (``0.087992153``), which is the same number. Never a float.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import orjson


def decimal_text(value: Decimal) -> str:
    """Plain (never exponent) text of a decimal without trailing fraction zeros."""
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


_PLAIN = frozenset({str, int, float, bool, type(None)})


def with_decimal_strings(value: Any) -> Any:
    """A copy of a JSON-able structure with every Decimal as its exact text (for MCP structured content)."""
    # Plain values are copied without a call per value: a 100-row page has ~6 600 of them (bench/suite.py).
    if type(value) is dict:
        return {k: v if type(v) in _PLAIN else with_decimal_strings(v) for k, v in value.items()}
    if type(value) is list:
        return [v if type(v) in _PLAIN else with_decimal_strings(v) for v in value]
    if isinstance(value, Decimal):
        return decimal_text(value)
    if isinstance(value, dict):
        return {k: with_decimal_strings(v) for k, v in value.items()}
    if isinstance(value, list):
        return [with_decimal_strings(v) for v in value]
    return value
