"""The one error tree of focus-api: each error has a stable ``code`` and an HTTP status.

Adapters map it once per transport: REST answers ``status`` with ``{code, message, details}``; MCP
returns an ``isError`` result carrying the same body. Messages say what was wrong and how to fix it;
no SQL, path or traceback ever reaches a client.
"""

from __future__ import annotations

from typing import Any, ClassVar


class FocusApiError(Exception):
    code: ClassVar[str] = "internal_error"
    status: ClassVar[int] = 500

    def __init__(self, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or {}

    def body(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, "details": self.details}


class InvalidArgument(FocusApiError):
    code = "invalid_argument"
    status = 400


class InvalidPageToken(FocusApiError):
    code = "invalid_page_token"
    status = 400


class BadRequest(FocusApiError):
    """An HTTP message the server cannot read (a malformed request line, header or length)."""

    code = "bad_request"
    status = 400


class Unauthorized(FocusApiError):
    code = "unauthorized"
    status = 401


class Forbidden(FocusApiError):
    code = "forbidden"
    status = 403


class NotFound(FocusApiError):
    code = "not_found"
    status = 404


class UnknownTool(FocusApiError):
    code = "unknown_tool"
    status = 404


class MethodNotAllowed(FocusApiError):
    code = "method_not_allowed"
    status = 405


class RequestTimeout(FocusApiError):
    code = "request_timeout"
    status = 408


class Conflict(FocusApiError):
    code = "conflict"
    status = 409


class PayloadTooLarge(FocusApiError):
    code = "payload_too_large"
    status = 413


class MisdirectedRequest(FocusApiError):
    """A Host this server does not serve (DNS rebinding protection)."""

    code = "misdirected_request"
    status = 421


class RateLimited(FocusApiError):
    code = "rate_limited"
    status = 429

    def __init__(self, message: str, details: dict[str, Any] | None = None, *, retry_after: float = 1.0) -> None:
        super().__init__(message, {**(details or {}), "retryAfterSeconds": max(1, round(retry_after))})
        self.retry_after = max(1, round(retry_after))


class QueryTimeout(FocusApiError):
    code = "query_timeout"
    status = 503


class UpstreamError(FocusApiError):
    code = "upstream_error"
    status = 502


class UpstreamUnavailable(FocusApiError):
    code = "upstream_unavailable"
    status = 503


class UpstreamTimeout(FocusApiError):
    code = "upstream_timeout"
    status = 504


class Unavailable(FocusApiError):
    code = "unavailable"
    status = 503


class CloudExportError(FocusApiError):
    """A cloud export (``focus-api load``/``sync`` of s3://, az://, gs://) could not be read or loaded; nothing
    of that sync was stored. ``details.object`` names the object (URL) it is about, where there is one."""

    code = "cloud_export_error"
    status = 502


class CloudSourceInvalid(CloudExportError):
    """The source is not an export URL focus-api reads (scheme, bucket, layout)."""

    code = "cloud_source_invalid"
    status = 400


class CloudObjectMissing(CloudExportError):
    """An object the export names (a manifest's data file) does not exist."""

    code = "cloud_object_missing"


class CloudAccessDenied(CloudExportError):
    """The credentials found were refused (or none were found): focus-api needs read and list access."""

    code = "cloud_access_denied"


class CloudUnreachable(CloudExportError):
    """The object store did not answer within the retry budget (every attempt failed to connect or timed out)."""

    code = "cloud_unreachable"
    status = 503


class CloudManifestInvalid(CloudExportError):
    """A manifest could not be read as its provider writes it, or an export's data has no manifest."""

    code = "cloud_manifest_invalid"


class CloudFileRefused(CloudExportError):
    """A delivered file was refused by the loader (unreadable, truncated, not FOCUS columns): its problems."""

    code = "cloud_file_refused"
    status = 422


class EngineError(FocusApiError):
    """The Spark engine (``--engine spark``) failed a query it should have answered; details name no SQL."""

    code = "engine_error"
    status = 502


class EngineUnavailable(EngineError):
    """The Spark Connect server did not answer (unreachable, refused, or timed out connecting)."""

    code = "engine_unavailable"
    status = 503


class EngineTableMissing(EngineError):
    """A Spark table focus-api was told to serve (or its own layout's table) does not exist."""

    code = "engine_table_missing"
    status = 503


class EngineTableInvalid(EngineError):
    """A Spark table is not FOCUS-shaped: a required column is missing or has a type that is not exact."""

    code = "engine_table_invalid"
    status = 503


class InternalError(FocusApiError):
    code = "internal_error"
    status = 500


def from_validation_errors(errors: list[dict[str, Any]]) -> InvalidArgument:
    """An InvalidArgument naming each offending field (pydantic's ``errors()`` list, values left out)."""
    problems = []
    for err in errors:
        field = ".".join(str(p) for p in err.get("loc", ())) or "(body)"
        kind = err.get("type", "invalid")
        msg = "unknown field; check the parameter name" if kind == "extra_forbidden" else err.get("msg", "invalid")
        problems.append({"field": field, "problem": msg})
    fields = ", ".join(p["field"] for p in problems)
    first = problems[0]["problem"] if problems else "invalid input"
    return InvalidArgument(f"invalid value for {fields}: {first}", {"errors": problems})
