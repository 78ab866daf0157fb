"""Upstream mode for the commitment tools and the export wait, against a mocked remote FOCUS API."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

import pytest
from test_upstream_client import BASE, UPDATED, Upstream, job, mocked, params_of, upstream  # noqa: F401

from server.sources.upstream import UpstreamSource
from server.sources.upstream_exports import UpstreamExports
from tools import burndown, discounts, exports, wire
from tools.context import REST_LIMITS, ToolContext
from tools.errors import NotFound, UpstreamError
from tools.exports import GetExportStatusInput
from tools.pagination import PageTokens

BURN = re.compile(re.escape(BASE) + r"/contract-commitments/summary(\?.*)?$")
DISCOUNTS = re.compile(re.escape(BASE) + r"/commitment-discounts/summary(\?.*)?$")
STATUS = re.compile(re.escape(BASE) + r"/cost-and-usage/export/abc123$")


class Polls(list[float]):
    async def __call__(self, seconds: float) -> None:
        self.append(seconds)


def context(up: Upstream, polls: Polls | None = None) -> ToolContext:
    return ToolContext(
        source=UpstreamSource(up.client, secret=b"test-secret"),
        exports=UpstreamExports(up.client, secret=b"test-secret", sleep=Polls() if polls is None else polls),
        tokens=PageTokens(b"test-secret"),
        limits=REST_LIMITS,
        generator_version="test",
        principal="alice",
    )


def burn_body(applied: Any = Decimal("12.000000000000000001")) -> str:
    row = {
        "ContractCommitmentId": "C-1",
        "ContractId": "K-1",
        "ContractCommitmentCategory": "Spend",
        "ContractCommitmentType": "Committed Spend",
        "ContractCommitmentDescription": None,
        "ContractCommitmentPeriodStart": "2026-01-01T00:00:00Z",
        "ContractCommitmentPeriodEnd": "2027-01-01T00:00:00Z",
        "ContractPeriodStart": None,
        "ContractPeriodEnd": None,
        "measure": "Cost",
        "committed": Decimal(100),
        "committedUnit": "USD",
        "appliedToDate": applied,
        "appliedElements": 3,
        "remaining": Decimal("87.999999999999999999"),
        "percentConsumed": Decimal("12.00"),
        "percentElapsed": Decimal("50.00"),
        "runRateWindowStart": None,
        "runRateWindowEnd": None,
        "appliedInRunRateWindow": Decimal(0),
        "dailyRunRate": None,
        "projectedAtPeriodEnd": None,
        "projectedShortfall": None,
        "projectedSurplus": None,
        "status": "at risk",
    }
    body = {
        "asOf": "2026-07-01T00:00:00Z",
        "runRateDays": 7,
        "data": [row],
        "statusCounts": {"at risk": 1},
        "totalRecords": 1,
        "dataLastUpdated": UPDATED,
        "dataCompleteness": "Partial",
    }
    return wire.dumps(body).decode()


async def test_the_burn_down_is_the_upstreams_with_exact_figures(upstream: Upstream) -> None:  # noqa: F811
    upstream.mock.get(BURN, body=burn_body())
    args = burndown.SummarizeContractCommitmentsInput(contractCommitmentId="C-1", asOf="2026-07-01", runRateDays=7)
    answer = await burndown.summarize_contract_commitments(args, context(upstream))
    (call,) = upstream.sent()
    assert params_of(call) == {"contractCommitmentId": "C-1", "runRateDays": "7", "asOf": "2026-07-01T00:00:00Z"}
    assert answer.data[0].appliedToDate == Decimal("12.000000000000000001")
    assert (answer.asOf, answer.dataLastUpdated, answer.dataCompleteness) == (
        "2026-07-01T00:00:00Z",
        UPDATED,
        "Partial",
    )


async def test_a_burn_down_breaking_the_contract_is_refused(upstream: Upstream) -> None:  # noqa: F811
    upstream.mock.get(BURN, body=burn_body(applied="lots"))
    with pytest.raises(UpstreamError, match="appliedToDate"):
        await burndown.summarize_contract_commitments(burndown.SummarizeContractCommitmentsInput(), context(upstream))


async def test_an_upstream_without_the_commitment_routes_says_so(upstream: Upstream) -> None:  # noqa: F811
    upstream.mock.get(BURN, status=404, body='{"code": "not_found", "message": "no route"}')
    upstream.mock.get(DISCOUNTS, status=404, body='{"code": "not_found", "message": "no route"}')
    with pytest.raises(UpstreamError, match="does not offer summarizecontractcommitments"):
        await burndown.summarize_contract_commitments(burndown.SummarizeContractCommitmentsInput(), context(upstream))
    with pytest.raises(UpstreamError, match="does not offer summarizecommitmentdiscounts"):
        await discounts.summarize_commitment_discounts(discounts.SummarizeCommitmentDiscountsInput(), context(upstream))


async def test_an_export_wait_polls_the_upstream_until_the_job_completes(upstream: Upstream) -> None:  # noqa: F811
    polls = Polls()
    ctx = context(upstream, polls)
    ours = ctx.exports.job_id("abc123", "alice")  # type: ignore[attr-defined]
    upstream.mock.get(STATUS, body=wire.dumps(job("Processing")).decode())
    upstream.mock.get(STATUS, body=wire.dumps(job("Processing")).decode())
    upstream.mock.get(STATUS, body=wire.dumps(job("Complete")).decode())
    done = await exports.get_export_status(GetExportStatusInput(jobId=ours, waitSeconds=30), ctx)
    assert done.status == "Complete" and len(upstream.sent()) == 3
    assert polls == [1.0, 1.0]
    with pytest.raises(NotFound):
        await exports.get_export_status(GetExportStatusInput(jobId="up-forged.x", waitSeconds=30), ctx)
