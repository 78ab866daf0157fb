"""The places focus-api reaches into the MCP SDK below its public API, and why.

1. ``MCPServer`` hands its low-level server ``get_tool_input_schema=self._tool_input_schema`` (used to
validate ``Mcp-Param-*`` headers of a ``tools/call`` against the tool's input schema). It looks tools up
in the SDK's own tool manager, where focus-api's tools are not: they are served from the registry by
overriding the public ``list_tools``/``call_tool``. The SDK has no public hook for that lookup, so this
mixin overrides it.
2. ``logging/setLevel``: clients of the 2025-11-25 wire may set the server's log level, and a server that
declares the ``logging`` capability must answer it. ``MCPServer`` offers no way to register it (the
low-level ``Server`` does, ``add_request_handler``, which also makes the capability declared). focus-api
sends no log notifications to clients (its log is its own stderr), so the level is acknowledged and kept.

3. RFC 9728 metadata: the SDK builds it with ``AuthSettings.issuer_url`` as the one authorization server
(its model requires one); focus-api has none unless ``FOCUS_API_AUTHORIZATION_SERVERS`` names some, so the
route the SDK adds is replaced by one serving focus-api's own document.

4. Whether a request asked for progress: on the wire, its ``_meta.progressToken`` (read with the SDK's own
``progress_token_from_params``); the in-process client (``Client(server)``) passes its progress callback
beside the request instead, which only the request's dispatch context knows (``_on_progress``, inside
the modern era's wrapper ``_inner``). Without
either, ``Context.report_progress`` is a no-op, but focus-api would still watch every query for nothing.

``tests/test_mcp_sdk_shim.py`` (1, 2), ``tests/test_hardening.py`` (3) and ``tests/test_export_wait.py`` (4)
fail loudly if the SDK changes.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import structlog
from mcp import types
from mcp.server import MCPServer
from mcp.server.auth.routes import build_resource_metadata_url
from mcp.shared.jsonrpc_dispatcher import progress_token_from_params
from pydantic import AnyHttpUrl
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

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


# RFC 9728 metadata. The SDK builds it from ``AuthSettings.issuer_url`` as the one authorization server,
# and its model requires at least one; focus-api has none unless FOCUS_API_AUTHORIZATION_SERVERS names
# some (its tokens are static), so naming any URL there would send clients to a server that is not one
# (the REST port did: its /.well-known/oauth-authorization-server is a 401). The SDK has no option to leave
# the list out, so the route it adds is replaced by one serving focus-api's document.
# ``tests/test_hardening.py::test_the_metadata_shim_fails_loudly_if_the_sdk_route_moves`` guards this.


def resource_metadata(resource_url: str, authorization_servers: list[str]) -> dict[str, Any]:
    document: dict[str, Any] = {
        "resource": resource_url,
        "bearer_methods_supported": ["header"],
        "resource_name": "focus-api",
    }
    if authorization_servers:
        document["authorization_servers"] = authorization_servers
    return document


def replace_resource_metadata(app: Starlette, resource_url: str, authorization_servers: list[str]) -> None:
    """Serve focus-api's RFC 9728 document at the path where the SDK serves its own."""
    path = urlsplit(str(build_resource_metadata_url(AnyHttpUrl(resource_url)))).path
    body = resource_metadata(resource_url, authorization_servers)

    async def metadata(request: Request) -> Response:
        headers = {"Cache-Control": "public, max-age=3600", "Access-Control-Allow-Origin": "*"}
        if request.method == "OPTIONS":
            return Response(status_code=204, headers={**headers, "Access-Control-Allow-Methods": "GET, OPTIONS"})
        return JSONResponse(body, headers=headers)

    routes = app.router.routes
    for i, route in enumerate(routes):
        if isinstance(route, Route) and route.path == path:
            routes[i] = Route(path, endpoint=metadata, methods=["GET", "OPTIONS"])
            return
    raise RuntimeError(
        f"the MCP SDK no longer serves RFC 9728 metadata at {path}; update server/mcp/sdk_shim.py "
        "(replace_resource_metadata) for this SDK version"
    )


def progress_requested(params: Any, session: Any) -> bool:
    """4. The request (its raw ``params``, the request-scoped ``session``) asked for progress notifications."""
    if progress_token_from_params(params) is not None:
        return True
    outbound = getattr(session, "_request_outbound", None)
    outbound = getattr(outbound, "_inner", outbound)  # the modern era wraps the dispatch context
    return getattr(outbound, "_on_progress", None) is not None
