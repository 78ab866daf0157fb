"""A local Spark Connect server for the Spark engine's tests, started once per session from the pyspark wheel.

``start-connect-server.sh --master local[2]`` on a free loopback port, with its logs, pid file and
warehouse in a temporary folder; readiness is a bounded poll (a session answering ``SELECT 1``), and
the server is stopped at the end of the session whatever happened. Java 17 is on the machines that run
``make test``; a missing one fails the tests, with what was looked for. While developing, point
``FOCUS_API_TEST_SPARK_REMOTE`` at a server you keep running to skip the start (CI never sets it).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from serving import free_ports

from server.spark.local_server import environment, start_command

STARTUP_SECONDS = 120


@pytest.fixture(scope="session")
def spark_remote(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``sc://127.0.0.1:PORT`` of a running local Spark Connect server."""
    if reuse := os.environ.get("FOCUS_API_TEST_SPARK_REMOTE"):
        yield reuse
        return
    if shutil.which("java") is None:
        pytest.fail("the Spark engine's tests need Java 17 (java on PATH) for the local Spark Connect server")
    root = tmp_path_factory.mktemp("spark")
    (port,) = free_ports(1)
    env = environment(root, SPARK_NO_DAEMONIZE="1")  # the server is this process's child: its exit is seen
    args = start_command(root, port, "2g")
    log = (root / "server.log").open("wb")
    proc = subprocess.Popen(args, env=env, cwd=root, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    remote = f"sc://127.0.0.1:{port}"
    try:
        _wait_ready(remote, proc, root)
        yield remote
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()


def _wait_ready(remote: str, proc: subprocess.Popen[bytes], root: Path) -> None:
    from server.spark.session import connect
    from tools.errors import EngineUnavailable

    deadline = time.monotonic() + STARTUP_SECONDS
    while True:
        try:
            connect(remote, 10).stop()
            return
        except EngineUnavailable:
            log = (root / "server.log").read_text(errors="replace")[-3000:]
            if time.monotonic() > deadline:
                pytest.fail(f"the Spark Connect server did not start within {STARTUP_SECONDS} s:\n{log}")
            try:
                code = proc.wait(timeout=0.25)  # doubles as the retry interval
            except subprocess.TimeoutExpired:
                continue
            pytest.fail(f"the Spark Connect server exited with {code} before it was ready:\n{log}")
