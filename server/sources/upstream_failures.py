"""How upstream mode judges a failed call: retry or not, after how long, and which of our errors it becomes.

429 and 5xx are retryable (a 500 only for idempotent calls: a POST may have been acted on), with the
upstream's ``Retry-After`` honoured; connection errors and timeouts likewise; redirects, refused
credentials, 404 and other 4xx are final. Messages never name the upstream's host or address.
"""

from __future__ import annotations

import errno
import json
import random
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import aiohttp

from tools.errors import (
    FocusApiError,
    InvalidArgument,
    InvalidPageToken,
    UpstreamError,
    UpstreamTimeout,
    UpstreamUnavailable,
)

if TYPE_CHECKING:
    from server.sources.upstream_client import UpstreamConfig

ERROR_BODY_BYTES = 64 * 1024


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often and how long to retry: attempts in all, and a wall-clock budget across them."""

    max_attempts: int = 3
    budget_seconds: float = 30.0
    backoff_seconds: float = 0.25
    max_backoff_seconds: float = 5.0

    def backoff(self, retry: int) -> float:
        """Exponential backoff with jitter before retry number ``retry`` (1-based): half fixed, half random."""
        cap = min(self.max_backoff_seconds, self.backoff_seconds * 2.0 ** (retry - 1))
        return cap / 2 + random.uniform(0, cap / 2)


def retry_after_seconds(value: str | None, now: datetime | None = None) -> float | None:
    """``Retry-After`` as seconds from now: delta-seconds or an HTTP date; None when absent or unreadable."""
    if not value:
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


class UpstreamNotFound(UpstreamError):
    """The upstream answered 404: a wrong base URL for a list, or an unknown job for a status call."""


@dataclass(slots=True)
class Failure:
    """Why one attempt failed, whether another may be tried, and the error to raise if not."""

    error: FocusApiError
    retryable: bool
    retry_after: float | None = None
    detail: str | None = None  # for the server log only


def _error_body(raw: bytes) -> dict[str, Any]:
    """The upstream's ``{code, message, details}`` error body, or {} when it sent something else."""
    try:
        body = json.loads(raw)
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def timed_out(config: UpstreamConfig, what: str) -> UpstreamTimeout:
    return UpstreamTimeout(
        f"the upstream FOCUS API did not answer {what} in time "
        f"(connect {config.connect_timeout:g} s, total {config.timeout:g} s); try again later",
        {"operation": what},
    )


def unreachable(what: str, exc: Exception) -> UpstreamUnavailable:
    # Said without host or address (those stay in the server log): clients need not learn our topology.
    if isinstance(exc, aiohttp.ClientConnectorDNSError):
        reason = "its host name does not resolve"
    elif getattr(getattr(exc, "os_error", None), "errno", None) == errno.ECONNREFUSED:
        reason = "connection refused"
    elif isinstance(exc, aiohttp.ClientConnectorError):
        reason = "cannot connect"
    elif isinstance(exc, aiohttp.ServerDisconnectedError):
        reason = "it closed the connection"
    else:
        reason = type(exc).__name__
    return UpstreamUnavailable(
        f"cannot reach the upstream FOCUS API for {what} ({reason}); try again later",
        {"operation": what, "reason": reason},
    )


def status_failure(status: int, retry_after: str | None, url: str, raw: bytes, what: str, idempotent: bool) -> Failure:
    """A non-2xx answer: retryable (429, 5xx) or final; 4xx errors raise at once."""
    body = _error_body(raw)
    upstream: dict[str, Any] = {k: body[k] for k in ("code", "message") if isinstance(body.get(k), str)}
    if upstream and isinstance(body.get("details"), dict):
        upstream["details"] = body["details"]
    details: dict[str, Any] = {"upstreamStatus": status, "operation": what} | (
        {"upstream": upstream} if upstream else {}
    )
    message = upstream.get("message")
    if status == 429:
        wait = retry_after_seconds(retry_after)
        return Failure(
            UpstreamUnavailable(
                "the upstream FOCUS API is rate limiting this server and the retry budget ran out; try again later",
                details | ({"retryAfterSeconds": round(wait)} if wait is not None else {}),
            ),
            retryable=True,
            retry_after=wait,
        )
    if status >= 500:
        wait = retry_after_seconds(retry_after)
        # A POST that failed with 500 may have been acted on; 502/503/504 come before the application.
        return Failure(
            UpstreamUnavailable(
                f"the upstream FOCUS API failed with HTTP {status}"
                + (f" ({message})" if message else "")
                + "; try again later",
                details,
            ),
            retryable=idempotent or status in (502, 503, 504),
            retry_after=wait,
        )
    if 300 <= status < 400:
        raise UpstreamError(
            f"the upstream FOCUS API redirected {what} (HTTP {status}); set FOCUS_API_UPSTREAM_URL to the final URL",
            details,
        )
    if status in (401, 403):
        raise UpstreamError(
            f"the upstream FOCUS API refused this server's credentials (HTTP {status}); the operator should "
            "check FINOPS_FOUNDATION_TOKEN",
            details,
        )
    if status == 404:
        raise UpstreamNotFound(
            f"the upstream FOCUS API has no {urlsplit(url).path} (HTTP 404); check FOCUS_API_UPSTREAM_URL",
            details,
        )
    if status == 400 and body.get("code") == "invalid_page_token":
        raise InvalidPageToken(message or "the upstream refused the page token; start again", details)
    if status == 400 and message:
        # The caller's own mistake (e.g. a filter value the upstream refuses): theirs to fix.
        raise InvalidArgument(f"the upstream FOCUS API refused the request: {message}", details)
    raise UpstreamError(
        f"the upstream FOCUS API answered {what} with HTTP {status}" + (f": {message}" if message else ""),
        details,
    )
