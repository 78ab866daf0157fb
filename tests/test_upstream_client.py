"""Upstream mode against a mocked remote FOCUS API (aioresponses): every failure maps to our error tree.

The upstream is ``http://upstream.test/focus/v1``. Backoff waits are recorded, never slept, so a
``Retry-After: 2`` costs nothing here; what is asserted is that the client asked to wait 2 s.
"""

from __future__ import annotations

import base64
import errno
import json
import re
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, replace
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient, TestServer
from aioresponses import aioresponses
from pydantic import SecretStr, ValidationError
from yarl import URL

from server.auth import TokenStore
from server.pipeline import Pipeline
from server.rest.app import create_app
from server.services import running_services
from server.settings import Settings
from server.sources.upstream import UpstreamSource
from server.sources.upstream_client import UpstreamClient, UpstreamConfig
from server.sources.upstream_exports import JOB_PREFIX, UpstreamExports
from server.sources.upstream_failures import RetryPolicy, retry_after_seconds
from tools import commitments, cost_and_usage, exports, schema_metadata, wire
from tools.commitments import ListContractCommitmentsInput
from tools.context import MCP_LIMITS, REST_LIMITS, ExportRequest, Limits, ToolContext
from tools.cost_and_usage import ListCostAndUsageInput
from tools.errors import (
    Forbidden,
    InvalidArgument,
    InvalidPageToken,
    NotFound,
    UpstreamError,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from tools.exports import ExportCostAndUsageInput, GetExportStatusInput
from tools.pagination import PageTokens
from tools.schema_metadata import GetSchemaMetadataInput
from tools.source import CostFilters, Scope
from tools.summaries import (
    ListCostAndUsageValuesInput,
    SummarizeCostAndUsageInput,
    list_cost_and_usage_values,
    summarize_cost_and_usage,
)

BASE = "http://upstream.test/focus/v1"
FINOPS = "finops-foundation-secret"
CLIENT_TOKEN = "our-own-client-token"
LIST = re.compile(re.escape(BASE) + r"/cost-and-usage(\?.*)?$")
COMMITMENTS = re.compile(re.escape(BASE) + r"/contract-commitments(\?.*)?$")
UPDATED = "2026-06-02T03:04:05Z"


class Sleeps(list[float]):
    """Stands in for anyio.sleep: records each backoff instead of waiting."""

    async def __call__(self, seconds: float) -> None:
        self.append(seconds)


@dataclass
class Upstream:
    mock: aioresponses
    client: UpstreamClient
    sleeps: Sleeps

    def sent(self, method: str = "GET") -> list[Any]:
        """The calls made upstream with ``method``, in order (their kwargs: params, headers, json)."""
        return [call for (verb, _), calls in self.mock.requests.items() if verb == method for call in calls]


def row(**cells: Any) -> dict[str, Any]:
    return {
        "BilledCost": Decimal("1234567890.123456789012345678"),
        "BillingCurrency": "USD",
        "ChargePeriodStart": "2026-05-01T00:00:00Z",
        "ServiceName": "AmazonEC2",
        "Tags": {"env": "prod", "weight": Decimal("0.1")},
    } | cells


def envelope(rows: list[dict[str, Any]], next_token: str | None = None, total: int | None = None) -> str:
    body = {
        "data": rows,
        "nextPageToken": next_token,
        "totalRecords": len(rows) if total is None else total,
        "dataLastUpdated": UPDATED,
        "dataCompleteness": "Partial",
    }
    return wire.dumps(body).decode()


def job(status: str = "Complete", job_id: str = "abc123") -> dict[str, Any]:
    files = [
        {
            "dataset": "CostAndUsage",
            "name": "cost-and-usage.csv",
            "format": "csv",
            "mediaType": "text/csv",
            "downloadUrl": f"http://upstream.test/focus/v1/cost-and-usage/export/{job_id}/files/cost-and-usage.csv",
            "recordCount": 2,
            "bytes": 12,
            "sha256": "0" * 64,
        }
    ]
    complete = status == "Complete"
    return {
        "jobId": job_id,
        "status": status,
        "format": "csv",
        "createdAt": UPDATED,
        "downloadUrl": files[0]["downloadUrl"] if complete else None,
        "recordCount": 2 if complete else None,
        "files": files if complete else [],
        "request": {"format": "csv"},
        "appliedScope": {"principal": "the-upstream-principal"},
    }


def refused(host: str = "upstream.test") -> aiohttp.ClientConnectorError:
    key = SimpleNamespace(host=host, port=80, ssl=False)
    return aiohttp.ClientConnectorError(key, ConnectionRefusedError(errno.ECONNREFUSED, "Connect call failed"))  # type: ignore[arg-type]


class _Response(aiohttp.ClientResponse):
    """aioresponses 0.7.9 predates the ``stream_writer`` argument aiohttp 3.14 requires; supply one."""

    def __init__(self, method: str, url: URL, **kwargs: Any) -> None:
        kwargs.setdefault("stream_writer", SimpleNamespace(output_size=0))
        super().__init__(method, url, **kwargs)


class _Mock(aioresponses):
    def add(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("response_class", _Response)
        super().add(*args, **kwargs)


@pytest.fixture
def mocked() -> Iterator[aioresponses]:
    with _Mock(passthrough=["http://127.0.0.1"]) as mock:
        yield mock


@pytest.fixture
async def upstream(mocked: aioresponses) -> AsyncIterator[Upstream]:
    config = UpstreamConfig(base_url=BASE, token=SecretStr(FINOPS), retry=RetryPolicy(max_attempts=3))
    sleeps = Sleeps()
    async with UpstreamClient.open(config, sleep=sleeps) as client:
        yield Upstream(mocked, client, sleeps)


def context(upstream: Upstream, limits: Limits = REST_LIMITS, principal: str = "alice") -> ToolContext:
    return ToolContext(
        source=UpstreamSource(upstream.client, secret=b"test-secret"),
        exports=UpstreamExports(upstream.client, secret=b"test-secret"),
        tokens=PageTokens(b"test-secret"),
        limits=limits,
        generator_version="test",
        principal=principal,
        download_base="http://ours.test:8080",
    )


async def list_page(upstream: Upstream, **args: Any) -> Any:
    return await cost_and_usage.list_cost_and_usage(ListCostAndUsageInput(**args), context(upstream))


# --- each failure mode ---------------------------------------------------------------------------


async def test_a_timeout_on_every_attempt_is_upstream_timeout(upstream: Upstream) -> None:
    upstream.mock.get(LIST, exception=TimeoutError(), repeat=True)
    with pytest.raises(UpstreamTimeout) as caught:
        await list_page(upstream, pageSize=10)
    assert caught.value.status == 504
    assert caught.value.details["attempts"] == 3
    assert len(upstream.sent()) == 3
    assert len(upstream.sleeps) == 2, "it backed off between the attempts"


async def test_connection_refused_is_upstream_unavailable_and_says_so_without_the_address(upstream: Upstream) -> None:
    upstream.mock.get(LIST, exception=refused(), repeat=True)
    with pytest.raises(UpstreamUnavailable) as caught:
        await list_page(upstream)
    error = caught.value
    assert error.code == "upstream_unavailable"
    assert error.details["reason"] == "connection refused"
    assert error.details["attempts"] == 3
    assert "upstream.test" not in json.dumps(error.body()), "the upstream host is not the client's business"


async def test_backoff_grows_exponentially_with_jitter(upstream: Upstream) -> None:
    upstream.mock.get(LIST, exception=refused(), repeat=True)
    with pytest.raises(UpstreamUnavailable):
        await list_page(upstream)
    first, second = upstream.sleeps
    assert 0.125 <= first <= 0.25
    assert 0.25 <= second <= 0.5


async def test_429_with_retry_after_is_waited_out_and_then_the_page_is_served(upstream: Upstream) -> None:
    upstream.mock.get(LIST, status=429, headers={"Retry-After": "2"}, body='{"code": "rate_limited"}')
    upstream.mock.get(LIST, body=envelope([row()]))
    page = await list_page(upstream, pageSize=10)
    assert upstream.sleeps == [2.0]
    assert len(page.data) == 1


async def test_a_retry_after_beyond_the_retry_budget_fails_at_once_instead_of_hanging(upstream: Upstream) -> None:
    upstream.mock.get(LIST, status=429, headers={"Retry-After": "3600"}, repeat=True)
    with pytest.raises(UpstreamUnavailable) as caught:
        await list_page(upstream)
    assert upstream.sleeps == []
    assert caught.value.details["upstreamStatus"] == 429
    assert caught.value.details["retryAfterSeconds"] == 3600


async def test_500_three_times_is_upstream_unavailable_with_the_upstream_status(upstream: Upstream) -> None:
    upstream.mock.get(LIST, status=500, body='{"code": "internal_error", "message": "disk on fire"}', repeat=True)
    with pytest.raises(UpstreamUnavailable) as caught:
        await list_page(upstream)
    assert len(upstream.sent()) == 3
    assert caught.value.details["upstreamStatus"] == 500
    assert caught.value.details["upstream"]["message"] == "disk on fire"


async def test_a_500_then_a_good_answer_is_just_the_good_answer(upstream: Upstream) -> None:
    upstream.mock.get(LIST, status=500)
    upstream.mock.get(LIST, body=envelope([row(), row()]))
    page = await list_page(upstream)
    assert len(page.data) == 2


async def test_an_export_post_that_failed_with_500_is_not_sent_again(upstream: Upstream) -> None:
    upstream.mock.post(f"{BASE}/cost-and-usage/export", status=500, repeat=True)
    with pytest.raises(UpstreamUnavailable):
        await exports.export_cost_and_usage(ExportCostAndUsageInput(), context(upstream))
    assert len(upstream.sent("POST")) == 1, "a 500 may have created the job: retrying could start a second one"


async def test_malformed_json_is_upstream_error(upstream: Upstream) -> None:
    upstream.mock.get(LIST, body='{"data": [', content_type="application/json")
    with pytest.raises(UpstreamError) as caught:
        await list_page(upstream)
    assert caught.value.code == "upstream_error"
    assert "not valid JSON" in caught.value.message
    assert len(upstream.sent()) == 1, "a broken body is not retried"


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ({"nextPageToken": None, "totalRecords": 0, "dataCompleteness": "Empty"}, "data is missing"),
        ({"data": {}, "nextPageToken": None, "totalRecords": 0, "dataCompleteness": "Empty"}, "data is an object"),
        ({"data": [row(Cost=1)], "nextPageToken": None, "totalRecords": 1, "dataCompleteness": "Complete"}, "'Cost'"),
        (
            {"data": [row(BilledCost="12.5")], "nextPageToken": None, "totalRecords": 1, "dataCompleteness": "Partial"},
            "data[0].BilledCost is '12.5', expected a decimal JSON number",
        ),
        (
            {
                "data": [row(ChargePeriodStart="yesterday")],
                "nextPageToken": None,
                "totalRecords": 1,
                "dataCompleteness": "Partial",
            },
            "data[0].ChargePeriodStart",
        ),
        ({"data": [row()], "nextPageToken": None, "dataCompleteness": "Partial"}, "totalRecords"),
        ({"data": [row()], "totalRecords": 1, "dataCompleteness": "Partial"}, "nextPageToken is missing"),
        ({"data": [], "nextPageToken": "more", "totalRecords": 9, "dataCompleteness": "Partial"}, "never end"),
        ([row()], "the body is an array"),
    ],
)
async def test_a_contract_violating_body_is_refused_with_what_is_wrong(
    upstream: Upstream, body: Any, problem: str
) -> None:
    upstream.mock.get(LIST, body=wire.dumps(body).decode())
    with pytest.raises(UpstreamError) as caught:
        await list_page(upstream)
    assert caught.value.code == "upstream_error"
    assert problem in caught.value.details["problem"]
    assert "nothing of it was passed on" in caught.value.message


