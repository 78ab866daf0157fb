"""The REST routes: one per registry spec, plus export file downloads, OpenAPI and health.

A tool route only parses the wire (query parameters for GET, the JSON body for POST, path parameters,
the ``Idempotency-Key`` header) and renders: the call itself goes through the one pipeline. Answers of
read-only tools come from the response cache while the data version holds; ``Accept:
application/x-ndjson`` on the list route streams every page.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import orjson
import structlog
from aiohttp import web
from pydantic import BaseModel

from server.auth import Principal
from server.http_guard import header
from server.pipeline import Caller, Invocation, Pipeline
from server.rest.cache import ResponseCache
from server.rest.openapi import openapi_document
from tools import wire
from tools.context import REST_LIMITS
from tools.cost_and_usage import ListCostAndUsageInput, ListCostAndUsageOutput
from tools.errors import FocusApiError, InvalidArgument, RequestTimeout
from tools.exports import ExportJob
from tools.filters import REPEATABLE
from tools.spec import ToolSpec

log = structlog.get_logger(__name__)


class StreamCounter:
    """NDJSON streams in flight (reported by /healthz, so a test can see a dropped client freed its walk)."""

    active: int = 0
    rows_sent: int = 0


PIPELINE = web.AppKey("pipeline", Pipeline)
CACHE = web.AppKey("cache", ResponseCache)
STREAMS = web.AppKey("streams", StreamCounter)
PRINCIPAL = web.RequestKey("principal", Principal)
# Set once the pipeline wrote the request's audit line, so the access log does not write a second one.
AUDITED = web.RequestKey("audited", bool)
NDJSON = "application/x-ndjson"
# Tools whose answer is a pure function of the caller, the arguments and the data version (export status
# changes with time, so it is not here; nor is getschemametadata, whose loaded.sync reports the latest sync
# attempt, and a failed sync changes no data version).
CACHEABLE = frozenset(
    {
        "listcostandusage",
        "listcontractcommitments",
        "summarizecostandusage",
        "listcostandusagevalues",
        "listbillingperiods",
        "listinvoicedetails",
        "reconcileinvoices",
        "summarizecontractcommitments",
        "summarizecommitmentdiscounts",
    }
)


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(body=wire.dumps(body), status=status, content_type="application/json", headers=headers)


def _body(output: BaseModel) -> Any:
    return wire.plain(output)


async def _arguments(request: web.Request, spec: ToolSpec) -> dict[str, Any]:
    args: dict[str, Any] = {}
    if spec.rest.method == "GET":
        for key in request.query:
            values = request.query.getall(key)
            if key in REPEATABLE:
                args[key] = values
            elif len(values) > 1:
                raise InvalidArgument(f"{key} is given {len(values)} times; give it once", {"field": key})
            else:
                args[key] = values[0]
    elif request.can_read_body:
        timeout = request.app[PIPELINE].services.settings.body_timeout_seconds
        try:
            async with asyncio.timeout(timeout):
                raw = await request.read()
        except TimeoutError:
            raise RequestTimeout(f"the request body did not arrive within {timeout:g} seconds") from None
        try:
            # orjson, not json: it refuses lone surrogates and nesting beyond 1024 levels as invalid JSON
            # (json.loads accepts the first and overflows the stack on the second).
            body = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise InvalidArgument(f"the request body is not valid JSON: {exc}") from None
        if not isinstance(body, dict):
            raise InvalidArgument("the request body must be a JSON object of parameters")
        args.update(body)
    args.update(request.match_info)
    return args


def _idempotency_key(request: web.Request, spec: ToolSpec) -> str | None:
    raw = header(request.raw_headers, b"idempotency-key")
    if raw is None or spec.rest.method != "POST":
        return None
    if not 1 <= len(raw) <= 200 or not all(0x20 <= b < 0x7F for b in raw):
        raise InvalidArgument(
            "Idempotency-Key must be 1 to 200 printable ASCII characters", {"field": "Idempotency-Key"}
        )
    return raw.decode("ascii")


def caller(request: web.Request) -> Caller:
    settings = request.app[PIPELINE].services.settings
    return Caller(request[PRINCIPAL], "rest", REST_LIMITS, settings.base_url())


def tool_route(spec: ToolSpec) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    async def route(request: web.Request) -> web.StreamResponse:
        pipeline = request.app[PIPELINE]
        request[AUDITED] = True
        arguments = await _arguments(request, spec)
        key = _idempotency_key(request, spec)
        async with pipeline.call(spec.name, arguments, caller(request), idempotency_key=key) as call:
            if spec.name == "listcostandusage" and NDJSON in request.headers.get("Accept", ""):
                return await _stream_ndjson(request, call)
            cache = request.app[CACHE]
            if cache.enabled and spec.name in CACHEABLE:
                return await _cached(cache, call, request[PRINCIPAL])
            output = await call.run()
        headers = None
        if isinstance(output, ExportJob) and spec.rest.success_status == 202:
            headers = {"Location": f"/cost-and-usage/export/{output.jobId}"}
        return json_response(_body(output), status=spec.rest.success_status, headers=headers)

    route.__name__ = spec.name
    return route


async def _cached(cache: ResponseCache, call: Invocation, principal: Principal) -> web.Response:
    """A read-only tool's 200 answer, from the cache while the data version is the same."""
    state = await call.ctx.data_state()
    key = (
        state.version,
        state.last_updated,
        principal.name,
        call.ctx.scope.key(),
        call.spec.name,
        call.args.model_dump_json(),
    )

    async def compute() -> bytes:
        return wire.dumps(_body(await call.run()))

    body = await cache.fetch(key, compute)
    return web.Response(body=body, status=call.spec.rest.success_status, content_type="application/json")


