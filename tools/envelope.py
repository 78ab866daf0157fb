"""The answer envelope every list tool shares, built in one place.

``data``, ``nextPageToken`` (a signed token bound to the walk), ``totalRecords``, ``dataLastUpdated``,
``dataCompleteness``, ``truncated`` (what a size budget cut) and ``appliedScope``. Summaries, which have
no pages, share the freshness half (``dataLastUpdated``, ``dataCompleteness``, ``appliedScope``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from pydantic import BaseModel

from tools import wire
from tools.context import Limits, ToolContext
from tools.errors import InvalidArgument
from tools.instants import format_instant
from tools.pagination import fingerprint
from tools.source import Completeness, Envelope, Page, Row, Verdict

PAGE_SIZE_HELP = (
    "Rows per page. Over REST the default is 1000 and the maximum 10000; over MCP the default is 100 and the "
    "maximum 1000. A larger value is refused, not clamped."
)
PAGE_TOKEN_HELP = "nextPageToken from the previous page; repeat the same filters (the token is bound to them)."  # noqa: S105
COMPLETENESS_HELP = (
    "Complete: every billing period the answer covers had ended when its data was last loaded, so no more "
    "charges are expected for it. Partial: at least one covered period was still open. Empty: nothing matched."
)
COMPLETENESS_RULE_HELP = (
    "How dataCompleteness was judged. BillingPeriodStatus: every covered billing period has FOCUS 1.4 Billing "
    "Period rows, and a period is final when the rows of every invoice issuer in it say Closed (Open: not final). "
    "PeriodEnded: no covered period has Billing Period rows, so a period counts as final once it had ended when "
    "its data was last loaded. Mixed: some periods each way. A period a quarantining load left rows out of is "
    "never final. null when nothing matched."
)


class AppliedScope(BaseModel):
    """Which caller the answer was computed for, and the accounts it was limited to (null: all)."""

    principal: str
    billingAccountIds: list[str] | None = None
    subAccountIds: list[str] | None = None


class Truncation(BaseModel):
    """What a size budget cut from a page, and how to get the rest."""

    rowsReturned: int
    rowsRequested: int
    reason: str
    howToGetTheRest: str


def applied_scope(ctx: ToolContext) -> AppliedScope:
    return AppliedScope(principal=ctx.principal, **ctx.scope.describe())


def page_size(requested: int | None, limits: Limits) -> int:
    if requested is None:
        return limits.default_page_size
    if requested > limits.max_page_size:
        raise InvalidArgument(
            f"pageSize {requested} is above the {limits.transport} maximum of {limits.max_page_size}; "
            "ask for a smaller page and follow nextPageToken, or use exportcostandusage for the whole set",
            {"field": "pageSize", "maximum": limits.max_page_size},
        )
    return requested


def fit_budget(page: Page, limits: Limits, requested: int) -> tuple[list[Row], str | None, Truncation | None]:
    """Cut a page to the transport's size budget, saying what was cut and how to get the rest."""
    budget = limits.result_budget_bytes
    if budget is None or page.cursors is None or not page.rows:
        return page.rows, page.next_cursor, None
    used = 0
    keep = 0
    for row in page.rows:
        used += len(wire.dumps(row)) + 1
        if used > budget and keep > 0:
            break
        keep += 1
    if keep == len(page.rows):
        return page.rows, page.next_cursor, None
    note = Truncation(
        rowsReturned=keep,
        rowsRequested=requested,
        reason=f"the page was cut at {keep} rows to stay within this result's size budget of {budget} bytes",
        howToGetTheRest="call again with the same filters and pageToken=nextPageToken; nothing was skipped",
    )
    return page.rows[:keep], page.cursors[keep - 1], note


async def freshness(
    ctx: ToolContext,
    relayed: Envelope | None,
    empty: bool,
    completeness: Callable[[], Awaitable[Completeness | Verdict]],
) -> dict[str, Any]:
    """dataLastUpdated, dataCompleteness (and dataCompletenessRule when the judge says which rule it used)
    and appliedScope; a relaying source's own envelope wins."""
    state = await ctx.data_state()
    judged: Completeness | Verdict = (
        Verdict(relayed.completeness, relayed.rule) if relayed else "Empty" if empty else await completeness()
    )
    verdict = judged if isinstance(judged, Verdict) else Verdict(judged)
    return {
        "dataLastUpdated": format_instant(relayed.last_updated if relayed else state.last_updated),
        "dataCompleteness": verdict.completeness,
        # Output models without the field drop it (model_construct keeps only declared fields).
        "dataCompletenessRule": verdict.rule,
        "appliedScope": applied_scope(ctx),
    }


async def list_page(
    ctx: ToolContext,
    *,
    tool: str,
    walk: dict[str, Any],
    page_token: str | None,
    requested_size: int | None,
    fetch: Callable[[str | None, int], Awaitable[Page]],
    completeness: Callable[[], Awaitable[Completeness | Verdict]],
) -> dict[str, Any]:
    """One page of a walk, as the envelope's fields: the token is checked against the walk and data version."""
    size = page_size(requested_size, ctx.limits)
    state = await ctx.data_state()
    bound = fingerprint(tool, walk, ctx.scope.key())
    cursor = ctx.tokens.open(page_token, fingerprint=bound, data_version=state.version) if page_token else None
    page = await fetch(cursor, size)
    rows, next_cursor, cut = fit_budget(page, ctx.limits, size)
    token = ctx.tokens.issue(fingerprint=bound, data_version=state.version, cursor=next_cursor) if next_cursor else None
    return {
        "data": rows,
        "nextPageToken": token,
        "totalRecords": page.total,
        "truncated": cut,
        **await freshness(ctx, page.envelope, page.total == 0, completeness),
    }
