"""``focus-api load``: the samples load exactly, broken files are refused whole, re-deliveries replace.

Broken inputs are built in tmp_path from the real sample text (one cell edited, one row cut, ...), so
each test shows the smallest change that must be refused.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import shutil
import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
import pytest
from conftest import (
    AWS_12,
    AWS_13,
    AWS_CC,
    AWS_CREDITS,
    CONSOLIDATED,
    GCP_12,
    SAMPLES,
    decimal_sums,
    read_csv,
)
from conftest import write_typed_parquet as typed_parquet

from server.store.db import Store
from server.store.loader import LoadSummary, Problem, expand_paths, load_files
from server.store.schema import CC_TABLE, CU_TABLE
from server.store.strict_load import FileLoad
from tools.catalog import Catalog, Dataset, DataType, columns_introduced_in, contract_commitment, cost_and_usage
from tools.catalog import stored as stored_layout

FOCUS_CLI = Path(sys.executable).parent / "focus-api"
CU = cost_and_usage()
CC = contract_commitment()


# -- helpers ------------------------------------------------------------------------------------


def money_columns(catalog: Catalog) -> tuple[str, ...]:
    return tuple(c.id for c in catalog.of_type(DataType.DECIMAL))


def table_of(catalog: Catalog) -> str:
    return CU_TABLE if catalog is CU else CC_TABLE


def store_sums(store: Store, catalog: Catalog) -> dict[tuple[str, str], Decimal]:
    """Per (BillingCurrency, column) sums computed by DuckDB over the stored rows."""
    columns = money_columns(catalog)
    rows = store.con.execute(
        f"SELECT BillingCurrency, {', '.join(f'sum({c})' for c in columns)} FROM {table_of(catalog)} GROUP BY 1"
    ).fetchall()
    sums: dict[tuple[str, str], Decimal] = {}
    for currency, *values in rows:
        for column, value in zip(columns, values, strict=True):
            if value is not None:
                assert isinstance(value, Decimal), f"{column} came back as {type(value).__name__}"
                sums[(currency, column)] = value
    return sums


def csv_sums(*paths: Path, catalog: Catalog = CU) -> dict[tuple[str, str], Decimal]:
    rows = [row for path in paths for row in read_csv(path)]
    return decimal_sums(rows, money_columns(catalog))


def snapshot(store: Store) -> dict[str, Any]:
    """Everything a load may change: row counts, money totals, the loads and period tables, the version."""
    con = store.con
    return {
        "rows": con.execute(f"SELECT (SELECT count(*) FROM {CU_TABLE}), (SELECT count(*) FROM {CC_TABLE})").fetchone(),
        "sums": store_sums(store, CU),
        "loads": con.execute("SELECT * FROM loads ORDER BY load_id").fetchall(),
        "periods": con.execute("SELECT * FROM billing_periods ORDER BY ALL").fetchall(),
        "custom": con.execute("SELECT * FROM custom_columns ORDER BY ALL").fetchall(),
        "columns": con.execute(f"SELECT column_name FROM (DESCRIBE {CU_TABLE})").fetchall(),
        "version": store.data_version(),
    }


def load(store: Store, *paths: Path, strict: bool = False) -> LoadSummary:
    return load_files(store, list(paths), strict=strict)


def sample_table(path: Path = AWS_13) -> list[list[str]]:
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.reader(f))


def to_csv(rows: list[list[str]]) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(rows)
    return out.getvalue()


def edited(row: int, column: str, value: str, path: Path = AWS_13) -> str:
    """The sample's text with one cell changed; ``row`` counts data rows from 1, as load reports do."""
    table = sample_table(path)
    table[row][table[0].index(column)] = value
    return to_csv(table)