async def test_more_rows_than_the_page_size_is_a_contract_violation(upstream: Upstream) -> None:
    upstream.mock.get(LIST, body=envelope([row(), row(), row()]))
    with pytest.raises(UpstreamError, match="3 records for a page of at most 2"):
        await list_page(upstream, pageSize=2)


async def test_401_from_upstream_is_upstream_error_and_only_the_finops_token_ever_goes_upstream(
    mocked: aioresponses, tmp_path: Path
) -> None:
    mocked.get(LIST, status=401, body='{"code": "unauthorized", "message": "missing or invalid credentials"}')
    settings = Settings(
        data_dir=tmp_path,
        upstream_url=BASE,
        finops_foundation_token=FINOPS,  # type: ignore[arg-type]
        tokens=CLIENT_TOKEN,  # type: ignore[arg-type]
        token_secret="s",  # type: ignore[arg-type]
    )
    async with (
        running_services(settings) as services,
        TestClient(TestServer(create_app(Pipeline(services), TokenStore([CLIENT_TOKEN])))) as rest,
    ):
        resp = await rest.get("/cost-and-usage", headers={"Authorization": f"Bearer {CLIENT_TOKEN}"})
        body = await resp.json()
    assert resp.status == 502
    assert body["code"] == "upstream_error"
    assert body["details"]["upstreamStatus"] == 401
    assert "FINOPS_FOUNDATION_TOKEN" in body["message"]
    assert not (tmp_path / "focus.duckdb").exists(), "upstream mode opens no store"
    (call,) = [c for (verb, url), calls in mocked.requests.items() if url.host == "upstream.test" for c in calls]
    assert call.kwargs["headers"]["Authorization"] == f"Bearer {FINOPS}"
    assert CLIENT_TOKEN not in repr(call), "our client's token is never forwarded upstream"


