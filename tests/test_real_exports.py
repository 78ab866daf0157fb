"""Real exports load: each quirk providers write, rebuilt from the AWS 1.3 sample, stores exactly the clean rows.

Every fixture rewrites the clean sample one way (a date/time form, a null spelling, a Parquet type, ...)
and must store exactly what the clean file stores: the same rows in the same order, every date/time the
same instant, JSON columns the same objects, per-currency Decimal sums equal. The report must name the
conversion; ``--strict`` must refuse it with its rule.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import shutil
import subprocess
import sys
from collections.abc import Callable
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import anyio
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
import pytest
from conftest import AWS_13, SAMPLES, decimal_sums, read_csv

from server.exports.writers import write_query
from server.sources.duckdb_source import DuckDBSource
from server.store.db import Store
from server.store.loader import LoadSummary, load_files
from server.store.normal_load import NormalLoad
from server.store.schema import CU_TABLE
from tools.catalog import DataType, cost_and_usage
from tools.source import CostFilters, Scope

pytestmark = pytest.mark.skipif(not SAMPLES.is_dir(), reason=f"shared samples not found at {SAMPLES}")

CU = cost_and_usage()
MONEY = tuple(c.id for c in CU.of_type(DataType.DECIMAL))
TIMES = ("BillingPeriodStart", "BillingPeriodEnd", "ChargePeriodStart", "ChargePeriodEnd")
JSON_COLUMNS = {c.id for c in CU.of_type(DataType.JSON)}
FOCUS_CLI = Path(sys.executable).parent / "focus-api"
Table = list[list[str]]


# -- helpers ------------------------------------------------------------------------------------


def sample() -> Table:
    with AWS_13.open(newline="", encoding="utf-8") as f:
        return list(csv.reader(f))


def to_csv(table: Table, delimiter: str = ",", newline: str = "\n") -> str:
    out = io.StringIO()
    csv.writer(out, delimiter=delimiter, lineterminator=newline).writerows(table)
    return out.getvalue()


def each(table: Table, column: str, change: Callable[[str], str]) -> Table:
    """The table with ``change`` applied to every non-empty value of ``column``."""
    at = table[0].index(column)
    return [table[0], *([*r[:at], change(r[at]) if r[at] else r[at], *r[at + 1 :]] for r in table[1:])]


def times(table: Table, change: Callable[[str], str]) -> Table:
    for column in TIMES:
        table = each(table, column, change)
    return table


def stored_rows(store: Store) -> list[tuple[Any, ...]]:
    """Every FOCUS column of every stored row in _row_id order; JSON parsed, so objects compare as objects."""
    ids = ", ".join(f'"{c}"' for c in CU.ids)
    rows = store.con.execute(f"SELECT {ids} FROM {CU_TABLE} ORDER BY _row_id").fetchall()
    at = [i for i, c in enumerate(CU.ids) if c in JSON_COLUMNS]
    return [tuple(json.loads(v) if i in at and v is not None else v for i, v in enumerate(r)) for r in rows]


def store_sums(store: Store) -> dict[tuple[str, str], Decimal]:
    cur = store.con.execute(f"SELECT BillingCurrency, {', '.join(MONEY)} FROM {CU_TABLE}")
    names = [d[0] for d in cur.description]
    return decimal_sums([dict(zip(names, r, strict=True)) for r in cur.fetchall()], MONEY)


@pytest.fixture(scope="module")
def clean(tmp_path_factory: pytest.TempPathFactory) -> list[tuple[Any, ...]]:
    """What the clean sample stores."""
    store = Store(tmp_path_factory.mktemp("clean"))
    try:
        assert load_files(store, [AWS_13]).ok
        return stored_rows(store)
    finally:
        store.close()


def load(store: Store, path: Path, **options: Any) -> LoadSummary:
    return load_files(store, [path], **options)


def kinds(summary: LoadSummary) -> set[tuple[str | None, str]]:
    return {(c.column, c.kind) for f in summary.files for c in f.conversions}


def assert_same_as_clean(store: Store, clean: list[tuple[Any, ...]]) -> None:
    got = stored_rows(store)
    assert len(got) == len(clean) == 100
    assert store_sums(store) == decimal_sums([dict(zip(CU.ids, r, strict=True)) for r in clean], MONEY)
    at = [CU.ids.index(c) for c in TIMES]
    assert [[r[i] for i in at] for r in got] == [[r[i] for i in at] for r in clean], "an instant changed"
    assert got == clean


# -- CSV quirks: each stores exactly the clean rows ---------------------------------------------


def plus_0530(utc: str) -> str:
    """The same instant written in India's local time."""
    local = datetime.strptime(utc, "%Y-%m-%dT%H:%M:%SZ") + timedelta(hours=5, minutes=30)
    return local.strftime("%Y-%m-%dT%H:%M:%S") + "+05:30"


