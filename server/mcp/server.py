"""The MCP exposure: an ``MCPServer`` whose tools are the registry's specs, for stdio and streamable HTTP.

``list_tools`` is served straight from ``tools.registry`` (input schema from the input model, output schema
from the output model, annotations from the hints) and ``call_tool`` hands every call to the one pipeline
(``server/pipeline.py``), so nothing about a tool is written here. Results and errors are rendered by
``render.py``. Resources (the schema metadata, export files) obey the same tool permissions as the tools.
"""

from __future__ import annotations

from typing import Any

import anyio
from mcp.server import MCPServer
from mcp.server.auth.middleware.auth_context import get_access_token
from mcp.server.auth.settings import AuthSettings
from mcp.server.mcpserver.context import Context
from mcp.server.mcpserver.exceptions import ResourceError
from mcp.types import CallToolResult, ToolAnnotations
from mcp.types import Tool as MCPTool
from starlette.applications import Starlette

from server.auth import LOCAL, McpTokenVerifier, Principal, TokenStore
from server.mcp.prompts import PROMPTS
from server.mcp.receipt import receipt
from server.mcp.render import EXPORT_URI, error_result, tool_result
from server.mcp.schemas import SCHEMA_URI, model_schema, output_schema
from server.mcp.sdk_shim import RegistryInputSchemas, accept_log_level, progress_requested, replace_resource_metadata
from server.pipeline import Caller, Pipeline
from tools import __version__, progress, wire
from tools.context import MCP_LIMITS
from tools.errors import FocusApiError, Unauthorized
from tools.registry import TOOLS

INSTRUCTIONS = (
    "focus-api serves FinOps FOCUS 1.3 billing data. Start with getschemametadata to see which providers, "
    "billing periods and currencies are loaded, then summarizecostandusage for totals or listcostandusage for "
    "rows. Amounts are exact decimals in each row's BillingCurrency: never add different currencies. Dates are "
    "UTC; *Start inclusive, *End exclusive. For large result sets use exportcostandusage and poll "
    "getcostandusageexportstatus. To check invoices against the cost data (FOCUS 1.4), use reconcileinvoices; "
    "listinvoicedetails and listbillingperiods list the invoice lines and the billing periods' Open/Closed status."
    "UTC; *Start inclusive, *End exclusive. For commitments: summarizecommitmentdiscounts (utilization, unused "
    "cost and hours, savings) and summarizecontractcommitments (burn-down, projected shortfall). For large "
    "result sets use exportcostandusage, then getcostandusageexportstatus with waitSeconds (up to 60) instead "
    "of polling in a loop."
)
MAX_RESOURCE_BYTES = 16 * 1024 * 1024


def _reporter(context: Context[Any, Any] | None) -> progress.Reporter | None:
    """Progress notifications for this request, when it carries a progressToken (none otherwise: no query
    is then watched for progress at all)."""
    if context is None:
        return None
    request = context.request_context
    if not progress_requested(request.params, request.session):
        return None

    async def report(done: float, total: float | None, message: str | None) -> None:
        await context.report_progress(done, total, message)

    return report


