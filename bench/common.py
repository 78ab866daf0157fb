"""Shared bench helpers: cached demo datasets, a served focus-api process, timing statistics."""

from __future__ import annotations

import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import duckdb

HERE = Path(__file__).resolve().parent
DATA = HERE / ".data"
FOCUS_API = Path(sys.executable).parent / "focus-api"
SECRET = "bench-page-token-secret"


def machine() -> str:
    return (
        f"{platform.node()} · {os.cpu_count()} cores · Python {platform.python_version()} · "
        f"duckdb {duckdb.__version__} · {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}"
    )


def demo_store(rows: int, seed: int = 42) -> Path:
    """A data dir holding the demo dataset of ``rows`` rows, generated once and cached (gitignored)."""
    path = DATA / f"demo-{rows}-{seed}"
    if (path / ".ready").exists():
        return path
    shutil.rmtree(path, ignore_errors=True)
    started = time.perf_counter()
    subprocess.run(
        [str(FOCUS_API), "demo", "--rows", str(rows), "--seed", str(seed), "--data-dir", str(path)], check=True
    )
    (path / ".ready").write_text(f"{time.perf_counter() - started:.1f}\n")
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class Server:
    """A running ``focus-api serve``: its REST base URL, its MCP endpoint and its process id."""

    rest: str
    mcp: str
    pid: int


@contextmanager
def served(data_dir: Path, *args: str, **extra_env: str) -> Iterator[tuple[str, str]]:
    """``focus-api serve`` on free loopback ports (plus ``args``, e.g. ``--upstream URL``); yields (rest_url, mcp_url)."""
    with server_process(data_dir, *args, **extra_env) as server:
        yield server.rest, server.mcp


@contextmanager
def server_process(data_dir: Path, *args: str, **extra_env: str) -> Iterator[Server]:
    """Like ``served``, but yields the ``Server`` (with its pid, e.g. to read its peak RSS)."""
    rest, mcp = free_port(), free_port()
    env = dict(os.environ, FOCUS_API_TOKEN_SECRET=SECRET, FOCUS_API_TOKENS="", FOCUS_API_LOG_LEVEL="warning")
    env.update(extra_env)
    proc = subprocess.Popen(
        [str(FOCUS_API), "serve", "--data-dir", str(data_dir), "--rest-port", str(rest), "--mcp-port", str(mcp), *args],
        env=env,
        stdout=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{rest}/healthz", timeout=1).read()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("focus-api serve did not start") from None
                time.sleep(0.2)
        yield Server(f"http://127.0.0.1:{rest}", f"http://127.0.0.1:{mcp}/mcp", proc.pid)
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def p50(samples: list[float]) -> float:
    return statistics.median(samples)


def store_file(data_dir: Path) -> Path:
    """The DuckDB file a data dir serves: its published generation (``server.store.generations``)."""
    from server.store.generations import LEGACY_FILE, Layout

    current = Layout(data_dir).current()
    return current if current is not None else data_dir / LEGACY_FILE


def focus_select(datetime: Callable[[str], str]) -> str:
    """The store's FOCUS 1.3 Cost and Usage columns as SELECT items: each date/time column's quoted name
    through ``datetime`` (returning an expression), JSON as text, the rest as stored."""
    from server.store.schema import quote
    from tools.catalog import DataType, cost_and_usage

    items = []
    for column in cost_and_usage().columns:
        c = quote(column.id)
        if column.data_type is DataType.DATETIME:
            items.append(f"{datetime(c)} AS {c}")
        elif column.data_type is DataType.JSON:
            items.append(f"CAST({c} AS VARCHAR) AS {c}")
        else:
            items.append(c)
    return ", ".join(items)


def working_copy(source: Path, name: str, *, fresh: bool = False) -> Path:
    """A private copy of ``source``'s store under ``bench/.data/<name>/`` (made once per generated dataset).

    The suite serves one copy and reads another straight with DuckDB (``store_file``), so both run side by
    side without sharing a file. The copy is a single-file store, which a server adopts as its first
    generation. ``fresh`` makes a new copy even when one exists (for a case that changes the data).
    """
    from server.store.generations import LEGACY_FILE

    target = DATA / name
    stamp = (source / ".ready").stat().st_mtime_ns
    marker = target / ".copied-from"
    if not fresh and marker.exists() and marker.read_text() == f"{source}@{stamp}":
        return target
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    shutil.copyfile(store_file(source), target / LEGACY_FILE)
    marker.write_text(f"{source}@{stamp}")
    return target


def peak_rss(pid: int) -> int:
    """Peak resident set size of a process in bytes (``VmHWM`` in /proc/<pid>/status; Linux)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmHWM for process {pid}")


def reset_peak_rss(pid: int) -> bool:
    """Start a new peak-RSS window for ``pid`` (``echo 5 > /proc/<pid>/clear_refs``); False if not allowed."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def git_commit() -> str:
    """The short commit of the checkout, with ``+dirty`` when the working tree has changes."""

    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], cwd=HERE.parent, capture_output=True, text=True, check=False)
        return done.stdout.strip()

    commit = git("rev-parse", "--short", "HEAD") or "unknown"
    return commit + ("+dirty" if git("status", "--porcelain", "--untracked-files=no") else "")
