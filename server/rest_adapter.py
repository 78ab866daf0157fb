"""The REST exposure (aiohttp, :8080): one route per registry spec, plus downloads, OpenAPI and health.

Query parameters (GET) or the JSON body (POST) plus path parameters are validated by the tool's input
model; the handler is the same one MCP calls. Errors from the one tree become ``status`` plus
``{code, message, details}``. ``Accept: application/x-ndjson`` on the list route streams every page.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import structlog
from aiohttp import web
from pydantic import BaseModel, ValidationError

from server.auth import LOCAL, Principal, TokenStore, bearer
from server.openapi import openapi_document
from server.response_cache import ResponseCache
from server.services import Services
from tools import handlers, wire
from tools.context import REST_LIMITS
from tools.errors import (
    FocusApiError,
    InternalError,
    InvalidArgument,
    MethodNotAllowed,
    NotFound,
    PayloadTooLarge,
    RateLimited,
    Unauthorized,
    from_validation_errors,
)
from tools.models import ExportCostAndUsageInput, ExportJob, ListCostAndUsageInput, ListCostAndUsageOutput
from tools.registry import TOOLS, ToolSpec

log = structlog.get_logger(__name__)


class StreamCounter:
    """NDJSON streams in flight (reported by /healthz, so a test can see a dropped client freed its walk)."""

    active: int = 0
    rows_sent: int = 0


SERVICES = web.AppKey("services", Services)
CACHE = web.AppKey("cache", ResponseCache)
STREAMS = web.AppKey("streams", StreamCounter)
TOKENS = web.AppKey("tokens", TokenStore)
PRINCIPAL = web.RequestKey("principal", Principal)
OPEN_PATHS = frozenset({"/healthz", "/openapi.json"})
MAX_BODY_BYTES = 64 * 1024
NDJSON = "application/x-ndjson"
# Tools whose answer is a pure function of the caller, the arguments and the data version (export status
# changes with time, so it is not here).
CACHEABLE = frozenset(
    {
        "listcostandusage",
        "listcontractcommitments",
        "summarizecostandusage",
        "listcostandusagevalues",
        "getschemametadata",
    }
)


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(body=wire.dumps(body), status=status, content_type="application/json", headers=headers)


def error_response(error: FocusApiError, headers: dict[str, str] | None = None) -> web.Response:
    return json_response(error.body(), status=error.status, headers=headers)


@web.middleware
async def errors_middleware(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    try:
        return await handler(request)
    except FocusApiError as exc:
        headers = None
        if isinstance(exc, Unauthorized):
            headers = {"WWW-Authenticate": 'Bearer realm="focus-api", error="invalid_token"'}
        elif isinstance(exc, RateLimited):
            headers = {"Retry-After": str(exc.retry_after)}
        return error_response(exc, headers)
    except web.HTTPException as exc:
        if exc.status == 404:
            return error_response(NotFound(f"no route {request.method} {request.path}; see GET /openapi.json"))
        if exc.status == 405:
            allowed = exc.headers.get("Allow")
            return error_response(
                MethodNotAllowed(f"{request.method} is not allowed on {request.path}", {"allowed": allowed}),
                {"Allow": allowed or ""},  # RFC 9110: a 405 names the methods the resource allows
            )
        if exc.status == 413:
            return error_response(PayloadTooLarge(f"request body above {MAX_BODY_BYTES} bytes"))
        raise
    except (ConnectionResetError, web.HTTPClientError):
        raise
    except Exception:
        log.exception("unhandled error", path=request.path)
        return error_response(InternalError("internal error; the server log has the details"))


@web.middleware
async def auth_middleware(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    tokens = request.app[TOKENS]
    if request.path in OPEN_PATHS:
        return await handler(request)
    if not tokens.enabled:
        request[PRINCIPAL] = LOCAL
        return await handler(request)
    presented = bearer(request.headers.get("Authorization")) or request.headers.get("X-API-Key")
    principal = tokens.verify(presented)
    if principal is None:
        raise Unauthorized(
            "missing or invalid credentials: send Authorization: Bearer <token> or X-API-Key: <token>",
            {"reason": "missing" if not presented else "invalid"},
        )
    request[PRINCIPAL] = principal
    request.app[SERVICES].limiter.check(principal.name)
    return await handler(request)


async def _arguments(request: web.Request, spec: ToolSpec) -> dict[str, Any]:
    args: dict[str, Any] = {}
    if spec.rest.method == "GET":
        for key in request.query:
            values = request.query.getall(key)
            if len(values) > 1:
                raise InvalidArgument(f"{key} is given {len(values)} times; give it once", {"field": key})
            args[key] = values[0]
    elif request.can_read_body:
        try:
            body = await request.json()
        except ValueError as exc:
            raise InvalidArgument(f"the request body is not valid JSON: {exc}") from None
        if not isinstance(body, dict):
            raise InvalidArgument("the request body must be a JSON object of parameters")
        args.update(body)
    args.update(request.match_info)
    return args


def _tool_route(spec: ToolSpec) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    async def route(request: web.Request) -> web.StreamResponse:
        services = request.app[SERVICES]
        principal = request[PRINCIPAL]
        principal.require(spec.name)
        try:
            args = spec.input_model.model_validate(await _arguments(request, spec))
        except ValidationError as exc:
            raise from_validation_errors(exc.errors()) from None  # type: ignore[arg-type]
        ctx = services.context(REST_LIMITS, principal)
        if spec.name == "listcostandusage" and NDJSON in request.headers.get("Accept", ""):
            assert isinstance(args, ListCostAndUsageInput)
            return await _stream_ndjson(request, spec, args, ctx)
        cache = request.app[CACHE]
        if cache.enabled and spec.name in CACHEABLE:
            return await _cached(cache, services, spec, args, ctx, principal)
        key = request.headers.get("Idempotency-Key")
        output: BaseModel
        if key is not None and isinstance(args, ExportCostAndUsageInput):
            if not 1 <= len(key) <= 200:
                raise InvalidArgument("Idempotency-Key must be 1 to 200 characters", {"field": "Idempotency-Key"})
            output = await handlers.export_cost_and_usage(args, ctx, idempotency_key=key)
        else:
            output = await spec.handler(args, ctx)
        headers = None
        if isinstance(output, ExportJob) and spec.rest.success_status == 202:
            headers = {"Location": f"/cost-and-usage/export/{output.jobId}"}
        return json_response(_body(output), status=spec.rest.success_status, headers=headers)

    route.__name__ = spec.name
    return route


def _body(output: BaseModel) -> Any:
    return output.model_dump(mode="python", warnings=False)


async def _cached(
    cache: ResponseCache, services: Services, spec: ToolSpec, args: BaseModel, ctx: Any, principal: Principal
) -> web.Response:
    """A read-only tool's 200 answer, from the cache while the data version is the same."""
    state = await services.source.data_state()
    key = (state.version, state.last_updated, principal.name, ctx.scope.key(), spec.name, args.model_dump_json())

    async def compute() -> bytes:
        return wire.dumps(_body(await spec.handler(args, ctx)))

    body = await cache.fetch(key, compute)
    return web.Response(body=body, status=spec.rest.success_status, content_type="application/json")


