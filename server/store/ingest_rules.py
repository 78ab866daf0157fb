"""How one raw input column becomes a typed FOCUS column, and the row rules checked on the way.

A file is first staged as-is (CSV: every field as text; Parquet: its own types). For each column this
module gives the SQL expression that converts it to the store's type, and the rules whose SQL
condition flags a row that breaks it. Every rule has a stable id that appears in load reports.

In a text column an empty string means null, as an empty CSV field does (a Parquet file of strings
often carries ``''`` for "no value"). No rule condition may raise on any input: a row that cannot be
converted is flagged, never an error of the whole statement.
"""

from __future__ import annotations

from dataclasses import dataclass

from server.store.schema import DECIMAL_SCALE, DECIMAL_TYPE, FOCUS_TIMESTAMP_FORMAT, quote
from tools.catalog import Column, Dataset, DataType

_INTEGER_TYPES = {"TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT", "UINTEGER", "UBIGINT"}
_FLOAT_TYPES = {"DOUBLE", "FLOAT"}
_TIMESTAMP_TYPES = {"TIMESTAMP", "TIMESTAMP_NS", "TIMESTAMP_MS", "TIMESTAMP_S"}
NULL_TYPE = '"NULL"'
# Rules whose rows the strict conversion of ``convert`` rejects by itself (the same cast, the same
# format): a load that converts every row without an error has no row breaking them.
ENFORCED_BY_CONVERSION = frozenset({"decimal", "datetime_format"})


@dataclass(frozen=True, slots=True)
class Rule:
    """A check on staged rows: ``condition`` is true for a row that breaks it."""

    id: str
    column: str
    condition: str
    message: str


class WrongType(Exception):
    """A Parquet column's physical type cannot hold the FOCUS type without loss."""


def _decimal_fits(source_type: str) -> bool:
    # DECIMAL(p,s): it fits when it has no more fraction digits than we keep and no more integer digits.
    inner = source_type[len("DECIMAL(") : -1]
    precision, scale = (int(x) for x in inner.split(","))
    return scale <= DECIMAL_SCALE and precision - scale <= 38 - DECIMAL_SCALE


def convert(column: Column, source_type: str) -> str:
    """SQL converting the staged column to the store's type; raises WrongType if it cannot."""
    c = quote(column.id)
    if source_type == NULL_TYPE:
        return "NULL"
    text = source_type == "VARCHAR"
    match column.data_type:
        case DataType.STRING:
            if text:
                return f"NULLIF({c}, '')"
        case DataType.DECIMAL:
            if text:
                return f"CAST(NULLIF({c}, '') AS {DECIMAL_TYPE})"
            if source_type in _INTEGER_TYPES:
                return f"CAST({c} AS {DECIMAL_TYPE})"
            if source_type.startswith("DECIMAL(") and _decimal_fits(source_type):
                return f"CAST({c} AS {DECIMAL_TYPE})"
            if source_type in _FLOAT_TYPES:
                # The shortest decimal text that round-trips the binary value: what the writer meant.
                return f"CAST(CAST({c} AS VARCHAR) AS {DECIMAL_TYPE})"
        case DataType.DATETIME:
            if text:
                return f"strptime(NULLIF({c}, ''), '{FOCUS_TIMESTAMP_FORMAT}')"
            if source_type in _TIMESTAMP_TYPES:
                return f"CAST({c} AS TIMESTAMP)"
            if source_type == "TIMESTAMP WITH TIME ZONE":
                return f"timezone('UTC', {c})"
        case DataType.JSON:
            if text:
                return f"CAST(NULLIF({c}, '') AS JSON)"
            if source_type == "JSON":
                return c
    raise WrongType(
        f"column {column.id} is {source_type} in the file but FOCUS {column.data_type.value} "
        f"needs {expected_types(column.data_type)}"
    )


def expected_types(data_type: DataType) -> str:
    return {
        DataType.STRING: "VARCHAR (string)",
        DataType.DECIMAL: (
            f"DECIMAL with at most {DECIMAL_SCALE} fraction digits, an integer, DOUBLE or a decimal string"
        ),
        DataType.DATETIME: "TIMESTAMP (UTC) or a string in YYYY-MM-DDTHH:MM:SSZ",
        DataType.JSON: "a JSON object as a string",
    }[data_type]


