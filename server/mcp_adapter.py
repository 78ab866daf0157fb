"""The MCP exposure: an ``MCPServer`` whose tools are the registry's specs, for stdio and streamable HTTP.

``list_tools``/``call_tool`` are served straight from ``tools.registry`` (input schema from the input
model, output schema from the output model, annotations from the hints), so nothing about a tool is
written here. Results carry structured content (decimals as exact strings: MCP clients parse JSON
numbers as binary floats) plus a short text summary; errors are ``isError`` results whose text is the
same ``{code, message, details}`` body REST sends.
"""

from __future__ import annotations

import json
from decimal import Decimal
from functools import cache
from typing import Any

import structlog
from mcp.server import MCPServer
from mcp.server.auth.middleware.auth_context import get_access_token
from mcp.server.auth.settings import AuthSettings
from mcp.server.mcpserver.context import Context
from mcp.server.mcpserver.exceptions import ResourceError
from mcp.types import CallToolResult, ResourceLink, TextContent, ToolAnnotations
from mcp.types import Tool as MCPTool
from pydantic import BaseModel, ValidationError

from server.auth import LOCAL, McpTokenVerifier, Principal, TokenStore
from server.mcp_prompts import PROMPTS
from server.services import Services
from tools import wire
from tools.context import MCP_LIMITS
from tools.errors import FocusApiError, Forbidden, InternalError, UnknownTool, from_validation_errors
from tools.handlers import get_schema_metadata
from tools.models import ExportJob, GetSchemaMetadataInput
from tools.registry import BY_NAME, TOOLS, ToolSpec
from tools.summary_models import ListCostAndUsageValuesOutput, SummarizeCostAndUsageOutput

INSTRUCTIONS = (
    "focus-api serves FinOps FOCUS 1.3 billing data. Start with getschemametadata to see which providers, "
    "billing periods and currencies are loaded, then listcostandusage with filters. Amounts are exact decimals "
    "in each row's BillingCurrency: never add different currencies. Dates are UTC; *Start inclusive, *End "
    "exclusive. For large result sets use exportcostandusage and poll getcostandusageexportstatus."
)
log = structlog.get_logger(__name__)
EXPORT_URI = "focus-export://{jobId}/{name}"
SCHEMA_URI = "focus://schema"
MAX_RESOURCE_BYTES = 16 * 1024 * 1024


@cache
def _schema(model: type[BaseModel]) -> dict[str, Any]:
    return model.model_json_schema(by_alias=True)


@cache
def _output_schema(model: type[BaseModel]) -> dict[str, Any]:
    """The output model's JSON Schema in the form clients validate fastest, with the same constraints.

    Clients check every result against it (the Python SDK with ``jsonschema``, one sub-validator per
    property per row): with the plain pydantic form (a typed schema for each of the 66 columns, ``anyOf``
    per column) that took longer than the server took to answer a 100-row page. So a page's rows are
    open objects here, pointing to getschemametadata and the schema resource for column types, which
    made that check about 100x cheaper; elsewhere ``$ref``s are inlined, ``anyOf: [{type: a}, {type: b}]``
    becomes ``type: [a, b]``, and titles and ``default: null`` go (the same constraints, about 3x cheaper).
    """
    schema = _schema(model)
    defs = schema.get("$defs", {})
    compact = _compact(schema, defs, ())
    if defs and "$ref" in json.dumps(compact):  # a recursive model keeps the definitions its $refs point into
        compact["$defs"] = {name: _compact(d, defs, (name,)) for name, d in defs.items()}
    return compact


_ROW_MODELS = {"CostAndUsageRecord": "Cost and Usage", "ContractCommitmentRecord": "Contract Commitment"}


def _row_schema(dataset: str) -> dict[str, Any]:
    return {
        "type": "object",
        "description": f"One FOCUS 1.3 {dataset} row: a key per column (FOCUS column ids, plus x_ custom "
        "columns); exact decimals as strings, date/times UTC YYYY-MM-DDTHH:MM:SSZ, JSON columns as objects. "
        f"Column types and meanings: getschemametadata or the {SCHEMA_URI} resource.",
    }