def null_spellings(table: Table) -> Table:
    spell = ("NULL", "null", "\\N")
    return [table[0], *([spell[i % 3] if v == "" else v for v in r] for i, r in enumerate(table[1:]))]


def json_null_and_braceless_tags(table: Table) -> Table:
    at = table[0].index("AllocatedTags")
    # A quoted "null" is JSON's null (an unquoted null is a null spelling of the CSV: another quirk).
    table = [table[0], *([*r[:at], r[at] or "JSON-NULL", *r[at + 1 :]] for r in table[1:])]
    return each(table, "Tags", lambda v: v[1:-1] if v != "{}" else v)


PREVIEW = {
    "ProviderName": "Provider",
    "PublisherName": "Publisher",
    "InvoiceIssuerName": "InvoiceIssuer",
    "RegionId": "Region",
    "ConsumedQuantity": "UsageQuantity",
    "ConsumedUnit": "UsageUnit",
}


CSV_QUIRKS: dict[str, tuple[Callable[[], str | bytes], str, set[str]]] = {
    # name: (the file's content, its suffix, conversion kinds the report must name)
    "space, no zone (MySQL dump)": (
        lambda: to_csv(times(sample(), lambda v: v.replace("T", " ").rstrip("Z"))),
        ".csv",
        {"datetime_space_no_zone"},
    ),
    "milliseconds and Z (AWS CSV)": (
        lambda: to_csv(times(sample(), lambda v: v.replace("Z", ".000Z"))),
        ".csv",
        {"datetime_fraction"},
    ),
    "no seconds, Z (Azure 1.0)": (
        lambda: to_csv(times(sample(), lambda v: v.replace(":00Z", "Z"))),
        ".csv",
        {"datetime_no_seconds"},
    ),
    "no seconds, no zone": (
        lambda: to_csv(times(sample(), lambda v: v.replace(":00Z", ""))),
        ".csv",
        {"datetime_no_seconds_no_zone"},
    ),
    "space and UTC (BigQuery)": (
        lambda: to_csv(times(sample(), lambda v: v.replace("T", " ").replace("Z", " UTC"))),
        ".csv",
        {"datetime_space_utc_suffix"},
    ),
    "+00:00 with nanosecond zeros": (
        lambda: to_csv(times(sample(), lambda v: v.replace("Z", ".000000000+00:00"))),
        ".csv",
        {"datetime_fraction_offset"},
    ),
    "a +05:30 offset converted to UTC": (
        lambda: to_csv(times(sample(), plus_0530)),
        ".csv",
        {"datetime_offset"},
    ),
    "unquoted NULL, null and \\N": (
        lambda: to_csv(null_spellings(sample())),
        ".csv",
        {"null_token"},
    ),
    "allowed values in other case and hyphens": (
        lambda: to_csv(
            each(
                each(sample(), "ChargeCategory", str.lower),
                "ChargeFrequency",
                lambda v: v.replace("-B", "-b").replace("-T", "-t"),
            )
        ),
        ".csv",
        {"allowed_value_spelling"},
    ),
    "E notation and a leading +": (
        lambda: to_csv(each(each(sample(), "BilledCost", lambda v: f"{Decimal(v):E}"), "ListCost", lambda v: "+" + v)),
        ".csv",
        {"exponent", "leading_plus"},
    ),
    "JSON null and brace-less Azure tags": (
        lambda: to_csv(json_null_and_braceless_tags(sample())).replace("JSON-NULL", '"null"'),
        ".csv",
        {"json_null", "json_braces_added"},
    ),
    "FOCUS 1.0-preview names": (
        lambda: to_csv(renamed(sample(), PREVIEW)),
        ".csv",
        {"column_renamed"},
    ),
    "lower-case names (Glue)": (
        lambda: to_csv(renamed(sample(), {c: c.lower() for c in sample()[0]})),
        ".csv",
        {"column_renamed"},
    ),
    "BOM, CRLF and semicolons": (
        lambda: b"\xef\xbb\xbf" + to_csv(sample(), delimiter=";", newline="\r\n").encode(),
        ".csv",
        {"delimiter"},
    ),
    "tabs, gzip": (lambda: gzip.compress(to_csv(sample(), delimiter="\t").encode()), ".csv.gz", {"delimiter"}),
    "lower-case currency": (lambda: to_csv(each(sample(), "BillingCurrency", str.lower)), ".csv", {"currency_case"}),
}


