"""The demo dataset: deterministic, realistic FOCUS 1.3 data, generated in DuckDB and loaded like a delivery.

This module owns *making* the demo: planning how many rows of each kind every billing period gets,
writing one typed Parquet file per billing period plus one Contract Commitment file, and loading them
through ``load_files`` (so the demo passes the same checks as real data) before flagging the store as
demo data in ``meta``. What the data looks like lives elsewhere: the reference data (providers,
accounts, SKUs, commitments...) is JSON package data in ``server/store/demo_data/``, typed by
``server.store.demo_reference`` and read by ``server.store.demo_load``; the SQL that turns hashes into
rows is in ``server.store.demo_macros`` (reference lists), ``server.store.demo_sql`` (the rows) and
``server.store.demo_focus`` (the FOCUS columns and the Contract Commitment dataset).

The same ``(rows, seed)`` always gives the same rows. Memory stays bounded at any size: a month is a
streaming projection over ``range(n)`` copied straight to Parquet, with no big intermediate table.

The dataset (per billing period, six monthly periods from 2026-01 by default):

* three service providers (AWS, Microsoft, Google Cloud), four billing accounts (one billing in EUR),
  15 sub accounts, services with real FOCUS ServiceCategory/ServiceSubcategory pairs;
* Usage rows: on-demand (Standard), spot (Dynamic), and covered by savings plans, reservations and a
  CUD (Committed, CommitmentDiscountStatus Used); Unused commitment rows; a Purchase row per
  commitment (a monthly fee equal to the amortized cost of its Used and Unused rows of the month, or
  an all-upfront One-Time purchase); a Tax row per billing account and service; an SLA Credit
  (negative) and a support-fee Adjustment per billing account;
* split cost allocation: Kubernetes node hours split over namespaces plus idle capacity;
* ContractApplied referencing the Contract Commitment rows (the commitment discounts, and negotiated
  spend commitments such as an AWS EDP or an Azure MACC);
* FOCUS 1.4 Billing Period and Invoice Detail rows derived from the Cost and Usage files (some months
  Closed, the last one Open, one deliberate mismatch): ``server.store.demo_invoices``.
"""

from __future__ import annotations

import shutil
import uuid
from dataclasses import replace
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import duckdb

from server.store.db import Store
from server.store.demo_focus import contract_commitment_sql, month_sql
from server.store.demo_invoices import write_invoice_files
from server.store.demo_load import reference
from server.store.demo_macros import macros
from server.store.demo_reference import add_months, commitment_term, upfront
from server.store.demo_sql import Month, aggregate_sql, fixed_sql
from server.store.loader import LoadSummary, load_files

DEFAULT_START = date(2026, 1, 1)
DEFAULT_MONTHS = 6
MAX_MONTHS = 24  # every commitment and contract of the demo covers 24 months from the start
MIN_ROWS_PER_MONTH = 100
UNUSED_PER_MILLE = 15  # share of a month's rows that are unused commitment
ALLOCATED_PERCENT = 4  # share of a month's rows that are split-allocation rows (groups of 4)
ALLOCATION_GROUP = 4  # three namespaces and the idle remainder
GENERATOR_MEMORY_LIMIT = "1GB"