async def _stream_ndjson(
    request: web.Request, spec: ToolSpec, args: ListCostAndUsageInput, ctx: Any
) -> web.StreamResponse:
    """Every page as JSON Lines, one page in memory at a time; a client that leaves stops the walk."""
    streams = request.app[STREAMS]
    streams.active += 1
    try:
        first: ListCostAndUsageOutput = await spec.handler(args, ctx)  # type: ignore[assignment]
        response = web.StreamResponse(headers={"Content-Type": NDJSON, "X-Total-Records": str(first.totalRecords)})
        await response.prepare(request)
        page = first
        while True:
            if page.data:
                # Raises ConnectionResetError once the client is gone, which ends the walk here.
                await response.write(b"\n".join(wire.dumps(row) for row in page.data) + b"\n")
                streams.rows_sent += len(page.data)
            if not page.nextPageToken:
                break
            args = args.model_copy(update={"pageToken": page.nextPageToken})
            page = await spec.handler(args, ctx)  # type: ignore[assignment]
        await response.write_eof()
        return response
    except ConnectionResetError:
        log.info("ndjson client went away; stream stopped")
        raise
    finally:
        streams.active -= 1


async def download(request: web.Request) -> web.StreamResponse:
    services = request.app[SERVICES]
    job_id, name = request.match_info["jobId"], request.match_info["name"]
    principal = request[PRINCIPAL]
    principal.require("getcostandusageexportstatus")
    async with services.exports.open_download(job_id, name, principal.name) as file:
        headers = {
            "Content-Type": file.file.mediaType,
            "Content-Disposition": f'attachment; filename="{name}"',
            "X-Checksum-SHA256": file.file.sha256,
        }
        if file.path is not None:
            return web.FileResponse(file.path, headers=headers)
        assert file.chunks is not None
        return await _relay(request, file.chunks, file.size, headers)


async def _relay(
    request: web.Request, chunks: AsyncIterator[bytes], size: int | None, headers: dict[str, str]
) -> web.StreamResponse:
    """Stream a file from elsewhere (upstream mode) through, in bounded memory."""
    response = web.StreamResponse(headers=headers)
    if size is not None:
        response.content_length = size
    await response.prepare(request)
    try:
        async for chunk in chunks:
            await response.write(chunk)
    except FocusApiError as exc:
        # The status line is sent: cutting the connection is the only way left to say the body is short.
        log.warning("download relay broke off", path=request.path, code=exc.code, reason=exc.message)
        raise ConnectionResetError(exc.message) from None
    await response.write_eof()
    return response


async def healthz(request: web.Request) -> web.Response:
    state = await request.app[SERVICES].source.data_state()
    streams = request.app[STREAMS].active
    cache = request.app[CACHE].stats()
    return json_response(
        {"status": "ok", "dataVersion": state.version, "activeStreams": streams, "responseCache": cache}
    )


async def openapi(request: web.Request) -> web.Response:
    return json_response(openapi_document(request.app[SERVICES].settings.base_url()))


def create_app(services: Services, tokens: TokenStore) -> web.Application:
    app = web.Application(middlewares=[errors_middleware, auth_middleware], client_max_size=MAX_BODY_BYTES)
    app[SERVICES] = services
    app[TOKENS] = tokens
    app[STREAMS] = StreamCounter()
    # Only the embedded store's data version tracks every change; an upstream's does not, so no cache there.
    embedded = services.settings.upstream_url is None
    app[CACHE] = ResponseCache(services.settings.response_cache_mb * 2**20 if embedded else 0)
    for spec in TOOLS:
        app.router.add_route(spec.rest.method, spec.rest.path, _tool_route(spec))
    app.router.add_get("/cost-and-usage/export/{jobId}/files/{name}", download)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/openapi.json", openapi)
    return app
