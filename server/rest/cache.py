"""A bounded in-memory cache of REST answers to read-only GET requests, keyed by the data version.

An answer of a read-only tool is a pure function of the caller (name and scope), the validated arguments
and the data version (page tokens are deterministic, completeness is fixed per load), so the bytes of a
200 answer can be served again until the data changes: dashboards repeat the same pages. Entries are
evicted least recently used beyond ``max_bytes``; concurrent misses on one key compute it once (the others
wait and then read the cache; if the first fails, each computes its own answer). Errors are never cached.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable

import anyio


class ResponseCache:
    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.bytes = 0
        self.hits = 0
        self.misses = 0
        self._entries: OrderedDict[Hashable, bytes] = OrderedDict()
        self._inflight: dict[Hashable, anyio.Event] = {}

    @property
    def enabled(self) -> bool:
        return self.max_bytes > 0

    def stats(self) -> dict[str, int]:
        return {"entries": len(self._entries), "bytes": self.bytes, "hits": self.hits, "misses": self.misses}

    async def fetch(self, key: Hashable, compute: Callable[[], Awaitable[bytes]]) -> bytes:
        """The cached bytes for ``key``, or ``compute()``'s (stored when they fit)."""
        if not self.enabled:
            return await compute()
        while True:
            body = self._entries.get(key)
            if body is not None:
                self._entries.move_to_end(key)
                self.hits += 1
                return body
            pending = self._inflight.get(key)
            if pending is None:
                break
            await pending.wait()
        self.misses += 1
        done = self._inflight[key] = anyio.Event()
        try:
            body = await compute()
            self._store(key, body)
            return body
        finally:
            del self._inflight[key]
            done.set()

    def _store(self, key: Hashable, body: bytes) -> None:
        if len(body) > self.max_bytes // 4:  # one huge page must not flush everything else
            return
        previous = self._entries.pop(key, None)
        self.bytes += len(body) - (len(previous) if previous is not None else 0)
        self._entries[key] = body
        while self.bytes > self.max_bytes:
            _, evicted = self._entries.popitem(last=False)
            self.bytes -= len(evicted)