async def test_an_upstream_400_is_the_callers_invalid_argument_with_the_upstream_message(upstream: Upstream) -> None:
    upstream.mock.get(LIST, status=400, body='{"code": "invalid_argument", "message": "region is unknown"}')
    with pytest.raises(InvalidArgument, match="region is unknown") as caught:
        await list_page(upstream, region="mars-1")
    assert caught.value.details["upstreamStatus"] == 400


async def test_a_stale_upstream_page_token_is_our_invalid_page_token(upstream: Upstream) -> None:
    upstream.mock.get(LIST, body=envelope([row()], next_token="upstream-token-1", total=2))
    first = await list_page(upstream, pageSize=1)
    stale = '{"code": "invalid_page_token", "message": "the data changed", "details": {"reason": "stale"}}'
    upstream.mock.get(LIST, status=400, body=stale)
    with pytest.raises(InvalidPageToken) as caught:
        await list_page(upstream, pageSize=1, pageToken=first.nextPageToken)
    assert caught.value.details["upstream"]["details"] == {"reason": "stale"}


async def test_a_redirect_is_not_followed_and_says_which_setting_to_fix(upstream: Upstream) -> None:
    upstream.mock.get(LIST, status=301, headers={"Location": "https://elsewhere.test/"})
    with pytest.raises(UpstreamError, match="FOCUS_API_UPSTREAM_URL"):
        await list_page(upstream)


