"""The normalising load's per-column SQL: how one file column becomes its exact FOCUS value, and what it noted.

For each column of a file this module builds a ``Plan``: ``value``, the SQL giving the store's typed
value (it never raises, whatever the input), and ``note``, a SQL text that is NULL for a value already
in its FOCUS form and otherwise names what was done to it (``datetime_space_no_zone``, ``null_token``,
...) or, prefixed with ``!``, the rule that refuses it (``!datetime_format``). Several notes of one value
are joined with ``+``. Column-level conversions (a Parquet DOUBLE, MAP or TIMESTAMP_MS column) are in
``type_kind``: every non-null value of the column went through it. A note reads the converted value as
``VALUE`` (the column computed once below the notes), never by repeating its expression.

Only conversions that cannot change a number or an instant are made: a date/time is read to the
microsecond or refused, a decimal with more digits than DECIMAL(38,18) keeps is refused unless the extra
digits are zeros, a DOUBLE is read from its shortest round-trip text, a value outside an allowed list is
mapped only when it differs from one allowed value by case, spaces, hyphens or underscores.

Canonical values take a cheap first branch (a CASE evaluates the later branches only for the rows that
reach them), so a clean file costs little more than under ``--strict``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from server.store.ingest_rules import _INTEGER_TYPES, _too_many_fraction_digits
from server.store.note_codes import CODES, DT_FROM
from server.store.schema import DECIMAL_SCALE, DECIMAL_TYPE, FOCUS_TIMESTAMP_FORMAT, quote
from tools.catalog import Column, Dataset, DataType, columns_introduced_in

# Null cannot be loaded in these: every total, filter and re-delivery depends on them (issue 19).
CRITICAL = frozenset(
    {
        "BilledCost",
        "EffectiveCost",
        "BillingCurrency",
        "ChargeCategory",
        "ChargePeriodStart",
        "ChargePeriodEnd",
        "BillingPeriodStart",
        "BillingPeriodEnd",
    }
)
# Refusing a value outside the list is kept only where the cost's meaning depends on it (a charge's
# category; the statuses that decide whether a period is final, an invoice counts, a commitment runs).
REFUSE_UNLISTED = frozenset(
    {"ChargeCategory", "BillingPeriodStatus", "InvoiceIssueStatus", "ContractCommitmentLifecycleStatus"}
)
# FOCUS 1.3 printed ContractApplied's element keys as ContractID / ContractCommitmentID (erratum #3 made
# them ...Id): a 1.3 file may carry either, and the store keeps the corrected names.
_LEGACY_KEYS = r'"Contract(Commitment)?ID"(\s*):'

_DT = (
    r"^([0-9]{4}-[0-9]{2}-[0-9]{2})([T ])([0-9]{2}:[0-9]{2})(?::([0-9]{2})(?:\.([0-9]{1,9}))?)?"
    r"(Z|[+-][0-9]{2}:?[0-9]{2}| ?UTC)?$"
)
_UTC_ZONES = "('', 'Z', 'UTC', ' UTC', '+00:00', '+0000', '-00:00', '-0000')"
_TS_UNITS = {"TIMESTAMP": "", "TIMESTAMP_MS": "ms", "TIMESTAMP_S": "s", "TIMESTAMP_NS": "ns"}


# In a note, the column's converted value (computed once, in the layer below the notes).
VALUE = "__value__"


class WrongType(Exception):
    """A Parquet column's type cannot hold the FOCUS type without loss."""


@dataclass(frozen=True, slots=True)
class Plan:
    target: str  # the store column (a FOCUS id or an x_ name)
    source: str  # the file column it is read from
    value: str
    note: str | None = None
    type_kind: str | None = None
    prep: dict[str, str] = field(default_factory=dict)  # helper columns the value and note read


