"""The ``focus-api`` command line, run as the installed binary, and the Claude Desktop example config."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from conftest import GCP_12, ROOT
from mcp import Client, StdioServerParameters

from server.store.db import Store
from server.store.generations import LEGACY_FILE, Layout
from tools.registry import TOOLS

pytestmark = pytest.mark.slow

FOCUS_API = Path(sys.executable).parent / "focus-api"
DESKTOP_CONFIG = ROOT / "claude_desktop_config.example.json"
PLACEHOLDER = "/ABSOLUTE/PATH/TO/focus-api"
ROWS = 100  # rows in the AWS 1.3 Cost and Usage sample


def focus_api(*args: str | Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FOCUS_API_")}
    return subprocess.run([FOCUS_API, *args], capture_output=True, text=True, timeout=60, env=env)


def call(data_dir: Path, tool: str, arguments: str | None = None) -> subprocess.CompletedProcess[str]:
    args: list[str | Path] = ["call", tool, "--data-dir", data_dir]
    if arguments is not None:
        args += ["--json", arguments]
    return focus_api(*args)


def printed_json(done: subprocess.CompletedProcess[str]) -> Any:
    """stdout is exactly one JSON document (decimals parsed exactly)."""
    return json.loads(done.stdout, parse_float=Decimal)


def test_call_listcostandusage_prints_one_page_with_decimals_as_json_numbers(data_dir: Path) -> None:
    done = call(data_dir, "listcostandusage", '{"pageSize":3}')
    assert done.returncode == 0, done.stderr
    page = printed_json(done)
    assert len(page["data"]) == 3
    assert page["totalRecords"] == ROWS
    assert isinstance(page["nextPageToken"], str)
    assert all(isinstance(row["BilledCost"], Decimal | int) for row in page["data"])
    assert '"BilledCost":"' not in done.stdout, "a decimal was printed as a string"


@pytest.mark.parametrize(
    ("tool", "arguments", "code"),
    [
        ("listcostandusage", '{"pageSize":0}', "invalid_argument"),
        ("listcostandusage", "{not json", "invalid_argument"),
        ("nosuchtool", "{}", "unknown_tool"),
    ],
    ids=["page-size-0", "bad-json", "unknown-tool"],
)
def test_call_with_a_bad_request_prints_the_error_body_and_exits_non_zero(
    data_dir: Path, tool: str, arguments: str, code: str
) -> None:
    done = call(data_dir, tool, arguments)
    assert done.returncode != 0
    body = json.loads(done.stdout)
    assert set(body) == {"code", "message", "details"}
    assert body["code"] == code
    assert body["message"]


def test_call_exportcostandusage_waits_for_the_export_and_prints_a_complete_job(data_dir: Path) -> None:
    done = call(data_dir, "exportcostandusage", '{"format":"json"}')
    assert done.returncode == 0, done.stderr
    job = printed_json(done)
    assert job["status"] == "Complete"
    assert job["recordCount"] == ROWS
    (file,) = job["files"]
    (path,) = (p for p in data_dir.rglob(file["name"]) if p.parent.name == job["jobId"])
    content = path.read_bytes()
    assert len(content) == job["bytes"] == file["bytes"]
    assert hashlib.sha256(content).hexdigest() == job["sha256"] == file["sha256"]
    assert len(content.splitlines()) == ROWS  # JSON Lines, one record per line


def test_call_getschemametadata_describes_the_loaded_samples(data_dir: Path) -> None:
    done = call(data_dir, "getschemametadata")
    assert done.returncode == 0, done.stderr
    meta = printed_json(done)
    assert meta["focusVersion"] == "1.3"
    assert meta["loaded"]["costAndUsageRows"] == ROWS
    assert meta["loaded"]["demo"] is False
    assert meta["loaded"]["providers"] == ["AWS"]


def test_load_with_a_missing_path_says_so_and_exits_non_zero(tmp_path: Path) -> None:
    done = focus_api("load", "--data-dir", tmp_path / "data", tmp_path / "no-such-file.csv")
    assert done.returncode != 0
    assert "no-such-file.csv" in done.stderr


def test_a_data_dir_being_loaded_still_answers_from_its_current_data(data_dir: Path) -> None:
    holder = Store(data_dir)  # a load in progress
    try:
        done = call(data_dir, "getschemametadata")
    finally:
        holder.close()

    assert done.returncode == 0, done.stderr
    assert printed_json(done)["loaded"]["costAndUsageRows"] == ROWS


def test_a_second_load_waits_for_the_first_and_then_loads(data_dir: Path) -> None:
    holder = Store(data_dir)  # a load in progress
    env = {k: v for k, v in os.environ.items() if not k.startswith("FOCUS_API_")} | {"FOCUS_API_LOG_JSON": "true"}
    second = subprocess.Popen(
        [FOCUS_API, "load", "--json", "--data-dir", data_dir, GCP_12],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert second.stderr is not None
        waiting = second.stderr.readline()  # printed once the second load finds the lock taken
    finally:
        holder.close()
    out, err = second.communicate(timeout=120)

    assert "waiting for another load" in waiting
    assert second.returncode == 0, err
    assert json.loads(out)["rowsLoaded"] == 100
    assert "Traceback" not in err


def test_a_data_dir_of_an_earlier_release_moves_to_the_live_layout(tmp_path: Path, data_dir: Path) -> None:
    legacy = tmp_path / "legacy"
    legacy.mkdir()
    current = Layout(data_dir).current()
    assert current is not None
    shutil.copyfile(current, legacy / LEGACY_FILE)

    done = call(legacy, "getschemametadata")

    assert done.returncode == 0, done.stderr
    assert printed_json(done)["loaded"]["costAndUsageRows"] == ROWS
    assert not (legacy / LEGACY_FILE).exists() and Layout(legacy).current() is not None


# --- claude_desktop_config.example.json ------------------------------------------------------------------


def desktop_server() -> dict[str, Any]:
    config = json.loads(DESKTOP_CONFIG.read_text())
    (server,) = config["mcpServers"].values()
    assert set(server) <= {"command", "args", "env"}
    return server  # type: ignore[no-any-return]


def test_the_desktop_config_runs_the_checkouts_venv_focus_api_over_stdio() -> None:
    server = desktop_server()
    assert server["command"] == f"{PLACEHOLDER}/.venv/bin/focus-api"
    assert server["args"] == ["stdio"]


async def test_the_desktop_config_with_the_checkout_path_filled_in_serves_five_tools(data_dir: Path) -> None:
    server = desktop_server()
    command = Path(server["command"].replace(PLACEHOLDER, str(ROOT)))
    if not command.exists():
        pytest.fail(f"{command} does not exist: run the tests with `make test`, which creates .venv in the checkout")
    env = {**server.get("env", {}), "FOCUS_API_DATA_DIR": str(data_dir)}
    params = StdioServerParameters(command=str(command), args=server["args"], env=env)
    async with Client(params, mode="legacy") as client:  # the handshake desktop hosts use today
        tools = (await client.list_tools()).tools
    assert len(tools) == len(TOOLS)
