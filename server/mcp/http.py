"""The MCP port around the SDK's app: the same checks as REST, JSON-RPC error bodies, and uvicorn's connections.

``McpHttpGuard`` wraps the SDK's Starlette app (ASGI):

- Host and Origin by the one rule of ``server/http_guard.py`` (421 / 403), before anything else;
- the credential by the one rule too: the request reaches the SDK with exactly one
  ``Authorization: Bearer <token>`` (from ``Authorization`` or ``X-API-Key``) or none, so the SDK's bearer
  check accepts on this port exactly what REST accepts;
- every error the SDK or Starlette answers in text (400 bad Content-Type, 404, 405, 413, its own 421/403)
  or as an OAuth JSON body (401) is rewritten to a JSON-RPC error whose ``error.data`` is the one
  ``{code, message, details}`` body; status and headers (``WWW-Authenticate``) stay.

``guarded_h11`` gives uvicorn a protocol class with what uvicorn lacks: a deadline for a complete request
(head and body, ``FOCUS_API_HEADER_TIMEOUT_SECONDS`` / ``FOCUS_API_BODY_TIMEOUT_SECONDS``; uvicorn's own
keep-alive timer is cancelled by any byte received), the per-IP cap on unauthenticated connections, and a
JSON-RPC body for the 400 uvicorn writes itself for unparseable requests.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import structlog
from mcp.server.transport_security import DEFAULT_MAX_REQUEST_BODY_SIZE
from uvicorn.protocols.http.h11_impl import H11Protocol

from server.auth import TokenStore
from server.http_guard import ConnectionGuard, HostPolicy, credential, header
from tools.errors import (
    BadRequest,
    FocusApiError,
    Forbidden,
    InternalError,
    MethodNotAllowed,
    MisdirectedRequest,
    NotFound,
    PayloadTooLarge,
    RequestTimeout,
    Unauthorized,
    Unavailable,
)

log = structlog.get_logger("focus_api.http")
Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

# JSON-RPC error codes for HTTP-level refusals (the SDK uses -32600 Invalid Request for its own).
_INVALID_REQUEST = -32600
_INTERNAL = -32603
_BY_STATUS: dict[int, type[FocusApiError]] = {
    400: BadRequest,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    405: MethodNotAllowed,
    408: RequestTimeout,
    413: PayloadTooLarge,
    421: MisdirectedRequest,
    503: Unavailable,
}


def jsonrpc_error_body(error: FocusApiError) -> bytes:
    code = _INTERNAL if error.status >= 500 else _INVALID_REQUEST
    payload = {"jsonrpc": "2.0", "id": None, "error": {"code": code, "message": error.message, "data": error.body()}}
    return json.dumps(payload).encode()


def _from_answer(status: int, body: bytes) -> FocusApiError:
    """The error a non-JSON-RPC answer of the SDK or Starlette stands for, keeping its words."""
    kind = _BY_STATUS.get(status, InternalError if status >= 500 else BadRequest)
    try:
        parsed = json.loads(body)
    except ValueError:
        parsed = None
    if isinstance(parsed, dict) and "error" in parsed:  # the SDK's OAuth-style 401/403
        message = str(parsed.get("error_description") or parsed["error"])
        return kind(message, {"reason": str(parsed["error"])})
    text = body.decode("utf-8", "replace").strip()[:200] or f"HTTP {status}"
    return kind(text)


async def send_error(send: Send, error: FocusApiError, headers: list[tuple[bytes, bytes]] | None = None) -> None:
    body = jsonrpc_error_body(error)
    extra = [(k, v) for k, v in (headers or []) if k.lower() not in (b"content-type", b"content-length")]
    start = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()), *extra]
    await send({"type": "http.response.start", "status": error.status, "headers": start})
    await send({"type": "http.response.body", "body": body})


class McpHttpGuard:
    def __init__(self, app: ASGIApp, policy: HostPolicy, tokens: TokenStore, guard: ConnectionGuard) -> None:
        self.app = app
        self.policy = policy
        self.tokens = tokens
        self.guard = guard

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers: list[tuple[bytes, bytes]] = list(scope["headers"])
        refused = self.policy.check(header(headers, b"host"), header(headers, b"origin"))
        if refused is not None:
            await send_error(send, refused)
            return
        length = header(headers, b"content-length")
        if length is not None and length.isdigit() and int(length) > DEFAULT_MAX_REQUEST_BODY_SIZE:
            await send_error(send, PayloadTooLarge(f"request body above {DEFAULT_MAX_REQUEST_BODY_SIZE} bytes"))
            return
        presented = credential(headers)
        if not self.tokens.enabled or self.tokens.verify(presented.token) is not None:
            client = scope.get("client")
            self.guard.authenticated(tuple(client) if client else None, client[0] if client else None)
        rest = [(k, v) for k, v in headers if k.lower() not in (b"authorization", b"x-api-key")]
        if presented.token is not None:
            rest.append((b"authorization", b"Bearer " + presented.token.encode("ascii")))
        scope = dict(scope, headers=rest)
        await self._rewriting_errors(scope, receive, send)

    async def _rewriting_errors(self, scope: Scope, receive: Receive, send: Send) -> None:
        held: dict[str, Any] = {}

        async def wrapped(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] >= 400:
                held["start"], held["body"] = message, b""
                return
            if "start" in held and message["type"] == "http.response.body":
                held["body"] += message.get("body", b"")
                if message.get("more_body", False):
                    return
                start = held.pop("start")
                body = held.pop("body")
                if _is_jsonrpc(body):
                    await send(start)
                    await send({"type": "http.response.body", "body": body})
                else:
                    await send_error(send, _from_answer(start["status"], body), list(start.get("headers", [])))
                return
            if message["type"] == "http.response.start":
                held["sent"] = True
            await send(message)

        try:
            await self.app(scope, receive, wrapped)
        except Exception:
            if "start" in held or held.get("sent"):
                raise
            log.exception("mcp request failed", path=scope.get("path"))
            await send_error(send, InternalError("internal error; the server log has the details"))


def _is_jsonrpc(body: bytes) -> bool:
    try:
        parsed = json.loads(body)
    except ValueError:
        return False
    return isinstance(parsed, dict) and parsed.get("jsonrpc") == "2.0" and "error" in parsed


def raw_jsonrpc_response(error: FocusApiError) -> bytes:
    body = jsonrpc_error_body(error)
    head = (
        f"HTTP/1.1 {error.status} Error\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        "Connection: close\r\n\r\n"
    )
    return head.encode() + body


def guarded_h11(
    guard: ConnectionGuard, header_timeout: float, body_timeout: float, keepalive_timeout: float
) -> type[H11Protocol]:
    """uvicorn's h11 protocol with request deadlines, the per-IP cap and a JSON-RPC 400."""

    class GuardedH11(H11Protocol):
        _deadline: asyncio.TimerHandle | None = None
        _requests = 0

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            ip = self.client[0] if self.client else None
            if not guard.opened(self.client, ip):
                log.warning("connection refused: too many unauthenticated connections from one address", ip=ip)
                self._refuse(Unavailable("too many unauthenticated connections from this address; try again later"))
                return
            self._arm(header_timeout)

        def connection_lost(self, exc: Exception | None) -> None:
            if self._deadline is not None:
                self._deadline.cancel()
            guard.closed(self.client, self.client[0] if self.client else None)
            super().connection_lost(exc)

        def _arm(self, seconds: float) -> None:
            if self._deadline is not None:
                self._deadline.cancel()
            armed_at = self._requests
            self._deadline = self.loop.call_later(seconds, self._expired, armed_at)

        def _expired(self, armed_at: int) -> None:
            self._deadline = None
            if self.transport.is_closing():
                return
            waiting_for_head = self._requests == armed_at and (self.cycle is None or self.cycle.response_complete)
            cycle = self.cycle
            waiting_for_body = cycle is not None and cycle.more_body and not cycle.response_started
            if waiting_for_head or waiting_for_body:
                log.info("connection closed: no complete request in time", ip=self.client[0] if self.client else None)
                self._refuse(RequestTimeout("the request did not arrive in time"))

        def _refuse(self, error: FocusApiError) -> None:
            self.transport.write(raw_jsonrpc_response(error))
            self.transport.close()

        def handle_events(self) -> None:
            before = self.cycle
            super().handle_events()
            if self.cycle is not before:  # a new request head arrived: its body gets body_timeout
                self._requests += 1
                self._arm(body_timeout)

        def on_response_complete(self) -> None:
            super().on_response_complete()
            if not self.transport.is_closing():
                self._arm(keepalive_timeout + header_timeout)  # uvicorn closes it idle; this, once bytes trickle

        def send_400_response(self, msg: str) -> None:
            self.transport.write(raw_jsonrpc_response(BadRequest("the request is not valid HTTP/1.1")))
            self.transport.close()

    return GuardedH11
