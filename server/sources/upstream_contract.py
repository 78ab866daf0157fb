"""What an upstream FOCUS API must answer, checked before anything is passed on.

Owns the contract checks of upstream mode: the list envelope (``data``, ``nextPageToken``,
``totalRecords``, ``dataLastUpdated``, ``dataCompleteness``), every record (keys are FOCUS 1.3 column IDs
of the dataset or ``x_`` custom columns; decimals are JSON numbers, kept exact as ``Decimal``; date/times
are UTC ``YYYY-MM-DDTHH:MM:SSZ``; JSON columns are objects or arrays), export jobs and schema metadata.
A violation is refused with ``upstream_error`` naming the first offending place, never passed on.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from functools import cache
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from tools.catalog import Catalog, DataType, contract_commitment, cost_and_usage
from tools.errors import UpstreamError
from tools.models import ExportJob, LoadedInfo, parse_instant

Completeness = Literal["Complete", "Partial", "Empty"]
_COMPLETENESS = ("Complete", "Partial", "Empty")
_INSTANT = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\Z")
_FILE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,199}\Z")


class ContractViolation(UpstreamError):
    """The upstream answered 2xx with a body that breaks the FOCUS API contract."""

    def __init__(self, operation: str, problem: str) -> None:
        super().__init__(
            f"the upstream FOCUS API broke the contract in its answer to {operation}: {problem}; nothing of it "
            "was passed on",
            {"operation": operation, "problem": problem, "upstreamStatus": 200},
        )


@dataclass(frozen=True, slots=True)
class UpstreamList:
    rows: list[dict[str, Any]]
    next_token: str | None
    total: int
    last_updated: datetime | None
    completeness: Completeness


@cache
def _kinds(dataset: str) -> tuple[tuple[str, ...], dict[str, DataType]]:
    catalog: Catalog = cost_and_usage() if dataset == "CostAndUsage" else contract_commitment()
    return catalog.ids, {c.id: c.data_type for c in catalog.columns}


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | Decimal):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def _record(value: Any, where: str, dataset: str, operation: str) -> dict[str, Any]:
    """One record in catalog column order (absent FOCUS columns as null), custom columns after."""
    if not isinstance(value, dict):
        raise ContractViolation(operation, f"{where} is {_type_name(value)}, expected a record object")
    ids, kinds = _kinds(dataset)
    for key, cell in value.items():
        kind = kinds.get(key)
        if kind is None:
            if not isinstance(key, str) or not key.startswith("x_"):
                raise ContractViolation(
                    operation,
                    f"{where} has the column {key!r}, which is neither a FOCUS 1.3 {dataset} column nor an x_ "
                    "custom column",
                )
            continue
        if cell is None:
            continue
        if kind is DataType.DECIMAL:
            if isinstance(cell, Decimal):
                continue
            if isinstance(cell, int) and not isinstance(cell, bool):
                value[key] = Decimal(cell)
                continue
            expected = "a decimal JSON number"
        elif kind is DataType.STRING:
            if isinstance(cell, str):
                continue
            expected = "a string"
        elif kind is DataType.DATETIME:
            if isinstance(cell, str) and _INSTANT.match(cell):
                continue
            expected = "a UTC date-time YYYY-MM-DDTHH:MM:SSZ"
        else:
            if isinstance(cell, dict | list):
                continue
            expected = "a JSON object or array"
        shown = repr(cell) if isinstance(cell, str) else _type_name(cell)
        raise ContractViolation(operation, f"{where}.{key} is {shown}, expected {expected} or null")
    record = {column: value.get(column) for column in ids}
    if len(record) != len(value):
        record.update((k, v) for k, v in value.items() if k not in kinds)
    return record


def instant(value: Any, field: str, operation: str) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, str):
        try:
            return parse_instant(value, field)
        except ValueError:
            pass
    raise ContractViolation(operation, f"{field} is {_type_name(value)}, expected an RFC 3339 date-time or null")


def list_page(body: Any, dataset: str, operation: str, max_rows: int) -> UpstreamList:
    """A list envelope with its records checked; ``max_rows`` is the page size that was asked for."""
    if not isinstance(body, dict):
        raise ContractViolation(operation, f"the body is {_type_name(body)}, expected the list envelope object")
    data = body.get("data")
    if not isinstance(data, list):
        problem = "data is missing" if "data" not in body else f"data is {_type_name(data)}"
        raise ContractViolation(operation, f"{problem}, expected an array of records")
    if len(data) > max_rows:
        raise ContractViolation(operation, f"data holds {len(data)} records for a page of at most {max_rows}")
    if "nextPageToken" not in body:
        raise ContractViolation(operation, "nextPageToken is missing (null marks the last page)")
    token = body["nextPageToken"]
    if token is not None and (not isinstance(token, str) or not token):
        raise ContractViolation(operation, f"nextPageToken is {_type_name(token)}, expected a non-empty string or null")
    if token is not None and not data:
        raise ContractViolation(operation, "an empty page has a nextPageToken (the walk would never end)")
    total = body.get("totalRecords")
    if not isinstance(total, int) or isinstance(total, bool) or total < 0:
        raise ContractViolation(operation, f"totalRecords is {_type_name(total)}, expected a count")
    completeness = body.get("dataCompleteness")
    if completeness not in _COMPLETENESS:
        raise ContractViolation(
            operation, f"dataCompleteness is {completeness!r}, expected one of {', '.join(_COMPLETENESS)}"
        )
    rows = [_record(row, f"data[{i}]", dataset, operation) for i, row in enumerate(data)]
    return UpstreamList(
        rows=rows,
        next_token=token,
        total=total,
        last_updated=instant(body.get("dataLastUpdated"), "dataLastUpdated", operation),
        completeness=completeness,
    )


def _model(model: type[BaseModel], body: Any, operation: str) -> Any:
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ())) or "the body"
        raise ContractViolation(operation, f"{where}: {first.get('msg', 'invalid')}") from None


def export_job(body: Any, operation: str) -> ExportJob:
    job: ExportJob = _model(ExportJob, body, operation)
    for f in job.files:
        if not _FILE_NAME.match(f.name):
            raise ContractViolation(operation, f"files[].name {f.name!r} is not a plain file name")
    return job


class _Column(BaseModel):
    model_config = ConfigDict(extra="ignore")
    dataset: Literal["CostAndUsage", "ContractCommitment"]
    name: str
    custom: bool = False


class UpstreamSchema(BaseModel):
    """The parts of an upstream ``/schema`` answer that upstream mode relays."""

    model_config = ConfigDict(extra="ignore")
    focusVersion: Literal["1.3"]
    columns: list[_Column]
    loaded: LoadedInfo

    def custom_columns(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {"CostAndUsage": [], "ContractCommitment": []}
        for column in self.columns:
            if column.custom:
                if not column.name.startswith("x_"):
                    raise ContractViolation("GET /schema", f"custom column {column.name!r} lacks the x_ prefix")
                out[column.dataset].append(column.name)
        return out


def schema(body: Any, operation: str) -> UpstreamSchema:
    result: UpstreamSchema = _model(UpstreamSchema, body, operation)
    result.custom_columns()
    return result
