"""The local cache: a unit's objects streamed to ``DATA_DIR/cache/<sync>/`` for DuckDB to read as local files.

DuckDB's httpfs extension cannot be installed offline, and the loader's checks read a file several times, so
the network stays here: each object is streamed in ``CHUNK``-sized reads (memory per download is bounded by
the chunk, not the file), a few at a time. The folder is the sync's own and is removed when it ends; a
process killed mid-sync leaves one behind, which the next sync of the data dir removes (``sweep``), under
the writers' lock every sync holds.
"""

from __future__ import annotations

import queue
import shutil
import threading
import uuid
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import TypeVar

from obstore import exceptions as obx

from server.cloud.objects import ObjectMeta, ObjectSource

_Item = TypeVar("_Item")


def _run_all(work: Callable[[_Item], None], items: list[_Item], concurrency: int) -> None:
    """``work`` on every item, ``concurrency`` at a time, in daemon threads; the first failure is raised.

    Daemon threads (not a ThreadPoolExecutor, whose workers the interpreter joins at exit): a server shut down
    mid-sync exits at once, and the sync it cut short publishes nothing (``server.cloud.background``).
    """
    pending: queue.SimpleQueue[_Item] = queue.SimpleQueue()
    for item in items:
        pending.put(item)
    failures: list[BaseException] = []

    def worker() -> None:
        while not failures:
            try:
                item = pending.get_nowait()
            except queue.Empty:
                return
            try:
                work(item)
            except BaseException as exc:
                failures.append(exc)

    threads = [
        threading.Thread(target=worker, name="focus-api-fetch", daemon=True)
        for _ in range(min(concurrency, len(items)))
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failures:
        raise failures[0]


class ObjectChanged(Exception):
    """An object was rewritten between its listing and its download: a delivery is landing; read it again."""


class Cache:
    """One sync's download folder (a context manager that removes it)."""

    def __init__(self, data_dir: Path, concurrency: int) -> None:
        self.root = data_dir / "cache"
        self.folder = self.root / uuid.uuid4().hex
        self.concurrency = max(1, concurrency)
        self._count = 0

    def sweep(self) -> None:
        """Folders of earlier syncs killed before their cleanup (the caller holds the writers' lock)."""
        if self.root.is_dir():
            for old in self.root.iterdir():
                if old != self.folder:
                    shutil.rmtree(old, ignore_errors=True)

    def __enter__(self) -> Cache:
        self.sweep()
        self.folder.mkdir(parents=True, exist_ok=True)
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)

    def fetch(self, source: ObjectSource, files: tuple[ObjectMeta, ...]) -> dict[Path, str]:
        """Download ``files`` (checked against their listed ETags); local path -> object URL, in their order."""
        targets = []
        for meta in files:
            self._count += 1
            name = meta.key.rsplit("/", 1)[-1]
            targets.append((meta, self.folder / f"{self._count:05d}-{name}"))

        def one(item: tuple[ObjectMeta, Path]) -> None:
            meta, target = item
            try:
                source.download(meta.key, target, meta.etag or None)
            except obx.PreconditionError:
                raise ObjectChanged(source.url.url(meta.key)) from None

        _run_all(one, targets, self.concurrency)
        return {target: source.url.url(meta.key) for meta, target in targets}

    def release(self, paths: list[Path]) -> None:
        """A loaded unit's files are not needed again: free their disk before the next unit downloads."""
        for path in paths:
            path.unlink(missing_ok=True)
