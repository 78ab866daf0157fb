"""Suite case (issue 7): top-20 ServiceName by month over REST ``summarizecostandusage`` vs the GROUP BY on DuckDB.

REST ``GET /cost-and-usage/summary?groupBy=ServiceName,month&top=20`` (per currency, plus the Other row,
the totals and the completeness our answer carries) against the bare ``GROUP BY ... QUALIFY row_number()``
a user would run on DuckDB for the same top 20 (a private read-only copy of the store). Rounds alternate;
the answers are checked to agree to the cent before any timing counts.
"""

from __future__ import annotations

import asyncio
import json
import time
import urllib.parse
import urllib.request
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
from common import Server, p50, pct
from list import rest_round
from questions import agreement, top_services_by_month
from report import Row, Target, ms

from server.store.schema import CU_TABLE

PATH = "/cost-and-usage/summary"


def rest_params() -> dict[str, str]:
    q = top_services_by_month()
    return {"groupBy": ",".join(q.args["groupBy"]), "top": str(q.args["top"])}


def raw_round(db: Path, n: int) -> tuple[list[float], list[dict[str, Any]]]:
    sql = top_services_by_month().sql.format(table=CU_TABLE)
    con = duckdb.connect(str(db), read_only=True)
    con.execute("SET enable_progress_bar = false")
    times, rows = [], []
    try:
        for i in range(n + 2):
            started = time.perf_counter()
            cur = con.execute(sql)
            found = cur.fetchall()
            if i >= 2:
                times.append(time.perf_counter() - started)
            names = [d[0] for d in cur.description or []]
            rows = [dict(zip(names, r, strict=True)) for r in found]
    finally:
        con.close()
    return times, rows


def rest_answer(server: Server) -> dict[str, Any]:
    url = f"{server.rest}{PATH}?{urllib.parse.urlencode(rest_params())}"
    with urllib.request.urlopen(url, timeout=120) as resp:  # noqa: S310 (loopback)
        body: dict[str, Any] = json.loads(resp.read(), parse_float=Decimal)
    return body


def run(server: Server, raw_db: Path, n: int, rounds: int) -> list[Row]:
    question = top_services_by_month()
    raw: list[float] = []
    rest: list[float] = []
    expected: list[dict[str, Any]] = []
    for r in range(rounds):
        if r % 2:
            rest += asyncio.run(rest_round(server.rest, n, rest_params(), PATH))
        times, expected = raw_round(raw_db, n)
        raw += times
        if r % 2 == 0:
            rest += asyncio.run(rest_round(server.rest, n, rest_params(), PATH))
    agree, how = agreement(question.ours(rest_answer(server)), question.theirs(expected))
    return [
        Row(
            "top-20 ServiceName by month: REST summary vs DuckDB GROUP BY",
            ms(p50(rest)),
            ms(pct(rest, 0.95)),
            ms(p50(raw)),
            p50(rest) / p50(raw),
            Target("<=", 1.15),  # issue 17 (was 1.3)
            result="" if agree else "DIFFER",
            notes=[] if agree else [f"summary answer vs DuckDB: {how}"],
        )
    ]
