"""Over Spark, every tool answers exactly what it answers over DuckDB, for the same loaded data.

The same rows are loaded once into a data dir (the ledger) and published to a local Spark Connect server
(``focus-api load --engine spark`` does the same); then each tool is called through the one pipeline of
two services, one per engine, and the two answers must be equal: rows, page tokens, Decimal sums, envelopes.
"""

from __future__ import annotations

import json
import random
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from conftest import AWS_CC, MULTI_FILES, SHARED
from serving import free_ports
from spark_cluster import spark_remote

from server.auth import LOCAL, Principal
from server.pipeline import Caller, Pipeline
from server.services import running_services
from server.settings import Settings
from server.spark.layout import Publisher
from server.spark.session import connect
from server.store.db import Store
from server.store.demo import generate_demo
from server.store.loader import load_files
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

    async def same(self, tool: str, args: dict[str, Any], principal: Principal = LOCAL, outcome: str = "ok") -> Any:
        duck = await self._one(self.duck, tool, args, principal)
        spark = await self._one(self.spark, tool, args, principal)
        assert spark == duck, f"{tool}({json.dumps(args)}) differs:\nduckdb {duck}\nspark  {spark}"
        assert duck[0] == outcome, f"{tool}({json.dumps(args)}) answered {duck}"
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


SUMMARIES: list[dict[str, Any]] = [
    {"groupBy": ["ServiceName"]},
    {"groupBy": ["ServiceName", "month"], "top": 20},
    {"groupBy": ["ServiceProviderName", "month"], "metrics": ["BilledCost", "ListCost"]},
    {"groupBy": ["SubAccountId"], "metrics": ["ListCost"], "providerName": "AWS"},
    {"groupBy": ["ChargeCategory", "RegionId"], "metrics": ["ContractedCost"], "billingCurrency": "USD"},
    {"groupBy": ["tag:Environment"], "serviceCategory": "Compute"},
    {"groupBy": ["day"], "top": 5, "metrics": ["BilledCost"], "sort": "BilledCost"},
    {"groupBy": ["billingPeriod", "ServiceCategory"], "metrics": ["ListCost", "EffectiveCost"], "savings": True},
]
VALUES: list[dict[str, Any]] = [
    {"column": "ServiceName"},
    {"column": "RegionId", "search": "us"},
    {"column": "tag:Environment", "pageSize": 2},
    {"column": "SubAccountId", "search": "1", "searchMode": "prefix", "billingCurrency": "USD"},
]


async def test_summaries_values_metadata_and_commitments_are_equal(samples_dir: Path, spark_remote: str) -> None:
    async with engines(samples_dir, spark_remote, "samples") as both:
        for args in SUMMARIES:
            answer = await both.same("summarizecostandusage", args)
            assert answer["data"], args
        for args in VALUES:
            await both.walk("listcostandusagevalues", args)
        await both.same("getschemametadata", {})
        await both.same("getschemametadata", {"focusVersion": "1.4"})
        burn = await both.same("summarizecontractcommitments", {})
        assert burn["data"]
        await both.same("summarizecontractcommitments", {"asOf": "2024-06-15T00:00:00Z", "runRateDays": 7})
        discounts = await both.same("summarizecommitmentdiscounts", {})
        assert discounts["data"]
        await both.same("summarizecommitmentdiscounts", {"groupBy": ["CommitmentDiscountType", "month"], "top": 3})


async def test_exports_write_the_same_rows_and_sums(samples_dir: Path, spark_remote: str, tmp_path: Path) -> None:
    async with engines(samples_dir, spark_remote, "samples") as both:
        files = {}
        for name, pipeline in (("duckdb", both.duck), ("spark", both.spark)):
            caller = Caller(LOCAL, "test", REST_LIMITS, "http://127.0.0.1:8080")
            for fmt in ("parquet", "csv", "json"):
                job = await pipeline.invoke(
                    "exportcostandusage", {"format": fmt, "includeContractCommitments": True}, caller
                )
                done = await pipeline.services.exports.wait(job.jobId, LOCAL.name, timeout=120)  # type: ignore[attr-defined]
                assert done.status == "Complete", done
                files[(name, fmt)] = done
        for fmt in ("parquet", "csv", "json"):
            duck, spark = files[("duckdb", fmt)], files[("spark", fmt)]
            assert [(f.dataset, f.recordCount) for f in spark.files] == [(f.dataset, f.recordCount) for f in duck.files]
            for d, s in zip(duck.files, spark.files, strict=True):
                folder = samples_dir / "exports"
                assert _rows(folder / duck.jobId / d.name, fmt) == _rows(folder / spark.jobId / s.name, fmt)


