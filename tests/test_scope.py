"""A scoped principal never sees an account outside its scope, and its totals are the in-scope totals."""

from __future__ import annotations

import json
import random
from collections import Counter
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from conftest import AWS_CC, decimal_sums, expected_rows, python_filter, read_csv, tool_context
from mcp import Client
from serving import PageWalk

from server.auth import Principal, TokenFileError, TokenStore
from server.mcp.server import FocusMCPServer
from server.pipeline import Pipeline
from server.rest.app import create_app
from server.services import Services
from tools import commitments, cost_and_usage, schema_metadata
from tools.commitments import ListContractCommitmentsInput
from tools.context import REST_LIMITS
from tools.cost_and_usage import ListCostAndUsageInput
from tools.schema_metadata import GetSchemaMetadataInput
from tools.source import Scope

CASES = 1000


def in_scope(row: dict[str, Any], scope: Scope) -> bool:
    if scope.billing_account_ids is not None and row["BillingAccountId"] not in scope.billing_account_ids:
        return False
    return scope.sub_account_ids is None or row["SubAccountId"] in scope.sub_account_ids


def random_scope(rng: random.Random, accounts: list[str], subs: list[str]) -> Scope:
    billing = frozenset(rng.sample(accounts, rng.randint(0, 3))) if rng.random() < 0.7 else None
    sub = frozenset(rng.sample(subs, rng.randint(0, 6))) if rng.random() < 0.5 else None
    return Scope(billing, sub)


def random_filters(rng: random.Random, rows: list[dict[str, str]]) -> dict[str, Any]:
    pick = rng.choice(rows)
    options = {
        "chargeCategory": pick["ChargeCategory"],
        "providerName": pick["ServiceProviderName"],
        "serviceCategory": pick["ServiceCategory"],
        "billingCurrency": pick["BillingCurrency"],
        "subAccountId": pick["SubAccountId"],
        "billingPeriodStart": pick["BillingPeriodStart"],
        "billingPeriodEnd": "2026-06-01T00:00:00Z",
    }
    return {k: options[k] for k in rng.sample(sorted(options), rng.randint(0, 3))}


async def walk(svc: Services, principal: Principal, args: dict[str, Any], size: int) -> tuple[list[Any], int]:
    ctx = tool_context(svc, REST_LIMITS, principal)
    rows: list[Any] = []
    token = None
    walk = PageWalk("listcostandusage")
    while True:
        page = await cost_and_usage.list_cost_and_usage(
            ListCostAndUsageInput.model_validate({**args, "pageSize": size, "pageToken": token}), ctx
        )
        assert page.appliedScope is not None and page.appliedScope.principal == principal.name
        rows.extend(page.data)
        token = walk.next(page.nextPageToken)
        if token is None:
            return rows, page.totalRecords


async def test_a_thousand_random_scopes_filters_and_page_sizes_never_leak_a_row(multi: Services) -> None:
    rng = random.Random(20261127)
    rows = expected_rows()
    accounts = sorted({r["BillingAccountId"] for r in rows})
    subs = sorted({r["SubAccountId"] for r in rows})
    seen_rows = Counter[str]()
    for case in range(CASES):
        scope = random_scope(rng, accounts, subs)
        args = random_filters(rng, rows)
        size = rng.choice([2, 7, 20, 64, 333, 1000])
        principal = Principal(f"p{case}", scope=scope)
        got, total = await walk(multi, principal, args, size)
        expected = [r for r in python_filter(rows, args) if in_scope(r, scope)]
        assert all(in_scope(r, scope) for r in got), (scope, args)
        assert total == len(got) == len(expected), (scope, args, size)
        assert decimal_sums(got) == decimal_sums(expected), (scope, args)
        seen_rows["empty" if not got else "rows"] += 1
    assert seen_rows["rows"] > CASES // 5 and seen_rows["empty"] > 0  # the cases are not all trivial


async def test_schema_statistics_count_only_the_rows_in_scope(multi: Services) -> None:
    principal = Principal("team-a", scope=Scope(frozenset({"100000000001"}), None))
    meta = await schema_metadata.get_schema_metadata(
        GetSchemaMetadataInput(), tool_context(multi, REST_LIMITS, principal)
    )
    expected = [r for r in expected_rows() if r["BillingAccountId"] == "100000000001"]
    assert meta.loaded.costAndUsageRows == len(expected) == sum(p["rows"] for p in meta.loaded.billingPeriods)
    assert meta.loaded.providers == sorted({r["ServiceProviderName"] for r in expected})
    assert meta.appliedScope is not None and meta.appliedScope.billingAccountIds == ["100000000001"]