def write(tmp_path: Path, name: str, content: str | bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(content.encode("utf-8") if isinstance(content, str) else content)
    return path


@pytest.fixture
def loaded(store: Store) -> Store:
    """A store already holding the AWS 1.3 sample: a refused file must leave it exactly as it is."""
    assert load(store, AWS_13).ok
    return store


def refused(store: Store, path: Path, rule: str, *, strict: bool = False) -> Problem:
    """Load ``path``, check it is refused with ``rule`` and that nothing changed; the problem found."""
    before = snapshot(store)
    summary = load(store, path, strict=strict)
    assert not summary.ok
    (report,) = summary.files
    assert report.status == "refused"
    rules = [p.rule for p in report.problems]
    assert rule in rules, rules
    assert snapshot(store) == before
    assert store.con.execute("SELECT count(*) FROM duckdb_tables() WHERE temporary").fetchone() == (0,)
    errors = summary.as_json()["errors"]
    assert all(e["file"] == str(path) for e in errors)
    return next(p for p in report.problems if p.rule == rule)


def only_example(problem: Problem) -> dict[str, Any]:
    assert problem.count == 1, problem
    (example,) = problem.examples
    return example


def write_typed_parquet(source: Path, target: Path) -> None:
    """The sample as Parquet with the FOCUS types: DECIMAL(38,18), TIMESTAMP, JSON, text."""
    catalog = CU if "BilledCost" in sample_table(source)[0] else CC
    typed_parquet(source, target, {c.id: c.data_type for c in catalog.columns})


def sample_as_arrow(path: Path = AWS_13) -> pa.Table:
    """The sample read by pyarrow with every column as a string (empty fields stay '')."""
    header = sample_table(path)[0]
    return pa_csv.read_csv(path, convert_options=pa_csv.ConvertOptions(column_types=dict.fromkeys(header, pa.string())))


# -- the samples --------------------------------------------------------------------------------

SAMPLE_ROWS = [
    (AWS_13, CU, 100),
    (AWS_CREDITS, CU, 25),
    (AWS_12, CU, 100),
    (GCP_12, CU, 100),
    (CONSOLIDATED, CU, 4),
    (AWS_CC, CC, 10),
]


@pytest.mark.parametrize(("path", "catalog", "rows"), SAMPLE_ROWS, ids=[p.name for p, _, _ in SAMPLE_ROWS])
def test_each_sample_loads_with_its_row_count_and_exact_money_totals_per_currency(
    store: Store, path: Path, catalog: Catalog, rows: int
) -> None:
    summary = load(store, path)

    assert summary.ok, summary.as_json()
    assert summary.files[0].rows == rows
    assert store.con.execute(f"SELECT count(*) FROM {table_of(catalog)}").fetchone() == (rows,)
    expected = csv_sums(path, catalog=catalog)
    assert expected, "the sample has money columns"
    assert store_sums(store, catalog) == expected


def test_the_sample_totals_hold_to_the_last_digit(store: Store) -> None:
    load(store, AWS_13)

    (total,) = store.con.execute(f"SELECT sum(EffectiveCost) FROM {CU_TABLE}").fetchone() or (None,)
    expected = sum((Decimal(r["EffectiveCost"]) for r in read_csv(AWS_13)), Decimal(0))

    assert total == expected
    assert str(total).rstrip("0") == str(expected).rstrip("0")


def test_all_six_samples_load_together_into_one_store(store: Store) -> None:
    summary = load(store, AWS_13, AWS_CREDITS, AWS_12, GCP_12, CONSOLIDATED, AWS_CC)

    assert summary.ok, summary.as_json()
    assert summary.as_json()["rowsLoaded"] == 339
    assert summary.as_json()["focusVersion"] == "mixed"
    # AWS 1.2 and 1.3 share invoice scopes, but files of one call add up.
    assert store_sums(store, CU) == csv_sums(AWS_13, AWS_CREDITS, AWS_12, GCP_12, CONSOLIDATED)


def test_money_is_stored_as_decimal_38_18_never_as_float(store: Store) -> None:
    load(store, AWS_13, AWS_CC)

    for table, catalog in ((CU_TABLE, CU), (CC_TABLE, CC)):
        types = dict(store.con.execute(f"SELECT column_name, column_type FROM (DESCRIBE {table})").fetchall())
        for column in money_columns(catalog):
            assert types[column] == "DECIMAL(38,18)", column
        assert not {t for t in types.values() if t in ("DOUBLE", "FLOAT", "REAL")}


def test_a_1_3_file_keeps_its_own_service_and_host_provider(store: Store) -> None:
    load(store, CONSOLIDATED)

    rows = store.con.execute(
        f"SELECT ProviderName, PublisherName, ServiceProviderName, HostProviderName FROM {CU_TABLE} ORDER BY ALL"
    ).fetchall()
    expected = {
        (r["ProviderName"], r["PublisherName"], r["ServiceProviderName"], r["HostProviderName"] or None)
        for r in read_csv(CONSOLIDATED)
    }
    assert set(rows) == expected


# -- 1.2 files become 1.3 rows ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "host"),
    [(AWS_12, {("AWS", "AWS"): "AWS"}), (GCP_12, {("Google Cloud", "Google"): "Google Cloud"})],
    ids=["aws", "gcp"],
)
def test_a_1_2_file_comes_out_as_1_3_rows(store: Store, path: Path, host: dict[tuple[str, str], str]) -> None:
    summary = load(store, path)

    assert summary.files[0].focus_version == "1.2"
    assert summary.as_json()["focusVersion"] == "1.2"
    stored = [r[0] for r in store.con.execute(f"SELECT column_name FROM (DESCRIBE {CU_TABLE})").fetchall()]
    assert stored == ["_row_id", "_load_id", *stored_layout(Dataset.COST_AND_USAGE).ids]
    assert len(CU.ids) == 65
    assert store.con.execute(
        f"SELECT count(*) FROM {CU_TABLE} WHERE ServiceProviderName IS DISTINCT FROM ProviderName"
    ).fetchone() == (0,)
    pairs = store.con.execute(
        f"SELECT ProviderName, PublisherName, list(DISTINCT HostProviderName) FROM {CU_TABLE} GROUP BY ALL"
    ).fetchall()
    assert {(p, pub): hosts for p, pub, hosts in pairs} == {k: [v] for k, v in host.items()}
    new_in_1_3 = sorted(columns_introduced_in("1.3") - {"ServiceProviderName", "HostProviderName"})
    assert new_in_1_3
    counts = store.con.execute(f"SELECT {', '.join(f'count({c})' for c in new_in_1_3)} FROM {CU_TABLE}").fetchone()
    assert counts == (0,) * len(new_in_1_3)