def _rows(path: Path, fmt: str) -> list[Any]:
    if fmt == "parquet":
        table = pq.read_table(path)
        return sorted(json.dumps(r, default=str, sort_keys=True) for r in table.to_pylist())
    if fmt == "json":
        return sorted(
            json.dumps(json.loads(line, parse_float=Decimal), default=str, sort_keys=True)
            for line in path.read_text().splitlines()
        )
    return sorted(path.read_text().splitlines())


async def test_scoped_tokens_see_the_same_rows_and_none_outside_their_scope(demo_dir: Path, spark_remote: str) -> None:
    """A few hundred random scope/filter pairs on the 200k-row demo: equal answers, no row out of scope."""
    rng = random.Random(16)
    async with engines(demo_dir, spark_remote, "demo") as both:
        accounts = await both.same("listcostandusagevalues", {"column": "BillingAccountId"})
        subs = await both.same("listcostandusagevalues", {"column": "SubAccountId", "pageSize": 50})
        services = await both.same("listcostandusagevalues", {"column": "ServiceName", "pageSize": 50})
        account_ids = [v["value"] for v in accounts["data"]]
        sub_ids = [v["value"] for v in subs["data"]]
        service_names = [v["value"] for v in services["data"]]
        for i in range(200):
            scope = (
                Scope(billing_account_ids=frozenset(rng.sample(account_ids, rng.randint(1, len(account_ids)))))
                if i % 2
                else Scope(sub_account_ids=frozenset(rng.sample(sub_ids, rng.randint(1, 3))))
            )
            principal = Principal(f"scoped-{i}", scope=scope)
            args: dict[str, Any] = {"pageSize": 50, "serviceName": rng.choice(service_names)}
            if i % 3 == 0:
                args["billingPeriodStart"] = "2026-03-01T00:00:00Z"
            tool = "summarizecostandusage" if i % 4 == 0 else "listcostandusage"
            if tool == "summarizecostandusage":
                args = {"groupBy": ["SubAccountId"], "serviceName": args["serviceName"]}
            answer = await both.same(tool, args, principal)
            for row in answer["data"] if tool == "listcostandusage" else []:
                if scope.billing_account_ids is not None:
                    assert row["BillingAccountId"] in scope.billing_account_ids
                if scope.sub_account_ids is not None:
                    assert row["SubAccountId"] in scope.sub_account_ids


async def test_the_demo_set_walks_and_summarises_the_same(demo_dir: Path, spark_remote: str) -> None:
    async with engines(demo_dir, spark_remote, "demo") as both:
        rows = await both.walk("listcostandusage", {"pageSize": 1000, "billingPeriodStart": "2026-05-01T00:00:00Z"})
        assert len(rows) > 1000
        for args in SUMMARIES:
            await both.same("summarizecostandusage", args)
        await both.same("summarizecontractcommitments", {})
        await both.same("summarizecommitmentdiscounts", {"groupBy": ["CommitmentDiscountId"], "top": 5})
        await both.walk("reconcileinvoices", {"pageSize": 1000})
        await both.same("getschemametadata", {})


async def _failure(settings: Settings) -> dict[str, Any]:
    with pytest.raises(FocusApiError) as caught:
        async with running_services(settings, load_demo=False):
            pass
    body: dict[str, Any] = caught.value.body()
    return body


def _spark(tmp_path: Path, remote: str, **more: Any) -> Settings:
    return Settings(data_dir=tmp_path, token_secret="s", tokens="", engine="spark", spark_remote=remote, **more)


async def test_a_database_nothing_was_published_to_is_engine_table_missing(spark_remote: str, tmp_path: Path) -> None:
    body = await _failure(_spark(tmp_path, spark_remote, spark_database="never_published"))
    assert body["code"] == "engine_table_missing", body
    assert "focus-api load --engine spark" in body["message"]


async def test_a_missing_user_table_is_engine_table_missing(spark_remote: str, tmp_path: Path) -> None:
    body = await _failure(_spark(tmp_path, spark_remote, spark_table="nowhere.focus", spark_key="id"))
    assert body["code"] == "engine_table_missing", body
    assert body["details"]["sparkTable"] == "nowhere.focus"


