"""Exact decimals on the wire (tools/wire.py): the text of a decimal, MCP's decimal strings, plain answers."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import orjson
import pytest

from tools import wire
from tools.cost_and_usage import ListCostAndUsageOutput


@pytest.mark.parametrize(
    ("value", "text"),
    [
        ("0.087992153000000000", "0.087992153"),
        ("1E-18", "0.000000000000000001"),
        ("0.000000100000000000", "0.0000001"),
        ("-0E-18", "0"),
        ("0E-18", "0"),
        ("100.000000000000000000", "100"),
        ("-12.500000000000000000", "-12.5"),
        ("1.5E+30", "1500000000000000000000000000000"),
        ("99999999999999999999.999999999999999999", "99999999999999999999.999999999999999999"),
    ],
)
def test_a_decimal_is_written_in_full_without_trailing_zeros_and_never_with_an_exponent(value: str, text: str) -> None:
    assert wire.decimal_text(Decimal(value)) == text
    assert wire.dumps({"v": Decimal(value)}) == b'{"v":' + text.encode() + b"}"


def test_decimal_strings_turn_every_decimal_into_its_text_and_keep_everything_else() -> None:
    value = {"a": [Decimal("1.230"), {"b": Decimal("-0E-18"), "c": None}], "d": True, "e": 7, "f": "x"}
    assert wire.with_decimal_strings(value) == {"a": ["1.23", {"b": "0", "c": None}], "d": True, "e": 7, "f": "x"}


def test_decimal_strings_keep_an_integer_beyond_64_bits_exact() -> None:
    huge = 2**70 + 1
    assert wire.with_decimal_strings({"n": huge, "m": Decimal("2.50")}) == {"n": huge, "m": "2.5"}


def _page(rows: list[Any]) -> ListCostAndUsageOutput:
    return ListCostAndUsageOutput.model_construct(
        data=rows,
        nextPageToken=None,
        totalRecords=len(rows),
        dataLastUpdated="2026-01-01T00:00:00Z",
        dataCompleteness="Complete",
        dataCompletenessRule="PeriodEnded",
        truncated=None,
        appliedScope=None,
        rowFormat="objects",
        columns=None,
    )


def test_a_plain_page_is_the_same_answer_as_the_models_own_dump_with_its_fields_in_order() -> None:
    page = _page([{"BilledCost": Decimal("1.50"), "Tags": {"team": "ml", "n": Decimal("2")}}, {"BilledCost": None}])
    plain = wire.plain(page)
    dumped = page.model_dump(mode="python", warnings=False)
    assert plain == dumped
    assert list(plain) == list(dumped)
    assert orjson.loads(wire.dumps(plain)) == orjson.loads(wire.dumps(dumped))


def test_rows_in_array_form_pass_through_plain_too() -> None:
    page = _page([[Decimal("1.5"), "AWS"], [None, "GCP"]])
    assert wire.plain(page) == page.model_dump(mode="python", warnings=False)


def test_a_json_columns_stored_text_is_written_as_it_is_over_rest_and_parsed_with_decimal_strings_for_mcp() -> None:
    text = '{"Elements": [{"ContractCommitmentAppliedCost": 0.123456789012345678901, "Unit": null}]}'
    row = {"ContractApplied": wire.JsonText(text)}
    assert wire.dumps(row) == b'{"ContractApplied":' + text.encode() + b"}"
    assert wire.with_decimal_strings(row) == {
        "ContractApplied": {"Elements": [{"ContractCommitmentAppliedCost": "0.123456789012345678901", "Unit": None}]}
    }


@pytest.mark.parametrize(
    ("text", "written"),
    [('{"a": NaN}', {"a": None}), ('{"a": Infinity}', {"a": None}), ('{"a": 1.50,}', '{"a": 1.50,}')],
)
def test_a_json_text_duckdb_admits_but_json_does_not_is_never_written_as_it_is(text: str, written: Any) -> None:
    # DuckDB's JSON type admits NaN, Infinity and trailing commas: the answer stays valid JSON, the page is
    # still served, and a value no parser reads is kept as its text.
    assert orjson.loads(wire.dumps({"Tags": wire.JsonText(text)}))["Tags"] == written
    assert wire.with_decimal_strings({"Tags": wire.JsonText(text)})["Tags"] == written


def test_json_texts_compare_by_their_values() -> None:
    assert wire.JsonText('{"a": 1.50}') == wire.JsonText('{"a":1.5}')
    assert wire.JsonText('{"a": 1.50}') == {"a": Decimal("1.5")}
    assert wire.JsonText('{"a": 1}') != wire.JsonText('{"a": 2}')