def _compact(node: dict[str, Any], defs: dict[str, Any], inlining: tuple[str, ...]) -> dict[str, Any]:
    ref = node.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/$defs/") and len(node) == 1:
        name = ref.removeprefix("#/$defs/")
        if name in _ROW_MODELS:
            return _row_schema(_ROW_MODELS[name])
        if name in defs and name not in inlining:
            return _compact(defs[name], defs, (*inlining, name))
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in ("title", "$defs") or (key == "default" and value is None):
            continue
        if key == "properties" and isinstance(value, dict):
            out[key] = {name: _compact(v, defs, inlining) for name, v in value.items()}
        elif key in ("items", "additionalProperties") and isinstance(value, dict):
            out[key] = _compact(value, defs, inlining)
        elif key in ("anyOf", "oneOf", "allOf") and isinstance(value, list):
            out[key] = [_compact(v, defs, inlining) if isinstance(v, dict) else v for v in value]
        else:
            out[key] = value
    options = out.get("anyOf")
    if isinstance(options, list) and options and all(_bare_type(o) for o in options):
        del out["anyOf"]
        out["type"] = [o["type"] for o in options]
    return out


def _bare_type(option: Any) -> bool:
    """``{"type": "x"}`` (or an object allowing any properties, which is what ``type: object`` means)."""
    if not isinstance(option, dict) or not isinstance(option.get("type"), str):
        return False
    return set(option) <= {"type", "additionalProperties"} and option.get("additionalProperties", True) is True


def _table(output: SummarizeCostAndUsageOutput, limit: int = 40) -> str:
    """The summary as a compact Markdown table an agent can quote."""
    columns = ["BillingCurrency", *output.groupBy, *output.metrics, "rowCount"]
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in output.data[:limit]:
        values = row.model_dump()
        cells = ["Other" if values.get("other") and c in output.groupBy else _cell(values.get(c)) for c in columns]
        lines.append("| " + " | ".join(cells) + " |")
    more = f"\n({len(output.data) - limit} more groups in structured content.)" if len(output.data) > limit else ""
    totals = "; ".join(
        f"{t.BillingCurrency}: " + ", ".join(f"{m} {_cell(t.model_dump().get(m))}" for m in output.metrics)
        for t in output.totals
    )
    cut = f"\nCut: {output.truncated.reason}; {output.truncated.howToGetTheRest}." if output.truncated else ""
    return "\n".join(lines) + more + f"\nTotals per currency (never added across currencies): {totals}." + cut


def _cell(value: Any) -> str:
    if isinstance(value, Decimal):
        return wire.decimal_text(value)
    return "" if value is None else str(value)


def summary(spec: ToolSpec, output: BaseModel) -> str:
    """A short text a model can quote; the full answer is in structured content."""
    if isinstance(output, SummarizeCostAndUsageOutput):
        return _table(output)
    if isinstance(output, ListCostAndUsageValuesOutput):
        shown = ", ".join(f"{v.value} ({v.rowCount} rows)" for v in output.data[:50])
        more = "; more: pass nextPageToken" if output.nextPageToken else ""
        return f"{output.totalRecords} values of {output.column}: {shown}{more}."
    data = getattr(output, "data", None)
    if isinstance(data, list):
        more = "more pages: pass nextPageToken" if getattr(output, "nextPageToken", None) else "last page"
        cut = " (cut by the size budget; see truncated)" if getattr(output, "truncated", None) else ""
        return f"{len(data)} of {getattr(output, 'totalRecords', '?')} records{cut}; {more}."
    if isinstance(output, ExportJob):
        text = f"Export {output.jobId}: {output.status}"
        if output.status == "Complete":
            text += f", {output.recordCount} records, {output.bytes} bytes, sha256 {output.sha256}"
        if output.error:
            text += f" ({output.error})"
        return text + "."
    loaded = getattr(output, "loaded", None)
    if loaded is not None:
        return (
            f"FOCUS {getattr(output, 'focusVersion', '1.3')}: {loaded.costAndUsageRows} cost and usage rows, "
            f"{loaded.contractCommitmentRows} contract commitments; providers {', '.join(loaded.providers)}; "
            f"currencies {', '.join(loaded.currencies)}{'; demo data' if loaded.demo else ''}."
        )
    return "Done."


def error_result(error: FocusApiError) -> CallToolResult:
    return CallToolResult(content=[TextContent(type="text", text=json.dumps(error.body()))], is_error=True)