def test_a_1_2_marketplace_row_gets_no_host_provider(store: Store, tmp_path: Path) -> None:
    # A third-party publisher does not say who hosts the service: HostProviderName stays null.
    path = write(tmp_path, "market.csv", edited(4, "PublisherName", "Datadog", path=AWS_12))

    assert load(store, path).ok
    rows = store.con.execute(
        f"SELECT PublisherName, ServiceProviderName, HostProviderName, count(*) FROM {CU_TABLE} "
        "GROUP BY ALL ORDER BY ALL"
    ).fetchall()
    assert rows == [("AWS", "AWS", "AWS", 99), ("Datadog", "AWS", None, 1)]


# -- broken files are refused whole -------------------------------------------------------------


def test_a_missing_mandatory_column_is_refused_with_missing_column(loaded: Store, tmp_path: Path) -> None:
    table = sample_table()
    at = table[0].index("BillingCurrency")
    path = write(tmp_path, "no-currency.csv", to_csv([r[:at] + r[at + 1 :] for r in table]))

    problem = refused(loaded, path, "missing_column")
    assert "BillingCurrency" in problem.message


def test_strict_refuses_a_timestamp_with_an_offset_with_datetime_format(loaded: Store, tmp_path: Path) -> None:
    path = write(tmp_path, "offset.csv", edited(7, "ChargePeriodStart", "2026-05-01T00:00:00+02:00"))

    problem = refused(loaded, path, "datetime_format", strict=True)
    assert problem.column == "ChargePeriodStart"
    assert only_example(problem) == {"row": 7, "value": "2026-05-01T00:00:00+02:00"}
    error = next(e for e in load(loaded, path, strict=True).as_json()["errors"] if e["rule"] == "datetime_format")
    assert error["file"] == str(path)
    assert error["column"] == "ChargePeriodStart"
    assert error["examples"] == [{"row": 7, "value": "2026-05-01T00:00:00+02:00"}]


def test_strict_refuses_a_timestamp_without_z_with_datetime_format(loaded: Store, tmp_path: Path) -> None:
    path = write(tmp_path, "no-z.csv", edited(12, "BillingPeriodEnd", "2026-06-01T00:00:00"))

    problem = refused(loaded, path, "datetime_format", strict=True)
    assert problem.column == "BillingPeriodEnd"
    assert only_example(problem) == {"row": 12, "value": "2026-06-01T00:00:00"}


def test_an_unknown_charge_category_is_refused_with_allowed_values(loaded: Store, tmp_path: Path) -> None:
    path = write(tmp_path, "refund.csv", edited(3, "ChargeCategory", "Refund"))

    problem = refused(loaded, path, "allowed_values")
    assert problem.column == "ChargeCategory"
    assert only_example(problem) == {"row": 3, "value": "Refund"}


def test_a_non_numeric_cost_is_refused_with_decimal(loaded: Store, tmp_path: Path) -> None:
    path = write(tmp_path, "text-cost.csv", edited(100, "BilledCost", "12,50"))

    problem = refused(loaded, path, "decimal")
    assert problem.column == "BilledCost"
    assert only_example(problem) == {"row": 100, "value": "12,50"}


def test_a_cost_with_19_fraction_digits_is_refused_with_decimal_scale(loaded: Store, tmp_path: Path) -> None:
    path = write(tmp_path, "scale.csv", edited(2, "EffectiveCost", "0.1234567890123456789"))

    problem = refused(loaded, path, "decimal_scale")
    assert problem.column == "EffectiveCost"
    assert only_example(problem) == {"row": 2, "value": "0.1234567890123456789"}