# --- what passes through, and how ----------------------------------------------------------------


async def test_money_stays_exact_and_the_envelope_is_the_upstreams(upstream: Upstream) -> None:
    upstream.mock.get(LIST, body=envelope([row(x_Team="platform")], total=41))
    page = await list_page(upstream)
    (record,) = page.data
    assert record["BilledCost"] == Decimal("1234567890.123456789012345678")
    assert record["Tags"]["weight"] == Decimal("0.1")
    assert record["x_Team"] == "platform"
    assert record["ListCost"] is None, "an absent FOCUS column is null, as our contract says"
    assert page.totalRecords == 41
    assert page.dataLastUpdated == UPDATED
    assert page.dataCompleteness == "Partial"


def params_of(call: Any) -> dict[str, Any]:
    """The query parameters one upstream request carried (repeated ones as a list, in order)."""
    sent = call.kwargs["params"]
    pairs = list(sent.items()) if isinstance(sent, dict) else list(sent)
    out: dict[str, Any] = {}
    for key, value in pairs:
        out[key] = [*out[key], value] if isinstance(out.get(key), list) else [out[key], value] if key in out else value
    return out


async def test_repeated_tag_filters_travel_once_per_value_in_order(upstream: Upstream) -> None:
    upstream.mock.get(LIST, body=envelope([]))
    await list_page(upstream, tag=["Environment=prod", "Owner=team-a=b"], chargeClass="null", pageSize=5)
    (call,) = upstream.sent()
    assert params_of(call) == {"tag": ["Environment=prod", "Owner=team-a=b"], "chargeClass": "null", "pageSize": "5"}


