"""summarizecostandusage and listcostandusagevalues equal what the test computes from the CSV text."""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from decimal import Decimal
from typing import Any

import pytest
from conftest import expected_rows, python_filter, tool_context
from mcp import Client
from pydantic import ValidationError
from serving import PageWalk

from server.mcp.server import FocusMCPServer
from server.pipeline import Pipeline
from server.services import Services
from tools import summaries
from tools.context import REST_LIMITS
from tools.summaries import ListCostAndUsageValuesInput, SummarizeCostAndUsageInput

MONTH = {"month": lambda r: r["ChargePeriodStart"][:7], "day": lambda r: r["ChargePeriodStart"][:10]}


def dimension(row: dict[str, str], dim: str) -> str | None:
    if dim in MONTH:
        return MONTH[dim](row)
    if dim.startswith("tag:"):
        tags = json.loads(row["Tags"]) if row.get("Tags") else {}
        value = tags.get(dim[4:])
        return None if value is None else str(value)
    return row.get(dim) or None


def expected_groups(rows: list[dict[str, str]], group_by: list[str], metric: str) -> dict[tuple[Any, ...], Decimal]:
    sums: dict[tuple[Any, ...], Decimal] = defaultdict(Decimal)
    for row in rows:
        key = (row["BillingCurrency"], *(dimension(row, d) for d in group_by))
        sums[key] += Decimal(row[metric]) if row.get(metric) else Decimal(0)
    return dict(sums)


async def summarize(svc: Services, **args: Any) -> Any:
    return await summaries.summarize_cost_and_usage(
        SummarizeCostAndUsageInput.model_validate(args), tool_context(svc, REST_LIMITS)
    )


CASES = [
    ({"groupBy": ["ServiceName"]}, {}),
    ({"groupBy": ["ServiceProviderName", "month"], "metrics": ["BilledCost"]}, {}),
    ({"groupBy": ["SubAccountId"], "metrics": ["ListCost"]}, {"providerName": "AWS"}),
    ({"groupBy": ["ChargeCategory", "RegionId"], "metrics": ["ContractedCost"]}, {"billingCurrency": "USD"}),
    ({"groupBy": ["tag:Environment"]}, {"serviceCategory": "Compute"}),
    ({"groupBy": ["day"]}, {"chargeCategory": "Usage"}),
    ({"groupBy": []}, {}),
]


@pytest.mark.parametrize(("shape", "filters"), CASES, ids=lambda v: json.dumps(v))
async def test_summaries_equal_decimal_sums_computed_from_the_csv(
    multi: Services, shape: dict[str, Any], filters: dict[str, str]
) -> None:
    metric = shape.get("metrics", ["EffectiveCost"])[0]
    answer = await summarize(multi, **shape, **filters)
    rows = python_filter(expected_rows(), filters)
    expected = expected_groups(rows, shape["groupBy"], metric)
    got = {
        (r.BillingCurrency, *(getattr(r, d, None) for d in shape["groupBy"])): getattr(r, metric) for r in answer.data
    }
    assert got == expected
    counts = Counter((r["BillingCurrency"], *(dimension(r, d) for d in shape["groupBy"])) for r in rows)
    assert {
        (r.BillingCurrency, *(getattr(r, d, None) for d in shape["groupBy"])): r.rowCount for r in answer.data
    } == counts
    totals = {t.BillingCurrency: getattr(t, metric) for t in answer.totals}
    assert totals == {c: sum((v for k, v in expected.items() if k[0] == c), Decimal(0)) for c in totals}


@pytest.mark.parametrize("top", [1, 2, 3, 10])
async def test_top_rows_plus_the_other_row_equal_the_total_per_currency(multi: Services, top: int) -> None:
    answer = await summarize(multi, groupBy=["ServiceName"], metrics=["EffectiveCost", "BilledCost"], top=top)
    for total in answer.totals:
        mine = [r for r in answer.data if r.BillingCurrency == total.BillingCurrency]
        assert len([r for r in mine if not r.other]) <= top
        assert sum(1 for r in mine if r.other) <= 1
        for metric in ("EffectiveCost", "BilledCost"):
            assert sum((getattr(r, metric) for r in mine), Decimal(0)) == getattr(total, metric)
        assert sum(r.rowCount for r in mine) == total.rowCount
        ranked = [r.EffectiveCost for r in mine if not r.other]
        assert ranked == sorted(ranked, reverse=True)


async def test_mixed_currency_data_never_yields_a_cross_currency_total(multi: Services) -> None:
    answer = await summarize(multi, groupBy=["ServiceCategory"], metrics=["EffectiveCost"], top=1)
    assert {t.BillingCurrency for t in answer.totals} == {"USD", "EUR"}
    assert all(r.BillingCurrency in {"USD", "EUR"} for r in answer.data)
    rows = expected_rows()
    for total in answer.totals:
        in_currency = [Decimal(r["EffectiveCost"]) for r in rows if r["BillingCurrency"] == total.BillingCurrency]
        assert total.EffectiveCost == sum(in_currency, Decimal(0))


