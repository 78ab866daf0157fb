"""The numbers a normalising load writes as notes, and what each means.

Notes are small integers, not text: a staged file holds one per column and row (as text, a 1M-row
file with every quirk held ~40M note strings; as numbers its load took ~15 % less CPU in
bench/load.py). 1-99: conversions, 100-147: date/time forms (see ``normalise._DT_FORM``), 200 and
up: refusals (the row cannot be loaded exactly).
"""

from __future__ import annotations

_KINDS = (
    "null_token",
    "conformance_gap",
    "null_token+conformance_gap",
    "json_null",
    "json_braces_added",
    "exponent",
    "leading_plus",
    "whitespace",
    "allowed_value_spelling",
    "value_not_allowed",
    "currency_case",
    "json_key_recased",
)
REFUSALS = (
    "not_null",
    "datetime_format",
    "decimal",
    "decimal_scale",
    "json_object",
    "allowed_values",
    "currency_code",
    "period_order",
)
DT_FROM, BAD_FROM = 100, 200
CODES = {k: i + 1 for i, k in enumerate(_KINDS)} | {"!" + r: BAD_FROM + i for i, r in enumerate(REFUSALS)}


def code_name(code: int) -> str:
    """What a note code means: a kind (``null_token``), a refusal (``!decimal``) or a date/time form (``dt:...``)."""
    if code >= BAD_FROM:
        return "!" + REFUSALS[code - BAD_FROM]
    if code >= DT_FROM:
        return "dt:" + str(code - DT_FROM)
    return _KINDS[code - 1]


def datetime_kinds(form: str) -> str:
    """A kind id from a date/time's form number (see ``_DT_FORM``): ``13`` -> ``datetime_space_no_zone``."""
    n = int(form)
    tags = []
    if n & 1:
        tags.append("space")
    if n & 2:
        tags.append("no_seconds")
    fraction, zone = (n % 12) // 4, n // 12
    tags += [[], ["fraction"], ["subsecond"]][fraction]
    tags += [[], ["no_zone"], ["utc_suffix"], ["offset"]][zone]
    return "datetime_" + "_".join(tags) if tags else "datetime_form"
