"""The one place focus-api reaches into the MCP SDK below its public API, and why.

1. ``MCPServer`` hands its low-level server ``get_tool_input_schema=self._tool_input_schema`` (used to
validate ``Mcp-Param-*`` headers of a ``tools/call`` against the tool's input schema). It looks tools up
in the SDK's own tool manager, where focus-api's tools are not: they are served from the registry by
overriding the public ``list_tools``/``call_tool``. The SDK has no public hook for that lookup, so this
mixin overrides it.
2. ``logging/setLevel``: clients of the 2025-11-25 wire may set the server's log level, and a server that
declares the ``logging`` capability must answer it. ``MCPServer`` offers no way to register it (the
low-level ``Server`` does, ``add_request_handler``, which also makes the capability declared). focus-api
sends no log notifications to clients (its log is its own stderr), so the level is acknowledged and kept.

``tests/test_mcp_sdk_shim.py`` fails loudly if the SDK stops honouring either.
"""

from __future__ import annotations

from typing import Any

import structlog
from mcp import types
from mcp.server import MCPServer

from server.mcp.schemas import model_schema
from tools.registry import BY_NAME


class RegistryInputSchemas:
    """Answer the SDK's input-schema lookup from the registry."""

    def _tool_input_schema(self, name: str) -> dict[str, Any] | None:
        spec = BY_NAME.get(name)
        return None if spec is None else model_schema(spec.input_model)


log = structlog.get_logger(__name__)


def accept_log_level(server: MCPServer[Any]) -> None:
    """Answer ``logging/setLevel`` (declaring the ``logging`` capability); the level asked for is kept on
    the server as ``client_log_level``."""

    async def set_level(ctx: Any, params: types.SetLevelRequestParams) -> types.EmptyResult:
        server.client_log_level = params.level  # type: ignore[attr-defined]
        log.info("client set the MCP log level", level=params.level)
        return types.EmptyResult()

    server._lowlevel_server.add_request_handler("logging/setLevel", types.SetLevelRequestParams, set_level)