async def test_savings_are_list_cost_minus_effective_cost(multi: Services) -> None:
    answer = await summarize(multi, groupBy=["ServiceProviderName"], savings=True, sort="Savings")
    for row in answer.data:
        assert row.Savings == row.ListCost - row.EffectiveCost  # type: ignore[attr-defined]
    assert "Savings" in answer.metrics


@pytest.mark.parametrize(
    ("args", "problem"),
    [
        ({"metrics": ["ConsumedQuantity"]}, "ConsumedUnit"),
        ({"metrics": ["PricingQuantity"], "groupBy": ["ServiceName"]}, "PricingUnit"),
        ({"groupBy": ["ResourceName"]}, "not supported"),
        ({"groupBy": ["day", "month"]}, "one time bucket"),
        ({"groupBy": ["a", "b", "c", "d"]}, "at most 3"),
        ({"metrics": ["ListUnitPrice"]}, "not supported"),
        ({"sort": "BilledCost"}, "sort"),
    ],
)
def test_a_bad_grouping_is_refused_with_what_to_do(args: dict[str, Any], problem: str) -> None:
    with pytest.raises(ValidationError, match=problem):
        SummarizeCostAndUsageInput.model_validate(args)


async def test_quantities_are_summed_per_unit(multi: Services) -> None:
    answer = await summarize(multi, groupBy=["ConsumedUnit"], metrics=["ConsumedQuantity"])
    rows = [r for r in expected_rows() if r.get("ConsumedQuantity")]
    expected: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    for r in rows:
        expected[(r["BillingCurrency"], r["ConsumedUnit"])] += Decimal(r["ConsumedQuantity"])
    got = {(r.BillingCurrency, r.ConsumedUnit): r.ConsumedQuantity for r in answer.data if r.ConsumedUnit}  # type: ignore[attr-defined]
    assert got == dict(expected)


async def test_values_of_service_name_equal_the_distinct_set_with_counts(multi: Services) -> None:
    ctx = tool_context(multi, REST_LIMITS)
    values: list[Any] = []
    token = None
    walk = PageWalk("listcostandusagevalues")
    while True:
        page = await summaries.list_cost_and_usage_values(
            ListCostAndUsageValuesInput(column="ServiceName", pageSize=4, pageToken=token), ctx
        )
        values += page.data
        token = walk.next(page.nextPageToken)
        if token is None:
            break
    expected = Counter(r["ServiceName"] for r in expected_rows())
    assert {v.value: v.rowCount for v in values} == dict(expected)
    assert [v.rowCount for v in values] == sorted((v.rowCount for v in values), reverse=True)
    assert page.totalRecords == len(expected)
    ec2 = next(v for v in values if v.value == "AmazonEC2")
    assert ec2.effectiveCost[0].EffectiveCost == sum(
        (Decimal(r["EffectiveCost"]) for r in expected_rows() if r["ServiceName"] == "AmazonEC2"), Decimal(0)
    )


async def test_value_search_is_case_insensitive_and_can_match_prefixes(multi: Services) -> None:
    ctx = tool_context(multi, REST_LIMITS)
    contains = await summaries.list_cost_and_usage_values(
        ListCostAndUsageValuesInput(column="ServiceName", search="ec2"), ctx
    )
    assert {v.value for v in contains.data} == {
        r["ServiceName"] for r in expected_rows() if "ec2" in r["ServiceName"].lower()
    }
    assert {"AmazonEC2", "Amazon EC2"} <= {v.value for v in contains.data}
    prefix = await summaries.list_cost_and_usage_values(
        ListCostAndUsageValuesInput(column="ServiceName", search="amazon", searchMode="prefix"), ctx
    )
    assert {v.value for v in prefix.data} == {
        r["ServiceName"] for r in expected_rows() if r["ServiceName"].lower().startswith("amazon")
    }
    tags = await summaries.list_cost_and_usage_values(ListCostAndUsageValuesInput(column="tag:Environment"), ctx)
    assert {v.value for v in tags.data} >= {"prod", "dev"}


async def test_the_mcp_summary_text_is_a_table_an_agent_can_quote(multi: Services) -> None:
    async with Client(FocusMCPServer(Pipeline(multi))) as client:
        result = await client.call_tool("summarizecostandusage", {"groupBy": ["ServiceProviderName"], "top": 2})
        prompts = await client.list_prompts()
        schema = await client.read_resource("focus://schema")
    text = result.content[0].text  # type: ignore[union-attr]
    assert text.startswith("| BillingCurrency | ServiceProviderName | EffectiveCost | rowCount |")
    assert "never added across currencies" in text
    assert {p.name for p in prompts.prompts} == {
        "monthly-cost-review",
        "commitment-utilization-check",
        "commitment-burndown-review",
    }
    assert json.loads(schema.contents[0].text)["focusVersion"] == "1.3"  # type: ignore[union-attr]


