"""What a tool handler receives besides its input: the source, exports, page tokens, limits and caller.

The call pipeline (``server/pipeline.py``) builds one per call, with the calling transport's page limits,
the caller's scope, the REST ``Idempotency-Key`` when one was sent, and the base URL that download links
are made from (transports, not the export service, decide where files are downloaded).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from tools.pagination import PageTokens
from tools.progress import Reporter
from tools.source import CostFilters, DataState, ExportFormat, Scope, Source

if TYPE_CHECKING:
    from tools.exports import ExportJob


@dataclass(frozen=True, slots=True)
class Limits:
    """Page-size rules of one transport, and an optional size budget for one result (MCP)."""

    default_page_size: int
    max_page_size: int
    result_budget_bytes: int | None = None
    transport: str = "REST"
    # Rows as arrays when the caller chose columns (tools/records.py shape_rows): a model reads every byte.
    compact_rows: bool = False


REST_LIMITS = Limits(default_page_size=1000, max_page_size=10_000, transport="REST")
MCP_LIMITS = Limits(
    default_page_size=100, max_page_size=1000, result_budget_bytes=256 * 1024, transport="MCP", compact_rows=True
)


@dataclass(frozen=True, slots=True)
class ExportRequest:
    filters: CostFilters
    format: ExportFormat
    include_contract_commitments: bool
    owner: str
    request: dict[str, object]
    idempotency_key: str | None = None
    # Only these Cost and Usage columns, in this order (None: all).
    columns: tuple[str, ...] | None = None
    # The FOCUS version of the files' columns.
    focus_version: str = "1.3"


class Exports(Protocol):
    """An export job service (owned by the server's lifespan). Jobs belong to the principal that started them;
    someone else's job is reported exactly like a missing one."""

    async def submit(self, request: ExportRequest) -> ExportJob: ...

    async def status(self, job_id: str, owner: str) -> ExportJob: ...

    async def wait(self, job_id: str, owner: str, timeout: float, report: Reporter | None = None) -> ExportJob:
        """The job once it is no longer Pending or Processing, or as it is after ``timeout`` seconds; an unknown
        job is NotFound at once. ``report`` hears the rows written at least once a second meanwhile."""
        ...


@dataclass(slots=True)
class ToolContext:
    source: Source
    exports: Exports
    tokens: PageTokens
    limits: Limits
    generator_version: str
    scope: Scope = field(default_factory=Scope)
    principal: str = "anonymous"
    idempotency_key: str | None = None
    # Where the REST facade serves files: download links are made from it.
    download_base: str = ""
    _state: DataState | None = None

    async def data_state(self) -> DataState:
        """The data version and last load, read once per call (every part of one answer agrees on it)."""
        if self._state is None:
            self._state = await self.source.data_state()
        return self._state

    def forget_state(self) -> None:
        """Read the data version again at the next ``data_state`` (the next page of a walk)."""
        self._state = None

    @property
    def data_version(self) -> str | None:
        """The version this call read, if it read one (for the audit line)."""
        return None if self._state is None else self._state.version
