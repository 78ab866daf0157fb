"""Over Spark, every tool answers exactly what it answers over DuckDB, for the same loaded data.

The same rows are loaded once into a data dir (the ledger) and published to a local Spark Connect server
(``focus-api load --engine spark`` does the same); then each tool is called through the one pipeline of
two services, one per engine, and the two answers must be equal: rows, page tokens, Decimal sums, envelopes.
"""

from __future__ import annotations

import json
import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from server.auth import LOCAL, Principal
from server.pipeline import Caller, Pipeline
from server.services import running_services
from server.settings import Settings
from server.spark.layout import Publisher
from server.spark.session import connect
from server.store.db import Store
from server.store.demo import generate_demo
from server.store.loader import load_files
from tests.conftest import AWS_CC, MULTI_FILES, SHARED
from tests.spark_cluster import spark_remote
from tools import wire
from tools.context import REST_LIMITS
from tools.errors import FocusApiError
from tools.source import Scope

__all__ = ["spark_remote"]  # the session fixture, imported for this module's tests
pytestmark = [pytest.mark.spark, pytest.mark.slow]

BUNDLE_14 = SHARED / "data" / "focus-1.4-samples" / "aws"
FILES_14 = sorted(BUNDLE_14.glob("synthetic_focus_1_4_*.csv"))
DEMO_ROWS = 200_000


def _ledger(path: Path, database: str, remote: str, fill: Any) -> Path:
    with Store(path) as store:
        fill(store)
    session = connect(remote, 30)
    try:
        with Store(path) as ledger:
            Publisher(session, database).publish(ledger)
            ledger.abandon()
    finally:
        session.stop()
    return path


@pytest.fixture(scope="module")
def samples_dir(spark_remote: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The 1.2/1.3 samples of four providers, their commitments and the 1.4 bundle, on both engines."""

    def fill(store: Store) -> None:
        summary = load_files(store, [*MULTI_FILES, AWS_CC, *FILES_14])
        assert summary.ok, summary.as_json()

    return _ledger(tmp_path_factory.mktemp("spark-samples"), "samples", spark_remote, fill)


@pytest.fixture(scope="module")
def demo_dir(spark_remote: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    def fill(store: Store) -> None:
        assert generate_demo(store, rows=DEMO_ROWS).ok

    return _ledger(tmp_path_factory.mktemp("spark-demo"), "demo", spark_remote, fill)


class Engines:
    """The same tool call through a DuckDB pipeline and a Spark pipeline over the same data dir."""

    def __init__(self, duck: Pipeline, spark: Pipeline) -> None:
        self.duck, self.spark = duck, spark

    async def _one(self, pipeline: Pipeline, tool: str, args: dict[str, Any], principal: Principal) -> Any:
        caller = Caller(principal, "test", REST_LIMITS, "http://127.0.0.1:8080")
        try:
            output = await pipeline.invoke(tool, args, caller)
            return ("ok", json.loads(wire.dumps(output.model_dump(mode="python", warnings=False))))
        except FocusApiError as exc:
            return ("error", exc.body())

    async def same(self, tool: str, args: dict[str, Any], principal: Principal = LOCAL) -> Any:
        duck = await self._one(self.duck, tool, args, principal)
        spark = await self._one(self.spark, tool, args, principal)
        assert spark == duck, f"{tool}({json.dumps(args)}) differs:\nduckdb {duck}\nspark  {spark}"
        return duck[1]

    async def walk(self, tool: str, args: dict[str, Any], principal: Principal = LOCAL) -> list[dict[str, Any]]:
        """Every page of a list tool, equal page for page (rows and tokens); the rows of all pages."""
        rows: list[dict[str, Any]] = []
        token = None
        while True:
            page = await self.same(tool, args | ({"pageToken": token} if token else {}), principal)
            rows += page["data"]
            token = page.get("nextPageToken")
            if not token:
                return rows


@asynccontextmanager
async def engines(data_dir: Path, remote: str, database: str) -> AsyncIterator[Engines]:
    common: dict[str, Any] = {"data_dir": data_dir, "token_secret": "spark-equivalence", "tokens": ""}
    duck = Settings(**common)
    spark = Settings(**common, engine="spark", spark_remote=remote, spark_database=database)
    async with running_services(duck, load_demo=False) as d, running_services(spark, load_demo=False) as s:
        yield Engines(Pipeline(d), Pipeline(s))


async def test_page_walks_of_the_samples_are_equal_row_for_row(samples_dir: Path, spark_remote: str) -> None:
    async with engines(samples_dir, spark_remote, "samples") as both:
        for size in (7, 1000):
            rows = await both.walk("listcostandusage", {"pageSize": size})
            assert len(rows) > 500
        rows = await both.walk("listcostandusage", {"pageSize": 7, "focusVersion": "1.4"})
        assert rows
        await both.walk("listcontractcommitments", {"pageSize": 7})
        await both.walk("listbillingperiods", {"pageSize": 7})
        await both.walk("listinvoicedetails", {"pageSize": 7})
        await both.walk("reconcileinvoices", {"pageSize": 7})
