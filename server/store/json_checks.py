"""FOCUS 1.4's JSON object columns checked against the official JSON Schemas while a file loads.

FOCUS 1.4 defines four columns by a JSON Schema (Draft 2020-12): ContractApplied, AllocatedMethodDetails
and CommitmentProgramEligibilityDetails in Cost and Usage, ContractCommitmentApplicability in Contract
Commitment. The schemas ship verbatim as package data (``tools/catalog_data/v1_4/json_schemas/``) and are
applied with ``jsonschema``, so the rules are the spec's own: ContractApplied elements carry a cost or a
quantity with its unit (``oneOf``), metrics are JSON numbers (a quoted ``"0.06"`` is a string), and extra
keys must be ``x_`` + PascalCase. Files older than 1.4 had no schema for these columns (only "a JSON
object", which the column's load already checks), so they are not held to one.

A value that breaks its schema refuses the file, with the row, column, value and the schema's message.
Each distinct value is validated once (numbers parsed as ``Decimal``, never rounded through a float).
"""

from __future__ import annotations

import json
from decimal import Decimal
from functools import cache
from importlib import resources
from typing import Any

import duckdb
from jsonschema import Draft202012Validator
from jsonschema.exceptions import best_match

from server.store.headers import Refused
from server.store.load_report import Problem
from tools.catalog import Dataset

MAX_EXAMPLES = 5
# Distinct values fetched per round trip: bounded memory on a file where every value differs.
_BATCH = 10_000
SCHEMA_FILES = {
    (Dataset.COST_AND_USAGE, "ContractApplied"): "contractappliedobjectschema.json",
    (Dataset.COST_AND_USAGE, "AllocatedMethodDetails"): "allocatedmethoddetailsobjectschema.json",
    (Dataset.COST_AND_USAGE, "CommitmentProgramEligibilityDetails"): (
        "commitmentprogrameligibilitydetailsobjectschema.json"
    ),
    (Dataset.CONTRACT_COMMITMENT, "ContractCommitmentApplicability"): (
        "contractcommitmentapplicabilityobjectschema.json"
    ),
}


@cache
def validator(dataset: Dataset, column: str) -> Draft202012Validator | None:
    """The official schema's validator for ``column`` of ``dataset``; None when FOCUS gives it none."""
    name = SCHEMA_FILES.get((dataset, column))
    if name is None:
        return None
    folder = resources.files("tools.catalog_data").joinpath("v1_4").joinpath("json_schemas")
    schema = json.loads(folder.joinpath(name).read_text(encoding="utf-8"))
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def schema_error(check: Draft202012Validator, text: str) -> str | None:
    """Why ``text`` breaks the schema (its path and message), or None when it is valid."""
    try:
        instance: Any = json.loads(text, parse_float=Decimal)
    except ValueError as exc:
        return f"not JSON: {exc}"
    error = best_match(check.iter_errors(instance))
    if error is None:
        return None
    message = error.message if len(error.message) <= 300 else error.message[:297] + "..."
    return f"{error.json_path}: {message}"


def check(
    cur: duckdb.DuckDBPyConnection, relation: str, values: dict[str, str], dataset: Dataset, version: str
) -> None:
    """Refuse the file when a value of a schema-defined column breaks its schema (FOCUS 1.4 files only).

    ``relation`` has the file's ``_row``; ``values`` maps each column present to the SQL of its JSON value.
    """
    if version != "1.4":
        return
    problems = []
    for column, value in values.items():
        check_one = validator(dataset, column)
        if check_one is None:
            continue
        count, examples = 0, list[dict[str, Any]]()
        result = cur.execute(
            f"SELECT v, min(_row), count(*) FROM (SELECT _row, CAST({value} AS VARCHAR) AS v FROM {relation}) "
            "WHERE v IS NOT NULL GROUP BY v ORDER BY 2"
        )
        while batch := result.fetchmany(_BATCH):
            for text, row, times in batch:
                detail = schema_error(check_one, str(text))
                if detail is not None:
                    count += int(times)
                    if len(examples) < MAX_EXAMPLES:
                        examples.append({"row": int(row), "value": text, "detail": detail})
        if count:
            problems.append(
                Problem(
                    "json_schema",
                    f"{column} must follow the FOCUS 1.4 JSON schema {SCHEMA_FILES[(dataset, column)]} "
                    "(numbers unquoted, x_ extra keys only; see each example's detail)",
                    column=column,
                    count=count,
                    examples=sorted(examples, key=lambda e: e["row"]),
                )
            )
    if problems:
        raise Refused(*problems)