def renamed(table: Table, names: dict[str, str]) -> Table:
    return [[names.get(c, c) for c in table[0]], *table[1:]]


@pytest.mark.parametrize("quirk", list(CSV_QUIRKS), ids=list(CSV_QUIRKS))
def test_a_csv_quirk_stores_exactly_the_clean_rows_and_is_reported(
    store: Store, tmp_path: Path, clean: list[tuple[Any, ...]], quirk: str
) -> None:
    make, suffix, expected = CSV_QUIRKS[quirk]
    content = make()
    path = tmp_path / f"quirk{suffix}"
    path.write_bytes(content.encode() if isinstance(content, str) else content)

    summary = load(store, path)

    assert summary.ok, summary.as_json()["errors"]
    assert expected <= {k for _, k in kinds(summary)}, kinds(summary)
    assert_same_as_clean(store, clean)


def test_every_conversion_is_counted_per_column_with_its_first_example(store: Store, tmp_path: Path) -> None:
    path = tmp_path / "space.csv"
    path.write_text(to_csv(times(sample(), lambda v: v.replace("T", " ").rstrip("Z"))))

    (report,) = load(store, path).files

    conversions = {c.column: c for c in report.conversions}
    assert set(conversions) == set(TIMES)
    start = conversions["ChargePeriodStart"]
    assert (start.kind, start.count) == ("datetime_space_no_zone", 100)
    first = read_csv(AWS_13)[0]["ChargePeriodStart"]
    assert start.example == {"row": 1, "value": first.replace("T", " ").rstrip("Z"), "normalised": first}
    assert start.as_json()["message"] == "a date/time with a space for T, no zone (read as UTC)"


def test_a_quoted_null_in_a_string_column_stays_text(store: Store, tmp_path: Path) -> None:
    table = sample()
    at = table[0].index("ResourceName")
    table[3][at] = "MARK"
    path = tmp_path / "quoted.csv"
    path.write_text(to_csv(table).replace("MARK", '"NULL"'))

    assert load(store, path).ok
    assert store.con.execute(f"SELECT count(*) FROM {CU_TABLE} WHERE ResourceName = 'NULL'").fetchone() == (1,)


def test_an_offset_converts_to_the_same_instant_to_the_microsecond(store: Store, tmp_path: Path) -> None:
    table = sample()
    at = table[0].index("ChargePeriodStart")
    table[1][at] = "2026-04-30T19:00:00.123456-05:00"
    path = tmp_path / "micro.csv"
    path.write_text(to_csv(table))

    (report,) = load(store, path).files

    assert report.status == "loaded"
    got = store.con.execute(f"SELECT ChargePeriodStart FROM {CU_TABLE} WHERE microsecond(ChargePeriodStart) > 0")
    assert got.fetchall() == [(datetime(2026, 5, 1, 0, 0, 0, 123456),)]
    assert ("ChargePeriodStart", "datetime_subsecond_offset") in kinds(LoadSummary([report]))


@pytest.mark.parametrize(
    ("value", "rule"),
    [
        ("2026-05-01T00:00:00.0000001Z", "datetime_format"),  # a nanosecond part would be dropped
        ("2026-05-01", "datetime_format"),  # a date alone is not an instant
        ("2026-13-01T00:00:00Z", "datetime_format"),
    ],
)
def test_a_date_time_that_cannot_be_read_exactly_is_refused(
    store: Store, tmp_path: Path, value: str, rule: str
) -> None:
    table = sample()
    table[4][table[0].index("ChargePeriodStart")] = value
    path = tmp_path / "bad-time.csv"
    path.write_text(to_csv(table))

    (report,) = load(store, path).files

    assert report.status == "refused"
    (problem,) = report.problems
    assert (problem.rule, problem.column, problem.examples) == (rule, "ChargePeriodStart", [{"row": 4, "value": value}])


