"""Every error of the one tree reaches REST and MCP as the same code, message and details.

The source is made to raise each error class in turn (the only way to reach every class on both
transports, upstream errors included); everything between it and the wire is the real server.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from mcp.client import Client

from server.auth import TokenStore
from server.mcp.server import FocusMCPServer
from server.pipeline import Pipeline
from server.rest.app import create_app
from server.services import Services
from server.settings import Settings
from tools import errors
from tools.errors import FocusApiError


def error_classes() -> list[type[FocusApiError]]:
    found = []
    pending: list[type[FocusApiError]] = [FocusApiError]
    while pending:
        cls = pending.pop()
        found.append(cls)
        pending.extend(cls.__subclasses__())
    return sorted(found, key=lambda c: c.__name__)


class Raising:
    """A source whose every query raises ``error``."""

    def __init__(self, error: FocusApiError) -> None:
        self.error = error

    def __getattr__(self, name: str) -> Any:
        async def fail(*args: Any, **kwargs: Any) -> Any:
            raise self.error

        return fail


def test_every_error_code_is_one_of_the_documented_codes() -> None:
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    assert all(f"`{c.code}`" in readme for c in error_classes()), [
        c.code for c in error_classes() if f"`{c.code}`" not in readme
    ]


@pytest.mark.parametrize("cls", error_classes(), ids=lambda c: c.__name__)
async def test_an_error_renders_the_same_on_rest_and_mcp(cls: type[FocusApiError], services: Services) -> None:
    error = cls(f"{cls.__name__} happened; here is how to fix it", {"field": "providerName", "n": 1})
    broken = replace(services, source=Raising(error))  # type: ignore[arg-type]
    pipeline = Pipeline(broken)
    async with TestClient(TestServer(create_app(pipeline, TokenStore([])))) as rest:
        reply = await rest.get("/cost-and-usage")
        rest_body = await reply.json()
    async with Client(FocusMCPServer(pipeline)) as mcp:
        result = await mcp.call_tool("listcostandusage", {})
    assert result.is_error
    mcp_body = json.loads(result.content[0].text)  # type: ignore[union-attr]
    assert reply.status == cls.status
    assert rest_body == mcp_body == error.body()
    if cls is errors.RateLimited:
        assert reply.headers["Retry-After"] == str(error.retry_after)


async def test_an_unexpected_exception_is_internal_error_on_both_without_its_text(services: Services) -> None:
    class Broken(Raising):
        def __getattr__(self, name: str) -> Any:
            async def fail(*args: Any, **kwargs: Any) -> Any:
                raise RuntimeError("SELECT secret FROM somewhere /var/lib/focus")

            return fail

    pipeline = Pipeline(replace(services, source=Broken(errors.InternalError("unused"))))  # type: ignore[arg-type]
    async with TestClient(TestServer(create_app(pipeline, TokenStore([])))) as rest:
        reply = await rest.get("/cost-and-usage")
        rest_body = await reply.json()
    async with Client(FocusMCPServer(pipeline)) as mcp:
        result = await mcp.call_tool("listcostandusage", {})
    mcp_body = json.loads(result.content[0].text)  # type: ignore[union-attr]
    assert reply.status == 500 and rest_body == mcp_body
    assert rest_body["code"] == "internal_error" and "SELECT" not in json.dumps(rest_body)


@pytest.mark.parametrize("tokens", [[], ["a-token"]], ids=["no-tokens", "tokens"])
async def test_the_rate_limit_applies_alike_on_rest_and_mcp(services: Services, tokens: list[str]) -> None:
    settings: Settings = services.settings.model_copy(update={"rate_limit_per_second": 0.001, "rate_limit_burst": 1})
    for transport in ("rest", "mcp"):
        limited = Pipeline(Services(settings, services.store, services.source, services.exports, services.tokens))
        if transport == "rest":
            headers = {"Authorization": "Bearer a-token"} if tokens else {}
            async with TestClient(TestServer(create_app(limited, TokenStore(tokens)))) as rest:
                codes = [(await rest.get("/cost-and-usage?pageSize=1", headers=headers)).status for _ in range(3)]
            assert codes == [200, 429, 429], codes
        else:
            async with Client(FocusMCPServer(limited)) as mcp:
                results = [await mcp.call_tool("listcostandusage", {"pageSize": 1}) for _ in range(3)]
            outcome = [json.loads(r.content[0].text)["code"] if r.is_error else "ok" for r in results]  # type: ignore[union-attr]
            assert outcome == ["ok", "rate_limited", "rate_limited"], outcome
