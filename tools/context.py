"""What a tool handler receives besides its input: the source, exports, page tokens, limits and scope.

Each adapter builds one per call from the lifespan's services, with its own transport's page limits.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from tools.models import AppliedScope, ExportJob
from tools.pagination import PageTokens
from tools.source import CostFilters, ExportFormat, Scope, Source


@dataclass(frozen=True, slots=True)
class Limits:
    """Page-size rules of one transport, and an optional size budget for one result (MCP)."""

    default_page_size: int
    max_page_size: int
    result_budget_bytes: int | None = None
    transport: str = "rest"


REST_LIMITS = Limits(default_page_size=1000, max_page_size=10_000, transport="REST")
MCP_LIMITS = Limits(default_page_size=100, max_page_size=1000, result_budget_bytes=256 * 1024, transport="MCP")


@dataclass(frozen=True, slots=True)
class ExportRequest:
    filters: CostFilters
    format: ExportFormat
    include_contract_commitments: bool
    owner: str
    request: dict[str, object]
    idempotency_key: str | None = None


class Exports(Protocol):
    """The export job service (owned by the server's lifespan)."""

    async def submit(self, request: ExportRequest) -> ExportJob: ...

    async def status(self, job_id: str, owner: str) -> ExportJob: ...


@dataclass(frozen=True, slots=True)
class ToolContext:
    source: Source
    exports: Exports
    tokens: PageTokens
    limits: Limits
    generator_version: str
    scope: Scope = field(default_factory=Scope)
    principal: str = "anonymous"

    def applied_scope(self) -> AppliedScope:
        return AppliedScope(principal=self.principal, **self.scope.describe())
