"""The REST application (aiohttp, :8080): middlewares for errors and access lines, Host/Origin, auth, and the router.

Errors from the one tree become ``status`` plus ``{code, message, details}`` here, once (requests aiohttp
cannot parse are answered in the same body by ``protocol.py``). Every request that the pipeline did not
audit (downloads, /openapi.json, /healthz, and requests refused before a tool ran: 401, 403, 404, 405, 413,
421) gets an access line. Host/Origin and the credential follow the rules of ``server/http_guard.py``,
which the MCP port applies too.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

import structlog
from aiohttp import web

from server.auth import LOCAL, TokenStore
from server.http_guard import HostPolicy, credential, header
from server.pipeline import Pipeline
from server.rest.cache import ResponseCache
from server.rest.protocol import mark_authenticated
from server.rest.routes import (
    AUDITED,
    CACHE,
    PIPELINE,
    PRINCIPAL,
    STREAMS,
    StreamCounter,
    download,
    healthz,
    json_response,
    openapi,
    tool_route,
)
from tools.errors import (
    FocusApiError,
    InternalError,
    MethodNotAllowed,
    NotFound,
    PayloadTooLarge,
    RateLimited,
    Unauthorized,
)
from tools.exports import DOWNLOAD_PATH
from tools.registry import TOOLS

log = structlog.get_logger("focus_api.access")
TOKENS = web.AppKey("tokens", TokenStore)
POLICY = web.AppKey("host_policy", HostPolicy)
OPEN_PATHS = frozenset({"/healthz", "/openapi.json"})
MAX_BODY_BYTES = 64 * 1024
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def error_response(error: FocusApiError) -> web.Response:
    headers = None
    if isinstance(error, Unauthorized):
        headers = {"WWW-Authenticate": 'Bearer realm="focus-api", error="invalid_token"'}
    elif isinstance(error, RateLimited):
        headers = {"Retry-After": str(error.retry_after)}
    elif error.code == MethodNotAllowed.code:
        headers = {"Allow": str(error.details.get("allowed") or "")}  # RFC 9110: a 405 names what is allowed
    response = json_response(error.body(), status=error.status, headers=headers)
    if isinstance(error, PayloadTooLarge):
        response.force_close()  # the body is not read: the connection cannot carry another request
    return response


def _from_http(request: web.Request, exc: web.HTTPException) -> FocusApiError | None:
    if exc.status == 404:
        return NotFound(f"no route {request.method} {request.path}; see GET /openapi.json")
    if exc.status == 405:
        allowed = exc.headers.get("Allow")
        return MethodNotAllowed(f"{request.method} is not allowed on {request.path}", {"allowed": allowed})
    if exc.status == 413:
        return PayloadTooLarge(f"request body above {MAX_BODY_BYTES} bytes")
    return None


@web.middleware
async def errors_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    started = time.perf_counter()
    status, code, reason = 500, None, None
    try:
        response = await handler(request)
        status = response.status
        return response
    except FocusApiError as exc:
        status, code, reason = exc.status, exc.code, exc.details.get("reason", exc.message)
        return error_response(exc)
    except web.HTTPException as exc:
        mapped = _from_http(request, exc)
        if mapped is None:
            raise
        status, code, reason = mapped.status, mapped.code, mapped.message
        return error_response(mapped)
    except ConnectionError:
        code = "client_gone"
        raise
    except Exception:
        log.exception("unhandled error", path=request.path)
        code = InternalError.code
        return error_response(InternalError("internal error; the server log has the details"))
    finally:
        if not request.get(AUDITED, False):
            principal = request.get(PRINCIPAL)
            log.info(
                "access",
                method=request.method,
                path=request.path,
                principal=principal.name if principal else None,
                status=status,
                code=code,
                reason=reason,
                duration_ms=round((time.perf_counter() - started) * 1000, 1),
            )


@web.middleware
async def guard_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Host and Origin (server/http_guard.py), and a declared body too large refused before it is read."""
    headers = request.raw_headers
    refused = request.app[POLICY].check(header(headers, b"host"), header(headers, b"origin"))
    if refused is not None:
        raise refused
    if request.content_length is not None and request.content_length > MAX_BODY_BYTES:
        raise PayloadTooLarge(f"request body above {MAX_BODY_BYTES} bytes")
    return await handler(request)


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    tokens = request.app[TOKENS]
    if not tokens.enabled:
        mark_authenticated(request)
        request[PRINCIPAL] = LOCAL
        return await handler(request)
    presented = credential(request.raw_headers)
    principal = tokens.verify(presented.token)
    if principal is not None:
        mark_authenticated(request)
    if request.path in OPEN_PATHS:
        return await handler(request)
    if principal is None:
        raise Unauthorized(
            "missing or invalid credentials: send Authorization: Bearer <token> or X-API-Key: <token>",
            {"reason": presented.problem or "invalid"},
        )
    request[PRINCIPAL] = principal
    return await handler(request)


def create_app(pipeline: Pipeline, tokens: TokenStore) -> web.Application:
    settings = pipeline.services.settings
    app = web.Application(
        middlewares=[errors_middleware, guard_middleware, auth_middleware], client_max_size=MAX_BODY_BYTES
    )
    app[PIPELINE] = pipeline
    app[TOKENS] = tokens
    app[POLICY] = HostPolicy(settings, settings.rest_port)
    app[STREAMS] = StreamCounter()
    # Only the embedded store's data version tracks every change; an upstream's does not, so no cache there.
    embedded = settings.upstream_url is None
    app[CACHE] = ResponseCache(settings.response_cache_mb * 2**20 if embedded else 0)
    for spec in TOOLS:
        app.router.add_route(spec.rest.method, spec.rest.path, tool_route(spec))
    app.router.add_get(DOWNLOAD_PATH, download)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/openapi.json", openapi)
    return app