def generate_demo(
    store: Store,
    *,
    rows: int = 50_000,
    seed: int = 42,
    work_dir: Path | None = None,
    start: date = DEFAULT_START,
    months: int = DEFAULT_MONTHS,
) -> LoadSummary:
    """Generate the demo dataset and load it into ``store`` as one delivery.

    ``rows`` Cost and Usage rows are split evenly over ``months`` monthly billing periods from
    ``start`` (the remainder goes to the last one). The Parquet files are written to a fresh folder
    under ``work_dir`` (default: the store's ``tmp`` folder), which is deleted afterwards. When every
    file loaded, ``meta`` records ``demo = true`` and ``demo_seed``.
    """
    plan = plan_months(rows, seed, start=start, months=months)
    folder = (work_dir or store.data_dir / "tmp") / f"demo-{uuid.uuid4().hex[:12]}"
    folder.mkdir(parents=True)
    try:
        paths = write_files(plan, folder)
        paths += write_invoice_files(paths[1:], folder)  # FOCUS 1.4 Billing Period and Invoice Detail
        summary = load_files(store, paths, demo=True)
        if summary.ok:
            with store.transaction() as cur:
                Store.set_meta(cur, "demo", "true")
                Store.set_meta(cur, "demo_seed", str(seed))
        return summary
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def plan_months(rows: int, seed: int, *, start: date = DEFAULT_START, months: int = DEFAULT_MONTHS) -> list[Month]:
    """How many rows of each kind every billing period gets; raises ValueError for impossible requests."""
    if not 1 <= months <= MAX_MONTHS:
        raise ValueError(f"months must be between 1 and {MAX_MONTHS}")
    if start.day != 1:
        raise ValueError("start must be the first day of a month")
    if rows < months * MIN_ROWS_PER_MONTH:
        raise ValueError(f"rows must be at least {months * MIN_ROWS_PER_MONTH} for {months} billing periods")
    if not -(2**63) <= seed < 2**63:
        raise ValueError("seed must fit in a signed 64-bit integer")
    ref = reference()
    first = datetime(start.year, start.month, 1)
    nodes = len(ref.clusters) * ref.nodes_per_cluster
    plan = []
    for index in range(months):
        begin, end = add_months(first, index), add_months(first, index + 1)
        hours = int((end - begin).total_seconds()) // 3600
        n = rows // months + (rows % months if index == months - 1 else 0)
        active: list[int] = []
        purchases: list[tuple[int, str, Decimal | None]] = []
        for ci, c in enumerate(ref.commitments):
            term_start, term_end = commitment_term(c, first)
            if not term_start <= begin < end <= term_end:
                continue
            active.append(ci)
            if c.frequency == "Recurring":
                purchases.append((ci, c.frequency, None))
            elif term_start == begin:
                purchases.append((ci, c.frequency, upfront(c, first)))
        unused = min(n * UNUSED_PER_MILLE // 1000, len(active) * hours)  # one row per commitment and hour at most
        alloc = ALLOCATION_GROUP * min(n * ALLOCATED_PERCENT // 100 // ALLOCATION_GROUP, nodes * hours)
        month = Month(
            index=index,
            seed=seed,
            start=begin,
            end=end,
            usage=0,
            unused=unused,
            alloc=alloc,
            active=active,
            purchases=purchases,
            invoices=[b.invoice_id.replace("{ym}", f"{begin:%Y%m}") for b in ref.billing_accounts],
            resource_scale=max(1, rows // 50_000),
        )
        usage = n - month.fixed - unused - alloc
        if usage < len(ref.tax_pairs):  # pragma: no cover - MIN_ROWS_PER_MONTH keeps this away
            raise ValueError(f"rows={rows} is too few for {months} billing periods")
        plan.append(replace(month, usage=usage))
    return plan


def write_files(plan: list[Month], folder: Path) -> list[Path]:
    """Write the Contract Commitment file and one Cost and Usage file per billing period; return their paths.

    Runs on its own in-memory DuckDB with a memory limit, so it never touches the store's catalog.
    """
    spill = folder / ".spill"
    con = duckdb.connect(
        config={"memory_limit": GENERATOR_MEMORY_LIMIT, "temp_directory": str(spill), "preserve_insertion_order": True}
    )
    try:
        con.execute("SET enable_progress_bar = false")
        for statement in macros():
            con.execute(statement)
        paths = [folder / "contract_commitment.parquet"]
        _copy(con, contract_commitment_sql(plan[0].start), paths[0])
        for month in plan:
            con.execute(aggregate_sql(month))
            for statement in fixed_sql(month):
                con.execute(statement)
            fixed = con.execute("SELECT count(*) FROM fixed").fetchone()
            assert fixed is not None and fixed[0] == month.fixed, (fixed, month.fixed)
            path = folder / f"cost_and_usage_{month.start:%Y-%m}.parquet"
            _copy(con, month_sql(month), path)
            paths.append(path)
        return paths
    finally:
        con.close()
        shutil.rmtree(spill, ignore_errors=True)


def _copy(con: duckdb.DuckDBPyConnection, query: str, path: Path) -> None:
    target = "'" + str(path).replace("'", "''") + "'"
    con.execute(f"COPY ({query}) TO {target} (FORMAT parquet, COMPRESSION zstd)")