class FocusMCPServer(MCPServer[Any]):
    """MCPServer serving the registry's tools over the project's services."""

    def __init__(self, services: Services, *, http_auth: TokenStore | None = None, resource_url: str = "") -> None:
        auth_kwargs: dict[str, Any] = {}
        if http_auth is not None and http_auth.enabled:
            auth_kwargs = {
                "token_verifier": McpTokenVerifier(http_auth, resource_url),
                "auth": AuthSettings(
                    issuer_url=services.settings.base_url(),
                    resource_server_url=resource_url,
                    required_scopes=[],
                    validate_token_resource=True,
                ),
            }
        super().__init__(
            "focus-api",
            version=services.context(MCP_LIMITS).generator_version,
            instructions=INSTRUCTIONS,
            **auth_kwargs,
        )
        self.services = services
        self.http_auth = http_auth
        self.resource(EXPORT_URI, name="export-file", description="A completed export file.")(self._export_file)
        self.resource(
            SCHEMA_URI,
            name="schema-metadata",
            description="FOCUS 1.3 schema metadata and what is loaded (the getschemametadata answer).",
            mime_type="application/json",
        )(self._schema_resource)
        for prompt in PROMPTS:
            self.add_prompt(prompt)

    async def list_tools(self) -> list[MCPTool]:
        return [
            MCPTool(
                name=spec.name,
                title=spec.title,
                description=spec.description,
                input_schema=_schema(spec.input_model),
                output_schema=_output_schema(spec.output_model),
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

    def _tool_input_schema(self, name: str) -> dict[str, Any] | None:
        spec = BY_NAME.get(name)
        return None if spec is None else _schema(spec.input_model)

    def _principal(self) -> Principal:
        """The HTTP caller's principal; stdio and in-process callers are the local user."""
        token = get_access_token()
        if token is None or self.http_auth is None:
            return LOCAL
        principal = self.http_auth.by_name(token.client_id)
        if principal is None:  # verified a moment ago; only a reconfiguration could get here
            raise Forbidden("this token is no longer configured")
        return principal

    async def call_tool(
        self, name: str, arguments: dict[str, Any], context: Context[Any, Any] | None = None
    ) -> CallToolResult:
        spec = BY_NAME.get(name)
        if spec is None:
            known = ", ".join(BY_NAME)
            return error_result(UnknownTool(f"unknown tool {name!r}; the tools are {known}", {"tool": name}))
        try:
            principal = self._principal()
            self.services.limiter.check(principal.name)
            principal.require(spec.name)
            args = spec.input_model.model_validate(arguments or {})
            output = await spec.handler(args, self.services.context(MCP_LIMITS, principal))
        except ValidationError as exc:
            return error_result(from_validation_errors(exc.errors()))  # type: ignore[arg-type]
        except FocusApiError as exc:
            return error_result(exc)
        except Exception:
            log.exception("tool failed", tool=name)
            return error_result(InternalError("internal error; the server log has the details"))
        content: list[Any] = [TextContent(type="text", text=summary(spec, output))]
        if isinstance(output, ExportJob):
            content += [
                ResourceLink(
                    type="resource_link",
                    uri=EXPORT_URI.replace("{jobId}", output.jobId).replace("{name}", f.name),
                    name=f.name,
                    mime_type=f.mediaType,
                    size=f.bytes,
                    description=f"{f.dataset} export, {f.recordCount} records; over HTTP: {f.downloadUrl}",
                )
                for f in output.files
            ]
        structured = wire.with_decimal_strings(output.model_dump(mode="python", warnings=False, exclude_none=False))
        return CallToolResult(content=content, structured_content=structured)

    async def _schema_resource(self) -> str:
        output = await get_schema_metadata(
            GetSchemaMetadataInput(), self.services.context(MCP_LIMITS, self._principal())
        )
        return wire.dumps(output.model_dump(mode="python")).decode()

    async def _export_file(self, jobId: str, name: str) -> bytes:
        try:
            principal = self._principal()
            principal.require("getcostandusageexportstatus")
            async with self.services.exports.open_download(jobId, name, principal.name) as download:
                match = download.file
                if match.bytes > MAX_RESOURCE_BYTES:
                    raise ResourceError(
                        f"{name} is {match.bytes} bytes, too large to read over MCP; download {match.downloadUrl}"
                    )
                if download.path is not None:
                    return download.path.read_bytes()
                assert download.chunks is not None
                return b"".join([chunk async for chunk in download.chunks])
        except FocusApiError as exc:
            raise ResourceError(exc.message) from exc
