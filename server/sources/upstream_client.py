"""The HTTP client of upstream mode: one aiohttp session per process, retries, and our error tree.

Owns how focus-api talks to a remote FOCUS API: the base URL; the ``FINOPS_FOUNDATION_TOKEN`` bearer,
the only credential ever sent upstream (our own clients' tokens never are) and never logged; connect and
total timeouts; retries with exponential backoff and jitter on connection errors, timeouts, 429 and 5xx
(``Retry-After`` honoured) within a total retry budget; size-capped bodies; and the mapping of every
failure to ``upstream_unavailable``, ``upstream_timeout`` or ``upstream_error`` (upstream status in
``details.upstreamStatus``; the classification lives in ``upstream_failures``). What a body must contain
is checked by ``upstream_contract``.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, TypeVar
from urllib.parse import urljoin, urlsplit

import aiohttp
import anyio
import structlog
from pydantic import SecretStr

from server.settings import Settings
from server.sources.upstream_failures import (
    ERROR_BODY_BYTES,
    Failure,
    RetryPolicy,
    status_failure,
    timed_out,
    unreachable,
)
from tools import __version__
from tools.errors import (
    FocusApiError,
    UpstreamError,
    UpstreamTimeout,
    UpstreamUnavailable,
)

log = structlog.get_logger(__name__)
T = TypeVar("T")
# Query parameters in order, a repeatable filter once per value (aiohttp sends a list of pairs as given).
Params = Sequence[tuple[str, str]] | Mapping[str, str]

# Bodies above this are parsed (and checked) in a worker thread, off the event loop.
_THREAD_PARSE_BYTES = 256 * 1024
CHUNK_BYTES = 64 * 1024


@dataclass(frozen=True, slots=True)
class UpstreamConfig:
    base_url: str
    token: SecretStr | None = None
    connect_timeout: float = 5.0
    timeout: float = 60.0
    retry: RetryPolicy = RetryPolicy()  # noqa: RUF009 (frozen, so one shared default is safe)
    max_response_bytes: int = 256 * 1024 * 1024
    max_connections: int = 32

    @classmethod
    def from_settings(cls, settings: Settings) -> UpstreamConfig:
        assert settings.upstream_url is not None
        return cls(
            base_url=settings.upstream_url.rstrip("/"),
            token=settings.finops_foundation_token,
            connect_timeout=settings.upstream_connect_timeout_seconds,
            timeout=settings.upstream_timeout_seconds,
            retry=RetryPolicy(
                max_attempts=settings.upstream_max_attempts,
                budget_seconds=settings.upstream_retry_budget_seconds,
                backoff_seconds=settings.upstream_backoff_seconds,
            ),
            max_response_bytes=settings.upstream_max_response_bytes,
            max_connections=settings.upstream_max_connections,
        )


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    port = parts.port or {"http": 80, "https": 443}.get(parts.scheme)
    return parts.scheme, (parts.hostname or "").lower(), port


def _parse_json(raw: bytes, what: str, status: int) -> Any:
    try:
        return json.loads(raw, parse_float=Decimal)
    except (ValueError, RecursionError):
        raise UpstreamError(
            f"the upstream FOCUS API answered {what} with a body that is not valid JSON",
            {"upstreamStatus": status, "operation": what},
        ) from None


class UpstreamClient:
    """Calls a remote FOCUS API. ``sleep`` and ``clock`` are injectable so tests never wait for real."""

    def __init__(
        self,
        config: UpstreamConfig,
        session: aiohttp.ClientSession,
        *,
        sleep: Callable[[float], Awaitable[None]] = anyio.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config
        self._session = session
        self._sleep = sleep
        self._clock = clock

    @classmethod
    @asynccontextmanager
    async def open(cls, config: UpstreamConfig, **kwargs: Any) -> AsyncIterator[UpstreamClient]:
        """The process's one session, closed on exit (the lifespan owns it)."""
        timeout = aiohttp.ClientTimeout(total=config.timeout, connect=config.connect_timeout)
        connector = aiohttp.TCPConnector(limit=config.max_connections)
        headers = {"User-Agent": f"focus-api/{__version__} (upstream mode)", "Accept": "application/json"}
        async with aiohttp.ClientSession(timeout=timeout, connector=connector, headers=headers) as session:
            yield cls(config, session, **kwargs)

    def url(self, path: str) -> str:
        return self.config.base_url + path

    def resolve(self, url: str) -> str:
        """An absolute URL for a link the upstream gave (it may be relative to the base URL)."""
        return urljoin(self.config.base_url + "/", url)

    def _auth(self, url: str) -> dict[str, str]:
        """The FINOPS bearer, and only for the upstream's own origin (a presigned URL elsewhere gets none)."""
        token = self.config.token.get_secret_value() if self.config.token is not None else ""
        if not token or _origin(url) != _origin(self.config.base_url):
            return {}
        return {"Authorization": f"Bearer {token}"}

    # -- JSON calls -----------------------------------------------------------------------------------

    async def get_json(self, path: str, params: Params, check: Callable[[Any], T]) -> T:
        """GET ``path`` and return ``check(parsed body)``; idempotent, so every transient failure is retried."""
        return await self._json("GET", path, params=params, body=None, check=check, idempotent=True)

    async def post_json(
        self, path: str, body: Mapping[str, Any], check: Callable[[Any], T], headers: Mapping[str, str] | None = None
    ) -> T:
        """POST a JSON body; not idempotent, so retried only when the request surely was not acted on."""
        return await self._json("POST", path, params=None, body=body, check=check, idempotent=False, headers=headers)

    async def _json(
        self,
        method: str,
        path: str,
        *,
        params: Params | None,
        body: Mapping[str, Any] | None,
        check: Callable[[Any], T],
        idempotent: bool,
        headers: Mapping[str, str] | None = None,
    ) -> T:
        what = f"{method} {path}"

        async def consume(resp: aiohttp.ClientResponse) -> bytes:
            return await self._read(resp, self.config.max_response_bytes, what)

        status, raw = await self._call(method, self.url(path), params, body, idempotent, consume, headers=headers)

        def parse_and_check() -> T:
            return check(_parse_json(raw, what, status))

        if len(raw) > _THREAD_PARSE_BYTES:
            return await anyio.to_thread.run_sync(parse_and_check)
        return parse_and_check()

    async def _read(self, resp: aiohttp.ClientResponse, limit: int, what: str) -> bytes:
        too_big = UpstreamError(
            f"the upstream FOCUS API answered {what} with more than {limit} bytes; ask for smaller pages",
            {"upstreamStatus": resp.status, "limitBytes": limit},
        )
        if resp.content_length is not None and resp.content_length > limit:
            raise too_big
        chunks: list[bytes] = []
        size = 0
        async for chunk in resp.content.iter_chunked(CHUNK_BYTES):
            size += len(chunk)
            if size > limit:
                raise too_big
            chunks.append(chunk)
        return b"".join(chunks)

    # -- streamed downloads ---------------------------------------------------------------------------

    @asynccontextmanager
    async def stream(self, url: str) -> AsyncIterator[tuple[int | None, AsyncIterator[bytes]]]:
        """GET ``url`` and yield (Content-Length, its body as chunks); retried until the first byte arrives.

        No total timeout (a big file takes what it takes), but a stall longer than the timeout between
        two reads fails it.
        """
        target = self.resolve(url)
        timeout = aiohttp.ClientTimeout(total=None, connect=self.config.connect_timeout, sock_read=self.config.timeout)

        async def keep(resp: aiohttp.ClientResponse) -> aiohttp.ClientResponse:
            return resp

        accept = {"Accept": "*/*"}  # a CSV or Parquet file, not JSON
        _, resp = await self._call(
            "GET", target, None, None, True, keep, keep_open=True, timeout=timeout, headers=accept
        )
        # A compressed body is sent on decompressed: its Content-Length would not be ours.
        size = None if resp.headers.get("Content-Encoding") else resp.content_length

        async def chunks() -> AsyncIterator[bytes]:
            try:
                async for chunk in resp.content.iter_chunked(CHUNK_BYTES):
                    yield chunk
            except TimeoutError:
                raise UpstreamTimeout("the upstream FOCUS API stalled while sending an export file") from None
            except aiohttp.ClientError as exc:
                raise UpstreamUnavailable(
                    "the upstream FOCUS API broke off while sending an export file; download it again",
                    {"reason": type(exc).__name__},
                ) from None

        try:
            yield size, chunks()
        finally:
            resp.release()

    # -- the attempt loop -----------------------------------------------------------------------------

    async def _call(
        self,
        method: str,
        url: str,
        params: Params | None,
        body: Mapping[str, Any] | None,
        idempotent: bool,
        consume: Callable[[aiohttp.ClientResponse], Awaitable[T]],
        *,
        keep_open: bool = False,
        timeout: aiohttp.ClientTimeout | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> tuple[int, T]:
        """Send until a 2xx is consumed, a failure is final, or the attempts or the retry budget run out."""
        started = self._clock()
        what = f"{method} {urlsplit(url).path}"
        request = {
            "params": params,
            "json": body,
            "headers": {**(headers or {}), **self._auth(url)},
            "allow_redirects": False,
        } | ({"timeout": timeout} if timeout is not None else {})
        attempt = 0
        while True:
            attempt += 1
            outcome = await self._attempt(method, url, request, what, idempotent, consume, keep_open)
            if not isinstance(outcome, Failure):
                return outcome
            policy = self.config.retry
            delay = max(policy.backoff(attempt), outcome.retry_after or 0.0)
            within_budget = self._clock() - started + delay <= policy.budget_seconds
            if not outcome.retryable or attempt >= policy.max_attempts or not within_budget:
                outcome.error.details["attempts"] = attempt
                log.warning(
                    "upstream call failed",
                    operation=what,
                    attempts=attempt,
                    code=outcome.error.code,
                    detail=outcome.detail or outcome.error.message,
                )
                raise outcome.error
            log.info(
                "upstream call retried",
                operation=what,
                attempt=attempt,
                delay=round(delay, 3),
                detail=outcome.detail or outcome.error.message,
            )
            await self._sleep(delay)

    async def _attempt(
        self,
        method: str,
        url: str,
        request: dict[str, Any],
        what: str,
        idempotent: bool,
        consume: Callable[[aiohttp.ClientResponse], Awaitable[T]],
        keep_open: bool,
    ) -> tuple[int, T] | Failure:
        """One request: the consumed 2xx answer, or why it failed (final 4xx answers raise at once)."""
        config = self.config
        try:
            resp = await self._session.request(method, url, **request)
            try:
                if 200 <= resp.status < 300:
                    result = await consume(resp)
                    if not keep_open:
                        resp.release()
                    return resp.status, result
                try:
                    raw = await self._read(resp, ERROR_BODY_BYTES, what)
                except (FocusApiError, aiohttp.ClientError, TimeoutError):
                    raw = b""
                retry_after = resp.headers.get("Retry-After")
                failure = status_failure(resp.status, retry_after, str(resp.url), raw, what, idempotent)
            except BaseException:
                resp.release()
                raise
            resp.release()
            return failure
        except FocusApiError:
            raise
        except aiohttp.ConnectionTimeoutError as exc:
            # Not connected yet, so nothing was sent: safe to retry even a POST.
            return Failure(timed_out(config, what), retryable=True, detail=repr(exc))
        except TimeoutError as exc:
            return Failure(timed_out(config, what), retryable=idempotent, detail=repr(exc))
        except aiohttp.ClientConnectorError as exc:
            return Failure(unreachable(what, exc), retryable=True, detail=str(exc))
        except (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError) as exc:
            return Failure(unreachable(what, exc), retryable=idempotent, detail=repr(exc))
