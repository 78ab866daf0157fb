"""Answers that follow from the data version alone, computed once per version and kept until it changes.

A store's data changes only by publishing a new data version (a DuckDB generation, a Spark publish), so
anything read from the bookkeeping tables (custom columns, the last load, billing periods and their
statuses, commitment links) and a filter's row count is the same until the version moves. Reading them
once per version instead of once per call is what keeps a page to its own query: on Spark each bookkeeping
read is a cluster job (~100 ms), on DuckDB a few hundred microseconds of planning.

The version itself is still read for every call, so a load or a scope change is seen at the next call:
a different scope is a different key, a new version empties the memo.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any, TypeVar

T = TypeVar("T")


class VersionMemo:
    """A bounded, thread-safe map from (data version, key) to a computed value; one version at a time."""

    def __init__(self, size: int = 1024) -> None:
        self.size = size
        self._version: int | None = None
        self._items: OrderedDict[Hashable, Any] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, version: int, key: Hashable, compute: Callable[[], T]) -> T:
        """The value of ``key`` at ``version``: the kept one, or ``compute()`` kept for the next caller.

        Two threads missing the same key both compute it (the value is the same); holding the lock while a
        query runs would serialise every worker behind the slowest one.
        """
        with self._lock:
            if self._version != version:
                self._version = version
                self._items.clear()
            elif key in self._items:
                self._items.move_to_end(key)
                value: T = self._items[key]
                return value
        value = compute()
        with self._lock:
            if self._version == version:  # a newer version moved in meanwhile: this value is stale
                self._items[key] = value
                while len(self._items) > self.size:
                    self._items.popitem(last=False)
        return value

    def peek(self, version: int, key: Hashable) -> tuple[bool, Any]:
        """(True, value) when ``key`` is kept for ``version``; (False, None) otherwise. Never computes."""
        with self._lock:
            if self._version == version and key in self._items:
                return True, self._items[key]
        return False, None

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)
