"""The one table of Cost and Usage filters: each declared once, read by everything that knows filters.

An entry names the caller's parameter (the seed's camelCase name, never renamed), the FOCUS column it
compares, how it compares, how its value is checked, and the text a model reads. The input model every
Cost and Usage tool takes, the SQL builders (``server/sources/sql.py``), the upstream client's query
parameters, OpenAPI and the capability drift test all come from this table: adding a filter is one entry
here plus its line in ``capability.yaml``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, create_model

from tools.catalog import cost_and_usage
from tools.errors import InvalidArgument
from tools.instants import DATE_HELP, format_instant, parse_instant
from tools.source import Condition, CostFilters, Operator, Scope


@dataclass(frozen=True, slots=True)
class FilterSpec:
    param: str
    column: str
    description: str
    op: Operator = "="
    kind: Literal["text", "instant"] = "text"
    # The value must be one of the column's FOCUS allowed values (exact case).
    allowed_values: bool = False

    def check(self, value: str) -> str:
        """The value as given, or ValueError saying how to fix it (pydantic turns it into invalid_argument)."""
        if self.kind == "instant":
            parse_instant(value, self.param)
        if self.allowed_values:
            allowed = cost_and_usage()[self.column].allowed_values or ()
            if value not in allowed:
                raise ValueError(f"{self.param} must be one of {', '.join(allowed)} (case-sensitive)")
        return value

    def condition(self, value: str) -> Condition:
        parsed: str | datetime = parse_instant(value, self.param) if self.kind == "instant" else value
        return Condition(self.param, self.column, self.op, parsed)

    def wire_value(self, condition: Condition) -> str:
        """The condition's value as a query parameter of the same API (upstream mode)."""
        if isinstance(condition.value, datetime):
            return format_instant(condition.value) or ""
        return condition.value


COST_FILTERS: tuple[FilterSpec, ...] = (
    FilterSpec(
        "billingPeriodStart",
        "BillingPeriodStart",
        f"Rows whose BillingPeriodStart is at or after this instant (inclusive). {DATE_HELP}.",
        op=">=",
        kind="instant",
    ),
    FilterSpec(
        "billingPeriodEnd",
        "BillingPeriodStart",
        f"Rows whose BillingPeriodStart is before this instant (exclusive). {DATE_HELP}.",
        op="<",
        kind="instant",
    ),
    FilterSpec(
        "chargeCategory",
        "ChargeCategory",
        "ChargeCategory equals this: one of Usage, Purchase, Tax, Credit, Adjustment.",
        allowed_values=True,
    ),
    FilterSpec(
        "providerName",
        "ServiceProviderName",
        "ServiceProviderName equals this (the entity that made the service available, e.g. AWS, Microsoft, "
        "Google Cloud). FOCUS 1.3 replaced the deprecated ProviderName with ServiceProviderName.",
    ),
    FilterSpec("serviceName", "ServiceName", "ServiceName equals this, e.g. AmazonEC2."),
    FilterSpec(
        "serviceCategory",
        "ServiceCategory",
        "ServiceCategory equals this, e.g. Compute, Storage, Networking, Databases.",
        allowed_values=True,
    ),
    FilterSpec("region", "RegionId", "RegionId equals this, e.g. us-east-1."),
    FilterSpec("resourceId", "ResourceId", "ResourceId equals this (the provider's identifier)."),
    FilterSpec("subAccountId", "SubAccountId", "SubAccountId equals this."),
    FilterSpec("billingCurrency", "BillingCurrency", "BillingCurrency equals this ISO 4217 code, e.g. USD."),
)
BY_PARAM = {f.param: f for f in COST_FILTERS}


class ToolInput(BaseModel):
    """Every tool input: unknown parameters are refused, so a typo is an error, not an ignored filter."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class _CostFilterFields(ToolInput):
    """What the generated filter fields add: turning them into the source's ``CostFilters``."""

    def cost_filters(self, scope: Scope) -> CostFilters:
        conditions = tuple(
            spec.condition(value) for spec in COST_FILTERS if (value := getattr(self, spec.param)) is not None
        )
        filters = CostFilters(conditions, scope)
        start, end = filters.value("billingPeriodStart"), filters.value("billingPeriodEnd")
        if isinstance(start, datetime) and isinstance(end, datetime) and end <= start:
            raise InvalidArgument(
                "billingPeriodEnd must be later than billingPeriodStart (start inclusive, end exclusive)",
                {"field": "billingPeriodEnd"},
            )
        return filters


def _field(spec: FilterSpec) -> tuple[Any, Any]:
    check: Callable[[str], str] = spec.check
    return (
        Annotated[str | None, AfterValidator(lambda v: None if v is None else check(v))],
        Field(None, description=spec.description),
    )


if TYPE_CHECKING:
    # Type checkers see the base class; the fields exist at run time, generated from the table.
    CostAndUsageFilters = _CostFilterFields
else:
    CostAndUsageFilters = create_model(
        "CostAndUsageFilters",
        __base__=_CostFilterFields,
        __doc__="The Cost and Usage filters; exact, case-sensitive matches unless said otherwise.",
        **{spec.param: _field(spec) for spec in COST_FILTERS},
    )


def upstream_params(filters: CostFilters) -> dict[str, str]:
    """The filters as the query parameters of another FOCUS API speaking the same contract."""
    return {c.param: BY_PARAM[c.param].wire_value(c) for c in filters.conditions}
