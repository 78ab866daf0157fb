"""The one reach below the MCP SDK's public API (server/mcp/sdk_shim.py) still does what it is for.

If an SDK upgrade renames the lookup or stops handing it to the low-level server, these fail loudly
instead of Mcp-Param header validation silently skipping focus-api's tools.
"""

from __future__ import annotations

import inspect

import pytest
from mcp.server import MCPServer
from mcp.shared.exceptions import MCPDeprecationWarning

from server.mcp.schemas import model_schema
from server.mcp.server import FocusMCPServer
from server.pipeline import Pipeline
from server.services import Services
from tools.registry import TOOLS


def test_the_sdk_still_has_the_lookup_the_shim_overrides() -> None:
    lookup = getattr(MCPServer, "_tool_input_schema", None)
    assert lookup is not None, "MCPServer._tool_input_schema is gone: rework server/mcp/sdk_shim.py"
    assert list(inspect.signature(lookup).parameters) == ["self", "name"]


async def test_the_low_level_server_resolves_every_registry_tool_through_the_shim(services: Services) -> None:
    server = FocusMCPServer(Pipeline(services))
    resolve = server._lowlevel_server.get_tool_input_schema
    assert resolve is not None, "the SDK no longer hands MCPServer's lookup to its low-level server"
    for spec in TOOLS:
        assert resolve(spec.name) == model_schema(spec.input_model)
    assert resolve("nosuchtool") is None


async def test_a_client_of_the_2025_wire_can_set_the_log_level_and_the_capability_is_declared(
    services: Services,
) -> None:
    from mcp.client import Client

    server = FocusMCPServer(Pipeline(services))
    async with Client(server, mode="legacy") as client:  # type: ignore[arg-type]
        assert client.server_capabilities is not None and client.server_capabilities.logging is not None
        # The SDK client warns that logging is deprecated on the 2026-07-28 wire; legacy clients still send it.
        with pytest.warns(MCPDeprecationWarning):
            await client.set_logging_level("warning")
    assert server.client_log_level == "warning"
