"""Exports round-trip: same rows, same sums to the last digit, files complete and checksummed."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
from decimal import Decimal
from pathlib import Path
from typing import Any

import anyio
import pyarrow.parquet as pq
import pytest
from conftest import AWS_13, ROOT, decimal_sums, read_csv, tool_context

from server.auth import LOCAL, Principal
from server.exports.service import ExportService
from server.services import Services
from server.store.db import Store
from server.store.loader import load_files
from tools import exports
from tools.context import REST_LIMITS
from tools.errors import NotFound
from tools.exports import ExportCostAndUsageInput, ExportJob, GetExportStatusInput

VALIDATOR = ROOT.parent / "shared" / "tools" / "focus-validate"


async def finished(services: Services, job: ExportJob) -> ExportJob:
    assert isinstance(services.exports, ExportService)
    done = await services.exports.wait(job.jobId, LOCAL.name, timeout=60)
    assert done.status not in ("Pending", "Processing"), "the export did not finish within 60 s"
    ctx = tool_context(services, REST_LIMITS)
    return await exports.get_export_status(GetExportStatusInput(jobId=job.jobId), ctx)


async def export(services: Services, **args: Any) -> tuple[ExportJob, list[Path]]:
    ctx = tool_context(services, REST_LIMITS)
    job = await exports.export_cost_and_usage(ExportCostAndUsageInput.model_validate(args), ctx)
    assert job.status in ("Pending", "Processing")
    job = await finished(services, job)
    assert job.status == "Complete", job.error
    assert isinstance(services.exports, ExportService)
    return job, [services.exports.root / job.jobId / f.name for f in job.files]


def read_back(path: Path) -> list[dict[str, Any]]:
    if path.suffix == ".csv":
        return [dict(r) for r in read_csv(path)]
    if path.suffix == ".jsonl":
        return [json.loads(line, parse_float=Decimal) for line in path.read_text().splitlines()]
    return pq.read_table(path).to_pylist()


@pytest.mark.parametrize("fmt", ["csv", "parquet", "json"])
async def test_an_export_of_the_aws_sample_round_trips_with_the_same_rows_and_sums(
    services: Services, fmt: str, tmp_path: Path
) -> None:
    job, (path,) = await export(services, format=fmt)
    rows = read_back(path)
    source = read_csv(AWS_13)
    assert job.recordCount == len(rows) == len(source) == 100
    assert decimal_sums(rows) == decimal_sums(source)
    # The file's size and digest are what the job says.
    assert job.bytes == path.stat().st_size
    assert job.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert not list(path.parent.glob(".*.partial"))
    # And our own loader takes it back with the same totals.
    store = Store(tmp_path / "reloaded")
    try:
        if fmt != "json":
            assert load_files(store, [path]).ok
            got = store.con.execute(
                "SELECT BillingCurrency, sum(BilledCost), sum(EffectiveCost), sum(ListCost), sum(ContractedCost) "
                "FROM cost_and_usage GROUP BY ALL"
            ).fetchall()
            expected = decimal_sums(source)
            for currency, *sums in got:
                assert sums == [
                    expected[(currency, c)] for c in ("BilledCost", "EffectiveCost", "ListCost", "ContractedCost")
                ]
    finally:
        store.close()


async def test_json_exports_are_json_lines_with_exact_decimal_numbers(services: Services) -> None:
    _, (path,) = await export(services, format="json")
    first = path.read_text().splitlines()[0]
    record = json.loads(first, parse_float=Decimal)
    assert isinstance(record["BilledCost"], Decimal)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", record["ChargePeriodStart"])
    assert isinstance(record["ContractApplied"], dict) or record["ContractApplied"] is None


async def test_filters_apply_to_exports_and_commitments_come_as_a_second_file(services: Services) -> None:
    job, paths = await export(services, format="csv", chargeCategory="Usage", includeContractCommitments=True)
    usage = [r for r in read_csv(AWS_13) if r["ChargeCategory"] == "Usage"]
    assert [f.dataset for f in job.files] == ["CostAndUsage", "ContractCommitment"]
    rows = read_back(paths[0])
    assert len(rows) == len(usage) and decimal_sums(rows) == decimal_sums(usage)
    commitments = read_back(paths[1])
    assert len(commitments) == job.files[1].recordCount == 10
    assert set(commitments[0]) >= {"ContractCommitmentId", "ContractId", "ContractCommitmentCategory"}


async def test_a_principals_job_is_not_found_by_another_principal_but_the_local_user_reads_it(
    services: Services,
) -> None:
    alice, bob = Principal("alice"), Principal("bob")
    job = await exports.export_cost_and_usage(
        ExportCostAndUsageInput(format="csv"), tool_context(services, REST_LIMITS, alice)
    )
    with pytest.raises(NotFound):
        await exports.get_export_status(GetExportStatusInput(jobId=job.jobId), tool_context(services, REST_LIMITS, bob))
    # stdio and an unauthenticated loopback serve act for the data dir's owner, who can read its files anyway
    seen = await exports.get_export_status(GetExportStatusInput(jobId=job.jobId), tool_context(services, REST_LIMITS))
    assert seen.jobId == job.jobId and (await finished(services, job)).status == "Complete"


async def test_an_export_matching_nothing_is_complete_with_zero_records(services: Services) -> None:
    job, (path,) = await export(services, format="parquet", serviceName="NoSuchService")
    assert job.recordCount == 0 and pq.read_table(path).num_rows == 0


def failing_rules(path: Path, dataset: str = "CostAndUsage") -> set[str]:
    run = subprocess.run(
        [str(VALIDATOR), str(path), "--dataset", dataset], capture_output=True, text=True, timeout=600, check=False
    )
    if "rules passed" not in run.stdout:
        pytest.fail(f"focus-validate could not run here (`make tools` prepares it): {run.stderr.strip()[-300:]}")
    section = run.stdout.split("Failing rules to look at", 1)
    if len(section) == 1:
        return set()
    return set(re.findall(r"^  (\S+)  violations=", section[1].split("Known false alarms")[0], re.M))


@pytest.mark.slow
@pytest.mark.timeout(1200)  # two validator runs; its first use outside `make test` also builds its venv
async def test_the_csv_export_passes_the_focus_validator_with_no_failure_the_source_lacks(
    services: Services, tmp_path: Path
) -> None:
    assert VALIDATOR.exists(), f"focus-validate not found at {VALIDATOR} (it comes with ../shared)"
    assert shutil.which("bash"), "focus-validate is a bash script and bash is not on PATH"
    _, (path,) = await export(services, format="csv")
    exported = tmp_path / "export.csv"
    shutil.copy(path, exported)
    source_fails = await anyio.to_thread.run_sync(failing_rules, AWS_13)
    export_fails = await anyio.to_thread.run_sync(failing_rules, exported)
    assert export_fails <= source_fails, f"new failures: {sorted(export_fails - source_fails)}"
