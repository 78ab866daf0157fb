"""What an upstream FOCUS API must answer, checked before anything is passed on.

Owns the contract checks of upstream mode: the list envelope (``data``, ``nextPageToken``,
``totalRecords``, ``dataLastUpdated``, ``dataCompleteness``), every record (keys are FOCUS 1.3 column IDs
of the dataset or ``x_`` custom columns; decimals are JSON numbers, kept exact as ``Decimal``; date/times
are UTC ``YYYY-MM-DDTHH:MM:SSZ``; JSON columns are objects or arrays), export jobs and schema metadata.
A violation is refused with ``upstream_error`` naming the first offending place, never passed on.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from functools import cache
from typing import Any, Literal, NoReturn, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from tools.catalog import Catalog, DataType, contract_commitment, cost_and_usage
from tools.errors import UpstreamError
from tools.exports import ExportJob
from tools.instants import parse_instant
from tools.schema_metadata import LoadedInfo
from tools.source import Completeness

_COMPLETENESS = ("Complete", "Partial", "Empty")
M = TypeVar("M", bound=BaseModel)
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


@dataclass(frozen=True, slots=True)
class _Columns:
    """One dataset's column IDs, grouped by FOCUS data type (checked a type at a time: fast)."""

    ids: tuple[str, ...]
    known: frozenset[str]
    decimal: tuple[str, ...]
    string: tuple[str, ...]
    datetime: tuple[str, ...]
    json: tuple[str, ...]


@cache
def _columns(dataset: str) -> _Columns:
    catalog: Catalog = cost_and_usage() if dataset == "CostAndUsage" else contract_commitment()

    def of(kind: DataType) -> tuple[str, ...]:
        return tuple(c.id for c in catalog.of_type(kind))

    return _Columns(
        ids=catalog.ids,
        known=frozenset(catalog.ids),
        decimal=of(DataType.DECIMAL),
        string=of(DataType.STRING),
        datetime=of(DataType.DATETIME),
        json=of(DataType.JSON),
    )


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
    """One record in catalog column order (absent FOCUS columns as null), custom columns after.

    Hot path (every row of every page): exact ``type(...) is`` checks, one data type at a time.
    """
    if type(value) is not dict:
        raise ContractViolation(operation, f"{where} is {_type_name(value)}, expected a record object")
    columns = _columns(dataset)
    custom = value.keys() - columns.known
    for key in custom:
        if not isinstance(key, str) or not key.startswith("x_"):
            raise ContractViolation(
                operation,
                f"{where} has the column {key!r}, which is neither a FOCUS 1.3 {dataset} column nor an x_ "
                "custom column",
            )
    get = value.get
    for key in columns.decimal:
        cell = get(key)
        if cell is None or type(cell) is Decimal:
            continue
        if type(cell) is int:
            value[key] = Decimal(cell)
            continue
        _wrong(operation, f"{where}.{key}", cell, "a decimal JSON number")
    for key in columns.string:
        cell = get(key)
        if cell is not None and type(cell) is not str:
            _wrong(operation, f"{where}.{key}", cell, "a string")
    for key in columns.datetime:
        cell = get(key)
        if cell is not None and (type(cell) is not str or not _INSTANT.match(cell)):
            _wrong(operation, f"{where}.{key}", cell, "a UTC date-time YYYY-MM-DDTHH:MM:SSZ")
    for key in columns.json:
        cell = get(key)
        if cell is not None and type(cell) is not dict and type(cell) is not list:
            _wrong(operation, f"{where}.{key}", cell, "a JSON object or array")
    if not custom and len(value) == len(columns.ids):
        return value  # every FOCUS column, nothing else: as good as rebuilt
    record = {column: get(column) for column in columns.ids}
    record.update((k, v) for k, v in value.items() if k in custom)
    return record


def _wrong(operation: str, where: str, cell: Any, expected: str) -> NoReturn:
    shown = repr(cell) if isinstance(cell, str) else _type_name(cell)
    raise ContractViolation(operation, f"{where} is {shown}, expected {expected} or null")


def instant(value: Any, field: str, operation: str) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, str):
        try:
            return parse_instant(value, field)
        except ValueError:
            pass
    raise ContractViolation(operation, f"{field} is {_type_name(value)}, expected an RFC 3339 date-time or null")


def _envelope_object(body: Any, operation: str) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise ContractViolation(operation, f"the body is {_type_name(body)}, expected an object")
    return body


def _array(body: dict[str, Any], key: str, operation: str) -> list[Any]:
    value = body.get(key)
    if not isinstance(value, list):
        problem = f"{key} is missing" if key not in body else f"{key} is {_type_name(value)}"
        raise ContractViolation(operation, f"{problem}, expected an array")
    return value


def _count(body: dict[str, Any], key: str, operation: str) -> int:
    value = body.get(key)
    if type(value) is not int or value < 0:
        raise ContractViolation(operation, f"{key} is {_type_name(value)}, expected a count")
    return value


def _completeness(body: dict[str, Any], operation: str) -> Completeness:
    value = body.get("dataCompleteness")
    if value not in _COMPLETENESS:
        raise ContractViolation(operation, f"dataCompleteness is {value!r}, expected one of {', '.join(_COMPLETENESS)}")
    completeness: Completeness = value
    return completeness


