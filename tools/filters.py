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

NULL_WORD = "null"


@dataclass(frozen=True, slots=True)
class FilterSpec:
    param: str
    column: str
    description: str
    op: Operator = "="
    kind: Literal["text", "instant", "tag"] = "text"
    # The value must be one of the column's FOCUS allowed values (exact case).
    allowed_values: bool = False
    # The word "null" asks for rows where the column is null (ChargeClass is Correction or null).
    nullable: bool = False
    # Given several times (REST: the parameter repeated; MCP: a list); every value must hold (AND).
    repeatable: bool = False

    def check(self, value: str) -> str:
        """The value as given, or ValueError saying how to fix it (pydantic turns it into invalid_argument)."""
        if self.kind == "instant":
            parse_instant(value, self.param)
        if self.kind == "tag":
            key, sep, _ = value.partition("=")
            if not sep or not key:
                raise ValueError(f"{self.param} {value!r} must be KEY=VALUE, e.g. Environment=prod (exact case)")
        if self.allowed_values and not (self.nullable and value == NULL_WORD):
            allowed = cost_and_usage()[self.column].allowed_values or ()
            if value not in allowed:
                also = f", or {NULL_WORD} for rows without one" if self.nullable else ""
                raise ValueError(f"{self.param} must be one of {', '.join(allowed)} (case-sensitive){also}")
        return value

    def condition(self, value: str) -> Condition:
        if self.kind == "instant":
            return Condition(self.param, self.column, self.op, parse_instant(value, self.param))
        if self.kind == "tag":
            key, _, tag_value = value.partition("=")
            return Condition(self.param, self.column, "tag", (key, tag_value))
        if self.nullable and value == NULL_WORD:
            return Condition(self.param, self.column, "is null", None)
        return Condition(self.param, self.column, self.op, value)

    def wire_value(self, condition: Condition) -> str:
        """The condition's value as a query parameter of the same API (upstream mode, receipts)."""
        value = condition.value
        if isinstance(value, datetime):
            return format_instant(value) or ""
        if isinstance(value, tuple):
            return "=".join(value)
        return NULL_WORD if value is None else value


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
    # Beyond the seed: what questions name ("yesterday", "prod", "account X", "the corrections").
    FilterSpec(
        "chargePeriodStart",
        "ChargePeriodStart",
        f"Rows whose ChargePeriodStart is at or after this instant (inclusive): when the usage happened. {DATE_HELP}.",
        op=">=",
        kind="instant",
    ),
    FilterSpec(
        "chargePeriodEnd",
        "ChargePeriodStart",
        f"Rows whose ChargePeriodStart is before this instant (exclusive). {DATE_HELP}.",
        op="<",
        kind="instant",
    ),
    FilterSpec("billingAccountId", "BillingAccountId", "BillingAccountId equals this."),
    FilterSpec(
        "chargeClass",
        "ChargeClass",
        "ChargeClass equals this: Correction (charges that correct an earlier billing period), or null for "
        "every other row.",
        allowed_values=True,
        nullable=True,
    ),
    FilterSpec(
        "pricingCategory",
        "PricingCategory",
        "PricingCategory equals this: one of Standard, Dynamic, Committed, Other.",
        allowed_values=True,
    ),
    FilterSpec(
        "commitmentDiscountId",
        "CommitmentDiscountId",
        "CommitmentDiscountId equals this (the reservation, savings plan or committed use discount a row "
        "used or bought).",
    ),
    FilterSpec("resourceType", "ResourceType", "ResourceType equals this, e.g. EC2 Instance."),
    FilterSpec(
        "tag",
        "Tags",
        "KEY=VALUE: rows whose Tags hold exactly this key with exactly this value (case-sensitive). Give it "
        "several times (a list over MCP, the parameter repeated over REST) to require all of them.",
        kind="tag",
        repeatable=True,
    ),
)
BY_PARAM = {f.param: f for f in COST_FILTERS}
_RANGES = (("billingPeriodStart", "billingPeriodEnd"), ("chargePeriodStart", "chargePeriodEnd"))


class ToolInput(BaseModel):
    """Every tool input: unknown parameters are refused, so a typo is an error, not an ignored filter."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class _CostFilterFields(ToolInput):
    """What the generated filter fields add: turning them into the source's ``CostFilters``."""

    def cost_filters(self, scope: Scope) -> CostFilters:
        conditions = []
        for spec in COST_FILTERS:
            given = getattr(self, spec.param)
            for value in given if isinstance(given, list) else [] if given is None else [given]:
                conditions.append(spec.condition(value))
        filters = CostFilters(tuple(conditions), scope)
        for start_param, end_param in _RANGES:
            start, end = filters.value(start_param), filters.value(end_param)
            if isinstance(start, datetime) and isinstance(end, datetime) and end <= start:
                raise InvalidArgument(
                    f"{end_param} must be later than {start_param} (start inclusive, end exclusive)",
                    {"field": end_param},
                )
        return filters


def _field(spec: FilterSpec) -> tuple[Any, Any]:
    check: Callable[[str], str] = spec.check
    if spec.repeatable:
        each = Annotated[str, AfterValidator(check)]
        return (list[each] | None, Field(None, max_length=20, description=spec.description))
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


REPEATABLE = frozenset(f.param for f in COST_FILTERS if f.repeatable)


def query_params(filters: CostFilters) -> list[tuple[str, str]]:
    """The filters as the query parameters of this API (a repeatable filter once per value): what an
    upstream FOCUS API is sent, and what a receipt's REST URL carries."""
    return [(c.param, BY_PARAM[c.param].wire_value(c)) for c in filters.conditions]
