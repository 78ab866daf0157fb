"""The records of the FOCUS datasets: models generated from the catalog (one field per column of every
served version), the ``focusVersion`` choice of row shape, and the ``columns`` choice that narrows them."""

from __future__ import annotations

import difflib
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, create_model

from tools.catalog import DEFAULT_VERSION, Catalog, Dataset, DataType, columns_at, stored

_PY_TYPES: dict[DataType, Any] = {
    DataType.STRING: str | None,
    DataType.DECIMAL: Decimal | None,
    DataType.DATETIME: str | None,
    DataType.JSON: dict[str, Any] | None,
}


def _versions_note(dataset: Dataset, column_id: str) -> str:
    """Which served row shapes carry a column, when not all of them do."""
    if dataset in (Dataset.BILLING_PERIOD, Dataset.INVOICE_DETAIL):
        return ""
    shapes = [v for v in ("1.3", "1.4") if column_id in columns_at(dataset, v)]
    if len(shapes) == 2:
        return ""
    if shapes == ["1.4"]:
        return " FOCUS 1.4 rows only (focusVersion 1.4)."
    return " FOCUS 1.3 rows only: removed in 1.4 (for rows loaded from 1.4 files it is derived, see getschemametadata)."


def record_model(name: str, dataset: Dataset) -> type[BaseModel]:
    """A row of ``dataset`` in any served shape: every column of the store's layout, each optional."""
    fields: dict[str, Any] = {}
    for column in stored(dataset).columns:
        extra = " Deprecated in FOCUS 1.3." if column.deprecated else ""
        unit = " UTC, YYYY-MM-DDTHH:MM:SSZ." if column.data_type is DataType.DATETIME else ""
        text = column.description + unit + extra + _versions_note(dataset, column.id)
        fields[column.id] = (_PY_TYPES[column.data_type], Field(None, description=text))
    return create_model(name, __config__=ConfigDict(extra="allow"), **fields)


CostAndUsageRecord = record_model("CostAndUsageRecord", Dataset.COST_AND_USAGE)
ContractCommitmentRecord = record_model("ContractCommitmentRecord", Dataset.CONTRACT_COMMITMENT)

FocusVersion = Literal["1.3", "1.4"]
FOCUS_VERSION_HELP = (
    "The FOCUS version of the rows: 1.3 (the default; rows loaded from 1.4 files carry ProviderName and "
    "PublisherName derived from ServiceProviderName and HostProviderName) or 1.4 (1.4's columns: no ProviderName "
    "or PublisherName, with CommitmentProgramEligibilityDetails and InvoiceDetailId; Contract Commitment rows "
    "with all 30 columns; null where a row was loaded from an older file). Page tokens are bound to it."
)


def focus_version_field() -> Any:
    return Annotated[FocusVersion | None, Field(description=FOCUS_VERSION_HELP)]


def version_of(requested: str | None) -> str:
    return requested or DEFAULT_VERSION


# What answers most questions about spend, in the order a person reads a row: the default an agent is
# pointed to when it asks for every column (a 100-row page of these is ~12 KB instead of ~230 KB).
SUGGESTED_COLUMNS = (
    "ChargePeriodStart",
    "ServiceProviderName",
    "ServiceName",
    "SubAccountId",
    "ChargeCategory",
    "BilledCost",
    "EffectiveCost",
    "BillingCurrency",
)
COLUMNS_HELP = (
    "Only these columns, in this order (FOCUS column IDs, or x_ custom columns of the loaded data); "
    "comma-separated over REST. Default: every column. Page tokens stay valid when this changes between "
    "pages of a walk (the rows and their order do not depend on it)."
)


def split_list(value: Any) -> Any:
    """Lists arrive as JSON arrays (MCP, POST) or comma-separated strings (REST query)."""
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


def checked_columns(names: list[str], catalog: Catalog) -> list[str]:
    """The asked columns, or ValueError naming the unknown ones and their close matches."""
    problems = []
    for name in names:
        if name not in catalog and not name.startswith("x_"):
            close = difflib.get_close_matches(name, catalog.ids, n=3, cutoff=0.6)
            hint = f" (did you mean {', '.join(close)}?)" if close else ""
            problems.append(f"{name!r}{hint}")
    if problems:
        raise ValueError(
            f"unknown columns {', '.join(problems)}; use FOCUS column IDs of the {catalog.dataset.value} dataset "
            "(getschemametadata lists them) or x_ custom columns"
        )
    if len(set(names)) != len(names):
        raise ValueError("columns names a column twice")
    return names


def columns_field(catalog: Catalog) -> Any:
    """The ``columns`` input field for a tool over ``catalog``'s dataset."""
    names = Annotated[
        list[str], Field(min_length=1, max_length=200), AfterValidator(lambda v: checked_columns(v, catalog))
    ]
    return Annotated[names | None, BeforeValidator(split_list), Field(description=COLUMNS_HELP)]


RowFormat = Literal["objects", "arrays"]
ROW_FORMAT_HELP = (
    "objects: one JSON object per row (the default over REST, and over MCP without columns). arrays: each row "
    "a list of its values in the order of the answer's columns field, the same values without repeating every "
    "column name (about a third of the size; the default over MCP when columns is given)."
)


def row_format_field() -> Any:
    return Annotated[RowFormat | None, Field(description=ROW_FORMAT_HELP)]


def shape_rows(
    envelope: dict[str, Any], columns: list[str] | None, requested: RowFormat | None, compact_by_default: bool
) -> dict[str, Any]:
    """The envelope's rows in the asked format, with ``rowFormat`` and, for arrays, their ``columns``."""
    fmt: RowFormat = requested or ("arrays" if columns and compact_by_default else "objects")
    rows: list[dict[str, Any]] = envelope["data"]
    if fmt == "objects":
        return envelope | {"rowFormat": fmt}
    names = columns or (list(rows[0]) if rows else [])
    return envelope | {"rowFormat": fmt, "columns": names, "data": [[row.get(c) for c in names] for row in rows]}
