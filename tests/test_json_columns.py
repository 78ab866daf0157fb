"""Every number inside every JSON column survives every transport and every export format digit for digit.

The fixture is the AWS 1.3 sample with each decimal inside its JSON columns lengthened to 20+ significant
digits, more than a binary float holds, so any re-parse into a float shows.
"""

from __future__ import annotations

import csv
import json
import re
from collections import Counter
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from aiohttp.test_utils import TestClient, TestServer
from conftest import AWS_13, tool_context
from mcp.client import Client

from server.auth import LOCAL, TokenStore
from server.exports.service import ExportService
from server.mcp.server import FocusMCPServer
from server.pipeline import Pipeline
from server.rest.app import create_app
from server.services import Services, running_services
from server.settings import Settings
from server.store.db import Store
from server.store.loader import load_files
from tools import exports
from tools.catalog import DataType, cost_and_usage
from tools.context import REST_LIMITS
from tools.exports import ExportCostAndUsageInput

JSON_COLUMNS = tuple(c.id for c in cost_and_usage().of_type(DataType.JSON))
_FRACTION = re.compile(r"(?<![\w.])(-?\d+\.\d+)(?![\d\w])")


def lengthened(text: str) -> str:
    """``0.0879921530000`` -> ``0.08799215300001234567`` (the same kind of number, 20+ digits)."""
    return _FRACTION.sub(lambda m: m.group(1) + "1234567", text)


def canonical(value: Any) -> Any:
    """A JSON value with every number (or MCP's exact decimal string) as its normalised Decimal text."""
    if isinstance(value, dict):
        return {k: canonical(v) for k, v in sorted(value.items())}
    if isinstance(value, list):
        return [canonical(v) for v in value]
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, (int, Decimal, float)):
        return str(Decimal(str(value)).normalize())
    if isinstance(value, str) and re.fullmatch(r"-?\d+(\.\d+)?", value):
        return str(Decimal(value).normalize())
    return value


def census(rows: list[dict[str, Any]]) -> Counter[str]:
    """The multiset of (column, canonical JSON value) over rows whose JSON columns are parsed values."""
    return Counter(
        f"{c}={json.dumps(canonical(row[c]), sort_keys=True)}" for row in rows for c in JSON_COLUMNS if row.get(c)
    )


def parsed(text: str | None) -> Any:
    return json.loads(text, parse_float=Decimal) if text else None


@pytest.fixture(scope="module")
def long_digits_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("long-digits") / "aws_long_digits.csv"
    with AWS_13.open(newline="", encoding="utf-8") as src, path.open("w", newline="", encoding="utf-8") as out:
        reader = csv.DictReader(src)
        writer = csv.DictWriter(out, fieldnames=list(reader.fieldnames or []))
        writer.writeheader()
        for row in reader:
            writer.writerow({k: lengthened(v) if k in JSON_COLUMNS and v else v for k, v in row.items()})
    return path


@pytest.fixture(scope="module")
def expected(long_digits_csv: Path) -> Counter[str]:
    with long_digits_csv.open(newline="", encoding="utf-8") as f:
        rows = [{c: parsed(row.get(c)) for c in JSON_COLUMNS} for row in csv.DictReader(f)]
    found = census(rows)
    assert any("1234567" in key for key in found), "the fixture holds no lengthened number"
    return found


@pytest.fixture
async def long_digits(long_digits_csv: Path, tmp_path: Path) -> Any:
    store = Store(tmp_path)
    try:
        assert load_files(store, [long_digits_csv]).ok
    finally:
        store.close()
    settings = Settings(data_dir=tmp_path, token_secret="t")  # type: ignore[arg-type]
    async with running_services(settings, load_demo=False) as svc:
        yield svc


async def test_json_column_numbers_survive_rest(long_digits: Services, expected: Counter[str]) -> None:
    async with TestClient(TestServer(create_app(Pipeline(long_digits), TokenStore([])))) as client:
        page = json.loads(await (await client.get("/cost-and-usage?pageSize=1000")).text(), parse_float=Decimal)
        stream = await (await client.get("/cost-and-usage", headers={"Accept": "application/x-ndjson"})).text()
    assert census(page["data"]) == expected
    assert census([json.loads(line, parse_float=Decimal) for line in stream.splitlines()]) == expected


async def test_json_column_numbers_survive_mcp(long_digits: Services, expected: Counter[str]) -> None:
    rows: list[dict[str, Any]] = []
    token = None
    async with Client(FocusMCPServer(Pipeline(long_digits))) as client:
        for _ in range(50):  # the size budget cuts pages; 100 rows take a few
            args: dict[str, Any] = {"pageSize": 1000} | ({"pageToken": token} if token else {})
            result = await client.call_tool("listcostandusage", args)
            assert not result.is_error and result.structured_content is not None
            rows += result.structured_content["data"]
            token = result.structured_content["nextPageToken"]
            if token is None:
                break
    assert token is None, "the walk did not end within 50 pages"
    assert census(rows) == expected


@pytest.mark.parametrize("fmt", ["csv", "parquet", "json"])
async def test_json_column_numbers_survive_every_export_format(
    long_digits: Services, expected: Counter[str], fmt: str
) -> None:
    ctx = tool_context(long_digits, REST_LIMITS)
    job = await exports.export_cost_and_usage(ExportCostAndUsageInput(format=fmt), ctx)  # type: ignore[arg-type]
    service = long_digits.exports
    assert isinstance(service, ExportService)
    job = await service.wait(job.jobId, LOCAL.name, timeout=60)
    assert job.status == "Complete", job.error
    path = service.root / job.jobId / job.files[0].name
    if fmt == "json":
        rows = [json.loads(line, parse_float=Decimal) for line in path.read_text(encoding="utf-8").splitlines()]
    elif fmt == "csv":
        with path.open(newline="", encoding="utf-8") as f:
            rows = [{c: parsed(row.get(c)) for c in JSON_COLUMNS} for row in csv.DictReader(f)]
    else:
        rows = [{c: parsed(row.get(c)) for c in JSON_COLUMNS} for row in pq.read_table(path).to_pylist()]
    assert census(rows) == expected
