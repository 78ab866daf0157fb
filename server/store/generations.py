"""The live store's files: immutable DuckDB generations, the pointer to the current one, the writers' lock.

Why generations: DuckDB lets one process write a database file and then no other process open it, not even
to read. focus-api must load while any number of ``serve`` and ``stdio`` processes answer from the same data
dir, so nothing a reader has open is ever written:

- ``generations/gen-000007.duckdb`` is a complete store. Once published it never changes.
- ``CURRENT`` names the published generation. It is replaced atomically (write, fsync, rename, fsync the
  folder): a reader sees the old name or the new one, never half a file.
- A writer (``load``, ``demo``, a schema upgrade) takes ``locks/write.lock`` (``flock``, exclusive; one
  writer at a time, the others wait), copies the current generation to the next number (the kernel copies:
  ~0.1 s for the 270 MB of 1M rows, so a load's cost follows what it loads), writes into the copy,
  checkpoints it and publishes it. A writer that fails or is killed never publishes: the next writer deletes
  every unpublished file.
- Readers open the current generation read-only and, when ``CURRENT`` changes, the new one. An old
  generation is deleted by the next writer even while a reader still has it open: on POSIX the open file
  stays readable until closed, so in-flight queries finish on the snapshot they started on.

The layout keeps the door open for a cluster engine: a generation is a plain DuckDB file that can be
exported to Parquet per dataset and billing period without coordinating with the readers.
"""

from __future__ import annotations

import fcntl
import os
import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import duckdb
import structlog

log = structlog.get_logger(__name__)

LEGACY_FILE = "focus.duckdb"  # the single-file store of releases before the live store
_GENERATION = re.compile(r"^gen-(\d{6,})\.duckdb$")


@dataclass(frozen=True, slots=True)
class Layout:
    """Where the live store's files are under one data dir."""

    data_dir: Path

    @property
    def folder(self) -> Path:
        return self.data_dir / "generations"

    @property
    def pointer(self) -> Path:
        return self.data_dir / "CURRENT"

    @property
    def locks(self) -> Path:
        return self.data_dir / "locks"

    def prepare(self) -> None:
        for folder in (self.folder, self.locks):
            folder.mkdir(parents=True, exist_ok=True)

    def current(self) -> Path | None:
        """The published generation, or None before the first one."""
        try:
            name = self.pointer.read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            return None
        if not _GENERATION.match(name):
            raise RuntimeError(f"{self.pointer} names {name!r}, which is not a generation file")
        return self.folder / name

    def pointer_stamp(self) -> tuple[int, int] | None:
        """A cheap fingerprint of ``CURRENT`` (inode, mtime): it changes with every publish."""
        try:
            st = os.stat(self.pointer)
        except FileNotFoundError:
            return None
        return (st.st_ino, st.st_mtime_ns)

    def numbers(self) -> list[int]:
        found = (_GENERATION.match(p.name) for p in self.folder.iterdir()) if self.folder.exists() else iter(())
        return sorted(int(m.group(1)) for m in found if m)

    def next_path(self) -> Path:
        numbers = self.numbers()
        return self.folder / f"gen-{(numbers[-1] + 1 if numbers else 1):06d}.duckdb"

    @contextmanager
    def writing(self) -> Iterator[None]:
        """Hold the writers' lock (waiting for another writer to finish)."""
        self.prepare()
        with open(self.locks / "write.lock", "a+b") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                log.info("waiting for another load of this data dir to finish", data_dir=str(self.data_dir))
                fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def adopt_legacy(self) -> None:
        """A data dir of an earlier release (one ``focus.duckdb``) becomes generation 1. Under the lock."""
        legacy = self.data_dir / LEGACY_FILE
        if self.current() is None and legacy.exists():
            # Raises DuckDB's "Conflicting lock" while a process of an earlier release still has it open;
            # opening it also replays and checkpoints a WAL it left.
            duckdb.connect(str(legacy)).close()
            target = self.folder / "gen-000001.duckdb"
            os.replace(legacy, target)
            self.publish(target)
            log.info("data dir moved to the live store layout", generation=target.name)

    def start(self, target: Path) -> None:
        """Begin a generation at ``target``: a copy of the current one (or nothing, for the first)."""
        base = self.current()
        if base is not None:
            shutil.copyfile(base, target)

    def publish(self, generation: Path) -> None:
        """Point ``CURRENT`` at ``generation``, atomically and durably."""
        _fsync(generation)
        staged = self.pointer.with_name("CURRENT.next")
        with open(staged, "w", encoding="utf-8") as f:
            f.write(generation.name + "\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(staged, self.pointer)
        _fsync_dir(self.data_dir)

    def collect_garbage(self, keep: Path | None = None) -> int:
        """Delete every generation but the current one (and ``keep``): old ones, and unpublished ones left
        by a failed or killed writer. Under the lock. Readers that still have one open keep reading it."""
        current = self.current()
        removed = 0
        for number in self.numbers():
            path = self.folder / f"gen-{number:06d}.duckdb"
            if path in (current, keep):
                continue
            for leftover in (path, path.with_name(path.name + ".wal")):
                leftover.unlink(missing_ok=True)
            removed += 1
        return removed


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
