"""Opening the DuckDB store: one connection per process, a cursor per thread, and the metadata table.

DuckDB 2.x refuses (rather than waits) when two threads share one connection, so every worker thread
takes its own ``cursor()`` of the process-wide connection.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from server.store.schema import CC_TABLE, CU_TABLE, ddl

DB_FILE = "focus.duckdb"


class Store:
    """The embedded DuckDB database under a data directory."""

    def __init__(self, data_dir: Path, *, memory_limit: str | None = None, threads: int | None = None) -> None:
        self.data_dir = data_dir
        data_dir.mkdir(parents=True, exist_ok=True)
        tmp = data_dir / "tmp"
        tmp.mkdir(exist_ok=True)
        config: dict[str, str | bool | int | float | list[str]] = {"temp_directory": str(tmp)}
        # DuckDB's default (80 % of RAM) let a 10M-row load peak at 9.4 GB; a bounded pool spills instead.
        config["memory_limit"] = memory_limit or default_memory_limit()
        if threads:
            config["threads"] = threads
        self.con = duckdb.connect(str(data_dir / DB_FILE), config=config)
        # The progress bar prints to stdout, which is the MCP stdio channel.
        self.con.execute("SET enable_progress_bar = false")
        for statement in ddl():
            self.con.execute(statement)

    @property
    def path(self) -> Path:
        return self.data_dir / DB_FILE

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
        self.con.close()

    # -- metadata -------------------------------------------------------------------------------

    def get_meta(self, key: str, cur: duckdb.DuckDBPyConnection | None = None) -> str | None:
        row = (cur or self.con).execute("SELECT value FROM meta WHERE key = ?", [key]).fetchone()
        return None if row is None else str(row[0])

    @staticmethod
    def set_meta(cur: duckdb.DuckDBPyConnection, key: str, value: str) -> None:
        cur.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", [key, value])

    def data_version(self) -> int:
        """Bumped by every committed change of the data; page tokens are bound to it."""
        with self.open_cursor() as cur:
            return int(self.get_meta("data_version", cur) or 0)

    @classmethod
    def bump_data_version(cls, cur: duckdb.DuckDBPyConnection) -> int:
        row = cur.execute("SELECT value FROM meta WHERE key = 'data_version'").fetchone()
        version = int(row[0]) + 1 if row else 1
        cls.set_meta(cur, "data_version", str(version))
        return version

    def is_empty(self) -> bool:
        with self.open_cursor() as cur:
            row = cur.execute(
                f"SELECT (SELECT count(*) FROM {CU_TABLE}) + (SELECT count(*) FROM {CC_TABLE})"
            ).fetchone()
            return row is None or int(row[0]) == 0


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
