"""Suite cases on one filtered 100-row page (bench/list.py's FILTERS: provider, category, 6 billing periods).

* REST page 1 vs the same page query run straight on DuckDB (a private copy of the store, read-only);
* the deepest page of the same walk (page 10 000, or the last page when the data has fewer) vs page 1,
  both over REST, the deep one reached with a minted page token;
* MCP ``tools/call listcostandusage`` vs REST for the same page, over streamable HTTP (the same server)
  and over stdio (a ``focus-api stdio`` on the same data dir).

Every path runs ``n`` sequential requests per round; rounds alternate between the paths (and their order
flips every round), so each ratio compares samples taken side by side.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable
from pathlib import Path

import duckdb
from common import Server, p50, pct
from list import FILTERS, PAGE, cursor_at_page, mcp_round, mcp_stdio_round, page_token, raw_round, rest_round
from report import Row, Target, ms

from server.sources import sql
from tools.cost_and_usage import ListCostAndUsageInput
from tools.records import SUGGESTED_COLUMNS
from tools.source import Scope

DEEP_PAGE = 10_000
NARROW = ",".join(SUGGESTED_COLUMNS)


def last_page(db: Path) -> int:
    """Pages of PAGE rows the FILTERS walk has."""
    filters = ListCostAndUsageInput.model_validate(FILTERS).cost_filters(Scope())
    query, params = sql.count_query(filters)
    con = duckdb.connect(str(db), read_only=True)
    try:
        row = con.execute(query, params).fetchone()
    finally:
        con.close()
    return max(1, math.ceil(int(row[0] if row else 0) / PAGE))


def run(server: Server, data_dir: Path, raw_db: Path, n: int, rounds: int) -> list[Row]:
    deep = min(DEEP_PAGE, last_page(raw_db))
    cursor = cursor_at_page(str(raw_db), deep) if deep > 1 else None
    query = {**FILTERS, "pageSize": str(PAGE)}
    deep_query = {**query, "pageToken": page_token(server.rest, cursor)} if cursor is not None else query
    paths: dict[str, Callable[[], list[float]]] = {
        "raw": lambda: raw_round(str(raw_db), n, None),
        "rest": lambda: asyncio.run(rest_round(server.rest, n, query)),
        "mcp": lambda: asyncio.run(mcp_round(server.mcp, n, {**FILTERS, "pageSize": PAGE})),
        "mcp_stdio": lambda: asyncio.run(mcp_stdio_round(data_dir, n, {**FILTERS, "pageSize": PAGE})),
        "rest_deep": lambda: asyncio.run(rest_round(server.rest, n, deep_query)),
        "rest_narrow": lambda: asyncio.run(rest_round(server.rest, n, {**query, "columns": NARROW})),
        "mcp_narrow": lambda: asyncio.run(
            mcp_round(server.mcp, n, {**FILTERS, "pageSize": PAGE, "columns": list(SUGGESTED_COLUMNS)})
        ),
    }
    times: dict[str, list[float]] = {name: [] for name in paths}
    for r in range(rounds):
        for name in list(paths) if r % 2 == 0 else reversed(list(paths)):
            times[name] += paths[name]()

    def row(case: str, ours: str, ref: str, target: float | None, note: str = "") -> Row:
        return Row(
            case,
            ms(p50(times[ours])),
            ms(pct(times[ours], 0.95)),
            ms(p50(times[ref])),
            p50(times[ours]) / p50(times[ref]),
            Target("<=", target) if target is not None else None,
            notes=[note] if note else [],
        )

    deep_note = (
        f"page {deep:,} is the deepest page of the filtered walk at this size (page {DEEP_PAGE:,} does not exist)"
        if deep < DEEP_PAGE
        else ""
    )
    return [
        row("filtered 100-row page: REST vs DuckDB direct", "rest", "raw", 1.3),
        row(f"page {deep:,} vs page 1 (REST, same walk)", "rest_deep", "rest", 1.2, deep_note),
        row("same page: MCP streamable HTTP vs REST", "mcp", "rest", 1.3),
        row("same page: MCP stdio vs REST", "mcp_stdio", "rest", 1.3),
        row(
            f"same page, the {len(SUGGESTED_COLUMNS)} suggested columns: MCP streamable HTTP vs REST",
            "mcp_narrow",
            "rest_narrow",
            None,
            "the MCP SDK's own work (pydantic dumps and stdlib json.dumps on the server, pydantic parse and "
            "jsonschema on the client) grows with the result's bytes: a full-width page is ~237 KB, this one "
            "a tenth of it",
        ),
    ]
