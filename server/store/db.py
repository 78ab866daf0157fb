"""Opening the DuckDB store: a writer (``Store``: load, demo) or a live reader (``LiveStore``: serve, stdio).

The files are immutable generations under the data dir (``server.store.generations`` says why and how).
``Store`` takes the writers' lock, starts the next generation as a copy of the current one, and on
``close`` checkpoints and publishes it when its data or schema changed (otherwise it is discarded).
``LiveStore`` opens the current generation read-only and moves to a newer one as soon as one is
published; queries running on the old one finish there (it stays open until its last cursor is done).

DuckDB 2.x refuses (rather than waits) when two threads share one connection, so every worker thread
takes its own cursor of the process-wide connection.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager, suppress
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

import duckdb

from server.store.generations import Layout
from server.store.processes import hold, is_held
from server.store.schema import CC_TABLE, CU_TABLE, ddl

SCHEMA_KEY = "schema_version"


def schema_version() -> str:
    """A fingerprint of the DDL: a generation made by another release is upgraded before it is served."""
    return hashlib.sha256("\n".join(ddl()).encode()).hexdigest()[:16]


Config = dict[str, str | bool | int | float | list[str]]


def _config(tmp: Path, memory_limit: str | None, threads: int | None) -> Config:
    config: Config = {"temp_directory": str(tmp)}
    # DuckDB's default (80 % of RAM) let a 10M-row load peak at 9.4 GB; a bounded pool spills instead.
    config["memory_limit"] = memory_limit or default_memory_limit()
    if threads:
        config["threads"] = threads
    return config


class SpillFolder:
    """A temp folder of one store object's own (DuckDB names its spill files alike in every instance).

    ``tmp/<id>.lock`` is held (``server.store.processes``) before ``tmp/<id>/`` exists, so a folder whose
    lock nobody holds belongs to a process that died (kill -9): ``sweep`` removes those.
    """

    def __init__(self, data_dir: Path) -> None:
        root = data_dir / "tmp"
        root.mkdir(parents=True, exist_ok=True)
        name = uuid.uuid4().hex
        self._lock_path = root / f"{name}.lock"
        self._lock: IO[bytes] | None = hold(self._lock_path)
        self.path = root / name
        self.path.mkdir()

    def remove(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)
        if self._lock is not None:
            self._lock_path.unlink(missing_ok=True)
            self._lock.close()
            self._lock = None

    @staticmethod
    def sweep(data_dir: Path) -> None:
        root = data_dir / "tmp"
        for entry in root.iterdir() if root.exists() else ():
            if entry.is_dir() and not is_held(root / f"{entry.name}.lock"):
                shutil.rmtree(entry, ignore_errors=True)


class StoreView:
    """What readers and writers share: metadata reads and counts over ``open_cursor``."""

    data_dir: Path

    @contextmanager
    def open_cursor(self) -> Iterator[duckdb.DuckDBPyConnection]:
        raise NotImplementedError
        yield  # pragma: no cover

    def lease(self) -> tuple[duckdb.DuckDBPyConnection, Callable[[], None]]:
        """A cursor and the function that gives it back (for a cursor closed in another thread)."""
        stack = ExitStack()
        cur = stack.enter_context(self.open_cursor())
        return cur, stack.close

    def get_meta(self, key: str, cur: duckdb.DuckDBPyConnection | None = None) -> str | None:
        if cur is None:
            with self.open_cursor() as own:
                return self.get_meta(key, own)
        row = cur.execute("SELECT value FROM meta WHERE key = ?", [key]).fetchone()
        return None if row is None else str(row[0])

    def data_version(self) -> int:
        """Bumped by every committed change of the data; page tokens are bound to it."""
        return int(self.get_meta("data_version") or 0)

    def version_of(self, cur: duckdb.DuckDBPyConnection) -> int:
        """The data version ``cur`` sees (a query here; a view of immutable files knows it without one)."""
        return int(self.get_meta("data_version", cur) or 0)

    def settled_version(self) -> int | None:
        """The data version a cursor opened now would see, when that is known without opening one."""
        return None

    def close(self) -> None:
        """Release what the view holds (files, connections)."""

    def is_empty(self) -> bool:
        with self.open_cursor() as cur:
            row = cur.execute(
                f"SELECT (SELECT count(*) FROM {CU_TABLE}) + (SELECT count(*) FROM {CC_TABLE})"
            ).fetchone()
            return row is None or int(row[0]) == 0


class Store(StoreView):
    """A writer of the data dir's store: the next generation, published by ``close`` (see module doc).

    One writer at a time per data dir: opening waits for another writer to close.
    """

    def __init__(self, data_dir: Path, *, memory_limit: str | None = None, threads: int | None = None) -> None:
        self.data_dir = data_dir
        self.layout = Layout(data_dir)
        self._lock: ExitStack | None = ExitStack()
        self._lock.enter_context(self.layout.writing())
        SpillFolder.sweep(data_dir)
        self._tmp = SpillFolder(data_dir)
        try:
            self.layout.adopt_legacy()
            self.layout.collect_garbage()
            self.path = self.layout.next_path()
            self.layout.start(self.path)
            self.con = duckdb.connect(str(self.path), config=_config(self._tmp.path, memory_limit, threads))
            # The progress bar prints to stdout, which is the MCP stdio channel.
            self.con.execute("SET enable_progress_bar = false")
            for statement in ddl():
                self.con.execute(statement)
            self._started = (self.get_meta("data_version"), self.get_meta(SCHEMA_KEY))
            self.con.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", [SCHEMA_KEY, schema_version()])
        except BaseException:
            self.abandon()
            raise

    def __enter__(self) -> Store:
        return self

    def __exit__(self, kind: type[BaseException] | None, *_: object) -> None:
        """Publish what was written, unless the block raised: then nothing of this generation is published."""
        if kind is None:
            self.close()
        else:
            self.abandon()

    def cursor(self) -> duckdb.DuckDBPyConnection:
        return self.con.cursor()

    @contextmanager
    def open_cursor(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A cursor of this thread's own, closed on exit (DuckDB refuses one shared between threads)."""
        cur = self.con.cursor()
        try:
            yield cur
        finally:
            cur.close()

    @contextmanager
    def transaction(self) -> Iterator[duckdb.DuckDBPyConnection]:
        cur = self.con.cursor()
        cur.execute("BEGIN TRANSACTION")
        try:
            yield cur
        except BaseException:
            cur.execute("ROLLBACK")
            raise
        else:
            cur.execute("COMMIT")
        finally:
            cur.close()

    def close(self) -> None:
        """Publish the generation when its data or schema changed (or it is the first); else discard it."""
        if self._lock is None:
            return
        try:
            changed = self.layout.current() is None or self._started != (
                self.get_meta("data_version"),
                schema_version(),
            )
            if changed:
                self.con.execute("CHECKPOINT")
            self.con.close()
            if changed:
                self.layout.publish(self.path)
            self.layout.collect_garbage()
        except BaseException:
            self.abandon()
            raise
        else:
            self._release()

    def _release(self) -> None:
        self._tmp.remove()
        if self._lock is not None:
            self._lock.close()
            self._lock = None

    def abandon(self) -> None:
        """Nothing of this generation is published: it is deleted, and the lock released."""
        con = getattr(self, "con", None)
        if con is not None:
            with suppress(duckdb.Error):
                con.close()
        path = getattr(self, "path", None)
        if path is not None and path != self.layout.current():
            for leftover in (path, path.with_name(path.name + ".wal")):
                leftover.unlink(missing_ok=True)
        self._release()

    # -- metadata (writers only) ----------------------------------------------------------------

    @staticmethod
    def set_meta(cur: duckdb.DuckDBPyConnection, key: str, value: str) -> None:
        cur.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", [key, value])

    @classmethod
    def bump_data_version(cls, cur: duckdb.DuckDBPyConnection) -> int:
        row = cur.execute("SELECT value FROM meta WHERE key = 'data_version'").fetchone()
        version = int(row[0]) + 1 if row else 1
        cls.set_meta(cur, "data_version", str(version))
        return version


