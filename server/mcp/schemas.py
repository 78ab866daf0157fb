"""The JSON Schemas MCP publishes for each tool, derived from the registry's pydantic models.

Input schemas are the models' own; output schemas are compacted to what clients validate fastest.
"""

from __future__ import annotations

import json
from functools import cache
from typing import Any

from pydantic import BaseModel

SCHEMA_URI = "focus://schema"


@cache
def model_schema(model: type[BaseModel]) -> dict[str, Any]:
    return model.model_json_schema(by_alias=True)


@cache
def output_schema(model: type[BaseModel]) -> dict[str, Any]:
    """The output model's JSON Schema in the form clients validate fastest, with the same constraints.

    Clients check every result against it (the Python SDK with ``jsonschema``, one sub-validator per
    property per row): with the plain pydantic form (a typed schema for each of the 66 columns, ``anyOf``
    per column) that took longer than the server took to answer a 100-row page. So a page's rows are
    open objects here, pointing to getschemametadata and the schema resource for column types, which
    made that check about 100x cheaper; elsewhere ``$ref``s are inlined, ``anyOf: [{type: a}, {type: b}]``
    becomes ``type: [a, b]``, and titles and ``default: null`` go (the same constraints, about 3x cheaper).
    """
    schema = model_schema(model)
    defs = schema.get("$defs", {})
    compact = _compact(schema, defs, ())
    if defs and "$ref" in json.dumps(compact):  # a recursive model keeps the definitions its $refs point into
        compact["$defs"] = {name: _compact(d, defs, (name,)) for name, d in defs.items()}
    return compact


_ROW_MODELS = {"CostAndUsageRecord": "Cost and Usage", "ContractCommitmentRecord": "Contract Commitment"}


_ROW_TYPES = ["object", "array"]


def _row_schema(dataset: str) -> dict[str, Any]:
    return {
        "type": list(_ROW_TYPES),
        "description": f"One FOCUS 1.3 {dataset} row: a key per column (FOCUS column ids, plus x_ custom "
        "columns), or with rowFormat arrays its values in the order of columns; exact decimals as strings, "
        "date/times UTC YYYY-MM-DDTHH:MM:SSZ, JSON columns as objects. "
        f"Column types and meanings: getschemametadata or the {SCHEMA_URI} resource.",
    }


def _compact(node: dict[str, Any], defs: dict[str, Any], inlining: tuple[str, ...]) -> dict[str, Any]:
    ref = node.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/$defs/") and len(node) == 1:
        name = ref.removeprefix("#/$defs/")
        if name in _ROW_MODELS:
            return _row_schema(_ROW_MODELS[name])
        if name in defs and name not in inlining:
            return _compact(defs[name], defs, (*inlining, name))
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in ("title", "$defs") or (key == "default" and value is None):
            continue
        if key == "properties" and isinstance(value, dict):
            out[key] = {name: _compact(v, defs, inlining) for name, v in value.items()}
        elif key in ("items", "additionalProperties") and isinstance(value, dict):
            out[key] = _compact(value, defs, inlining)
        elif key in ("anyOf", "oneOf", "allOf") and isinstance(value, list):
            out[key] = [_compact(v, defs, inlining) if isinstance(v, dict) else v for v in value]
        else:
            out[key] = value
    options = out.get("anyOf")
    if isinstance(options, list) and any(o.get("type") == _ROW_TYPES for o in options if isinstance(o, dict)):
        # A row is an object or (rowFormat arrays) an array: the row schema already says both, and one
        # schema per row instead of an anyOf of two halves the client's work on a page.
        return next(o for o in options if isinstance(o, dict) and o.get("type") == _ROW_TYPES)
    if isinstance(options, list) and options and all(_bare_type(o) for o in options):
        del out["anyOf"]
        out["type"] = [o["type"] for o in options]
    return out


def _bare_type(option: Any) -> bool:
    """``{"type": "x"}`` (or an object allowing any properties, which is what ``type: object`` means)."""
    if not isinstance(option, dict) or not isinstance(option.get("type"), str):
        return False
    return set(option) <= {"type", "additionalProperties"} and option.get("additionalProperties", True) is True