def test_a_cost_in_e_notation_that_would_round_is_refused_with_decimal_scale(loaded: Store, tmp_path: Path) -> None:
    # 1.5E-20 fits no DECIMAL(38,18): a plain cast would store 0.
    path = write(tmp_path, "tiny.csv", edited(2, "ListCost", "1.5E-20"))

    problem = refused(loaded, path, "decimal_scale")
    assert only_example(problem) == {"row": 2, "value": "1.5E-20"}


def test_exact_costs_in_e_notation_and_with_trailing_zeros_load(store: Store, tmp_path: Path) -> None:
    table = sample_table()
    column = table[0].index("ListCost")
    written = ["1.5E-17", "1.234E2", "100e-20", "0.1000000000000000000000", "-2.50E+3"]
    for row, value in enumerate(written, start=1):
        table[row][column] = value
    path = write(tmp_path, "e.csv", to_csv(table))

    assert load(store, path).ok
    stored = [v for (v,) in store.con.execute(f"SELECT ListCost FROM {CU_TABLE}").fetchall()]
    assert sorted(stored) == sorted(Decimal(r[column]) for r in table[1:])
    assert {Decimal(v) for v in written} <= set(stored)


def test_a_truncated_row_is_refused_with_csv_structure(loaded: Store, tmp_path: Path) -> None:
    lines = AWS_13.read_text(encoding="utf-8").splitlines(keepends=True)
    lines[9] = lines[9][:200] + "\n"  # data row 9, cut in the middle of its fields
    path = write(tmp_path, "cut.csv", "".join(lines))

    problem = refused(loaded, path, "csv_structure")
    example = only_example(problem)
    assert example["row"] == 9
    assert example["line"] == 10
    assert example["value"] == lines[9].rstrip("\n")


def test_a_row_with_an_extra_field_is_refused_with_csv_structure(loaded: Store, tmp_path: Path) -> None:
    lines = AWS_13.read_text(encoding="utf-8").splitlines(keepends=True)
    lines[50] = lines[50].rstrip("\n") + ",surplus\n"
    path = write(tmp_path, "extra.csv", "".join(lines))

    assert only_example(refused(loaded, path, "csv_structure"))["row"] == 50


def test_an_empty_file_is_refused_with_empty_file(loaded: Store, tmp_path: Path) -> None:
    refused(loaded, write(tmp_path, "empty.csv", b""), "empty_file")


def test_a_header_only_file_is_refused_with_empty_file(loaded: Store, tmp_path: Path) -> None:
    header = AWS_13.read_text(encoding="utf-8").splitlines(keepends=True)[0]

    refused(loaded, write(tmp_path, "header-only.csv", header), "empty_file")


def test_latin_1_bytes_in_one_data_row_are_refused_with_encoding(loaded: Store, tmp_path: Path) -> None:
    lines = AWS_13.read_text(encoding="utf-8").splitlines(keepends=True)
    assert "prod-platform" in lines[5]
    lines[5] = lines[5].replace("prod-platform", "prod-plätform")
    path = write(tmp_path, "latin1-row.csv", "".join(lines).encode("latin-1"))

    problem = refused(loaded, path, "encoding")
    example = only_example(problem)
    assert example["row"] == 5
    assert "prod-pl" in example["value"]


def test_a_wholly_latin_1_file_is_refused_with_encoding(loaded: Store, tmp_path: Path) -> None:
    text = AWS_13.read_text(encoding="utf-8").replace("ExampleCorp", "ExampleCorp Straße")
    path = write(tmp_path, "latin1.csv", text.encode("latin-1"))

    problem = refused(loaded, path, "encoding")
    assert problem.count == sum("ExampleCorp" in line for line in text.splitlines()[1:])
    assert problem.count > 1


def test_a_latin_1_header_is_refused_with_encoding(loaded: Store, tmp_path: Path) -> None:
    table = sample_table()
    table[0].append("x_Coût")
    for row in table[1:]:
        row.append("é")
    path = write(tmp_path, "latin1-header.csv", to_csv(table).encode("latin-1"))

    refused(loaded, path, "encoding")


def test_a_utf_8_file_with_a_byte_order_mark_loads(store: Store, tmp_path: Path) -> None:
    path = write(tmp_path, "bom.csv", b"\xef\xbb\xbf" + AWS_13.read_bytes())

    assert load(store, path).ok
    assert store_sums(store, CU) == csv_sums(AWS_13)