class _Generation:
    """One open read-only generation and the cursors still using it."""

    def __init__(self, path: Path, config: Config) -> None:
        self.path = path
        self.con = duckdb.connect(str(path), read_only=True, config=config)
        self.con.execute("SET enable_progress_bar = false")
        # A published generation never changes (generations.py), so its data version is read once.
        row = self.con.execute("SELECT value FROM meta WHERE key = 'data_version'").fetchone()
        self.data_version = int(row[0]) if row else 0
        self.users = 0
        self.retired = False


class LiveStore(StoreView):
    """The data dir's current generation, read-only, following every publish (see module doc).

    Before the first generation exists (or when the current one was made by another release) a writer
    pass creates or upgrades it.
    """

    def __init__(self, data_dir: Path, *, memory_limit: str | None = None, threads: int | None = None) -> None:
        self.data_dir = data_dir
        self.layout = Layout(data_dir)
        self._tmp = SpillFolder(data_dir)
        self._config = _config(self._tmp.path, memory_limit, threads)
        self._limits = {"memory_limit": memory_limit, "threads": threads}
        self._lock = threading.Lock()
        self._stamp: tuple[int, int] | None = None
        self._versions: dict[int, int] = {}  # id of an open cursor -> its generation's data version
        self._generation = self._open_current()

    def _open_current(self) -> _Generation:
        """Open what ``CURRENT`` names, creating or upgrading it first when needed."""
        for _ in range(100):  # a writer may publish (and delete this one) between the read and the open
            self.layout.prepare()
            stamp = self.layout.pointer_stamp()
            path = self.layout.current()
            if path is None:
                Store(self.data_dir, **self._limits).close()  # type: ignore[arg-type]
                continue
            try:
                generation = _Generation(path, self._config)
            except duckdb.IOException:
                continue
            version = generation.con.execute("SELECT value FROM meta WHERE key = ?", [SCHEMA_KEY]).fetchone()
            if version is None or version[0] != schema_version():
                generation.con.close()
                Store(self.data_dir, **self._limits).close()  # type: ignore[arg-type]
                continue
            self._stamp = stamp
            return generation
        raise RuntimeError(f"could not open the current generation of {self.data_dir}")

    @property
    def path(self) -> Path:
        return self._generation.path

    def settled_version(self) -> int | None:
        """The open generation's version while ``CURRENT`` still names it (one stat); None after a publish,
        as opening the new generation is file I/O, for a worker thread."""
        stamp = self.layout.pointer_stamp()
        with self._lock:
            return self._generation.data_version if stamp == self._stamp else None

    def version_of(self, cur: duckdb.DuckDBPyConnection) -> int:
        with self._lock:
            known = self._versions.get(id(cur))
        return super().version_of(cur) if known is None else known

    def _follow(self) -> _Generation:
        """The generation to query now: the current one, opened when a newer one was published."""
        stamp = self.layout.pointer_stamp()
        with self._lock:
            if stamp == self._stamp:
                return self._generation
        fresh = self._open_current()
        with self._lock:
            old, self._generation = self._generation, fresh
            old.retired = True
            if old.users == 0:
                old.con.close()
        return fresh

    @contextmanager
    def open_cursor(self) -> Iterator[duckdb.DuckDBPyConnection]:
        generation = self._follow()
        with self._lock:
            generation.users += 1
            cur = generation.con.cursor()
            self._versions[id(cur)] = generation.data_version
        try:
            yield cur
        finally:
            with self._lock:
                del self._versions[id(cur)]
            cur.close()
            with self._lock:
                generation.users -= 1
                if generation.retired and generation.users == 0:
                    generation.con.close()

    def close(self) -> None:
        with self._lock:
            self._generation.retired = True
            if self._generation.users == 0:
                self._generation.con.close()
        self._tmp.remove()


def utc_now() -> datetime:
    """Now, as the naive UTC timestamp the store keeps."""
    return datetime.now(UTC).replace(tzinfo=None, microsecond=0)


def default_memory_limit() -> str:
    """Half of the machine's memory, at most 4 GiB, in DuckDB's notation (FOCUS_API_MEMORY_LIMIT overrides)."""
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        total = 8 * 2**30
    return f"{max(256, min(total // 2, 4 * 2**30) // 2**20)}MB"


def default_data_dir() -> Path:
    """A per-user data directory (XDG on Linux), used when no --data-dir / FOCUS_API_DATA_DIR is given."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "focus-api"
