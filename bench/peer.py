"""The peer comparison: the same questions to focus-api and to glassity's focus-mcp 0.4.0, both over MCP stdio.

focus-mcp (PyPI ``focus-mcp==0.4.0``, not a dependency of ours) is installed into its own virtualenv
under ``bench/.data/`` and reads Parquet through DuckDB 1.x; it answers through SQL tools
(``execute_query`` with custom SQL over the view ``focus_data_table``). It is pointed
(``FOCUS_DATA_LOCATION``) at the same rows written by DuckDB ``COPY`` from our store, one file per billing
period in ``billing_period=YYYY-MM/`` folders (the Hive layout its README asks for), rows in our order,
money still ``DECIMAL(38,18)``. Both servers are launched by the SDK's stdio client in this process;
each question is asked of one then the other, alternating, and the p50 of each side is reported with
whether the answers agree to the cent (bench/questions.py).
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
import time
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import anyio
import duckdb
from common import DATA, FOCUS_API, p50, pct
from mcp import Client, StdioServerParameters
from mcp.client.stdio import stdio_client
from questions import Question, agreement, questions
from report import Row, Target, ms

from server.store.schema import CU_TABLE

PEER = "focus-mcp==0.4.0"
VENV = DATA / "peer-venv-0.4.0"
VIEW = "focus_data_table"


class PeerUnavailable(Exception):
    """focus-mcp could not be installed or started here; the message says why."""


def peer_command() -> Path:
    """The ``focus-mcp`` executable of the bench's own virtualenv, installing it from PyPI the first time."""
    exe = VENV / "bin" / "focus-mcp"
    if (VENV / ".ready").exists() and exe.exists():
        return exe
    steps = [
        (f"python -m venv {VENV}", [sys.executable, "-m", "venv", "--clear", str(VENV)]),
        (f"pip install {PEER}", [str(VENV / "bin" / "pip"), "install", "--quiet", "--disable-pip-version-check", PEER]),
    ]
    for label, step in steps:
        try:
            done = subprocess.run(step, capture_output=True, text=True, timeout=900, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise PeerUnavailable(f"`{label}` failed: {exc}") from None
        if done.returncode != 0:
            tail = " ".join((done.stderr or done.stdout).strip().splitlines()[-3:])
            raise PeerUnavailable(f"`{label}` exited {done.returncode}: {tail}")
    if not exe.exists():
        raise PeerUnavailable(f"{PEER} installed no focus-mcp command in {VENV}")
    (VENV / ".ready").write_text(PEER + "\n")
    return exe


def peer_parquet(raw_db: Path, name: str) -> Path:
    """Our rows as Hive-partitioned Parquet (one zstd file per billing period, in _row_id order); cached."""
    folder = DATA / name
    if (folder / ".ready").exists():
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(raw_db), read_only=True)
    try:
        con.execute("SET enable_progress_bar = false")
        periods = [
            r[0] for r in con.execute(f"SELECT DISTINCT BillingPeriodStart FROM {CU_TABLE} ORDER BY 1").fetchall()
        ]
        for period in periods:
            part = folder / f"billing_period={period:%Y-%m}"
            part.mkdir(exist_ok=True)
            con.execute(
                f"COPY (SELECT * EXCLUDE (_row_id, _load_id) FROM {CU_TABLE} WHERE BillingPeriodStart = ? "
                f"ORDER BY _row_id) TO '{part / 'part-0.parquet'}' (FORMAT parquet, COMPRESSION zstd)",
                [period],
            )
    finally:
        con.close()
    (folder / ".ready").write_text("\n")
    return folder


