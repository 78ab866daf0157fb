"""Shared fixtures: the sample exports from ../shared, stores loaded from them, running services.

Two suite-wide rules live here too: a test that needs ``../shared`` (the folder beside the checkout) fails
with where it looked when that folder is missing, and no test may skip (``make test`` installs everything
the tests need first); ``FOCUS_API_ALLOW_SKIPS=1`` lets a developer skip on a machine without it.
"""

from __future__ import annotations

import csv
import json
import os
import random
import shutil
from collections.abc import AsyncIterator, Iterator
from decimal import Decimal
from pathlib import Path
from types import CodeType
from typing import Any

import pytest

from server.auth import LOCAL, Principal
from server.pipeline import Caller, Pipeline
from server.services import Services, running_services
from server.settings import Settings
from server.store.db import Store
from server.store.loader import load_files
from server.store.schema import DECIMAL_TYPE
from tools.catalog import DataType
from tools.context import REST_LIMITS, Limits, ToolContext
from tools.filters import BY_PARAM, FilterSpec
from tools.instants import parse_instant

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"  # the team's shared folder: a sibling of the checkout, e.g. /work/shared
SAMPLES = SHARED / "data" / "focus-samples"
AWS_13 = SAMPLES / "aws_1_3_cost_and_usage_rows100_seed42.csv"
AWS_CREDITS = SAMPLES / "aws_1_3_cost_and_usage_rows25_seed7_credits.csv"
AWS_12 = SAMPLES / "aws_1_2_cost_and_usage_rows100_seed42.csv"
GCP_12 = SAMPLES / "gcp_1_2_cost_and_usage_rows100_seed42.csv"
CONSOLIDATED = SAMPLES / "consolidated_multi_provider_1_3.csv"
AWS_CC = SAMPLES / "aws_1_3_contract_commitment_rows100_seed42.csv"
MONEY = ("BilledCost", "EffectiveCost", "ListCost", "ContractedCost")


MULTI_FILES = (AWS_13, AWS_CREDITS, CONSOLIDATED, GCP_12)


def tool_context(services: Services, limits: Limits = REST_LIMITS, principal: Principal = LOCAL) -> ToolContext:
    """The context the pipeline gives a handler, for tests that call handlers directly."""
    return Pipeline(services).context(Caller(principal, "test", limits, services.settings.base_url()))


def expected_rows() -> list[dict[str, str]]:
    rows = []
    for path in MULTI_FILES:
        for row in read_csv(path):
            row.setdefault("ServiceProviderName", row["ProviderName"])  # the 1.2 -> 1.3 mapping
            rows.append(row)
    return rows


def _holds(row: dict[str, str], spec: FilterSpec, value: str) -> bool:
    """One filter over a CSV row's text: the meaning the filter table declares, computed in plain Python."""
    text = row.get(spec.column) or ""
    if spec.kind == "instant":
        at, bound = parse_instant(text, "row"), parse_instant(value, "filter")
        return at >= bound if spec.op == ">=" else at < bound
    if spec.kind == "tag":
        key, _, wanted = value.partition("=")
        tags = json.loads(text) if text else {}
        return isinstance(tags, dict) and tags.get(key) == wanted
    if spec.nullable and value == "null":
        return text == ""
    return text == value


def python_filter(rows: list[dict[str, str]], args: dict[str, Any]) -> list[dict[str, str]]:
    """The rows a query with ``args`` must return, by plain Python over the CSV text."""
    out = []
    for row in rows:
        conditions = [(BY_PARAM[k], v) for k, given in args.items() if k in BY_PARAM for v in _values(given)]
        if all(_holds(row, spec, value) for spec, value in conditions):
            out.append(row)
    return out


def _values(given: Any) -> list[str]:
    return given if isinstance(given, list) else [given]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


# The seed of the randomised schemathesis run: fresh each run, printed in the report header, or given to replay one.
SCHEMATHESIS_SEED_ENV = "FOCUS_API_SCHEMATHESIS_SEED"
SCHEMATHESIS_SEED = int(os.environ.get(SCHEMATHESIS_SEED_ENV) or random.SystemRandom().randrange(2**32))


def seed_line() -> str:
    return f"schemathesis random seed: {SCHEMATHESIS_SEED} (replay: {SCHEMATHESIS_SEED_ENV}={SCHEMATHESIS_SEED})"


def pytest_report_header(config: pytest.Config) -> str:
    return seed_line()


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    terminalreporter.write_line(seed_line())  # also under -q, which hides the header


# Fixtures that read ../shared; a test also needs it when its module holds a path under it (AWS_13, SPEC, ...).
SHARED_FIXTURES = {"samples", "sample_data_dir", "data_dir", "settings", "services", "multi_dir", "multi"}
MISSING_SHARED = (
    f"{SHARED} not found: the tests read the team's shared data (samples, FOCUS spec, tools) from the folder "
    "named shared beside the checkout (../shared relative to the repository root); clone the repository next to it"
)