def rules_for(column: Column, source_type: str) -> list[Rule]:
    """The row rules for one staged column, given its staged type."""
    c = quote(column.id)
    text = source_type == "VARCHAR"
    rules: list[Rule] = []
    empty_text = f" AND {c} <> ''" if text else ""
    if not column.allows_nulls:
        empty = f" OR {c} = ''" if text else ""
        rules.append(Rule("not_null", column.id, f"({c} IS NULL{empty})", f"{column.id} must not be null"))
    if column.data_type is DataType.DECIMAL and (text or source_type in _INTEGER_TYPES or source_type in _FLOAT_TYPES):
        # A float is converted through its shortest round-trip text, so it is checked as that text.
        digits = f"CAST({c} AS VARCHAR)" if source_type in _FLOAT_TYPES else c
        rules.append(
            Rule(
                "decimal",
                column.id,
                f"({c} IS NOT NULL{empty_text} AND TRY_CAST({digits} AS {DECIMAL_TYPE}) IS NULL)",
                f"{column.id} must be a decimal number (digits, optional '-', '.' and E exponent) "
                f"within DECIMAL(38,{DECIMAL_SCALE})",
            )
        )
        if source_type not in _INTEGER_TYPES:
            rules.append(
                Rule(
                    "decimal_scale",
                    column.id,
                    _too_many_fraction_digits(digits),
                    f"{column.id} has more than {DECIMAL_SCALE} fraction digits; storing it would round it",
                )
            )
    if text and column.data_type is DataType.DATETIME:
        rules.append(
            Rule(
                "datetime_format",
                column.id,
                f"({c} IS NOT NULL AND {c} <> '' AND TRY_STRPTIME({c}, '{FOCUS_TIMESTAMP_FORMAT}') IS NULL)",
                f"{column.id} must be a UTC date/time written YYYY-MM-DDTHH:MM:SSZ (no offset, no fraction)",
            )
        )
    if column.data_type is DataType.JSON and (text or source_type == "JSON"):
        # TRY_CAST, not json_valid() AND json_type(): DuckDB need not short-circuit, and json_type raises.
        condition = (
            f"({c} IS NOT NULL AND {c} <> '' AND json_type(TRY_CAST({c} AS JSON)) IS DISTINCT FROM 'OBJECT')"
            if text
            else f"({c} IS NOT NULL AND json_type({c}) <> 'OBJECT')"
        )
        rules.append(
            Rule(
                "json_object",
                column.id,
                condition,
                f"{column.id} must be a serialized JSON object",
            )
        )
    if column.allowed_values and text:
        values = ", ".join("'" + v.replace("'", "''") + "'" for v in column.allowed_values)
        rules.append(
            Rule(
                "allowed_values",
                column.id,
                f"({c} IS NOT NULL AND {c} <> '' AND {c} NOT IN ({values}))",
                f"{column.id} must be one of the FOCUS 1.3 allowed values",
            )
        )
    if column.id == "BillingCurrency" and source_type == "VARCHAR":
        rules.append(
            Rule(
                "currency_code",
                column.id,
                f"({c} IS NOT NULL AND NOT regexp_full_match({c}, '[A-Z]{{3}}'))",
                "BillingCurrency must be an ISO 4217 three-letter code such as USD",
            )
        )
    return rules


def _too_many_fraction_digits(c: str) -> str:
    """Flags a decimal text whose exact value has more fraction digits than the store keeps.

    Plain notation: a non-zero digit after the 18th fraction digit (trailing zeros lose nothing); the
    cheap length test first spares the regular expression for nearly every value. E notation
    (``1.5E-20``, which a cast would silently round to 0): mantissa fraction digits minus the exponent
    minus the mantissa's trailing zeros. An exponent too large to read is flagged.
    """
    mantissa = f"regexp_replace(regexp_extract({c}, '^[^eE]*'), '[^0-9]', '', 'g')"
    fraction = f"length(regexp_extract({c}, '\\.([0-9]*)[eE]', 1))"
    exponent = f"TRY_CAST(regexp_extract({c}, '[eE]([+-]?[0-9]+)', 1) AS BIGINT)"
    trailing_zeros = f"(length({mantissa}) - length(rtrim({mantissa}, '0')))"
    scientific = (
        f"coalesce(rtrim({mantissa}, '0') <> '' AND {fraction} - {exponent} - {trailing_zeros} > {DECIMAL_SCALE}, true)"
    )
    plain = f"regexp_matches({c}, '\\.[0-9]{{{DECIMAL_SCALE}}}[0-9]*[1-9]')"
    return (
        f"({c} IS NOT NULL AND CASE WHEN contains({c}, 'e') OR contains({c}, 'E') THEN {scientific} "
        f"WHEN strpos({c}, '.') > 0 AND strlen({c}) - strpos({c}, '.') > {DECIMAL_SCALE} THEN {plain} ELSE false END)"
    )


def try_datetime(column_id: str, source_type: str) -> str:
    """A timestamp expression for a staged date/time column that yields NULL instead of failing."""
    c = quote(column_id)
    if source_type == "VARCHAR":
        return f"TRY_STRPTIME({c}, '{FOCUS_TIMESTAMP_FORMAT}')"
    if source_type == NULL_TYPE:
        return "NULL"
    return f"TRY_CAST({c} AS TIMESTAMP)"


# (start, end) pairs whose end must be after the start, per dataset.
PERIOD_PAIRS = {
    Dataset.COST_AND_USAGE: (("BillingPeriodStart", "BillingPeriodEnd"), ("ChargePeriodStart", "ChargePeriodEnd")),
    Dataset.CONTRACT_COMMITMENT: (
        ("ContractPeriodStart", "ContractPeriodEnd"),
        ("ContractCommitmentPeriodStart", "ContractCommitmentPeriodEnd"),
    ),
    Dataset.BILLING_PERIOD: (("BillingPeriodStart", "BillingPeriodEnd"),),
    Dataset.INVOICE_DETAIL: (("BillingPeriodStart", "BillingPeriodEnd"),),
}


def period_rule(start: str, end: str, types: dict[str, str]) -> Rule | None:
    """An end that is not after its start (times are start-inclusive, end-exclusive)."""
    if start not in types or end not in types:
        return None
    return Rule(
        "period_order",
        end,
        f"({try_datetime(end, types[end])} <= {try_datetime(start, types[start])})",
        f"{end} must be later than {start}",
    )
