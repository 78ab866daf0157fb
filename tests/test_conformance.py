"""The official MCP conformance suite against a live ``focus-api serve``.

A real server (REST and MCP streamable HTTP on free loopback ports, no tokens, as `make run` serves on
loopback: the suite sends no credentials) is loaded with the AWS 1.3 samples. Two releases of
``@modelcontextprotocol/conformance`` (installed by `make tools` under .tools/node, run on the Node 22 binary
beside them) test its /mcp URL:

- 0.1.16 ``server``: the active server scenarios on the 2025-11-25 wire;
- 0.2.0-alpha.12 ``server --requirements 2026-07-28``: the scenarios that 2026-07-28 requires, of which the ones
  named in the baseline count (stateless requests, caching hints, header validation, resource-not-found, DNS
  rebinding).

``conformance-baseline.yaml`` lists what may fail: only what needs the suite's own fixture server, plus, in a
section of its own, real server defects awaiting a fix. Any other failure fails the test, and so does a listed
entry that passes (the baseline drifted).
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import AWS_13, AWS_CC
from serving import FOCUS_API, Server, clean_env, node_env, node_tool, serving

pytestmark = pytest.mark.slow

BASELINE = Path(__file__).with_name("conformance-baseline.yaml")
CLI = {"0.1.16": "conformance-0.1/dist/index.js", "0.2.0-alpha.12": "conformance-0.2/dist/index.js"}
SUITE_SECONDS = 600  # the whole run takes seconds; this only bounds a hang
# One result folder per scenario: server-<scenario>-<ISO time with dashes>Z
RESULT_DIR = re.compile(r"^server-(?P<scenario>.+)-\d{4}-\d\d-\d\dT\d\d-\d\d-\d\d-\d+Z$")


@dataclass(frozen=True)
class Run:
    code: int
    output: str
    checks: dict[str, list[dict[str, Any]]]  # scenario -> its checks (id, status, errorMessage, ...)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    work = tmp_path_factory.mktemp("conformance")
    data_dir = work / "data"
    done = subprocess.run(
        [FOCUS_API, "load", "--data-dir", data_dir, AWS_13, AWS_CC],
        capture_output=True,
        text=True,
        timeout=120,
        env=clean_env(),
    )
    assert done.returncode == 0, done.stdout + done.stderr
    with serving(data_dir, work / "server.log") as running:
        yield running


def baseline(version: str) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(BASELINE.read_text(encoding="utf-8"))[version]
    return loaded


def expected(entry: dict[str, Any]) -> dict[str, str]:
    """Every baselined scenario or scenario/check, with its reason."""
    return {**(entry.get("fixture") or {}), **(entry.get("pending_server_fixes") or {})}


def run_suite(version: str, server: Server, work: Path, *args: str) -> Run:
    out = work / "results"
    done = subprocess.run(
        [*node_tool(CLI[version]), "server", "--url", server.mcp, "--output-dir", str(out), *args],
        capture_output=True,
        text=True,
        timeout=SUITE_SECONDS,
        cwd=work,
        env=node_env(HOME=str(work)),
    )
    checks: dict[str, list[dict[str, Any]]] = {}
    for folder in sorted(out.iterdir()) if out.is_dir() else []:
        match = RESULT_DIR.match(folder.name)
        if match and (folder / "checks.json").is_file():
            checks[match["scenario"]] = json.loads((folder / "checks.json").read_text(encoding="utf-8"))
    output = done.stdout + done.stderr
    assert checks, f"conformance {version} wrote no results (exit {done.returncode}):\n{output[-4000:]}"
    return Run(done.returncode, output, checks)


def compare(run: Run, allowed: dict[str, str], scenarios: list[str]) -> tuple[list[str], list[str], list[str]]:
    """(unexpected failures, baselined failures, baseline entries that no longer fail) over ``scenarios``."""
    unexpected: list[str] = []
    baselined: list[str] = []
    for scenario in scenarios:
        failed = [c for c in run.checks.get(scenario, []) if c.get("status") == "FAILURE"]
        for check in failed:
            key = f"{scenario}/{check.get('id')}"
            if scenario in allowed or key in allowed:
                baselined.append(key)
            else:
                unexpected.append(f"{key}: {check.get('errorMessage') or check.get('description')}")
    failing = {b.split("/", 1)[0] for b in baselined} | set(baselined)
    stale = [f"{entry} ({reason})" for entry, reason in allowed.items() if entry not in failing]
    return unexpected, baselined, stale


def verdict(version: str, run: Run, allowed: dict[str, str], scenarios: list[str]) -> None:
    missing = [s for s in scenarios if s not in run.checks]
    assert not missing, f"conformance {version} did not run {missing}:\n{run.output[-4000:]}"
    unexpected, baselined, stale = compare(run, allowed, scenarios)
    passed = [s for s in scenarios if all(c.get("status") != "FAILURE" for c in run.checks[s])]
    print(f"conformance {version}: {len(scenarios)} scenarios, {len(passed)} passed, {len(baselined)} baselined checks")
    problems = [f"unexpected failure: {u}" for u in unexpected]
    problems += [f"passes now, delete it from {BASELINE.name}: {s}" for s in stale]
    assert not problems, f"conformance {version}:\n" + "\n".join(problems)


def test_the_baseline_lists_only_fixture_scenarios_and_pending_fixes() -> None:
    for version in CLI:
        entry = baseline(version)
        assert set(entry) <= {"fixture", "pending_server_fixes", "scenarios"}, (version, sorted(entry))
        assert all(isinstance(reason, str) and reason for reason in expected(entry).values()), version
        fixture = entry.get("fixture") or {}
        assert all("fixture" in reason for reason in fixture.values()), "a fixture entry must name what it needs"


def test_conformance_0_1_server_scenarios_pass_but_for_the_baseline(server: Server, tmp_path: Path) -> None:
    version = "0.1.16"
    allowed = expected(baseline(version))
    assert all("/" not in entry for entry in allowed), "0.1.16 entries are whole scenarios"
    cli_baseline = tmp_path / "expected-failures.yaml"
    cli_baseline.write_text(yaml.safe_dump({"server": sorted(allowed)}), encoding="utf-8")
    run = run_suite(version, server, tmp_path, "--expected-failures", str(cli_baseline))
    verdict(version, run, allowed, sorted(run.checks))
    # The suite's own verdict on the same baseline (unexpected failures and stale entries both exit 1).
    assert run.code == 0, f"conformance {version} exited {run.code}:\n{run.output[-4000:]}"


def test_conformance_0_2_requirements_2026_07_28_pass_but_for_the_baseline(server: Server, tmp_path: Path) -> None:
    version = "0.2.0-alpha.12"
    entry = baseline(version)
    run = run_suite(version, server, tmp_path, "--requirements", "2026-07-28")
    # The run covers every scenario 2026-07-28 requires; only the ones named in the baseline count here.
    verdict(version, run, expected(entry), entry["scenarios"])