def _sql_text(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _case(branches: list[tuple[str, str]]) -> str | None:
    """``CASE WHEN cond THEN code ...`` with code NULL meaning "nothing to note"; None when nothing can be.

    A code written as a quoted name (``'null_token'``) becomes its number (``CODES``).
    """
    while branches and branches[-1][1] == "NULL":  # a last "nothing to note" is what CASE gives anyway
        branches = branches[:-1]
    if not branches:
        return None

    def number(code: str) -> str:
        return str(CODES[code[1:-1]]) if code.startswith("'") else code

    return "CASE " + " ".join(f"WHEN {cond} THEN {number(code)}" for cond, code in branches) + " END"


def _null_branches(column: Column | None, c: str, csv: bool, text: bool, gaps: frozenset[str]) -> list[tuple[str, str]]:
    """The first branches of every note: a null token, a null where FOCUS wants a value."""
    empty = f"{c} IS NULL OR {c} = ''" if text else f"{c} IS NULL"
    if column is not None and not column.allows_nulls:
        if column.id in CRITICAL or column.id not in gaps:
            return [(empty, "'!not_null'")]
        if csv:
            return [(f"{c} IS NULL", "'null_token+conformance_gap'"), (empty, "'conformance_gap'")]
        return [(empty, "'conformance_gap'")]
    if csv:
        # The CSV reader yields SQL NULL only for an unquoted NULL, null or \N: an empty field is ''.
        return [(f"{c} IS NULL", "'null_token'"), (empty, "NULL")]
    return [(empty, "NULL")]


def plan(
    column: Column,
    source: str,
    source_type: str,
    *,
    csv: bool,
    slot: int,
    dataset: Dataset = Dataset.COST_AND_USAGE,
    legacy_keys: bool = False,
) -> Plan:
    """The plan of a FOCUS column read from ``source`` (of DuckDB type ``source_type``); WrongType if none.

    ``dataset`` decides which nulls are a provider's tolerated conformance gap; ``legacy_keys`` (files older
    than 1.4) accepts ContractApplied's 1.3 key spelling.
    """
    c = quote(source)
    text = source_type == "VARCHAR"
    nulls = _null_branches(column, c, csv, text, tolerated_gaps(dataset))
    match column.data_type:
        case DataType.DATETIME:
            return _datetime(column, c, source, source_type, nulls, slot)
        case DataType.DECIMAL:
            return _decimal(column, c, source, source_type, nulls, slot)
        case DataType.JSON:
            json_plan = _json(column, c, source, source_type, nulls, slot)
            return _recased(json_plan, c, source_type) if legacy_keys and column.id == "ContractApplied" else json_plan
        case DataType.STRING:
            return _string(column, c, source, source_type, nulls, slot)
    raise WrongType(f"column {column.id} has an unknown FOCUS type")


def plan_custom(target: str, source: str, source_type: str, *, csv: bool) -> Plan:
    """An x_ column: kept as text (nested Parquet values as JSON text)."""
    c = quote(source)
    nested = source_type.startswith(("MAP(", "STRUCT(")) or source_type.endswith("[]")
    value = f"CAST(to_json({c}) AS VARCHAR)" if nested else f"CAST({c} AS VARCHAR)"
    note = _case(_null_branches(None, c, csv, source_type == "VARCHAR", frozenset()))
    return Plan(target, source, value, note, "json_text" if nested else None)


# -- date/times -----------------------------------------------------------------------------------


def _datetime(column: Column, c: str, source: str, source_type: str, nulls: list[tuple[str, str]], slot: int) -> Plan:
    if source_type == "VARCHAR":
        parsed = quote(f"_p{slot}")
        canonical = f"TRY_STRPTIME({c}, '{FOCUS_TIMESTAMP_FORMAT}')"
        # Parsed only when the value is not already canonical: the regular expression is the costly part.
        groups = "['d', 't', 'hm', 's', 'f', 'z']"
        prep = {f"_p{slot}": f"CASE WHEN {canonical} IS NULL THEN regexp_extract({c}, '{_DT}', {groups}) END"}
        f = f"{parsed}.f"
        exact = f"(length({f}) <= 6 OR ltrim(substr({f}, 7), '0') = '')"
        local = (
            f"{parsed}.d || ' ' || {parsed}.hm || ':' || CASE WHEN {parsed}.s = '' THEN '00' ELSE {parsed}.s END "
            f"|| '.' || rpad({f}, 6, '0')"
        )
        slow = (
            f"CASE WHEN {parsed}.d = '' OR NOT {exact} THEN NULL WHEN {parsed}.z IN {_UTC_ZONES} "
            f"THEN TRY_CAST({local} AS TIMESTAMP) "
            f"ELSE timezone('UTC', TRY_CAST({local} || {parsed}.z AS TIMESTAMPTZ)) END"
        )
        # No parts means canonical (or null): only then is the canonical parse repeated.
        value = f"CASE WHEN {parsed} IS NULL THEN {canonical} ELSE {slow} END"
        note = _case(
            [
                *nulls,
                (f"{parsed} IS NULL", "NULL"),  # parsed only when not canonical
                (f"{VALUE} IS NULL", "'!datetime_format'"),
                # Which forms it used, from the parts: separator, seconds, fraction (f zero, F not), zone.
                ("true", _DT_FORM.format(p=parsed)),
            ]
        )
        return Plan(column.id, source, value, note, prep=prep)
    if source_type in _TS_UNITS:
        note_branches = list(nulls)
        if source_type == "TIMESTAMP_NS":
            # Microseconds are what the store keeps: a nanosecond part would be dropped, so it is refused.
            note_branches.append((f"epoch_ns({c}) % 1000 <> 0", "'!datetime_format'"))
        return Plan(column.id, source, f"CAST({c} AS TIMESTAMP)", _case(note_branches), "timestamp_no_zone")
    if source_type == "TIMESTAMP WITH TIME ZONE":
        return Plan(column.id, source, f"timezone('UTC', {c})", _case(nulls), "timestamp_with_zone")
    raise WrongType(_wrong(column, source_type))


# A date/time's form as a number: space (1) + no seconds (2) + fraction (4: zero, 8: not) + zone (12: none,
# 24: UTC, 36: an offset; Z is 0), plus DT_FROM.
_DT_FORM = (
    f"({DT_FROM} + if({{p}}.t = ' ', 1, 0) + if({{p}}.s = '', 2, 0) "
    "+ CASE WHEN {p}.f = '' THEN 0 WHEN ltrim({p}.f, '0') = '' THEN 4 ELSE 8 END "
    "+ CASE WHEN {p}.z = '' THEN 12 WHEN {p}.z = 'Z' THEN 0 WHEN {p}.z IN ('UTC', ' UTC') THEN 24 ELSE 36 END)"
)


# -- decimals -------------------------------------------------------------------------------------


def _decimal(column: Column, c: str, source: str, source_type: str, nulls: list[tuple[str, str]], slot: int) -> Plan:
    digits = c
    type_kind = None
    if source_type in _INTEGER_TYPES:
        return Plan(column.id, source, f"CAST({c} AS {DECIMAL_TYPE})", _case(nulls))
    if source_type.startswith("DECIMAL("):
        precision, scale = (int(x) for x in source_type[len("DECIMAL(") : -1].split(","))
        if scale <= DECIMAL_SCALE and precision - scale <= 38 - DECIMAL_SCALE:
            return Plan(column.id, source, f"CAST({c} AS {DECIMAL_TYPE})", _case(nulls))
        type_kind, digits = "decimal_type", f"CAST({c} AS VARCHAR)"
    elif source_type in ("DOUBLE", "FLOAT"):
        # The shortest decimal text that round-trips the binary value: what the writer meant.
        type_kind, digits = "binary_float", f"CAST({c} AS VARCHAR)"
    elif source_type != "VARCHAR":
        raise WrongType(_wrong(column, source_type))
    value = f"TRY_CAST(NULLIF({digits}, '') AS {DECIMAL_TYPE})"
    prep = {}
    if source_type == "VARCHAR":
        # DuckDB casts an E-notation text through its mantissa, which overflows DECIMAL(38,18) for exact
        # values such as 388875000000000000000E-18 (388.875): the point is moved in the text instead.
        e = quote(f"_e{slot}")
        parts = f"regexp_extract({c}, '^\\s*([+-]?)([0-9]*)\\.?([0-9]*)[eE]([+-]?[0-9]+)\\s*$', ['s', 'i', 'f', 'x'])"
        # The parts derived once per value (a one-element list_transform names the match for the lambda).
        derived = (
            "{'s': m.s, 'd': m.i || m.f, 'z': length(m.i || m.f) - length(rtrim(m.i || m.f, '0')), "
            "'f': length(m.f), 'x': TRY_CAST(m.x AS INTEGER), "
            "'p': CASE WHEN m.i || m.f <> '' THEN length(m.i) + TRY_CAST(m.x AS INTEGER) END}"
        )
        prep[f"_e{slot}"] = (
            f"CASE WHEN contains({c}, 'e') OR contains({c}, 'E') THEN "
            f"list_transform([{parts}], lambda m: {derived})[1] END"
        )
        d, point = f"{e}.d", f"{e}.p"
        plain = (
            f"CASE WHEN {point} IS NULL OR abs({point}) > 60 THEN NULL ELSE {e}.s || CASE "
            f"WHEN {point} <= 0 THEN '0.' || repeat('0', -{point}) || {d} "
            f"WHEN {point} >= length({d}) THEN {d} || repeat('0', {point} - length({d})) "
            f"ELSE {d}[1:{point}] || '.' || {d}[{point} + 1:] END END"
        )
        value = f"TRY_CAST(CASE WHEN {e} IS NULL THEN NULLIF({c}, '') ELSE {plain} END AS {DECIMAL_TYPE})"
        # Fraction digits of the exact value, from the parts (no second regular expression per value).
        significant = f"({e}.z < length({d}))"
        places = f"{e}.f - {e}.x - {e}.z"
        plain_scale = (
            f"(strpos({c}, '.') > 0 AND strlen({c}) - strpos({c}, '.') > {DECIMAL_SCALE} "
            f"AND regexp_matches({c}, '\\.[0-9]{{{DECIMAL_SCALE}}}[0-9]*[1-9]'))"
        )
        rounds = (
            f"CASE WHEN {e} IS NULL THEN {plain_scale} "
            f"ELSE coalesce({significant} AND {places} > {DECIMAL_SCALE}, true) END"
        )
    else:
        rounds = _too_many_fraction_digits(digits)
    branches = [
        *nulls,
        (f"{VALUE} IS NULL", "'!decimal'"),
        (rounds, "'!decimal_scale'"),
    ]
    if source_type == "VARCHAR":
        # Cheap tests first, in the order of the CASE: most values stop at the first or second.
        space = "(9, 10, 13, 32)"
        branches += [
            (f"{quote(f'_e{slot}')} IS NOT NULL", "'exponent'"),
            (f"starts_with({c}, '+')", "'leading_plus'"),
            (f"ascii({c}) IN {space} OR ascii({c}[-1:]) IN {space}", "'whitespace'"),
        ]
    return Plan(column.id, source, value, _case(branches), type_kind, prep=prep)


# -- JSON -----------------------------------------------------------------------------------------


def _json(column: Column, c: str, source: str, source_type: str, nulls: list[tuple[str, str]], slot: int) -> Plan:
    if source_type.startswith("MAP(VARCHAR,"):
        return Plan(column.id, source, f"to_json({c})", _case(nulls), "json_map")
    if source_type.startswith("STRUCT(") and source_type.endswith(")[]") and _has_key_value(source_type):
        keys = f"list_transform({c}, lambda x: x.key)"
        unique = f"(len(list_distinct({keys})) = len({c}) AND len(list_filter({keys}, lambda k: k IS NULL)) = 0)"
        pairs = f"map_from_entries(list_transform({c}, lambda x: {{'k': x.key, 'v': x.value}}))"
        value = f"CASE WHEN {unique} THEN to_json({pairs}) END"
        note = _case([*nulls, (f"NOT {unique}", "'!json_object'")])
        return Plan(column.id, source, value, note, "json_key_value_array")
    if source_type.startswith("STRUCT(") and not source_type.endswith("]"):
        return Plan(column.id, source, f"to_json({c})", _case(nulls), "json_struct")
    if source_type not in ("VARCHAR", "JSON"):
        raise WrongType(_wrong(column, source_type))
    j = quote(f"_j{slot}")
    w = quote(f"_w{slot}")
    if source_type == "VARCHAR":
        parsed = f"TRY_CAST(NULLIF({c}, '') AS JSON)"
        # Azure's legacy tags: the object's members without the braces. Tried only where the text is no JSON.
        braced = f"CASE WHEN {parsed} IS NULL AND {c} <> '' THEN TRY_CAST('{{' || {c} || '}}' AS JSON) END"
        prep = {f"_j{slot}": parsed, f"_w{slot}": braced}
    else:
        prep = {f"_j{slot}": c, f"_w{slot}": "CAST(NULL AS JSON)"}
    value = (
        f"CASE WHEN json_type({j}) = 'OBJECT' THEN {j} WHEN json_type({w}) = 'OBJECT' THEN {w} "
        f"WHEN json_type({j}) = 'NULL' THEN NULL END"
    )
    note = _case(
        [
            *nulls,
            (f"json_type({j}) = 'OBJECT'", "NULL"),
            (f"json_type({w}) = 'OBJECT'", "'json_braces_added'"),
            (f"json_type({j}) = 'NULL'", "'json_null'"),
            ("true", "'!json_object'"),
        ]
    )
    return Plan(column.id, source, value, note, prep=prep)


def _recased(p: Plan, c: str, source_type: str) -> Plan:
    """A ContractApplied plan that writes the 1.3 key spelling ContractID / ContractCommitmentID as ...Id."""
    raw = c if source_type == "VARCHAR" else f"CAST(to_json({c}) AS VARCHAR)"
    pattern = _sql_text(_LEGACY_KEYS)
    value = f"CAST(regexp_replace(CAST(({p.value}) AS VARCHAR), {pattern}, '\"Contract\\1Id\"\\2:', 'g') AS JSON)"
    recased = _case([(f"regexp_matches({raw}, {pattern})", "'json_key_recased'")])
    # The recasing is reported only for a value nothing else was noted on (a refusal or a null wins).
    note = recased if p.note is None else f"coalesce({p.note}, {recased})"
    return Plan(p.target, p.source, value, note, p.type_kind, p.prep)


def _has_key_value(source_type: str) -> bool:
    # DuckDB quotes the names in the type text: STRUCT("key" VARCHAR, "value" VARCHAR, x_type VARCHAR)[]
    return bool(re.search(r'[(, ]"?key"? VARCHAR\b', source_type)) and bool(re.search(r'[(, ]"?value"? ', source_type))


# -- strings --------------------------------------------------------------------------------------


def _string(column: Column, c: str, source: str, source_type: str, nulls: list[tuple[str, str]], slot: int) -> Plan:
    if source_type in _INTEGER_TYPES:
        # OCI writes BillingAccountId as a number: its digits are the identifier.
        return Plan(column.id, source, f"CAST({c} AS VARCHAR)", _case(nulls), "integer_as_text")
    if source_type != "VARCHAR":
        raise WrongType(_wrong(column, source_type))
    value = f"NULLIF({c}, '')"
    branches = list(nulls)
    if column.allowed_values:
        listed = "(" + ", ".join(_sql_text(v) for v in column.allowed_values) + ")"
        # The allowed value a spelling stands for, looked up once per row and only off the list.
        spelt = quote(f"_a{slot}")
        prep = {f"_a{slot}": f"CASE WHEN {c} NOT IN {listed} THEN {_spelling_lookup(c, column.allowed_values)} END"}
        refuse = column.id in REFUSE_UNLISTED
        value = f"coalesce({spelt}, NULLIF({c}, ''))"
        branches += [
            (f"{c} IN {listed}", "NULL"),
            (f"{spelt} IS NOT NULL", "'allowed_value_spelling'"),
            ("true", "'!allowed_values'" if refuse else "'value_not_allowed'"),
        ]
        return Plan(column.id, source, value, _case(branches), prep=prep)
    elif column.id == "BillingCurrency":
        value = f"CASE WHEN regexp_full_match({c}, '[A-Za-z]{{3}}') THEN upper({c}) ELSE NULLIF({c}, '') END"
        branches += [
            (f"regexp_full_match({c}, '[A-Z]{{3}}')", "NULL"),
            (f"regexp_full_match({c}, '[a-zA-Z]{{3}}')", "'currency_case'"),
            ("true", "'!currency_code'"),
        ]
    return Plan(column.id, source, value, _case(branches))


def spelling_key(text: str) -> str:
    return re.sub(r"[ _-]+", "", text).lower()


def _spelling_lookup(c: str, allowed: tuple[str, ...]) -> str:
    """SQL: the allowed value ``c`` differs from only by case, spaces, hyphens or underscores, else NULL."""
    keys: dict[str, list[str]] = {}
    for v in allowed:
        keys.setdefault(spelling_key(v), []).append(v)
    # A key shared by two allowed values would be a guess: such spellings are not mapped.
    entries = ", ".join(f"{_sql_text(k)}: {_sql_text(vs[0])}" for k, vs in keys.items() if len(vs) == 1)
    key = f"lower(replace(replace(replace({c}, ' ', ''), '-', ''), '_', ''))"
    return f"(MAP {{{entries}}}[{key}])"


def _wrong(column: Column, source_type: str) -> str:
    return (
        f"column {column.id} is {source_type} in the file, which cannot hold FOCUS {column.data_type.value} "
        "values exactly"
    )


def tolerated_gaps(dataset: Dataset) -> frozenset[str]:
    """Non-nullable columns of ``dataset`` whose nulls are loaded and reported as a conformance gap.

    Cost and Usage and Contract Commitment: ``_GAP_OK`` (Contract Commitment also the descriptive columns
    FOCUS 1.4 added; its ids stay refused). Billing Period and Invoice Detail: none, since they are the
    reference an invoice is reconciled against.
    """
    if dataset is Dataset.COST_AND_USAGE:
        return _GAP_OK
    if dataset is Dataset.CONTRACT_COMMITMENT:
        return _GAP_OK | columns_introduced_in("1.4", dataset)
    return frozenset()


# Non-nullable columns whose nulls are loaded and reported (a provider's documented conformance gap);
# the others of the catalog's non-nullable columns stay refused (CRITICAL, and the Contract Commitment ids).
_GAP_OK = frozenset(
    {
        "BillingAccountId",
        "BillingAccountType",
        "ChargeFrequency",
        "ContractedCost",
        "InvoiceIssuerName",
        "ListCost",
        "ProviderName",
        "PublisherName",
        "ServiceProviderName",
        "ServiceCategory",
        "ServiceName",
        "ServiceSubcategory",
    }
)