class FocusMCPServer(RegistryInputSchemas, MCPServer[Any]):
    """MCPServer serving the registry's tools through the call pipeline."""

    def __init__(
        self,
        pipeline: Pipeline,
        *,
        http_auth: TokenStore | None = None,
        resource_url: str = "",
        transport: str = "mcp-stdio",
    ) -> None:
        settings = pipeline.services.settings
        auth_kwargs: dict[str, Any] = {}
        self.resource_url = resource_url
        self.authorization_servers = settings.authorization_server_list()
        if http_auth is not None and http_auth.enabled:
            auth_kwargs = {
                "token_verifier": McpTokenVerifier(http_auth, resource_url),
                "auth": AuthSettings(
                    # Only published through replace_resource_metadata (sdk_shim.py), which names the
                    # configured authorization servers or none; the SDK requires some URL here.
                    issuer_url=(self.authorization_servers or [resource_url])[0],
                    resource_server_url=resource_url,
                    required_scopes=[],
                    validate_token_resource=True,
                ),
            }
        super().__init__("focus-api", version=__version__, instructions=INSTRUCTIONS, **auth_kwargs)
        self.pipeline = pipeline
        self.http_auth = http_auth
        self.transport = transport
        self.download_base = settings.base_url()
        self.resource(EXPORT_URI, name="export-file", description="A completed export file.")(self._export_file)
        self.resource(
            SCHEMA_URI,
            name="schema-metadata",
            description="FOCUS 1.3 schema metadata and what is loaded (the getschemametadata answer).",
            mime_type="application/json",
        )(self._schema_resource)
        for prompt in PROMPTS:
            self.add_prompt(prompt)
        self.client_log_level: str | None = None
        accept_log_level(self)

    def streamable_http_app(self, **kwargs: Any) -> Starlette:
        app = super().streamable_http_app(**kwargs)
        if self.http_auth is not None and self.http_auth.enabled:
            replace_resource_metadata(app, self.resource_url, self.authorization_servers)
        return app

    async def list_tools(self) -> list[MCPTool]:
        return [
            MCPTool(
                name=spec.name,
                title=spec.title,
                description=spec.description,
                input_schema=model_schema(spec.input_model),
                output_schema=output_schema(spec.output_model),
                annotations=ToolAnnotations(
                    title=spec.title,
                    read_only_hint=spec.hints.read_only,
                    destructive_hint=spec.hints.destructive,
                    idempotent_hint=spec.hints.idempotent,
                    open_world_hint=spec.hints.open_world,
                ),
            )
            for spec in TOOLS
        ]

    def _principal(self) -> Principal:
        """The HTTP caller's principal, found by the credential it presented (never by a display name);
        stdio and in-process callers are the local user."""
        token = get_access_token()
        if token is None or self.http_auth is None or not self.http_auth.enabled:
            return LOCAL
        principal = self.http_auth.verify(token.token)
        if principal is None:  # verified a moment ago; only a reconfiguration could get here
            raise Unauthorized("this token is no longer configured")
        return principal

    def _caller(self) -> Caller:
        return Caller(self._principal(), self.transport, MCP_LIMITS, self.download_base)

    async def call_tool(
        self, name: str, arguments: dict[str, Any], context: Context[Any, Any] | None = None
    ) -> CallToolResult:
        try:
            with progress.reporting(_reporter(context)):
                async with self.pipeline.call(name, arguments or {}, self._caller()) as call:
                    output = await call.run()
        except FocusApiError as exc:
            return error_result(exc)
        every_column = "columns" in call.spec.input_model.model_fields and not getattr(call.args, "columns", None)
        return tool_result(output, receipt(call, output, self.download_base), every_column=every_column)

    async def _schema_resource(self) -> str:
        try:
            output = await self.pipeline.invoke("getschemametadata", {}, self._caller())
        except FocusApiError as exc:
            raise ResourceError(exc.message) from exc
        return wire.dumps(output.model_dump(mode="python")).decode()

    async def _export_file(self, jobId: str, name: str) -> bytes:
        exports = self.pipeline.services.exports
        try:
            principal = self._principal()
            principal.require("getcostandusageexportstatus")
            async with exports.open_download(jobId, name, principal.name) as download:
                match = download.file
                if match.bytes > MAX_RESOURCE_BYTES:
                    raise ResourceError(
                        f"{name} is {match.bytes} bytes, too large to read over MCP; download it over HTTP "
                        "(getcostandusageexportstatus gives its downloadUrl)"
                    )
                if download.path is not None:
                    return await anyio.Path(download.path).read_bytes()
                assert download.chunks is not None
                return b"".join([chunk async for chunk in download.chunks])
        except FocusApiError as exc:
            raise ResourceError(exc.message) from exc
