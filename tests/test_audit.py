"""The audit trail: one JSON line per tool call on stderr, from every transport, naming who asked what.

A real server (stderr is a file, not a terminal, so lines are JSON) is called over REST and MCP; each call
must leave exactly one ``tool_call`` line with its principal, transport, arguments, rows, status and data
version, and refused requests an ``access`` line with the reason; no token, nor its hash, in any line.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from serving import SMALL_DEMO_ROWS, Server, copy_store, demo_dir, serving

pytestmark = pytest.mark.slow
TOKEN = "audit-test-token-0123456789"


def lines(server: Server, event: str) -> list[dict[str, Any]]:
    found = []
    for line in server.log_text().splitlines():
        if line.startswith("{"):
            record = json.loads(line)
            if record.get("event") == event:
                found.append(record)
    return found


def test_every_call_leaves_one_json_audit_line_and_refusals_an_access_line(
    tmp_path_factory: pytest.TempPathFactory, tmp_path: Path
) -> None:
    data = copy_store(demo_dir(tmp_path_factory, SMALL_DEMO_ROWS), tmp_path / "data")
    with serving(data, tmp_path / "server.log", FOCUS_API_TOKENS=TOKEN) as server:
        auth = {"Authorization": f"Bearer {TOKEN}"}
        assert server.call("GET", "/cost-and-usage?providerName=AWS&pageSize=3", headers=auth).status == 200
        assert server.call("GET", "/cost-and-usage?pageSize=0", headers=auth).status == 400
        assert server.call("GET", "/cost-and-usage?pageSize=3").status == 401
        server.until(lambda: len(lines(server, "tool_call")) >= 2 or None, "two audit lines")
        server.until(lambda: lines(server, "access") or None, "the refusal's access line")
        calls = lines(server, "tool_call")
        refused = lines(server, "access")
    ok, invalid = calls[0], calls[1]
    assert ok["principal"] == "token-1" and ok["transport"] == "rest" and ok["tool"] == "listcostandusage"
    assert ok["arguments"] == {"providerName": "AWS", "pageSize": 3}
    assert ok["rows"] == 3 and ok["status"] == "ok" and ok["data_version"] and ok["duration_ms"] >= 0
    assert {"timestamp", "level"} <= set(ok)
    assert invalid["status"] == "invalid_argument" and invalid["rows"] == 0
    assert any(r["status"] == 401 and r["code"] == "unauthorized" and r["reason"] == "missing" for r in refused)
    text = server.log_text()
    assert TOKEN not in text and hashlib.sha256(TOKEN.encode()).hexdigest() not in text