def test_a_parquet_cost_of_the_wrong_type_is_refused_with_wrong_type(loaded: Store, tmp_path: Path) -> None:
    table = sample_as_arrow()
    at = table.schema.get_field_index("BilledCost")
    table = table.set_column(at, "BilledCost", pa.array([True] * table.num_rows))
    pq.write_table(table, tmp_path / "bool-cost.parquet")

    problem = refused(loaded, tmp_path / "bool-cost.parquet", "wrong_type")
    assert problem.column == "BilledCost"
    assert "BOOLEAN" in problem.message


def test_a_parquet_timestamp_stored_as_int64_is_refused_with_wrong_type(loaded: Store, tmp_path: Path) -> None:
    table = sample_as_arrow()
    at = table.schema.get_field_index("ChargePeriodStart")
    table = table.set_column(at, "ChargePeriodStart", pa.array(range(table.num_rows), pa.int64()))
    pq.write_table(table, tmp_path / "int-time.parquet")

    problem = refused(loaded, tmp_path / "int-time.parquet", "wrong_type")
    assert problem.column == "ChargePeriodStart"


def test_a_bad_value_in_a_parquet_file_is_refused_with_its_row(loaded: Store, tmp_path: Path) -> None:
    table = sample_as_arrow()
    at = table.schema.get_field_index("ChargeCategory")
    values = table.column(at).to_pylist()
    values[41] = "Refund"
    pq.write_table(table.set_column(at, "ChargeCategory", pa.array(values)), tmp_path / "refund.parquet")

    problem = refused(loaded, tmp_path / "refund.parquet", "allowed_values")
    assert only_example(problem) == {"row": 42, "value": "Refund"}


def test_a_parquet_cost_stored_as_double_loads_as_the_decimal_it_was_written_from(store: Store, tmp_path: Path) -> None:
    table = sample_as_arrow()
    for column in ("BilledCost", "EffectiveCost"):
        at = table.schema.get_field_index(column)
        table = table.set_column(at, column, pa.array([float(v) for v in table.column(at).to_pylist()]))
    pq.write_table(table, tmp_path / "double.parquet")

    assert load(store, tmp_path / "double.parquet").ok
    assert store_sums(store, CU) == csv_sums(AWS_13)


def test_a_parquet_double_too_small_for_18_places_is_refused_with_decimal_scale(loaded: Store, tmp_path: Path) -> None:
    table = sample_as_arrow()
    at = table.schema.get_field_index("ListCost")
    values = [float(v) for v in table.column(at).to_pylist()]
    values[9] = 1.5e-20
    pq.write_table(table.set_column(at, "ListCost", pa.array(values)), tmp_path / "tiny.parquet")

    problem = refused(loaded, tmp_path / "tiny.parquet", "decimal_scale")
    assert only_example(problem)["row"] == 10


def test_strict_refuses_a_lower_case_currency_with_currency_code(loaded: Store, tmp_path: Path) -> None:
    path = write(tmp_path, "usd.csv", edited(33, "BillingCurrency", "usd"))

    problem = refused(loaded, path, "currency_code", strict=True)
    assert only_example(problem) == {"row": 33, "value": "usd"}