async def test_filters_travel_as_the_seeds_query_parameters(upstream: Upstream) -> None:
    upstream.mock.get(LIST, body=envelope([]))
    await list_page(
        upstream,
        providerName="AWS",
        region="us-east-1",
        billingPeriodStart="2026-05-01",
        billingPeriodEnd="2026-06-01T02:00:00+02:00",
        pageSize=5,
    )
    (call,) = upstream.sent()
    assert params_of(call) == {
        "providerName": "AWS",
        "region": "us-east-1",
        "billingPeriodStart": "2026-05-01T00:00:00Z",
        "billingPeriodEnd": "2026-06-01T00:00:00Z",
        "pageSize": "5",
    }


async def test_the_upstream_page_token_is_sealed_inside_our_signed_token(upstream: Upstream) -> None:
    upstream.mock.get(LIST, body=envelope([row()], next_token="UPSTREAM-TOKEN-xyz", total=2))
    upstream.mock.get(LIST, body=envelope([row()], total=2))
    first = await list_page(upstream, pageSize=1, serviceName="AmazonEC2")
    payload = base64.urlsafe_b64decode(first.nextPageToken.split(".")[0] + "==")
    assert b"UPSTREAM-TOKEN" not in payload, "the client never sees the upstream's token"
    second = await list_page(upstream, pageSize=1, serviceName="AmazonEC2", pageToken=first.nextPageToken)
    assert second.nextPageToken is None
    assert params_of(upstream.sent()[1])["pageToken"] == "UPSTREAM-TOKEN-xyz"
    with pytest.raises(InvalidPageToken):
        await list_page(upstream, pageSize=1, serviceName="AmazonS3", pageToken=first.nextPageToken)


async def test_a_page_cut_by_the_mcp_budget_resumes_inside_the_upstream_page(upstream: Upstream) -> None:
    big = "x" * 5_000
    rows = [row(ChargeDescription=f"{i}{big}") for i in range(5)]
    upstream.mock.get(LIST, body=envelope(rows, next_token="after-five", total=7))
    ctx = context(upstream, replace(MCP_LIMITS, result_budget_bytes=12_000))
    first = await cost_and_usage.list_cost_and_usage(ListCostAndUsageInput(pageSize=5), ctx)
    assert first.truncated is not None
    kept = len(first.data)
    assert 0 < kept < 5
    upstream.mock.get(LIST, body=envelope(rows, next_token="after-five", total=7))
    second = await cost_and_usage.list_cost_and_usage(
        ListCostAndUsageInput(pageSize=5, pageToken=first.nextPageToken), ctx
    )
    resumed = params_of(upstream.sent()[1])
    assert "pageToken" not in resumed, "the first upstream page is asked for again"
    assert resumed["pageSize"] == str(kept + 5)
    assert second.data[0]["ChargeDescription"].startswith(str(kept)), "nothing skipped, nothing repeated"


async def test_contract_commitments_pass_through_with_their_filters(upstream: Upstream) -> None:
    record = {"ContractCommitmentId": "cc-1", "ContractCommitmentCost": 100, "ContractId": "k-1"}
    upstream.mock.get(COMMITMENTS, body=envelope([record]))
    page = await commitments.list_contract_commitments(
        ListContractCommitmentsInput(billingAccountId="123", commitmentDiscountId="cc-1"), context(upstream)
    )
    assert page.data[0]["ContractCommitmentCost"] == Decimal(100)
    assert params_of(upstream.sent()[0]) == {
        "commitmentDiscountId": "cc-1",
        "billingAccountId": "123",
        "pageSize": "1000",
    }


async def test_a_cost_and_usage_column_in_a_commitment_is_refused(upstream: Upstream) -> None:
    upstream.mock.get(COMMITMENTS, body=envelope([{"ContractCommitmentId": "cc-1", "BilledCost": 1}]))
    with pytest.raises(UpstreamError, match="BilledCost"):
        await commitments.list_contract_commitments(ListContractCommitmentsInput(), context(upstream))