def test_an_extra_column_is_kept_as_x_and_reported(store: Store, tmp_path: Path, clean: list[tuple[Any, ...]]) -> None:
    table = sample()
    table = [["Id", *table[0]], *([str(i), *r] for i, r in enumerate(table[1:], start=1))]
    path = tmp_path / "id.csv"
    path.write_text(to_csv(table))

    summary = load(store, path)

    assert ("x_Id", "column_kept_as_custom") in kinds(summary)
    assert_same_as_clean(store, clean)
    ids = store.con.execute(f"SELECT x_Id FROM {CU_TABLE}").fetchall()
    assert sorted(int(i) for (i,) in ids) == list(range(1, 101))


def test_a_value_outside_the_list_is_refused_in_charge_category_and_kept_elsewhere(
    store: Store, tmp_path: Path
) -> None:
    table = sample()
    table[2][table[0].index("ChargeClass")] = "Refund"
    ok = tmp_path / "class.csv"
    ok.write_text(to_csv(table))
    table[3][table[0].index("ChargeCategory")] = "Refund"
    bad = tmp_path / "category.csv"
    bad.write_text(to_csv(table))

    assert ("ChargeClass", "value_not_allowed") in kinds(load(store, ok))
    assert store.con.execute(f"SELECT count(*) FROM {CU_TABLE} WHERE ChargeClass = 'Refund'").fetchone() == (1,)
    (report,) = load(store, bad).files
    assert [(p.rule, p.column, p.examples) for p in report.problems] == [
        ("allowed_values", "ChargeCategory", [{"row": 3, "value": "Refund"}])
    ]


def test_a_mandatory_null_loads_as_a_conformance_gap_except_where_the_tools_need_the_value(
    store: Store, tmp_path: Path
) -> None:
    table = sample()
    table[5][table[0].index("ContractedCost")] = ""
    gap = tmp_path / "gap.csv"
    gap.write_text(to_csv(table))
    table[6][table[0].index("BilledCost")] = "NULL"
    critical = tmp_path / "critical.csv"
    critical.write_text(to_csv(table))

    assert ("ContractedCost", "conformance_gap") in kinds(load(store, gap))
    assert store.con.execute(f"SELECT count(*) FROM {CU_TABLE} WHERE ContractedCost IS NULL").fetchone() == (1,)
    (report,) = load(store, critical).files
    assert [(p.rule, p.column, p.count) for p in report.problems] == [("not_null", "BilledCost", 1)]


def test_a_json_value_that_is_no_object_is_refused_with_the_value(store: Store, tmp_path: Path) -> None:
    table = sample()
    table[7][table[0].index("Tags")] = '["prod", "dev"]'
    path = tmp_path / "array.csv"
    path.write_text(to_csv(table))

    (report,) = load(store, path).files

    assert [(p.rule, p.examples) for p in report.problems] == [
        ("json_object", [{"row": 7, "value": '["prod", "dev"]'}])
    ]


@pytest.mark.parametrize(
    ("written", "stored"),
    [("388875000000000000000E-18", "388.875"), ("-2.50E+3", "-2500"), ("1.5E-17", "0.000000000000000015")],
)
def test_e_notation_stores_its_exact_value_whatever_the_mantissa_length(
    store: Store, tmp_path: Path, written: str, stored: str
) -> None:
    # DuckDB's own cast overflows on a 21-digit mantissa although the value fits DECIMAL(38,18).
    path = tmp_path / "e.csv"
    path.write_text(to_csv(each(sample(), "ListCost", lambda v: written)))

    assert load(store, path).ok
    assert store.con.execute(f"SELECT DISTINCT ListCost FROM {CU_TABLE} WHERE ListCost IS NOT NULL").fetchall() == [
        (Decimal(stored),)
    ]


