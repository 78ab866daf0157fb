"""Running the server: REST (aiohttp) and MCP streamable HTTP (uvicorn) in one process, or MCP on stdio.

aiohttp is not an ASGI server, so the MCP app runs on uvicorn on its own port in the same event loop;
SIGINT/SIGTERM stop both, and the lifespan closes the store (uvicorn's own signal handling is turned off so
that it cannot skip that cleanup).
"""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Iterator

import anyio
import structlog
import uvicorn
from aiohttp import web
from mcp.server.transport_security import TransportSecuritySettings

from server.auth import TokenFileError, TokenStore
from server.http_guard import LOOPBACK_NAMES, ConnectionGuard, HostPolicy
from server.mcp.http import McpHttpGuard, guarded_h11
from server.mcp.server import FocusMCPServer
from server.pipeline import Pipeline
from server.rest.app import create_app
from server.rest.protocol import GuardedRunner
from server.services import running_services
from server.settings import Settings

log = structlog.get_logger(__name__)


class StartupRefused(SystemExit):
    """A configuration the server will not run with; the message says how to fix it."""


class _Uvicorn(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        # uvicorn would re-raise SIGINT/SIGTERM after serve() returns and skip our cleanup.
        yield


def check_bind(settings: Settings, tokens: TokenStore) -> None:
    if not tokens.enabled and not settings.is_loopback():
        raise StartupRefused(
            f"refusing to listen on {settings.host} without authentication: set FOCUS_API_TOKENS to one or more "
            "comma-separated secrets (clients send Authorization: Bearer <token>) or FOCUS_API_TOKENS_FILE to a "
            "JSON file of scoped tokens, or bind 127.0.0.1"
        )


def mcp_security(policy: HostPolicy) -> TransportSecuritySettings:
    """The SDK's own DNS-rebinding check, with the same hosts and origins as ``McpHttpGuard`` (which runs
    first and answers in JSON-RPC); off only where any Host is served (a non-loopback bind without
    FOCUS_API_ALLOWED_HOSTS), where the guard still checks Origin."""
    if policy.hosts is None:
        return TransportSecuritySettings(enable_dns_rebinding_protection=False)
    origins = set(policy.origins)
    if policy.any_loopback_origin:
        origins |= {f"http://{h}:*" for h in LOOPBACK_NAMES} | {f"http://{h}" for h in LOOPBACK_NAMES}
    return TransportSecuritySettings(allowed_hosts=policy.host_patterns(), allowed_origins=sorted(origins))


async def serve(settings: Settings) -> None:
    try:
        tokens = TokenStore(settings.token_list(), settings.tokens_file)
    except TokenFileError as exc:
        raise StartupRefused(str(exc)) from None
    check_bind(settings, tokens)
    if settings.sync_list() and settings.upstream_url:
        raise StartupRefused("--sync loads cloud exports into the store, which upstream mode does not serve")
    if not tokens.enabled:
        log.warning("no tokens configured (FOCUS_API_TOKENS): serving without authentication on loopback only")
    # With --sync the data comes from the exports: an empty data dir waits for the first sync, no demo set.
    async with running_services(settings, load_demo=not settings.sync_list()) as services:
        pipeline = Pipeline(services)
        host = f"[{settings.host}]" if ":" in settings.host else settings.host
        mcp = FocusMCPServer(
            pipeline, http_auth=tokens, resource_url=f"http://{host}:{settings.mcp_port}/mcp", transport="mcp-http"
        )
        policy = HostPolicy(settings, settings.mcp_port)
        guard = ConnectionGuard(settings.max_unauthenticated_connections_per_ip)
        mcp_app = McpHttpGuard(
            mcp.streamable_http_app(host=settings.host, transport_security=mcp_security(policy)), policy, tokens, guard
        )
        mcp_http = _Uvicorn(
            uvicorn.Config(
                mcp_app,
                host=settings.host,
                port=settings.mcp_port,
                log_level="warning",
                lifespan="on",
                http=guarded_h11(
                    guard,
                    settings.header_timeout_seconds,
                    settings.body_timeout_seconds,
                    settings.keepalive_timeout_seconds,
                ),
                timeout_keep_alive=int(max(1, settings.keepalive_timeout_seconds)),
            )
        )
        runner = GuardedRunner(create_app(pipeline, tokens), settings, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, settings.host, settings.rest_port).start()
        log.info(
            "serving",
            rest=f"http://{host}:{settings.rest_port}",
            mcp=f"http://{host}:{settings.mcp_port}/mcp",
            data=f"upstream {settings.upstream_url}" if settings.upstream_url else str(settings.data_dir),
            auth="tokens" if tokens.enabled else "none (loopback)",
        )

        async def watch_signals(scope: anyio.CancelScope) -> None:
            with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
                async for signum in signals:
                    log.info("shutting down", signal=signal.Signals(signum).name)
                    mcp_http.should_exit = True
                    return

        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(watch_signals, tg.cancel_scope)
                if settings.sync_list():
                    from server.cloud.background import sync_forever

                    tg.start_soon(sync_forever, settings)
                await mcp_http.serve()
                tg.cancel_scope.cancel()
        finally:
            await runner.cleanup()
    log.info("stopped")


async def serve_stdio(settings: Settings) -> None:
    async with running_services(settings) as services:
        await FocusMCPServer(Pipeline(services)).run_stdio_async()
