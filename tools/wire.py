"""Exact decimals on the wire: JSON numbers with their exact digits (REST) or decimal strings (MCP).

Stored decimals carry the store's fixed scale (``0.087992153000000000``); on the wire they are written
with the trailing fraction zeros dropped (``0.087992153``), which is the same number. Never a float.
A JSON column's value travels as its stored text (``JsonText``): REST writes that text as it is, MCP
parses it with its numbers as decimal strings.
"""

from __future__ import annotations

import json
from contextlib import AbstractContextManager
from decimal import Context, Decimal, localcontext
from typing import Any

import orjson
from pydantic import BaseModel

# Sums and products of the store's DECIMAL(38, 18) values hold up to 38 digits (76 for a product); Python's
# default context keeps 28 and would round them.
EXACT_PRECISION = 76


def exact() -> AbstractContextManager[Context]:
    """A decimal context (``with wire.exact():``) in which arithmetic on stored values never rounds."""
    return localcontext(prec=EXACT_PRECISION)


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


class JsonText:
    """The stored text of a JSON column's value, not parsed until an answer needs its parts.

    A 100-row page holds ~200 (tags, ContractApplied, ...): parsing each into Python objects (numbers as
    ``Decimal``) only to write it out again cost ~0.6 ms of the page; checking and copying the text, ~0.1 ms.
    """

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text

    def value(self) -> Any:
        """The parsed value, numbers that are no integers as ``Decimal``."""
        return json.loads(self.text, parse_float=Decimal)

    def lenient(self) -> Any:
        """The parsed value where Python's parser reads the text (NaN and Infinity as null), else the text
        itself as a string: one odd value must not fail a whole page, nor be lost."""
        try:
            return json.loads(self.text, parse_float=Decimal, parse_constant=lambda _: None)
        except ValueError:
            return self.text

    def __eq__(self, other: object) -> bool:
        if isinstance(other, JsonText):
            return bool(self.lenient() == other.lenient())
        return bool(self.lenient() == other)

    __hash__ = None  # type: ignore[assignment]  # equal values may be spelt differently

    def __repr__(self) -> str:
        return f"JsonText({self.text!r})"


def _fragment(value: Any) -> Any:
    if isinstance(value, Decimal):
        return orjson.Fragment(decimal_text(value).encode())
    if type(value) is JsonText:
        # DuckDB's JSON type also admits NaN, Infinity and trailing commas, which are no JSON: a text
        # orjson reads is written as it is, anything else as ``lenient`` makes it.
        try:
            orjson.loads(value.text)
        except orjson.JSONDecodeError:
            return value.lenient()
        return orjson.Fragment(value.text.encode())
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


def _text(value: Any) -> Any:
    if isinstance(value, Decimal):
        return decimal_text(value)
    if type(value) is JsonText:
        return value.lenient()  # its Decimals come back here: the C parser with Decimal beats a Python parse_float
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
    if type(value) is JsonText:
        return _walk(value.lenient())
    if isinstance(value, dict):
        return {k: _walk(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_walk(v) for v in value]
    return value