async def test_schema_metadata_is_passed_through_with_its_origin_stated(upstream: Upstream) -> None:
    schema = {
        "focusVersion": "1.3",
        "columns": [{"dataset": "CostAndUsage", "name": "x_Team", "custom": True}],
        "loaded": {
            "demo": True,
            "costAndUsageRows": 10,
            "contractCommitmentRows": 2,
            "billingPeriods": [{"billingPeriodStart": "2026-05-01T00:00:00Z", "billingPeriodEnd": "x", "rows": 10}],
            "providers": ["AWS"],
            "currencies": ["USD"],
            "dataLastUpdated": UPDATED,
            "origin": "embedded DuckDB store (demo data)",
        },
    }
    upstream.mock.get(f"{BASE}/schema", body=json.dumps(schema))
    ctx = context(upstream)
    meta = await schema_metadata.get_schema_metadata(GetSchemaMetadataInput(), ctx)
    assert meta.loaded.origin == f"upstream FOCUS API at {BASE} (its origin: embedded DuckDB store) (demo data)"
    assert meta.loaded.costAndUsageRows == 10
    assert meta.loaded.dataLastUpdated == UPDATED
    assert "x_Team" in {c.name for c in meta.columns if c.custom}


async def test_a_scoped_principal_is_refused_rather_than_shown_every_account(upstream: Upstream) -> None:
    source = UpstreamSource(upstream.client, secret=b"s")
    with pytest.raises(Forbidden, match="scope the upstream token"):
        await source.list_cost_and_usage(CostFilters(scope=Scope(frozenset({"123"}))), None, 10)
    assert upstream.sent() == []


SUMMARY = re.compile(re.escape(BASE) + r"/cost-and-usage/summary(\?.*)?$")
VALUES = re.compile(re.escape(BASE) + r"/cost-and-usage/values(\?.*)?$")


def summary_body(rows: list[dict[str, Any]], group_count: int | None = None) -> str:
    totals = [{"BillingCurrency": "USD", "EffectiveCost": Decimal("6.000000000000000001"), "rowCount": 9}]
    body = {
        "groupBy": ["ServiceName"],
        "metrics": ["EffectiveCost"],
        "data": rows,
        "totals": totals,
        "groupCount": len(rows) if group_count is None else group_count,
        "dataLastUpdated": UPDATED,
        "dataCompleteness": "Complete",
    }
    return wire.dumps(body).decode()


def group(name: str, cost: str, other: bool = False) -> dict[str, Any]:
    return {
        "BillingCurrency": "USD",
        "ServiceName": name,
        "EffectiveCost": Decimal(cost),
        "rowCount": 3,
        "other": other,
    }


async def test_a_summary_is_the_upstreams_with_exact_sums(upstream: Upstream) -> None:
    rows = [group("AmazonEC2", "5.000000000000000001"), group("Other", "1", other=True)]
    upstream.mock.get(SUMMARY, body=summary_body(rows, group_count=4))
    args = SummarizeCostAndUsageInput(groupBy=["ServiceName"], top=1, savings=True, providerName="AWS")
    answer = await summarize_cost_and_usage(args, context(upstream))
    (call,) = upstream.sent()
    assert params_of(call) == {
        "providerName": "AWS",
        "groupBy": "ServiceName",
        "metrics": "EffectiveCost,ListCost",
        "sort": "EffectiveCost",
        "savings": "true",
        "top": "1",
    }
    assert answer.data[0].model_dump()["EffectiveCost"] == Decimal("5.000000000000000001")
    assert answer.totals[0].model_dump()["EffectiveCost"] == Decimal("6.000000000000000001")
    assert answer.groupCount == 4
    assert answer.dataLastUpdated == UPDATED
    assert answer.dataCompleteness == "Complete"


async def test_a_summary_is_cut_to_this_transports_groups_per_currency_and_says_so(upstream: Upstream) -> None:
    upstream.mock.get(SUMMARY, body=summary_body([group(f"S{i}", str(9 - i)) for i in range(3)]))
    small = Limits(default_page_size=2, max_page_size=2, transport="MCP")
    answer = await summarize_cost_and_usage(
        SummarizeCostAndUsageInput(groupBy=["ServiceName"]), context(upstream, small)
    )
    assert [r.model_dump()["ServiceName"] for r in answer.data] == ["S0", "S1"]
    assert answer.truncated is not None