@pytest.mark.parametrize("written", ["E5", "+E5", "1.5e", "1E99", "12,50"])
def test_a_decimal_that_is_no_number_is_refused_with_its_value(store: Store, tmp_path: Path, written: str) -> None:
    table = sample()
    table[3][table[0].index("ListCost")] = written
    path = tmp_path / "nan.csv"
    path.write_text(to_csv(table))

    (report,) = load(store, path).files

    assert [(p.rule, p.examples) for p in report.problems] == [("decimal", [{"row": 3, "value": written}])]


def test_more_fraction_digits_than_kept_are_refused_only_when_they_would_change_the_number(
    store: Store, tmp_path: Path
) -> None:
    table = sample()
    at = table[0].index("ListCost")
    table[1][at] = "1.2500000000000000000000"  # zeros only: the same number
    table[2][at] = "1.2500000000000000001"
    path = tmp_path / "digits.csv"
    path.write_text(to_csv(table))

    (report,) = load(store, path).files

    assert [(p.rule, p.examples) for p in report.problems] == [
        ("decimal_scale", [{"row": 2, "value": "1.2500000000000000001"}])
    ]


# -- Parquet quirks -----------------------------------------------------------------------------


def arrow_sample() -> pa.Table:
    header = sample()[0]
    return pa_csv.read_csv(
        AWS_13, convert_options=pa_csv.ConvertOptions(column_types=dict.fromkeys(header, pa.string()))
    )


def with_column(table: pa.Table, name: str, values: pa.Array) -> pa.Table:
    return table.set_column(table.schema.get_field_index(name), name, values)


def money_as(table: pa.Table, make: Callable[[str], Any], type_: pa.DataType) -> pa.Table:
    for column in MONEY:
        values = table.column(column).to_pylist()
        table = with_column(table, column, pa.array([make(v) if v else None for v in values], type_))
    return table


def times_as(table: pa.Table, type_: pa.DataType) -> pa.Table:
    """The date/times as Parquet timestamps of ``type_`` (the same instants; a zone only changes the writing)."""
    for column in TIMES:
        values = [datetime.strptime(v, "%Y-%m-%dT%H:%M:%SZ") for v in table.column(column).to_pylist()]
        utc = pa.timestamp("us", tz="UTC") if type_.tz else pa.timestamp("us")
        table = with_column(table, column, pa.array(values, utc).cast(type_))
    return table


def tags_as_map(table: pa.Table) -> pa.Table:
    values = [list(json.loads(v).items()) if v else None for v in table.column("Tags").to_pylist()]
    return with_column(table, "Tags", pa.array(values, pa.map_(pa.string(), pa.string())))


def tags_as_key_values(table: pa.Table) -> pa.Table:
    kv = pa.struct([("key", pa.string()), ("value", pa.string()), ("x_type", pa.string())])
    values = [
        [{"key": k, "value": v, "x_type": "label"} for k, v in json.loads(t).items()] if t else None
        for t in table.column("Tags").to_pylist()
    ]
    return with_column(table, "Tags", pa.array(values, pa.list_(kv)))


def strings_as(table: pa.Table, change: Callable[[str], str]) -> pa.Table:
    for column in TIMES:
        table = with_column(table, column, pa.array([change(v) for v in table.column(column).to_pylist()]))
    return table


def empty_to_null(table: pa.Table) -> pa.Table:
    return pa.table(
        {n: pa.array([v or None for v in table.column(n).to_pylist()], pa.string()) for n in table.column_names}
    )