async def _page(call: Invocation, args: BaseModel | None = None) -> ListCostAndUsageOutput:
    page = await call.run(args)
    assert isinstance(page, ListCostAndUsageOutput)
    return page


async def _stream_ndjson(request: web.Request, call: Invocation) -> web.StreamResponse:
    """Every page as JSON Lines, one page in memory at a time; a client that leaves stops the walk."""
    streams = request.app[STREAMS]
    streams.active += 1
    try:
        page = await _page(call)
        response = web.StreamResponse(headers={"Content-Type": NDJSON, "X-Total-Records": str(page.totalRecords)})
        await response.prepare(request)
        args = call.args
        assert isinstance(args, ListCostAndUsageInput)
        while True:
            if page.data:
                # Raises ConnectionResetError once the client is gone, which ends the walk here.
                await response.write(b"\n".join(wire.dumps(row) for row in page.data) + b"\n")
                streams.rows_sent += len(page.data)
            if not page.nextPageToken:
                break
            args = args.model_copy(update={"pageToken": page.nextPageToken})
            page = await _page(call, args)
        await response.write_eof()
        return response
    except ConnectionResetError:
        # A client going away is an ordinary end of a stream, not a server error.
        log.info("ndjson client went away; stream stopped", rows_sent=call.rows)
        call.client_gone = True
        return response
    finally:
        streams.active -= 1


async def download(request: web.Request) -> web.StreamResponse:
    pipeline = request.app[PIPELINE]
    job_id, name = request.match_info["jobId"], request.match_info["name"]
    principal = request[PRINCIPAL]
    principal.require("getcostandusageexportstatus")
    pipeline.services.limiter.check(principal.name)
    async with pipeline.services.exports.open_download(job_id, name, principal.name) as file:
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
    state = await request.app[PIPELINE].services.source.data_state()
    streams = request.app[STREAMS].active
    cache = request.app[CACHE].stats()
    return json_response(
        {"status": "ok", "dataVersion": state.version, "activeStreams": streams, "responseCache": cache}
    )


async def openapi(request: web.Request) -> web.Response:
    return json_response(openapi_document(request.app[PIPELINE].services.settings.base_url()))
