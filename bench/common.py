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
from collections.abc import Iterator
from contextlib import contextmanager
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


@contextmanager
def served(data_dir: Path, *args: str, **extra_env: str) -> Iterator[tuple[str, str]]:
    """``focus-api serve`` on free loopback ports (plus ``args``, e.g. ``--upstream URL``); yields (rest_url, mcp_url)."""
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
        yield f"http://127.0.0.1:{rest}", f"http://127.0.0.1:{mcp}/mcp"
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def p50(samples: list[float]) -> float:
    return statistics.median(samples)