def commitment_ids_of(account: str) -> set[str]:
    """Commitments referenced by the account's rows, computed from the CSV text."""
    ids = set()
    for row in expected_rows():
        if row["BillingAccountId"] != account:
            continue
        if row.get("ContractApplied"):
            ids |= {e["ContractCommitmentId"] for e in json.loads(row["ContractApplied"])["Elements"]}
        if row["ChargeCategory"] == "Purchase" and row.get("CommitmentDiscountId"):
            ids.add(row["CommitmentDiscountId"])
    return ids & {r["ContractCommitmentId"] for r in read_csv(AWS_CC)}


@pytest.mark.parametrize("account", ["100000000001", "100000000002", "BA-1"])
async def test_contract_commitments_follow_the_scope_through_their_linked_accounts(
    multi: Services, account: str
) -> None:
    principal = Principal("scoped", scope=Scope(frozenset({account}), None))
    page = await commitments.list_contract_commitments(
        ListContractCommitmentsInput(pageSize=1000), tool_context(multi, REST_LIMITS, principal)
    )
    assert {r["ContractCommitmentId"] for r in page.data} == commitment_ids_of(account)
    unscoped = await commitments.list_contract_commitments(
        ListContractCommitmentsInput(billingAccountId=account, pageSize=1000), tool_context(multi, REST_LIMITS)
    )
    assert {r["ContractCommitmentId"] for r in unscoped.data} == commitment_ids_of(account)


def token_file(tmp_path: Path, entries: list[dict[str, Any]]) -> Path:
    path = tmp_path / "tokens.json"
    path.write_text(json.dumps({"tokens": entries}))
    return path


def sha(token: str) -> str:
    import hashlib

    return hashlib.sha256(token.encode()).hexdigest()


async def test_a_tool_outside_the_principals_list_is_forbidden_on_rest_and_mcp(
    services: Services, tmp_path: Path
) -> None:
    tokens = TokenStore(
        ["admin-token"],
        token_file(tmp_path, [{"name": "reader", "sha256": sha("reader-token"), "tools": ["listcostandusage"]}]),
    )
    async with TestClient(TestServer(create_app(Pipeline(services), tokens))) as client:
        headers = {"Authorization": "Bearer reader-token"}
        assert (await client.get("/cost-and-usage", params={"pageSize": "1"}, headers=headers)).status == 200
        resp = await client.post("/cost-and-usage/export", json={}, headers=headers)
        body = await resp.json()
        assert resp.status == 403 and body["code"] == "forbidden" and "exportcostandusage" in body["message"]
        assert (
            await client.post("/cost-and-usage/export", json={}, headers={"X-API-Key": "admin-token"})
        ).status == 202
    server = FocusMCPServer(Pipeline(services), http_auth=tokens, resource_url="http://127.0.0.1:9090/mcp")
    reader = tokens.verify("reader-token")
    assert reader is not None

    from mcp.server.auth.middleware import auth_context
    from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser
    from mcp.server.auth.provider import AccessToken

    user = AuthenticatedUser(AccessToken(token="reader-token", client_id=reader.name, scopes=[]))
    reset = auth_context.auth_context_var.set(user)
    try:
        async with Client(server) as mcp_client:
            denied = await mcp_client.call_tool("exportcostandusage", {})
            allowed = await mcp_client.call_tool("listcostandusage", {"pageSize": 1})
    finally:
        auth_context.auth_context_var.reset(reset)
    assert denied.is_error and json.loads(denied.content[0].text)["code"] == "forbidden"  # type: ignore[union-attr]
    assert not allowed.is_error


async def test_a_scoped_token_over_rest_sees_only_its_accounts(services: Services, tmp_path: Path) -> None:
    tokens = TokenStore(
        [], token_file(tmp_path, [{"name": "b", "sha256": sha("tok-b"), "billingAccountIds": ["100000000002"]}])
    )
    async with TestClient(TestServer(create_app(Pipeline(services), tokens))) as client:
        resp = await client.get("/cost-and-usage", params={"pageSize": "1000"}, headers={"X-API-Key": "tok-b"})
        body = json.loads(await resp.text(), parse_float=Decimal)
    assert {r["BillingAccountId"] for r in body["data"]} == {"100000000002"}
    assert body["appliedScope"] == {"principal": "b", "billingAccountIds": ["100000000002"], "subAccountIds": None}


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("not json", "cannot read"),
        ('{"tokens": {}}', "expected"),
        ('{"tokens": [{"name": "a", "sha256": "abc"}]}', "64-hex"),
        ('{"tokens": [{"name": "a", "sha256": "' + "0" * 64 + '", "tools": ["nope"]}]}', "unknown tools"),
        ('{"tokens": [{"name": "a", "sha256": "' + "0" * 64 + '", "billingAccountIds": "x"}]}', "list of strings"),
    ],
)
def test_a_malformed_tokens_file_is_refused_with_what_is_wrong(tmp_path: Path, content: str, problem: str) -> None:
    path = tmp_path / "tokens.json"
    path.write_text(content)
    with pytest.raises(TokenFileError, match=problem):
        TokenStore([], path)