async def test_a_summary_group_that_was_not_asked_for_is_a_contract_violation(upstream: Upstream) -> None:
    upstream.mock.get(SUMMARY, body=summary_body([group("AmazonEC2", "1") | {"RegionId": "us-east-1"}]))
    with pytest.raises(UpstreamError, match="'RegionId', which was not asked for"):
        await summarize_cost_and_usage(SummarizeCostAndUsageInput(groupBy=["ServiceName"]), context(upstream))


async def test_an_upstream_without_the_summary_route_says_so(upstream: Upstream) -> None:
    upstream.mock.get(SUMMARY, status=404, body='{"code": "not_found", "message": "no route"}')
    with pytest.raises(UpstreamError, match="does not offer summarizecostandusage"):
        await summarize_cost_and_usage(SummarizeCostAndUsageInput(), context(upstream))


async def test_distinct_values_page_through_the_upstream_with_sealed_tokens(upstream: Upstream) -> None:
    value = {"value": "AmazonEC2", "rowCount": 7, "effectiveCost": [{"BillingCurrency": "USD", "EffectiveCost": 1}]}
    upstream.mock.get(VALUES, body=envelope([value], next_token="values-token", total=2))
    upstream.mock.get(VALUES, body=envelope([value | {"value": "AmazonS3"}], total=2))
    ctx = context(upstream)
    args = ListCostAndUsageValuesInput(column="ServiceName", search="amazon", pageSize=1)
    first = await list_cost_and_usage_values(args, ctx)
    assert first.data[0].effectiveCost[0].EffectiveCost == Decimal(1)
    assert first.nextPageToken is not None and "values-token" not in first.nextPageToken
    second = await list_cost_and_usage_values(args.model_copy(update={"pageToken": first.nextPageToken}), ctx)
    assert second.data[0].value == "AmazonS3"
    assert second.nextPageToken is None
    params = [params_of(call) for call in upstream.sent()]
    assert params[0] == {"column": "ServiceName", "searchMode": "contains", "search": "amazon", "pageSize": "1"}
    assert params[1]["pageToken"] == "values-token"


# --- exports ---------------------------------------------------------------------------------------


async def test_export_jobs_are_namespaced_bound_to_their_owner_and_point_at_our_download_route(
    upstream: Upstream,
) -> None:
    upstream.mock.post(f"{BASE}/cost-and-usage/export", status=202, body=json.dumps(job("Pending")))
    upstream.mock.get(f"{BASE}/cost-and-usage/export/abc123", body=json.dumps(job("Complete")), repeat=True)
    alice = context(upstream, principal="alice")
    started = await exports.export_cost_and_usage(ExportCostAndUsageInput(providerName="AWS"), alice)
    assert started.jobId.startswith(f"{JOB_PREFIX}abc123.")
    assert upstream.sent("POST")[0].kwargs["json"] == {
        "providerName": "AWS",
        "format": "csv",
        "includeContractCommitments": False,
    }
    done = await exports.get_export_status(GetExportStatusInput(jobId=started.jobId), alice)
    assert done.status == "Complete"
    ours = f"http://ours.test:8080/cost-and-usage/export/{started.jobId}/files/cost-and-usage.csv"
    assert done.downloadUrl == ours
    assert done.files[0].downloadUrl == ours
    assert done.appliedScope is None, "the upstream's principal is not our caller"


@pytest.mark.parametrize(
    ("job_id", "caller"),
    [
        ("up-abc123.<alice's mac>", "bob"),
        ("up-abc123.forged", "alice"),
        ("up-abc123.ünïcödé", "alice"),
        ("abc123", "alice"),
    ],
)
async def test_someone_elses_forged_or_foreign_job_id_is_not_found_and_never_asked_upstream(
    upstream: Upstream, job_id: str, caller: str
) -> None:
    same_secret_as_the_context = UpstreamExports(upstream.client, secret=b"test-secret")
    alices = same_secret_as_the_context.job_id("abc123", "alice")
    job_id = job_id.replace("<alice's mac>", alices.rpartition(".")[2])
    with pytest.raises(NotFound):
        await exports.get_export_status(GetExportStatusInput(jobId=job_id), context(upstream, principal=caller))
    assert upstream.sent() == []