PARQUET_QUIRKS: dict[str, tuple[Callable[[], pa.Table], set[str]]] = {
    "DOUBLE costs (AWS)": (lambda: money_as(arrow_sample(), float, pa.float64()), {"binary_float"}),
    "DECIMAL(38,14) (Azure)": (lambda: money_as(arrow_sample(), Decimal, pa.decimal128(38, 14)), {"decimal_type"}),
    "DECIMAL(38,20)": (lambda: money_as(arrow_sample(), Decimal, pa.decimal128(38, 20)), {"decimal_type"}),
    "TIMESTAMP_MS (AWS)": (lambda: times_as(arrow_sample(), pa.timestamp("ms")), {"timestamp_no_zone"}),
    "TIMESTAMP_NS": (lambda: times_as(arrow_sample(), pa.timestamp("ns")), {"timestamp_no_zone"}),
    "TIMESTAMP_S": (lambda: times_as(arrow_sample(), pa.timestamp("s")), {"timestamp_no_zone"}),
    "TIMESTAMP with a zone": (
        lambda: times_as(arrow_sample(), pa.timestamp("us", tz="Asia/Kolkata")),
        {"timestamp_with_zone"},
    ),
    "date/time strings": (
        lambda: strings_as(arrow_sample(), lambda v: v.replace("T", " ").rstrip("Z")),
        {"datetime_space_no_zone"},
    ),
    "Tags as MAP (AWS)": (lambda: tags_as_map(arrow_sample()), {"json_map"}),
    "Tags as key/value structs (Google)": (lambda: tags_as_key_values(arrow_sample()), {"json_key_value_array"}),
    "real nulls in strings": (lambda: empty_to_null(arrow_sample()), set()),
}


@pytest.mark.parametrize("quirk", list(PARQUET_QUIRKS), ids=list(PARQUET_QUIRKS))
def test_a_parquet_quirk_stores_exactly_the_clean_rows_and_is_reported(
    store: Store, tmp_path: Path, clean: list[tuple[Any, ...]], quirk: str
) -> None:
    make, expected = PARQUET_QUIRKS[quirk]
    path = tmp_path / "quirk.parquet"
    pq.write_table(make(), path)

    summary = load(store, path)

    assert summary.ok, summary.as_json()["errors"]
    assert expected <= {k for _, k in kinds(summary)}, kinds(summary)
    assert_same_as_clean(store, clean)


def test_a_double_is_reported_as_binary_floating_point(store: Store, tmp_path: Path) -> None:
    pq.write_table(money_as(arrow_sample(), float, pa.float64()), tmp_path / "double.parquet")

    (report,) = load(store, tmp_path / "double.parquet").files

    billed = next(c for c in report.conversions if c.column == "BilledCost")
    assert billed.kind == "binary_float" and billed.count == 100
    assert "binary floating point" in billed.as_json()["message"]


def test_a_nanosecond_part_of_a_parquet_timestamp_is_refused(store: Store, tmp_path: Path) -> None:
    table = times_as(arrow_sample(), pa.timestamp("ns"))
    values = table.column("ChargePeriodEnd").cast(pa.int64()).to_pylist()
    values[9] += 1
    table = with_column(table, "ChargePeriodEnd", pa.array(values, pa.int64()).cast(pa.timestamp("ns")))
    pq.write_table(table, tmp_path / "ns.parquet")

    (report,) = load(store, tmp_path / "ns.parquet").files

    assert [(p.rule, p.column, p.count) for p in report.problems] == [("datetime_format", "ChargePeriodEnd", 1)]


# -- --strict -----------------------------------------------------------------------------------

STRICT_RULES = {
    "space, no zone (MySQL dump)": "datetime_format",
    "milliseconds and Z (AWS CSV)": "datetime_format",
    "no seconds, Z (Azure 1.0)": "datetime_format",
    "space and UTC (BigQuery)": "datetime_format",
    "a +05:30 offset converted to UTC": "datetime_format",
    "unquoted NULL, null and \\N": "decimal",
    "allowed values in other case and hyphens": "allowed_values",
    "JSON null and brace-less Azure tags": "json_object",
    "FOCUS 1.0-preview names": "unknown_column",
    "lower-case names (Glue)": "unknown_dataset",
    "BOM, CRLF and semicolons": "unknown_dataset",
    "lower-case currency": "currency_code",
}


@pytest.mark.parametrize("quirk", list(STRICT_RULES), ids=list(STRICT_RULES))
def test_strict_refuses_each_quirk_with_its_rule(store: Store, tmp_path: Path, quirk: str) -> None:
    make, suffix, _ = CSV_QUIRKS[quirk]
    content = make()
    path = tmp_path / f"quirk{suffix}"
    path.write_bytes(content.encode() if isinstance(content, str) else content)

    (report,) = load(store, path, strict=True).files

    assert report.status == "refused"
    assert STRICT_RULES[quirk] in [p.rule for p in report.problems]
    assert store.con.execute(f"SELECT count(*) FROM {CU_TABLE}").fetchone() == (0,)