def code_names(code: CodeType) -> set[str]:
    """The global names a function's code (nested functions included) refers to."""
    names = set(code.co_names)
    for const in code.co_consts:
        if isinstance(const, CodeType):
            names |= code_names(const)
    return names


def needs_shared(item: pytest.Item) -> bool:
    """The test asks for a fixture that reads ../shared, or its code names a module-level path under it."""
    if SHARED_FIXTURES & set(getattr(item, "fixturenames", ())):
        return True
    module, function = getattr(item, "module", None), getattr(item, "function", None)
    if module is None or function is None:
        return False
    shared = {k for k, v in vars(module).items() if isinstance(v, Path) and v.is_relative_to(SHARED)}
    return bool(shared & code_names(function.__code__))


def pytest_runtest_setup(item: pytest.Item) -> None:
    if not SHARED.is_dir() and needs_shared(item):
        pytest.fail(MISSING_SHARED, pytrace=False)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> pytest.TestReport:
    """A skip is a failure (`make test` installs every tool the tests need); a missing ../shared says so."""
    report: pytest.TestReport = yield
    error = call.excinfo.value if call.excinfo else None
    if report.failed and error is not None and not SHARED.is_dir() and str(SHARED) in str(error):
        report.longrepr = f"{MISSING_SHARED}\n({type(error).__name__}: {error})"  # a helper read a missing file
    if report.skipped and not hasattr(report, "wasxfail") and os.environ.get("FOCUS_API_ALLOW_SKIPS") != "1":
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.outcome = "failed"
        report.longrepr = f"skipped, but this suite skips nothing (FOCUS_API_ALLOW_SKIPS=1 allows it): {reason}"
    return report


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def decimal_sums(rows: list[dict[str, Any]], columns: tuple[str, ...] = MONEY) -> dict[tuple[str, str], Decimal]:
    """Per (BillingCurrency, column) sums computed with decimal.Decimal from text or Decimal values."""
    sums: dict[tuple[str, str], Decimal] = {}
    for row in rows:
        for column in columns:
            value = row.get(column)
            if value not in (None, ""):
                key = (row["BillingCurrency"], column)
                sums[key] = sums.get(key, Decimal(0)) + Decimal(str(value))
    return sums


@pytest.fixture
def samples() -> Path:
    return SAMPLES


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store(tmp_path / "data")
    yield s
    s.close()


@pytest.fixture(scope="session")
def sample_data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data dir holding the AWS 1.3 Cost and Usage and Contract Commitment samples (built once)."""
    path = tmp_path_factory.mktemp("samples-store")
    store = Store(path)
    try:
        summary = load_files(store, [AWS_13, AWS_CC])
        assert summary.ok, summary.as_json()
    finally:
        store.close()
    return path


@pytest.fixture
def data_dir(sample_data_dir: Path, tmp_path: Path) -> Path:
    """A private copy of the sample store (tests may write export jobs into it)."""
    target = tmp_path / "store"
    shutil.copytree(sample_data_dir, target)
    return target


@pytest.fixture
def settings(data_dir: Path) -> Settings:
    return Settings(data_dir=data_dir, token_secret="test-secret", tokens="")  # type: ignore[arg-type]


@pytest.fixture
async def services(settings: Settings) -> AsyncIterator[Services]:
    async with running_services(settings, load_demo=False) as svc:
        yield svc


@pytest.fixture(scope="session")
def multi_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store with the four Cost and Usage samples (several providers, accounts, two currencies) and commitments."""
    path = tmp_path_factory.mktemp("multi")
    store = Store(path)
    try:
        assert load_files(store, [*MULTI_FILES, AWS_CC]).ok
    finally:
        store.close()
    return path


@pytest.fixture
async def multi(multi_dir: Path) -> AsyncIterator[Services]:
    settings = Settings(data_dir=multi_dir, token_secret="t")  # type: ignore[arg-type]
    async with running_services(settings, load_demo=False) as svc:
        yield svc


def write_typed_parquet(source: Path, target: Path, types: dict[str, DataType]) -> None:
    """A FOCUS CSV as Parquet with the FOCUS types (DECIMAL(38,18), TIMESTAMP, JSON, text), as exports write it;
    a column ``types`` does not name is text."""
    import duckdb

    with source.open(encoding="utf-8") as f:
        header = next(csv.reader(f))
    sql_type = {DataType.DECIMAL: DECIMAL_TYPE, DataType.DATETIME: "TIMESTAMP", DataType.JSON: "JSON"}
    spec = ", ".join(f"'{c}': '{sql_type.get(types[c], 'VARCHAR') if c in types else 'VARCHAR'}'" for c in header)
    con = duckdb.connect()
    try:
        con.execute(
            f"COPY (SELECT * FROM read_csv('{source}', header=true, auto_detect=false, "
            f"timestampformat='%Y-%m-%dT%H:%M:%SZ', columns={{{spec}}})) TO '{target}' (FORMAT parquet)"
        )
    finally:
        con.close()
