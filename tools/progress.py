"""Progress of a long call, reported to whoever asked for it (MCP ``notifications/progress``).

A transport that can carry progress (MCP, when the request holds a progressToken) sets a reporter for the
duration of one call; handlers and sources read it with ``current()`` without it being threaded through
every signature (a context variable follows the call's task, and only that call's). With no reporter set,
reporting costs nothing and nothing is measured.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

# (progress, total or None, message): the arguments of an MCP progress notification.
Reporter = Callable[[float, float | None, str | None], Awaitable[None]]
_CURRENT: ContextVar[Reporter | None] = ContextVar("focus_api_progress", default=None)
# Reports of a waiting call come at least this often (the issue asks for at least once a second).
REPORT_INTERVAL_SECONDS = 0.5


def current() -> Reporter | None:
    """The reporter of the call running in this task, if its caller asked for progress."""
    return _CURRENT.get()


@contextmanager
def reporting(reporter: Reporter | None) -> Iterator[None]:
    """Make ``reporter`` the current one for the code run inside (one tool call)."""
    token = _CURRENT.set(reporter)
    try:
        yield
    finally:
        _CURRENT.reset(token)