def pick(raw_db: Path) -> tuple[str, str]:
    """(SubAccountId, billing period YYYY-MM-DD): the middle period, and its busiest sub account."""
    con = duckdb.connect(str(raw_db), read_only=True)
    try:
        periods = [
            r[0] for r in con.execute(f"SELECT DISTINCT BillingPeriodStart FROM {CU_TABLE} ORDER BY 1").fetchall()
        ]
        period = periods[len(periods) // 2]
        row = con.execute(
            f"SELECT SubAccountId FROM {CU_TABLE} WHERE BillingPeriodStart = ? AND SubAccountId IS NOT NULL "
            "GROUP BY ALL ORDER BY count(*) DESC, SubAccountId LIMIT 1",
            [period],
        ).fetchone()
    finally:
        con.close()
    assert row is not None
    return str(row[0]), f"{period:%Y-%m-%d}"


async def _ours(client: Client, q: Question) -> dict[str, Any]:
    result = await client.call_tool(q.tool, q.args)
    if result.is_error or result.structured_content is None:
        raise RuntimeError(f"focus-api {q.tool} failed: {result.content}")
    content: dict[str, Any] = result.structured_content
    return content


async def _theirs(client: Client, q: Question) -> list[dict[str, Any]]:
    result = await client.call_tool("execute_query", {"query": q.sql.format(table=VIEW), "limit": 100})
    content = result.structured_content or {}
    if result.is_error or "result" not in content:
        raise RuntimeError(f"focus-mcp execute_query failed: {content.get('error') or result.content}")
    rows: list[dict[str, Any]] = content["result"]["data"]
    return rows


async def _ask(
    ours_params: StdioServerParameters, peer_params: StdioServerParameters, qs: list[Question], n: int
) -> Any:
    times: dict[str, dict[str, list[float]]] = {q.key: {"ours": [], "peer": []} for q in qs}
    answers: dict[str, dict[str, Any]] = {q.key: {} for q in qs}
    with open(os.devnull, "w") as quiet:
        async with AsyncExitStack() as stack:
            ours = await stack.enter_async_context(Client(stdio_client(ours_params, errlog=quiet)))
            peer = await stack.enter_async_context(Client(stdio_client(peer_params, errlog=quiet)))
            for i in range(n + 1):  # the first round warms both up (views, caches) and is not counted
                for q in qs:
                    sides = [("ours", lambda q=q: _ours(ours, q)), ("peer", lambda q=q: _theirs(peer, q))]
                    for side, call in sides if i % 2 == 0 else reversed(sides):
                        started = time.perf_counter()
                        answers[q.key][side] = await call()
                        if i:
                            times[q.key][side].append(time.perf_counter() - started)
    return times, answers


def _leaf(exc: BaseException) -> BaseException:
    """The first real error inside (nested) exception groups, as task groups wrap them."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return exc


def run(data_dir: Path, raw_db: Path, parquet_name: str, n: int) -> list[Row]:
    """Rows of the table: one per question; ``PeerUnavailable`` if focus-mcp cannot be installed."""
    exe = peer_command()
    location = peer_parquet(raw_db, parquet_name)
    sub_account, period = pick(raw_db)
    qs = questions(sub_account, period)
    env = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "TMPDIR")}
    ours_params = StdioServerParameters(
        command=str(FOCUS_API),
        args=["stdio", "--data-dir", str(data_dir)],
        env=env | {"FOCUS_API_LOG_LEVEL": "warning"},
    )
    peer_params = StdioServerParameters(
        command=str(exe), env=env | {"FOCUS_DATA_LOCATION": str(location), "FOCUS_VERSION": "1.3"}
    )
    try:
        times, answers = anyio.run(_ask, ours_params, peer_params, qs, n)
    except Exception as exc:
        leaf = _leaf(exc)
        if isinstance(leaf, RuntimeError):  # a tool answered with an error: not an installation problem
            raise leaf from exc
        raise PeerUnavailable(f"an MCP stdio session failed: {type(leaf).__name__}: {leaf}") from exc
    rows = []
    for q in qs:
        ours, peer = times[q.key]["ours"], times[q.key]["peer"]
        agree, how = agreement(q.ours(answers[q.key]["ours"]), q.theirs(answers[q.key]["peer"]))
        rows.append(
            Row(
                f"peer {q.key}: {q.title} (MCP stdio) vs focus-mcp 0.4.0",
                ms(p50(ours)),
                ms(pct(ours, 0.95)),
                ms(p50(peer)),
                p50(ours) / p50(peer),
                Target("<=", math.inf, "answers agree"),
                result="agree" if agree else "DIFFER",
                notes=[f"peer {q.key} answers: {how}"],
            )
        )
    return rows
