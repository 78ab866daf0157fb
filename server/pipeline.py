"""The one call pipeline: every tool call, from any transport, goes through ``Pipeline.call``.

In order: the tool (``unknown_tool``), the caller's permission for it (``forbidden``), the caller's rate
limit (``rate_limited``), input validation (``invalid_argument`` naming each field), the handler, and the
mapping of anything unexpected to ``internal_error`` (logged here with its traceback; never sent). Each
call ends with one structured audit line: time, principal name (never a token or its hash), transport,
tool, normalised arguments, rows returned, status or error code, duration and the data version read.
Transports only parse their wire format and render the result or the error.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import structlog
from pydantic import BaseModel, ValidationError

from server.auth import Principal
from server.services import Services
from tools import __version__
from tools.context import Limits, ToolContext
from tools.errors import FocusApiError, InternalError, UnknownTool, from_validation_errors
from tools.registry import BY_NAME
from tools.spec import ToolSpec

log = structlog.get_logger("focus_api.audit")
# Arguments that are handles, not questions: the audit line says one was given, not what it was.
_OPAQUE = frozenset({"pageToken"})


@dataclass(frozen=True, slots=True)
class Caller:
    """Who calls, over what, with which page limits, and where that transport serves export files."""

    principal: Principal
    transport: str  # rest, mcp-http, mcp-stdio, cli
    limits: Limits
    download_base: str


@dataclass(slots=True)
class Invocation:
    """An admitted call: its spec, validated arguments and context; ``run`` executes the handler."""

    spec: ToolSpec
    args: BaseModel
    ctx: ToolContext
    rows: int = 0
    pages: int = 0
    # Set by a transport whose caller left before the answer was complete (a dropped stream).
    client_gone: bool = False

    async def run(self, args: BaseModel | None = None) -> BaseModel:
        """The handler's answer; a walk (NDJSON) runs it once per page with the next page's arguments."""
        if self.pages:
            self.ctx.forget_state()  # each page reads the data version afresh, so a stale token is refused
        output = await self.spec.handler(args or self.args, self.ctx)
        self.pages += 1
        data = getattr(output, "data", None)
        self.rows += len(data) if isinstance(data, list) else 0
        return output


def _validate(spec: ToolSpec, arguments: Mapping[str, Any]) -> BaseModel:
    try:
        return spec.input_model.model_validate(dict(arguments))
    except ValidationError as exc:
        raise from_validation_errors(exc.errors()) from None  # type: ignore[arg-type]


def _audit_arguments(args: BaseModel | None, raw: Mapping[str, Any]) -> Any:
    if args is None:  # refused before validation: names only, the values may be anything
        return sorted(str(k) for k in raw)[:20]
    values = args.model_dump(mode="json", exclude_none=True, exclude_defaults=True)
    return {k: "(given)" if k in _OPAQUE else v for k, v in values.items()}


class Pipeline:
    def __init__(self, services: Services) -> None:
        self.services = services

    def context(self, caller: Caller, idempotency_key: str | None = None) -> ToolContext:
        """The handler context for one call: the caller's scope applies inside every query."""
        services = self.services
        return ToolContext(
            source=services.source,
            exports=services.exports,
            tokens=services.tokens,
            limits=caller.limits,
            generator_version=__version__,
            scope=caller.principal.scope,
            principal=caller.principal.name,
            idempotency_key=idempotency_key,
            download_base=caller.download_base,
        )

    @asynccontextmanager
    async def call(
        self, tool: str, arguments: Mapping[str, Any], caller: Caller, *, idempotency_key: str | None = None
    ) -> AsyncIterator[Invocation]:
        started = time.perf_counter()
        invocation: Invocation | None = None
        status = "ok"
        try:
            spec = BY_NAME.get(tool)
            if spec is None:
                raise UnknownTool(f"unknown tool {tool!r}; the tools are {', '.join(BY_NAME)}", {"tool": tool})
            caller.principal.require(spec.name)
            self.services.limiter.check(caller.principal.name)
            invocation = Invocation(spec, _validate(spec, arguments), self.context(caller, idempotency_key))
            yield invocation
            if invocation.client_gone:
                status = "client_gone"
        except FocusApiError as exc:
            status = exc.code
            raise
        except ConnectionError:
            status = "client_gone"  # the caller left mid-answer (a dropped stream): nothing to report to it
            raise
        except Exception:
            status = InternalError.code
            log.exception("tool failed", tool=tool, transport=caller.transport)
            raise InternalError("internal error; the server log has the details") from None
        finally:
            log.info(
                "tool_call",
                transport=caller.transport,
                principal=caller.principal.name,
                tool=tool,
                arguments=_audit_arguments(invocation.args if invocation else None, arguments),
                rows=invocation.rows if invocation else 0,
                status=status,
                duration_ms=round((time.perf_counter() - started) * 1000, 1),
                data_version=invocation.ctx.data_version if invocation else None,
            )

    async def invoke(
        self, tool: str, arguments: Mapping[str, Any], caller: Caller, *, idempotency_key: str | None = None
    ) -> BaseModel:
        """One call, start to end: the output model, or a FocusApiError to render."""
        async with self.call(tool, arguments, caller, idempotency_key=idempotency_key) as invocation:
            return await invocation.run()
