"""pyproject.toml and the lock file agree, so `make` installs exactly what pyproject asks for.

``requirements-dev.lock`` pins every package (runtime and the dev extra, and everything they pull in) to one
version with its hashes; `make` installs from it with ``pip install --require-hashes``. When a dependency is
added, removed or its range changed in pyproject.toml, regenerate the lock with ``make lock`` (pip-compile
keeps every other pin as it is; ``make lock LOCK_FLAGS=--upgrade`` moves them all to the newest allowed).
"""

from __future__ import annotations

import re
import tomllib

from conftest import ROOT
from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

LOCK = ROOT / "requirements-dev.lock"
PROJECT = "focus-api (pyproject.toml)"  # how pip-compile names a requirement that pyproject itself asks for
PIN = re.compile(r"(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)==(?P<version>[^\s;\\]+)")


def declared() -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    return [Requirement(r) for r in [*project["dependencies"], *project["optional-dependencies"]["dev"]]]


def entries(text: str) -> list[tuple[str, str, str]]:
    """(name, version, the entry's whole text: hashes and `# via` lines) for each pin of a pip-compile file."""
    pins: list[tuple[str, str, str]] = []
    for block in re.split(r"\n(?=\S)", text):
        match = PIN.match(block.partition("\n")[0])
        if match:
            pins.append((canonicalize_name(match["name"]), match["version"], block))
        else:
            assert block.startswith("#") or not block.strip(), f"the lock has a line that is no pin: {block[:80]!r}"
    return pins


def test_every_pyproject_requirement_is_satisfied_by_an_exact_pin_of_the_lock() -> None:
    pins = {name: version for name, version, _ in entries(LOCK.read_text(encoding="utf-8"))}
    environment = default_environment()
    problems = []
    for req in declared():
        if req.marker is not None and not req.marker.evaluate(environment):
            continue
        version = pins.get(canonicalize_name(req.name))
        if version is None:
            problems.append(f"{req} is not in the lock")
        elif not req.specifier.contains(version, prereleases=True):
            problems.append(f"{req} is not satisfied by the locked {req.name}=={version}")
    assert not problems, "pyproject.toml and requirements-dev.lock disagree (run `make lock`):\n" + "\n".join(problems)


def test_the_lock_asks_for_exactly_what_pyproject_asks_for() -> None:
    top = {name for name, _, block in entries(LOCK.read_text(encoding="utf-8")) if PROJECT in block}
    wanted = {canonicalize_name(req.name) for req in declared()}
    assert top == wanted, (
        "the lock's top-level packages are not pyproject's (run `make lock`): "
        f"only in the lock {sorted(top - wanted)}, only in pyproject {sorted(wanted - top)}"
    )


def test_every_pin_carries_hashes() -> None:
    pins = entries(LOCK.read_text(encoding="utf-8"))
    assert pins
    unhashed = [name for name, _, block in pins if "--hash=sha256:" not in block]
    assert not unhashed, f"pins without hashes (pip install --require-hashes refuses them): {unhashed}"