@pytest.mark.parametrize(
    ("quirk", "rule"), [("Tags as MAP (AWS)", "wrong_type"), ("DECIMAL(38,14) (Azure)", "wrong_type")]
)
def test_strict_refuses_parquet_types_it_never_took(store: Store, tmp_path: Path, quirk: str, rule: str) -> None:
    pq.write_table(PARQUET_QUIRKS[quirk][0](), tmp_path / "q.parquet")

    (report,) = load(store, tmp_path / "q.parquet", strict=True).files

    assert rule in [p.rule for p in report.problems]


# -- a fixable quirk and an unfixable row -------------------------------------------------------


def mixed(tmp_path: Path) -> Path:
    table = times(sample(), lambda v: v.replace("T", " ").rstrip("Z"))
    table[9][table[0].index("BilledCost")] = "twelve"
    path = tmp_path / "mixed.csv"
    path.write_text(to_csv(table))
    return path


def completeness(store: Store) -> str:
    async def ask() -> str:
        return await DuckDBSource(store).completeness(CostFilters())

    return anyio.run(ask)


def test_a_file_with_a_quirk_and_an_unfixable_row_is_refused_whole_with_both_reported(
    store: Store, tmp_path: Path
) -> None:
    summary = load(store, mixed(tmp_path))

    (report,) = summary.files
    assert report.status == "refused"
    assert [(p.rule, p.column, p.examples) for p in report.problems] == [
        ("decimal", "BilledCost", [{"row": 9, "value": "twelve"}])
    ]
    assert ("ChargePeriodStart", "datetime_space_no_zone") in kinds(summary)
    assert store.con.execute(f"SELECT count(*) FROM {CU_TABLE}").fetchone() == (0,)
    assert store.con.execute("SELECT count(*) FROM loads").fetchone() == (0,)
    assert "REFUSED" in summary.verdict()


def test_quarantine_loads_the_good_rows_writes_the_bad_one_and_marks_the_period_partial(
    store: Store, tmp_path: Path
) -> None:
    summary = load(store, mixed(tmp_path), on_bad_rows="quarantine")

    (report,) = summary.files
    assert (report.status, report.rows, report.rejected_rows) == ("loaded", 99, 1)
    assert report.rejects_file is not None
    rejects = Path(report.rejects_file)
    assert rejects.parent == store.data_dir / "rejects"
    (rejected,) = read_csv(rejects)
    assert (rejected["row"], rejected["reasons"], rejected["BilledCost"]) == ("9", "BilledCost: decimal", "twelve")
    good = [r for i, r in enumerate(read_csv(AWS_13), start=1) if i != 9]
    assert store_sums(store) == decimal_sums(good, MONEY)
    assert completeness(store) == "Partial"
    assert summary.as_json()["rowsQuarantined"] == 1

    # A clean re-delivery of the same invoice scope replaces it: the period is whole again.
    assert load(store, AWS_13).ok
    assert completeness(store) == "Complete"


# -- the rest of the load -----------------------------------------------------------------------