async def test_an_idempotency_key_goes_upstream_made_distinct_per_caller(upstream: Upstream) -> None:
    upstream.mock.post(f"{BASE}/cost-and-usage/export", status=202, body=json.dumps(job("Pending")), repeat=True)
    exports = UpstreamExports(upstream.client, secret=b"k")
    for owner in ("alice", "alice", "bob"):
        await exports.submit(ExportRequest(CostFilters(), "csv", False, owner, {"format": "csv"}, "key-1"))
    alice, again, bob = (call.kwargs["headers"]["Idempotency-Key"] for call in upstream.sent("POST"))
    assert alice == again != bob
    assert "key-1" not in alice


async def test_an_export_download_streams_the_upstream_file_with_the_finops_token(upstream: Upstream) -> None:
    upstream.mock.get(f"{BASE}/cost-and-usage/export/abc123", body=json.dumps(job()))
    upstream.mock.get(f"{BASE}/cost-and-usage/export/abc123/files/cost-and-usage.csv", body=b"a,b\n1,2\n3,4\n")
    exports = UpstreamExports(upstream.client, secret=b"k")
    job_id = exports.job_id("abc123", "alice")
    async with exports.open_download(job_id, "cost-and-usage.csv", "alice") as download:
        assert download.chunks is not None
        content = b"".join([chunk async for chunk in download.chunks])
    assert content == b"a,b\n1,2\n3,4\n"
    file_call = upstream.mock.requests[("GET", URL(f"{BASE}/cost-and-usage/export/abc123/files/cost-and-usage.csv"))]
    assert file_call[0].kwargs["headers"]["Authorization"] == f"Bearer {FINOPS}"


async def test_a_download_link_to_another_origin_gets_no_credentials(upstream: Upstream) -> None:
    presigned = "https://bucket.storage.test/export.csv?signature=abc"
    upstream.mock.get(
        f"{BASE}/cost-and-usage/export/abc123",
        body=json.dumps(job() | {"files": [job()["files"][0] | {"downloadUrl": presigned}]}),
    )
    upstream.mock.get(presigned, body=b"a\n")
    exports = UpstreamExports(upstream.client, secret=b"k")
    async with exports.open_download(exports.job_id("abc123", "a"), "cost-and-usage.csv", "a") as download:
        assert download.chunks is not None
        assert b"".join([c async for c in download.chunks]) == b"a\n"
    (call,) = upstream.mock.requests[("GET", URL(presigned))]
    assert "Authorization" not in call.kwargs["headers"]


async def test_a_scoped_export_is_refused_in_upstream_mode(upstream: Upstream) -> None:
    exports = UpstreamExports(upstream.client, secret=b"k")
    scoped = ExportRequest(CostFilters(scope=Scope(None, frozenset({"s"}))), "csv", False, "a", {})
    with pytest.raises(Forbidden):
        await exports.submit(scoped)


# --- settings --------------------------------------------------------------------------------------


def test_the_upstream_token_comes_from_finops_foundation_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FINOPS_FOUNDATION_TOKEN", FINOPS)
    monkeypatch.setenv("FOCUS_API_UPSTREAM_URL", BASE + "/")
    settings = Settings()
    assert settings.upstream_url == BASE
    assert settings.finops_foundation_token is not None
    assert settings.finops_foundation_token.get_secret_value() == FINOPS
    assert FINOPS not in repr(settings), "the token is never printed"


@pytest.mark.parametrize("url", ["ftp://upstream.test", "http://user:pass@upstream.test", "upstream.test"])
def test_an_unusable_upstream_url_is_refused(url: str) -> None:
    with pytest.raises(ValidationError):
        Settings(upstream_url=url)


@pytest.mark.parametrize(("header", "seconds"), [("7", 7.0), ("Wed, 21 Oct 2015 07:28:00 GMT", 0.0), ("soon", None)])
def test_retry_after_reads_seconds_and_http_dates(header: str, seconds: float | None) -> None:
    assert retry_after_seconds(header) == seconds