@pytest.fixture(scope="module")
def user_tables(samples_dir: Path, spark_remote: str) -> Iterator[str]:
    """Tables a user might already have: the samples' rows keyed by line_id, and three that are not FOCUS."""
    session = connect(spark_remote, 30)
    columns = [f"`{c}`" for c in session.table("samples.cost_and_usage").columns if c not in ("_row_id", "_load_id")]
    statements = [
        "CREATE DATABASE IF NOT EXISTS lakehouse",
        "DROP TABLE IF EXISTS lakehouse.focus",
        "CREATE TABLE lakehouse.focus USING parquet AS "
        f"SELECT _row_id * 10 AS line_id, {', '.join(columns)} FROM samples.cost_and_usage",
        "DROP TABLE IF EXISTS lakehouse.floats",
        "CREATE TABLE lakehouse.floats USING parquet AS "
        "SELECT line_id, CAST(BilledCost AS double) AS BilledCost, "
        + ", ".join(c for c in columns if c != "`BilledCost`")
        + " FROM lakehouse.focus",
        "DROP TABLE IF EXISTS lakehouse.narrow",
        "CREATE TABLE lakehouse.narrow USING parquet AS "
        "SELECT line_id, BilledCost, BillingCurrency FROM lakehouse.focus",
        "DROP TABLE IF EXISTS lakehouse.duplicated",
        "CREATE TABLE lakehouse.duplicated USING parquet AS "
        "SELECT line_id % 7 AS line_id, " + ", ".join(columns) + " FROM lakehouse.focus",
    ]
    try:
        for statement in statements:
            session.sql(statement).collect()
        yield "lakehouse"
    finally:
        session.stop()


async def test_a_table_with_float_money_is_engine_table_invalid(
    user_tables: str, spark_remote: str, tmp_path: Path
) -> None:
    body = await _failure(_spark(tmp_path, spark_remote, spark_table=f"{user_tables}.floats", spark_key="line_id"))
    assert body["code"] == "engine_table_invalid", body
    assert body["details"]["wrongTypes"] == ["BilledCost is double, not decimal(38,18)"]


async def test_a_table_without_the_mandatory_columns_is_engine_table_invalid(
    user_tables: str, spark_remote: str, tmp_path: Path
) -> None:
    body = await _failure(_spark(tmp_path, spark_remote, spark_table=f"{user_tables}.narrow", spark_key="line_id"))
    assert body["code"] == "engine_table_invalid", body
    assert "ChargePeriodStart" in body["details"]["missing"]


async def test_a_key_that_is_not_unique_is_engine_table_invalid(
    user_tables: str, spark_remote: str, tmp_path: Path
) -> None:
    body = await _failure(_spark(tmp_path, spark_remote, spark_table=f"{user_tables}.duplicated", spark_key="line_id"))
    assert body["code"] == "engine_table_invalid", body
    assert "not a unique, non-null key" in body["message"]


async def test_a_users_focus_table_is_served_in_its_key_order(
    user_tables: str, samples_dir: Path, spark_remote: str, tmp_path: Path
) -> None:
    """The samples' rows as a user's own table: the pages hold the same rows as the store's, in key order."""
    settings = _spark(tmp_path, spark_remote, spark_table=f"{user_tables}.focus", spark_key="line_id")
    common: dict[str, Any] = {"data_dir": samples_dir, "token_secret": "spark-equivalence", "tokens": ""}
    async with running_services(settings, load_demo=False) as s, running_services(Settings(**common)) as d:
        both = Engines(Pipeline(d), Pipeline(s))
        for tool, args in (
            ("listcostandusage", {"pageSize": 500, "columns": ["BilledCost", "ChargePeriodStart", "Tags"]}),
            ("summarizecostandusage", {"groupBy": ["ServiceName", "month"]}),
        ):
            pages = [await both._one(p, tool, args, LOCAL) for p in (both.duck, both.spark)]
            assert pages[0][0] == pages[1][0] == "ok", pages
            assert pages[1][1]["data"] == pages[0][1]["data"]


async def test_an_unreachable_spark_server_is_engine_unavailable_at_once(tmp_path: Path) -> None:
    (port,) = free_ports(1)
    remote = f"sc://127.0.0.1:{port}/;token=dapi-secret"
    body = await _failure(_spark(tmp_path, remote, spark_connect_timeout_seconds=5))
    assert body["code"] == "engine_unavailable", body
    assert body["details"] == {"sparkRemote": f"sc://127.0.0.1:{port}"}
    assert "dapi-secret" not in json.dumps(body)
