"""The one registry of tool specs: the MCP and REST adapters, OpenAPI and the CLI all loop over ``TOOLS``.

Names, REST routes and hints follow the seed (``capability.yaml``); a contract test fails on drift.
The seed's five tools come first, in the seed's order, then the tools beyond it.
"""

from __future__ import annotations

from tools import (
    burndown,
    commitments,
    cost_and_usage,
    discounts,
    exports,
    invoices,
    reconciliation,
    schema_metadata,
    summaries,
)
from tools.spec import ToolSpec

TOOLS: tuple[ToolSpec, ...] = (
    cost_and_usage.LIST,
    exports.EXPORT,
    exports.STATUS,
    commitments.LIST,
    schema_metadata.SPEC,
    summaries.SUMMARIZE,
    summaries.VALUES,
    invoices.LIST_BILLING_PERIODS,
    invoices.LIST_INVOICE_DETAILS,
    reconciliation.RECONCILE,
    burndown.SUMMARIZE,
    discounts.SUMMARIZE,
)
BY_NAME = {spec.name: spec for spec in TOOLS}