def test_a_clean_file_is_loaded_in_one_pass_without_a_profile(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_profile(*args: object) -> None:
        raise AssertionError("a clean file was profiled")

    monkeypatch.setattr(NormalLoad, "profile", no_profile)

    (report,) = load(store, AWS_13).files

    assert (report.status, report.conversions) == ("loaded", [])


def test_the_same_content_as_csv_and_csv_gz_loads_once(store: Store, tmp_path: Path) -> None:
    plain = tmp_path / "a.csv"
    shutil.copyfile(AWS_13, plain)
    packed = tmp_path / "a.csv.gz"
    packed.write_bytes(gzip.compress(AWS_13.read_bytes()))

    summary = load_files(store, [plain, packed])

    assert [f.status for f in summary.files] == ["loaded", "skipped"]
    assert [p.rule for p in summary.files[1].problems] == ["duplicate_file"]
    assert store.con.execute(f"SELECT count(*) FROM {CU_TABLE}").fetchone() == (100,)


def test_the_load_history_in_schema_metadata_names_each_conversion(store: Store, tmp_path: Path) -> None:
    path = tmp_path / "lower.csv"
    path.write_text(to_csv(each(sample(), "ChargeCategory", str.lower)))
    assert load(store, path).ok

    async def history(scope: Scope) -> list[dict[str, Any]]:
        return (await DuckDBSource(store).stats(scope)).loads

    (entry,) = anyio.run(history, Scope())
    assert (entry["file"], entry["rows"]) == (str(path), 100)
    (conversion,) = entry["normalised"]
    assert (conversion["column"], conversion["kind"], conversion["count"]) == (
        "ChargeCategory",
        "allowed_value_spelling",
        100,
    )
    assert conversion["example"]["normalised"] in ("Usage", "Purchase", "Tax", "Credit", "Adjustment")
    assert anyio.run(history, Scope(billing_account_ids=frozenset({"1"}))) == []


def test_the_cli_json_report_and_flags(tmp_path: Path) -> None:
    path = mixed(tmp_path)
    base = [str(FOCUS_CLI), "load", "--data-dir", str(tmp_path / "data"), "--json"]

    refused = subprocess.run([*base, str(path)], capture_output=True, text=True, timeout=120, check=False)
    quarantined = subprocess.run(
        [*base, "--on-bad-rows", "quarantine", str(path)], capture_output=True, text=True, timeout=120, check=False
    )
    strict = subprocess.run([*base, "--strict", str(path)], capture_output=True, text=True, timeout=120, check=False)

    assert refused.returncode == 1, refused.stderr
    out = json.loads(refused.stdout)
    assert {e["rule"] for e in out["errors"]} == {"decimal"}
    assert {(n["column"], n["kind"]) for n in out["normalised"]} >= {("ChargePeriodStart", "datetime_space_no_zone")}
    assert quarantined.returncode == 0, quarantined.stderr
    assert json.loads(quarantined.stdout)["rowsQuarantined"] == 1
    assert strict.returncode == 1
    assert "datetime_format" in {e["rule"] for e in json.loads(strict.stdout)["errors"]}
    assert refused.stderr == ""  # not a terminal: no progress bar


# -- the official validator ---------------------------------------------------------------------


@pytest.mark.slow
def test_a_normalised_file_exported_to_csv_passes_the_validator_as_the_clean_source_does(
    store: Store, tmp_path: Path
) -> None:
    from test_exports import VALIDATOR, failing_rules

    if not VALIDATOR.exists() or shutil.which("bash") is None:
        pytest.skip(f"focus-validate not found at {VALIDATOR}")
    path = tmp_path / "quirky.csv"
    table = times(sample(), lambda v: v.replace("T", " ").replace("Z", " UTC"))
    table = each(each(table, "ChargeCategory", str.lower), "Tags", lambda v: v[1:-1] if v != "{}" else v)
    table = [["Id", *table[0]], *([str(i), *[v or "NULL" for v in r]] for i, r in enumerate(table[1:], start=1))]
    path.write_text(to_csv(table))
    assert load(store, path).ok
    exported = tmp_path / "normalised.csv"
    with store.open_cursor() as cur:
        write_query(cur, CU, list(CU.ids), CU_TABLE, [], [], "csv", exported, lambda: False)

    source_fails = failing_rules(AWS_13)
    export_fails = failing_rules(exported)

    assert export_fails <= source_fails, f"new failures: {sorted(export_fails - source_fails)}"


def test_on_a_terminal_the_bar_moves_by_bytes_and_the_report_is_a_table_with_a_verdict(
    store: Store, tmp_path: Path
) -> None:
    from rich.console import Console

    from server.store.load_console import BarProgress, print_report

    path = mixed(tmp_path)
    err = io.StringIO()
    with BarProgress([path, AWS_13], Console(file=err, force_terminal=True, width=120)) as bar:
        summary = load_files(store, [path, AWS_13], progress=bar)
        assert bar.done == path.stat().st_size + AWS_13.stat().st_size
    out = io.StringIO()
    print_report(summary, Console(file=out, width=200))

    text = out.getvalue()
    assert "refused: decimal" in text and "normalised: datetime_space_no_zone" in text
    assert "4 columns" in text  # one line for a kind met in many columns
    assert text.rstrip().splitlines()[-1].startswith("REFUSED: loaded 100 rows from 1 of 2 files; refused 100 rows")
