"""Handlers of ``summarizecostandusage`` and ``listcostandusagevalues``: answers in one call.

Transport-neutral like the seed tools' handlers; both exposures call these.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from tools.context import ToolContext
from tools.handlers import cost_filters, page_size
from tools.models import Truncation, format_instant
from tools.pagination import fingerprint
from tools.source import SummaryQuery, ValuesQuery
from tools.summary_models import (
    ListCostAndUsageValuesInput,
    ListCostAndUsageValuesOutput,
    SummarizeCostAndUsageInput,
    SummarizeCostAndUsageOutput,
    SummaryRow,
)


def _with_savings(row: dict[str, Any], savings: bool) -> dict[str, Any]:
    if savings:
        row["Savings"] = (row.get("ListCost") or Decimal(0)) - (row.get("EffectiveCost") or Decimal(0))
    return row


async def summarize_cost_and_usage(args: SummarizeCostAndUsageInput, ctx: ToolContext) -> SummarizeCostAndUsageOutput:
    filters = cost_filters(args, ctx.scope)
    query = SummaryQuery(
        group_by=tuple(args.groupBy),
        metrics=tuple(args.metrics),
        savings=args.savings,
        top=args.top,
        sort=(args.sort or args.metrics[0]).lstrip("+-"),
        descending=not (args.sort or "").startswith("+"),
        max_groups=ctx.limits.max_page_size,
    )
    summary = await ctx.source.summarize(filters, query)
    state = await ctx.source.data_state()
    shown = sum(1 for r in summary.rows if not r["other"])
    cut = None
    if args.top is None and shown < summary.group_count:
        cut = Truncation(
            rowsReturned=shown,
            rowsRequested=summary.group_count,
            reason=f"{summary.group_count} groups exceed the {ctx.limits.transport} limit of "
            f"{ctx.limits.max_page_size} per currency",
            howToGetTheRest="set top (the rest is summed in one Other row per currency), narrow the filters, or "
            "group by fewer dimensions",
        )
    return SummarizeCostAndUsageOutput(
        groupBy=args.groupBy,
        metrics=[*args.metrics, *(["Savings"] if args.savings else [])],
        data=[SummaryRow(**_with_savings(r, args.savings)) for r in summary.rows],
        totals=[SummaryRow(**_with_savings(t, args.savings)) for t in summary.totals],
        groupCount=summary.group_count,
        truncated=cut,
        dataLastUpdated=format_instant(summary.envelope.last_updated if summary.envelope else state.last_updated),
        dataCompleteness=(
            summary.envelope.completeness
            if summary.envelope
            else "Empty"
            if not summary.totals
            else await ctx.source.completeness(filters)
        ),
        appliedScope=ctx.applied_scope(),
    )


async def list_cost_and_usage_values(
    args: ListCostAndUsageValuesInput, ctx: ToolContext
) -> ListCostAndUsageValuesOutput:
    size = page_size(args.pageSize, ctx)
    filters = cost_filters(args, ctx.scope)
    query = ValuesQuery(column=args.column, search=args.search, prefix=args.searchMode == "prefix")
    state = await ctx.source.data_state()
    walk = fingerprint(
        "listcostandusagevalues",
        filters.as_params() | {"column": args.column, "search": args.search, "mode": args.searchMode},
        ctx.scope.key(),
    )
    cursor = ctx.tokens.open(args.pageToken, fingerprint=walk, data_version=state.version) if args.pageToken else None
    page = await ctx.source.distinct_values(filters, query, cursor, size)
    token = (
        ctx.tokens.issue(fingerprint=walk, data_version=state.version, cursor=page.next_cursor)
        if page.next_cursor
        else None
    )
    return ListCostAndUsageValuesOutput(
        column=args.column,
        data=page.rows,
        nextPageToken=token,
        totalRecords=page.total,
        dataLastUpdated=format_instant(page.envelope.last_updated if page.envelope else state.last_updated),
        dataCompleteness=(
            page.envelope.completeness
            if page.envelope
            else "Empty"
            if page.total == 0
            else await ctx.source.completeness(filters)
        ),
        appliedScope=ctx.applied_scope(),
    )
