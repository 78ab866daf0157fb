"""The record models of the two FOCUS 1.3 datasets, generated from the catalog (one field per column)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, create_model

from tools.catalog import Catalog, DataType, contract_commitment, cost_and_usage

_PY_TYPES: dict[DataType, Any] = {
    DataType.STRING: str | None,
    DataType.DECIMAL: Decimal | None,
    DataType.DATETIME: str | None,
    DataType.JSON: dict[str, Any] | None,
}


def _record_model(name: str, catalog: Catalog) -> type[BaseModel]:
    fields: dict[str, Any] = {}
    for column in catalog.columns:
        extra = " Deprecated in FOCUS 1.3." if column.deprecated else ""
        unit = " UTC, YYYY-MM-DDTHH:MM:SSZ." if column.data_type is DataType.DATETIME else ""
        fields[column.id] = (_PY_TYPES[column.data_type], Field(None, description=column.description + unit + extra))
    return create_model(name, __config__=ConfigDict(extra="allow"), **fields)


CostAndUsageRecord = _record_model("CostAndUsageRecord", cost_and_usage())
ContractCommitmentRecord = _record_model("ContractCommitmentRecord", contract_commitment())
