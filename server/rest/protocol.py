"""The REST port below the routes: aiohttp's connection handler with read deadlines, a per-IP cap and JSON errors.

aiohttp answers requests it cannot parse (a header over 8,190 bytes, control bytes, method ``FOO``,
``Content-Length: -1``) itself, in plain text, and logs the parser's message, which quotes the raw header
(a token included) at ERROR level. ``GuardedHandler.handle_error`` answers those with the one JSON error body
and logs one line naming the kind of problem only, never a header value. It also

- closes a connection that has not sent a complete request head within ``FOCUS_API_HEADER_TIMEOUT_SECONDS``
  (408), so half-sent requests cannot hold sockets (idle keep-alive connections close after
  ``FOCUS_API_KEEPALIVE_TIMEOUT_SECONDS``; request bodies are read within ``FOCUS_API_BODY_TIMEOUT_SECONDS``,
  see ``routes.py``);
- refuses (503) a connection from an IP that already holds
  ``FOCUS_API_MAX_UNAUTHENTICATED_CONNECTIONS_PER_IP`` connections that have not presented a valid credential.
"""

from __future__ import annotations

import asyncio
from typing import Any

import structlog
from aiohttp import web
from aiohttp.http_exceptions import BadHttpMethod, HttpProcessingError, LineTooLong
from aiohttp.web_protocol import RequestHandler
from aiohttp.web_request import BaseRequest

from server.http_guard import ConnectionGuard
from server.settings import Settings
from tools import wire
from tools.errors import BadRequest, FocusApiError, InternalError, RequestTimeout, Unavailable

log = structlog.get_logger("focus_api.http")


def raw_response(error: FocusApiError, headers: dict[str, str] | None = None) -> bytes:
    """A complete HTTP/1.1 answer carrying the error body, for when no request object exists."""
    body = wire.dumps(error.body())
    lines = [f"HTTP/1.1 {error.status} {_REASONS.get(error.status, 'Error')}"]
    lines += ["Content-Type: application/json", f"Content-Length: {len(body)}", "Connection: close"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


_REASONS = {400: "Bad Request", 408: "Request Timeout", 413: "Content Too Large", 503: "Service Unavailable"}


def unreadable(exc: BaseException | None) -> BadRequest:
    """What was wrong with a request the parser refused, in words that quote none of its bytes."""
    if isinstance(exc, LineTooLong):
        return BadRequest("a request line or header field is longer than 8190 bytes", {"reason": "line_too_long"})
    if isinstance(exc, BadHttpMethod):
        return BadRequest("the request method is not a valid HTTP method", {"reason": "bad_method"})
    return BadRequest(
        "the request is not valid HTTP/1.1 (a malformed request line, header or Content-Length)",
        {"reason": "malformed"},
    )


class GuardedHandler(RequestHandler):
    guard: ConnectionGuard
    header_timeout: float

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        peer = transport.get_extra_info("peername")
        self._peer_ip: str | None = peer[0] if isinstance(peer, tuple) else None
        self._header_deadline: asyncio.TimerHandle | None = None
        if not self.guard.opened(self, self._peer_ip):
            log.warning("connection refused: too many unauthenticated connections from one address", ip=self._peer_ip)
            self._refuse(Unavailable("too many unauthenticated connections from this address; try again later"))
            return
        self._header_deadline = asyncio.get_running_loop().call_later(self.header_timeout, self._header_expired)

    def connection_lost(self, exc: BaseException | None) -> None:
        if self._header_deadline is not None:
            self._header_deadline.cancel()
        self.guard.closed(self, self._peer_ip)
        super().connection_lost(exc)

    def mark_authenticated(self) -> None:
        self.guard.authenticated(self, self._peer_ip)

    def _refuse(self, error: FocusApiError) -> None:
        transport = self.transport
        if transport is not None:
            transport.write(raw_response(error))
        self.force_close()

    def _header_expired(self) -> None:
        self._header_deadline = None
        if self._request_count == 0 and self.transport is not None:
            log.info("connection closed: no complete request head in time", ip=self._peer_ip)
            self._refuse(RequestTimeout(f"no complete request head within {self.header_timeout:g} seconds"))

    def handle_error(
        self, request: BaseRequest, status: int = 500, exc: BaseException | None = None, message: str | None = None
    ) -> web.StreamResponse:
        if isinstance(exc, ConnectionError):
            log.info("client went away mid-request", ip=self._peer_ip)
            error: FocusApiError = InternalError("the connection was lost")
        elif status == 400 or isinstance(exc, HttpProcessingError):
            error = unreadable(exc)
            log.info("unreadable request refused", ip=self._peer_ip, reason=error.details["reason"])
        else:
            # Exceptions from routes are answered by the errors middleware; this is what escaped it.
            log.error("request failed outside the routes", ip=self._peer_ip, status=status, error=type(exc).__name__)
            error = InternalError("internal error; the server log has the details")
        if request.writer.output_size > 0:
            raise ConnectionError("the answer was already started; the connection is closed instead")
        response = web.Response(body=wire.dumps(error.body()), status=error.status, content_type="application/json")
        response.force_close()
        return response


class GuardedServer(web.Server):
    guard: ConnectionGuard
    header_timeout: float

    def __call__(self) -> RequestHandler:
        handler = GuardedHandler(self, loop=self._loop, **self._kwargs)
        handler.guard = self.guard
        handler.header_timeout = self.header_timeout
        return handler


class GuardedRunner(web.AppRunner):
    """An AppRunner whose connections are ``GuardedHandler``s configured from the settings."""

    def __init__(self, app: web.Application, settings: Settings, **kwargs: Any) -> None:
        # lingering_time: after an answer that left a body unread (401, 408, 413), aiohttp reads and drops the
        # rest for up to this long so the client sees the answer; 10 s by default, which let a slow body
        # hold the connection long after its 408. Bodies are at most 64 KiB: 2 s is ample.
        super().__init__(
            app,
            keepalive_timeout=settings.keepalive_timeout_seconds,
            lingering_time=min(2.0, settings.body_timeout_seconds),
            **kwargs,
        )
        self.guard = ConnectionGuard(settings.max_unauthenticated_connections_per_ip)
        self.header_timeout = settings.header_timeout_seconds

    async def _make_server(self) -> web.Server:
        server = await super()._make_server()
        server.__class__ = GuardedServer  # same state, only __call__ differs: it builds GuardedHandlers
        assert isinstance(server, GuardedServer)
        server.guard = self.guard
        server.header_timeout = self.header_timeout
        return server


def mark_authenticated(request: web.Request) -> None:
    """The request presented a valid credential (or auth is off): its connection no longer counts."""
    protocol = request.protocol
    if isinstance(protocol, GuardedHandler):
        protocol.mark_authenticated()