def test_a_clean_file_is_loaded_in_one_pass_without_a_stage(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The staged, rule-by-rule path is for files that break a rule; a clean file never needs it.
    def no_stage(*args: object) -> None:
        raise AssertionError("a clean file was staged")

    monkeypatch.setattr(FileLoad, "stage_file", no_stage)
    parquet = tmp_path / "gcp.parquet"
    write_typed_parquet(GCP_12, parquet)

    summary = load(store, AWS_13, parquet, AWS_CC)

    assert [f.status for f in summary.files] == ["loaded", "loaded", "loaded"]
    assert store_sums(store, CU) == csv_sums(AWS_13, GCP_12)


def test_a_json_array_in_tags_is_refused_with_json_object(loaded: Store, tmp_path: Path) -> None:
    path = write(tmp_path, "tags.csv", edited(20, "Tags", '["prod"]'))

    problem = refused(loaded, path, "json_object")
    assert problem.column == "Tags"
    assert only_example(problem) == {"row": 20, "value": '["prod"]'}


def test_malformed_json_in_tags_is_refused_with_json_object(loaded: Store, tmp_path: Path) -> None:
    path = write(tmp_path, "bad-json.csv", edited(21, "Tags", '{"Environment": prod'))

    problem = refused(loaded, path, "json_object")
    assert only_example(problem) == {"row": 21, "value": '{"Environment": prod'}


def test_strict_refuses_an_unknown_column_without_x_prefix_with_unknown_column(loaded: Store, tmp_path: Path) -> None:
    table = sample_table()
    table[0].append("CostCenter")
    for row in table[1:]:
        row.append("cc-1")
    path = write(tmp_path, "unknown.csv", to_csv(table))

    problem = refused(loaded, path, "unknown_column", strict=True)
    assert "CostCenter" in problem.message


def test_strict_refuses_a_null_in_a_mandatory_column_with_not_null(loaded: Store, tmp_path: Path) -> None:
    path = write(tmp_path, "no-account.csv", edited(8, "BillingAccountId", ""))

    problem = refused(loaded, path, "not_null", strict=True)
    assert problem.column == "BillingAccountId"
    assert only_example(problem)["row"] == 8


def test_a_charge_that_ends_before_it_starts_is_refused_with_period_order(loaded: Store, tmp_path: Path) -> None:
    path = write(tmp_path, "backwards.csv", edited(1, "ChargePeriodEnd", "2026-04-30T00:00:00Z"))

    problem = refused(loaded, path, "period_order")
    assert problem.column == "ChargePeriodEnd"
    assert only_example(problem)["row"] == 1


def test_every_problem_of_a_file_is_reported_at_once(loaded: Store, tmp_path: Path) -> None:
    table = sample_table()
    header = table[0]
    table[4][header.index("ChargeCategory")] = "Refund"
    table[5][header.index("BilledCost")] = "n/a"
    table[6][header.index("BilledCost")] = "n/a too"
    path = write(tmp_path, "two.csv", to_csv(table))

    refused(loaded, path, "allowed_values")
    problem = refused(loaded, path, "decimal")
    assert problem.count == 2
    assert problem.examples == [{"row": 5, "value": "n/a"}, {"row": 6, "value": "n/a too"}]


# -- several files, the CLI ---------------------------------------------------------------------


def test_a_bad_file_among_good_ones_is_refused_alone(store: Store, tmp_path: Path) -> None:
    bad = write(tmp_path, "bad.csv", edited(3, "ChargeCategory", "Refund"))

    summary = load(store, AWS_CC, bad, GCP_12)

    assert [f.status for f in summary.files] == ["loaded", "refused", "loaded"]
    assert not summary.ok
    assert summary.as_json()["rowsLoaded"] == 110
    assert store_sums(store, CU) == csv_sums(GCP_12)


def test_the_cli_loads_the_good_files_refuses_the_bad_one_and_exits_1(tmp_path: Path) -> None:
    bad = write(tmp_path, "bad.csv", b"")
    data_dir = tmp_path / "data"

    result = subprocess.run(
        [str(FOCUS_CLI), "load", "--data-dir", str(data_dir), "--json", str(GCP_12), str(bad), str(AWS_CC)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert result.returncode == 1, result.stderr
    out = json.loads(result.stdout)
    assert {"files", "rowsLoaded", "rowsRejected", "focusVersion", "errors"} <= out.keys()
    assert [(Path(f["file"]).name, f["status"]) for f in out["files"]] == [
        (GCP_12.name, "loaded"),
        ("bad.csv", "refused"),
        (AWS_CC.name, "loaded"),
    ]
    assert out["rowsLoaded"] == 110
    assert [(e["file"], e["rule"]) for e in out["errors"]] == [(str(bad), "empty_file")]
    store = Store(data_dir)
    try:
        assert store_sums(store, CU) == csv_sums(GCP_12)
        assert store_sums(store, CC) == csv_sums(AWS_CC, catalog=CC)
    finally:
        store.close()


def test_the_cli_exits_0_when_every_file_loads(tmp_path: Path) -> None:
    result = subprocess.run(
        [str(FOCUS_CLI), "load", "--data-dir", str(tmp_path / "data"), str(SAMPLES / "*_1_3_*.csv")],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert "loaded 135 rows" in result.stdout


# -- re-deliveries ------------------------------------------------------------------------------


def test_reloading_a_file_leaves_the_totals_unchanged(store: Store) -> None:
    first = load(store, AWS_13)
    totals = store_sums(store, CU)

    again = load(store, AWS_13)

    assert again.ok
    assert again.files[0].replaced_rows == first.files[0].rows == 100
    assert store_sums(store, CU) == totals
    assert store.con.execute(f"SELECT count(*), count(DISTINCT _load_id) FROM {CU_TABLE}").fetchone() == (100, 1)
    assert store.con.execute("SELECT count(*) FROM billing_periods").fetchone() == (1,)


def test_a_redelivery_of_a_billing_period_replaces_its_earlier_rows(store: Store, tmp_path: Path) -> None:
    table = sample_table()
    column = table[0].index("BilledCost")
    for row in table[1:]:
        row[column] = str(Decimal(row[column]) * 2 + Decimal("0.000000000000000001"))
    corrected = write(tmp_path, "corrected.csv", to_csv(table))
    load(store, AWS_13)

    summary = load(store, corrected)

    assert summary.files[0].replaced_rows == 100
    assert store_sums(store, CU) == csv_sums(corrected)
    assert store_sums(store, CU) != csv_sums(AWS_13)


def test_a_redelivery_replaces_only_the_invoice_scopes_it_carries(store: Store, tmp_path: Path) -> None:
    table = sample_table()
    account = table[0].index("BillingAccountId")
    only_one = [table[0], *(r for r in table[1:] if r[account] == "100000000001")]
    path = write(tmp_path, "account-1.csv", to_csv(only_one))
    load(store, AWS_13)

    summary = load(store, path)

    assert summary.files[0].replaced_rows == 22
    assert store.con.execute(f"SELECT count(*) FROM {CU_TABLE}").fetchone() == (100,)
    assert store_sums(store, CU) == csv_sums(AWS_13)


def test_two_part_files_of_one_delivery_add_up(store: Store, tmp_path: Path) -> None:
    table = sample_table()
    part1 = write(tmp_path, "part-1.csv", to_csv(table[:51]))
    part2 = write(tmp_path, "part-2.csv", to_csv([table[0], *table[51:]]))
    load(store, AWS_13)  # an earlier delivery of the same period

    summary = load(store, part1, part2)

    assert summary.ok
    assert [f.rows for f in summary.files] == [50, 50]
    assert sum(f.replaced_rows for f in summary.files) == 100
    assert store.con.execute(f"SELECT count(*) FROM {CU_TABLE}").fetchone() == (100,)
    assert store_sums(store, CU) == csv_sums(AWS_13)


def test_the_same_file_twice_in_one_call_is_skipped_as_duplicate_file(store: Store, tmp_path: Path) -> None:
    copy = tmp_path / "copy.csv"
    shutil.copyfile(AWS_13, copy)

    summary = load(store, AWS_13, copy)

    assert [f.status for f in summary.files] == ["loaded", "skipped"]
    assert [p.rule for p in summary.files[1].problems] == ["duplicate_file"]
    assert summary.ok
    assert store_sums(store, CU) == csv_sums(AWS_13)


def test_a_contract_commitment_redelivery_replaces_by_commitment_id(store: Store, tmp_path: Path) -> None:
    table = sample_table(AWS_CC)
    cost = table[0].index("ContractCommitmentCost")
    table[1][cost] = "1.5"
    path = write(tmp_path, "cc.csv", to_csv(table[:2]))
    load(store, AWS_CC)

    summary = load(store, path)

    assert summary.files[0].replaced_rows == 1
    assert store.con.execute(f"SELECT count(*) FROM {CC_TABLE}").fetchone() == (10,)
    expected = csv_sums(AWS_CC, catalog=CC)
    expected[("USD", "ContractCommitmentCost")] += Decimal("1.5") - Decimal(sample_table(AWS_CC)[1][cost])
    assert store_sums(store, CC) == expected


# -- other inputs -------------------------------------------------------------------------------


@pytest.mark.parametrize("path", [AWS_13, AWS_12, AWS_CC], ids=["aws-1.3", "aws-1.2", "contract-commitment"])
def test_typed_parquet_of_a_sample_loads_with_identical_sums(store: Store, tmp_path: Path, path: Path) -> None:
    parquet = tmp_path / (path.stem + ".parquet")
    write_typed_parquet(path, parquet)
    catalog = CC if path == AWS_CC else CU

    summary = load(store, parquet)

    assert summary.ok, summary.as_json()
    assert summary.files[0].rows == len(read_csv(path))
    assert store_sums(store, catalog) == csv_sums(path, catalog=catalog)


def test_parquet_and_csv_of_the_same_data_store_the_same_rows(tmp_path: Path) -> None:
    parquet = tmp_path / "aws.parquet"
    write_typed_parquet(AWS_13, parquet)
    stored = []
    for source in (AWS_13, parquet):
        store = Store(tmp_path / source.suffix.strip("."))
        try:
            assert load(store, source).ok
            stored.append(store.con.execute(f"SELECT * EXCLUDE (_load_id) FROM {CU_TABLE} ORDER BY _row_id").fetchall())
        finally:
            store.close()
    assert stored[0] == stored[1]


def test_parquet_of_strings_with_empty_values_loads_like_the_csv(store: Store, tmp_path: Path) -> None:
    # pyarrow writes an empty CSV field as '' (not null): it must mean null, as in a CSV.
    pq.write_table(sample_as_arrow(), tmp_path / "strings.parquet")

    summary = load(store, tmp_path / "strings.parquet")

    assert summary.ok, summary.as_json()
    assert store_sums(store, CU) == csv_sums(AWS_13)
    assert store.con.execute(f"SELECT count(*) FROM {CU_TABLE} WHERE ChargeClass = ''").fetchone() == (0,)


def test_a_gzipped_csv_loads(store: Store, tmp_path: Path) -> None:
    path = write(tmp_path, "aws.csv.gz", gzip.compress(AWS_13.read_bytes()))

    summary = load(store, path)

    assert summary.ok, summary.as_json()
    assert store_sums(store, CU) == csv_sums(AWS_13)


def test_a_folder_and_a_glob_expand_to_the_focus_files_in_them(tmp_path: Path) -> None:
    (tmp_path / "2026" / "05").mkdir(parents=True)
    files = [tmp_path / "a.csv", tmp_path / "2026" / "b.csv.gz", tmp_path / "2026" / "05" / "c.parquet"]
    for f in files:
        f.write_bytes(b"x")
    (tmp_path / "notes.txt").write_text("not a FOCUS file")

    assert expand_paths([str(tmp_path)]) == sorted(f.resolve() for f in files)
    assert expand_paths([str(tmp_path / "**" / "*.csv*")]) == [files[1].resolve(), files[0].resolve()]
    assert expand_paths([str(tmp_path / "*.csv"), str(files[0])]) == [files[0].resolve()]
    with pytest.raises(FileNotFoundError):
        expand_paths([str(tmp_path / "*.json")])


def test_a_folder_of_samples_loads_every_file_in_it(store: Store) -> None:
    summary = load(store, *expand_paths([str(SAMPLES)]))

    assert sorted(Path(f.file).name for f in summary.files) == sorted(p.name for p in SAMPLES.glob("*.csv"))
    assert summary.ok


def test_custom_x_columns_are_kept(store: Store, tmp_path: Path) -> None:
    table = sample_table()
    table[0].append("x_CostCenter")
    billed = table[0].index("BilledCost")
    for i, row in enumerate(table[1:], start=1):
        row.append(f"cc-{i % 7}")
    path = write(tmp_path, "custom.csv", to_csv(table))

    assert load(store, path).ok

    stored = store.con.execute(f"SELECT x_CostCenter, BilledCost FROM {CU_TABLE}").fetchall()
    assert sorted(stored) == sorted((r[-1], Decimal(r[billed])) for r in table[1:])
    assert store.con.execute("SELECT * FROM custom_columns").fetchall() == [("CostAndUsage", "x_CostCenter")]


# -- row order ----------------------------------------------------------------------------------


def test_row_ids_follow_the_sort_key_and_later_loads_get_higher_ones(store: Store) -> None:
    load(store, AWS_13, AWS_CREDITS)
    first_max = store.con.execute(f"SELECT max(_row_id) FROM {CU_TABLE}").fetchone()

    load(store, GCP_12)

    assert first_max == (125,)
    rows = store.con.execute(
        f"SELECT _row_id, _load_id, BillingPeriodStart, ServiceName, ChargePeriodStart FROM {CU_TABLE} ORDER BY _row_id"
    ).fetchall()
    assert [r[0] for r in rows] == list(range(1, 226))
    for load_id in {r[1] for r in rows}:
        keys = [r[2:] for r in rows if r[1] == load_id]
        assert keys == sorted(keys), f"load {load_id} is not in sort-key order"
    gcp = [r[0] for r in rows if r[1] == 3]
    assert min(gcp) == 126


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_rows_with_equal_sort_keys_keep_their_file_order(store: Store, tmp_path: Path, suffix: str) -> None:
    table = sample_table()
    table[0].append("x_Line")
    for i, row in enumerate(table[1:], start=1):
        row.append(f"{i:03d}")
    path = write(tmp_path, "lines.csv", to_csv(table))
    if suffix == ".parquet":
        pq.write_table(sample_as_arrow(path), path.with_suffix(".parquet"))
        path = path.with_suffix(".parquet")

    assert load(store, path).ok

    rows = store.con.execute(
        f"SELECT BillingPeriodStart, ServiceName, ChargePeriodStart, x_Line FROM {CU_TABLE} ORDER BY _row_id"
    ).fetchall()
    assert rows == sorted(rows)
    assert len({r[:3] for r in rows}) < len(rows), "the sample has ties to order"
