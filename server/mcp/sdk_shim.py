"""The one place focus-api reaches into the MCP SDK below its public API, and why.

``MCPServer`` hands its low-level server ``get_tool_input_schema=self._tool_input_schema`` (used to
validate ``Mcp-Param-*`` headers of a ``tools/call`` against the tool's input schema). It looks tools up
in the SDK's own tool manager, where focus-api's tools are not: they are served from the registry by
overriding the public ``list_tools``/``call_tool``. The SDK has no public hook for that lookup, so this
mixin overrides it. ``tests/test_mcp_sdk_shim.py`` fails loudly if the SDK stops calling it.
"""

from __future__ import annotations

from typing import Any

from server.mcp.schemas import model_schema
from tools.registry import BY_NAME


class RegistryInputSchemas:
    """Answer the SDK's input-schema lookup from the registry."""

    def _tool_input_schema(self, name: str) -> dict[str, Any] | None:
        spec = BY_NAME.get(name)
        return None if spec is None else model_schema(spec.input_model)