def list_page(body: Any, operation: str, max_rows: int, row: Callable[[Any, str, str], dict[str, Any]]) -> UpstreamList:
    """A paged envelope with each row checked by ``row(value, where, operation)``; ``max_rows`` was asked for."""
    envelope = _envelope_object(body, operation)
    data = _array(envelope, "data", operation)
    if len(data) > max_rows:
        raise ContractViolation(operation, f"data holds {len(data)} records for a page of at most {max_rows}")
    if "nextPageToken" not in envelope:
        raise ContractViolation(operation, "nextPageToken is missing (null marks the last page)")
    token = envelope["nextPageToken"]
    if token is not None and (not isinstance(token, str) or not token):
        raise ContractViolation(operation, f"nextPageToken is {_type_name(token)}, expected a non-empty string or null")
    if token is not None and not data:
        raise ContractViolation(operation, "an empty page has a nextPageToken (the walk would never end)")
    total = _count(envelope, "totalRecords", operation)
    completeness = _completeness(envelope, operation)
    return UpstreamList(
        rows=[row(value, f"data[{i}]", operation) for i, value in enumerate(data)],
        next_token=token,
        total=total,
        last_updated=instant(envelope.get("dataLastUpdated"), "dataLastUpdated", operation),
        completeness=completeness,
    )


def focus_record(dataset: str) -> Callable[[Any, str, str], dict[str, Any]]:
    """The row check of a FOCUS dataset's list: column IDs and value types from the catalog."""
    return lambda value, where, operation: _record(value, where, dataset, operation)


def _decimal(value: Any, where: str, operation: str) -> Decimal | None:
    if value is None or type(value) is Decimal:
        return value
    if type(value) is int:
        return Decimal(value)
    _wrong(operation, where, value, "a decimal JSON number")


def _text(value: Any, where: str, operation: str) -> str | None:
    if value is not None and type(value) is not str:
        _wrong(operation, where, value, "a string")
    return value


def value_count(value: Any, where: str, operation: str) -> dict[str, Any]:
    """One row of ``listcostandusagevalues``: a value, its row count and EffectiveCost per currency."""
    if type(value) is not dict or set(value) != {"value", "rowCount", "effectiveCost"}:
        raise ContractViolation(operation, f"{where} is not a {{value, rowCount, effectiveCost}} object")
    if type(value["value"]) is not str:
        raise ContractViolation(operation, f"{where}.value is {_type_name(value['value'])}, expected a string")
    _count(value, "rowCount", operation)
    costs = value["effectiveCost"]
    if not isinstance(costs, list) or not all(type(c) is dict for c in costs):
        raise ContractViolation(operation, f"{where}.effectiveCost is not an array of per-currency amounts")
    checked = []
    for i, cost in enumerate(costs):
        at = f"{where}.effectiveCost[{i}]"
        currency = _text(cost.get("BillingCurrency"), f"{at}.BillingCurrency", operation)
        amount = _decimal(cost.get("EffectiveCost"), f"{at}.EffectiveCost", operation)
        checked.append({"BillingCurrency": currency, "EffectiveCost": amount})
    value["effectiveCost"] = checked
    return value


@dataclass(frozen=True, slots=True)
class UpstreamSummary:
    rows: list[dict[str, Any]]
    totals: list[dict[str, Any]]
    group_count: int
    last_updated: datetime | None
    completeness: Completeness


def summary(body: Any, operation: str, group_by: tuple[str, ...], metrics: tuple[str, ...]) -> UpstreamSummary:
    """A ``summarizecostandusage`` answer: groups and totals keyed only by what was asked, sums exact."""
    envelope = _envelope_object(body, operation)
    allowed = {"BillingCurrency", "rowCount", "other", "Savings", *group_by, *metrics}

    def group(value: Any, where: str) -> dict[str, Any]:
        if type(value) is not dict:
            raise ContractViolation(operation, f"{where} is {_type_name(value)}, expected a group object")
        unexpected = sorted(set(value) - allowed)
        if unexpected:
            raise ContractViolation(operation, f"{where} has {unexpected[0]!r}, which was not asked for")
        _count(value, "rowCount", operation)
        if type(value.get("other", False)) is not bool:
            raise ContractViolation(operation, f"{where}.other is {_type_name(value['other'])}, expected a boolean")
        for key in ("BillingCurrency", *group_by):
            _text(value.get(key), f"{where}.{key}", operation)
        for key in (*metrics, "Savings"):
            if key in value:
                value[key] = _decimal(value[key], f"{where}.{key}", operation)
        return value

    rows = [group(v, f"data[{i}]") for i, v in enumerate(_array(envelope, "data", operation))]
    totals = [group(v, f"totals[{i}]") for i, v in enumerate(_array(envelope, "totals", operation))]
    return UpstreamSummary(
        rows=rows,
        totals=totals,
        group_count=_count(envelope, "groupCount", operation),
        last_updated=instant(envelope.get("dataLastUpdated"), "dataLastUpdated", operation),
        completeness=_completeness(envelope, operation),
    )


def _model(model: type[BaseModel], body: Any, operation: str) -> Any:
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ())) or "the body"
        raise ContractViolation(operation, f"{where}: {first.get('msg', 'invalid')}") from None


def model(output: type[M], body: Any, operation: str) -> M:
    """A body checked against one of the tools' own output models (the answers of focus-api's own tools)."""
    checked: M = _model(output, body, operation)
    return checked


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