async def test_rest_takes_comma_separated_lists_and_answers_exact_numbers(multi: Services) -> None:
    from aiohttp.test_utils import TestClient, TestServer

    from server.auth import TokenStore
    from server.rest.app import create_app

    async with TestClient(TestServer(create_app(Pipeline(multi), TokenStore([])))) as client:
        resp = await client.get(
            "/cost-and-usage/summary",
            params={"groupBy": "ServiceProviderName,month", "metrics": "EffectiveCost,BilledCost", "top": "2"},
        )
        body = json.loads(await resp.text(), parse_float=Decimal)
        values = await (await client.get("/cost-and-usage/values", params={"column": "BillingCurrency"})).json()
        bad = await client.get("/cost-and-usage/summary", params={"metrics": "ConsumedQuantity"})
        problem = await bad.json()
    assert resp.status == 200 and body["groupBy"] == ["ServiceProviderName", "month"]
    assert all(isinstance(r["EffectiveCost"], (Decimal, int)) for r in body["data"])
    assert {v["value"] for v in values["data"]} == {"USD", "EUR"}
    assert bad.status == 400 and "ConsumedUnit" in problem["message"]


RANKINGS = [
    (("ServiceName",), ("EffectiveCost",), "EffectiveCost", True, 3),
    (("ServiceName", "month"), ("EffectiveCost", "BilledCost"), "BilledCost", False, 2),
    (("tag:Environment", "day"), ("EffectiveCost",), "EffectiveCost", True, None),
    (("RegionId",), ("ListCost", "EffectiveCost"), "Savings", True, 1),
    (("SubAccountId", "billingPeriod"), ("ContractedCost",), "ContractedCost", False, None),
    ((), ("EffectiveCost",), "EffectiveCost", True, 1),
    (("ResourceId",), ("EffectiveCost", "ContractedCost"), "ContractedCost", True, 3),
]


@pytest.mark.parametrize(("group_by", "metrics", "sort", "descending", "top"), RANKINGS, ids=str)
async def test_groups_ranked_in_python_and_by_duckdb_give_the_same_summary(
    multi: Services, group_by: tuple[str, ...], metrics: tuple[str, ...], sort: str, descending: bool, top: int | None
) -> None:
    from server.sources import summary_rank, summary_sql
    from tools.source import Scope, SummaryQuery

    query = SummaryQuery(group_by, metrics, sort == "Savings", top, sort, descending, max_groups=4)
    filters = SummarizeCostAndUsageInput.model_validate({}).cost_filters(Scope())
    assert multi.store is not None
    with multi.store.open_cursor() as cur:
        text, params = summary_sql.groups_query(filters, query)
        groups = cur.sql(text, params=params).to_arrow_table()
        by_engine = summary_rank.rank_by_engine(cur, groups, query)
    in_python = summary_rank.rank(list(zip(*(c.to_pylist() for c in groups.columns), strict=True)), query)
    assert in_python.rows == by_engine.rows
    assert in_python.totals == by_engine.totals
    assert in_python.group_count == by_engine.group_count > 0


async def test_a_summary_of_more_groups_than_python_ranks_is_ranked_by_duckdb_with_the_same_answer(
    multi: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    from server.sources import summary_rank

    shape = {"groupBy": ["ServiceName", "day"], "metrics": ["EffectiveCost", "BilledCost"], "top": 5}
    in_python = await summarize(multi, **shape)
    monkeypatch.setattr(summary_rank, "PYTHON_RANKED", 1)
    by_engine = await summarize(multi, **shape)
    assert by_engine.groupCount > 1
    assert by_engine.model_dump() == in_python.model_dump()


def test_an_other_row_sums_only_what_is_left_and_is_null_where_nothing_left_has_a_sum() -> None:
    from server.sources import summary_rank
    from tools.source import SummaryQuery

    query = SummaryQuery(("ServiceName",), ("EffectiveCost", "ContractedCost"), False, 1, "EffectiveCost", True, 10)
    groups = [
        ("USD", "b", Decimal("2.5"), None, 3),
        ("USD", "a", Decimal("9.25"), Decimal("1.00"), 1),
        ("USD", None, None, None, 2),
        ("EUR", "c", Decimal("1"), Decimal("4"), 5),
    ]
    summary = summary_rank.rank(groups, query)
    assert [(r["BillingCurrency"], r["ServiceName"], r["other"]) for r in summary.rows] == [
        ("EUR", "c", False),
        ("USD", "a", False),
        ("USD", None, True),
    ]
    other = summary.rows[-1]
    assert (other["EffectiveCost"], other["ContractedCost"], other["rowCount"]) == (Decimal("2.5"), None, 5)
    assert summary.totals[1] == {
        "BillingCurrency": "USD",
        "EffectiveCost": Decimal("11.75"),
        "ContractedCost": Decimal("1.00"),
        "rowCount": 6,
    }
    assert summary.group_count == 4


def test_savings_of_sums_with_38_digits_are_exact() -> None:
    row = {
        "ListCost": Decimal("12345678901234567890.123456789012345678"),
        "EffectiveCost": Decimal("0.000000000000000001"),
    }
    assert summaries._with_savings(row, True)["Savings"] == Decimal("12345678901234567890.123456789012345677")
