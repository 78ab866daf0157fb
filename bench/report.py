"""The suite's one table: a row per case, its target and PASS/FAIL, printed and written to bench/RESULTS.md.

A ``Row`` holds display text (units differ per case: ms, requests/s, rows/s, MiB) and the ratio that
decides the result; ``Row.failed_case`` stands in for a case that could not run, with the reason.
``write_results`` keeps one section per mode (quick, full) in RESULTS.md, so a quick run does not erase
the last full table.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Target:
    """``ratio <op> value``: ``<=`` for latencies, ``>=`` for throughputs, ``<`` for a memory ceiling."""

    op: str
    value: float
    label: str = ""

    def met(self, ratio: float) -> bool:
        if self.op == "<=":
            return ratio <= self.value
        if self.op == ">=":
            return ratio >= self.value
        if self.op == "<":
            return ratio < self.value
        raise ValueError(self.op)

    def text(self) -> str:
        return self.label or f"{self.op} {self.value:g}x"


@dataclass(frozen=True)
class Row:
    case: str
    ours_p50: str
    ours_p95: str
    reference: str
    ratio: float | None
    target: Target | None
    ratio_text: str = ""
    result: str = ""  # overrides PASS/FAIL (e.g. for answers that must agree)
    notes: list[str] = field(default_factory=list)

    @property
    def outcome(self) -> str:
        if self.result:
            return self.result
        if self.ratio is None or self.target is None:
            return "info"
        return "PASS" if self.target.met(self.ratio) else "FAIL"

    def cells(self) -> list[str]:
        ratio = self.ratio_text or (_ratio(self.ratio, self.target) if self.ratio is not None else "—")
        target = self.target.text() if self.target else "—"
        return [self.case, self.ours_p50, self.ours_p95, self.reference, ratio, target, self.outcome]

    @staticmethod
    def failed_case(case: str, reason: str) -> Row:
        return Row(case, "—", "—", "—", None, None, result="NOT RUN", notes=[f"{case}: not run: {reason}"])


def _ratio(ratio: float, target: Target | None) -> str:
    """Two decimals, or three where two would round across the target (0.697 is not 0.70)."""
    text = f"{ratio:.2f}"
    if target is not None and target.met(float(text)) != target.met(ratio):
        text = f"{ratio:.3f}"
    return text + "x"


def ms(seconds: float) -> str:
    return f"{seconds * 1000:,.1f} ms"


HEADER = ["case", "focus-api p50", "focus-api p95", "reference p50", "ratio", "target", "result"]


def table(rows: Sequence[Row]) -> str:
    lines = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    lines += ["| " + " | ".join(c.replace("|", "/") for c in row.cells()) + " |" for row in rows]
    return "\n".join(lines)


def render(title: str, context: str, rows: Sequence[Row], notes: Sequence[str]) -> str:
    body = [f"### {title}", "", context, "", table(rows)]
    all_notes = [*notes, *(n for row in rows for n in row.notes)]
    if all_notes:
        body += ["", *(f"- {n}" for n in all_notes)]
    passed = sum(r.outcome in ("PASS", "agree") for r in rows)
    failed = sum(r.outcome in ("FAIL", "DIFFER") for r in rows)
    body += ["", f"{passed} passed, {failed} failed, {len(rows) - passed - failed} other."]
    return "\n".join(body) + "\n"


PREAMBLE = """# Benchmark results

Written by `bench/suite.py` (`make bench-quick`, `make bench`); each run replaces its own section.
Ratios compare measurements taken side by side in the same run; absolute times drift on a shared
machine, so read the ratios. See bench/README.md for what each case measures.
"""


def write_results(path: Path, mode: str, section: str) -> None:
    """Replace (or add) the ``mode`` section of RESULTS.md, keeping the others."""
    start, end = f"<!-- suite:{mode}:start -->", f"<!-- suite:{mode}:end -->"
    block = f"{start}\n{section}{end}"
    text = path.read_text(encoding="utf-8") if path.exists() else PREAMBLE
    pattern = re.compile(re.escape(start) + ".*?" + re.escape(end), re.DOTALL)
    text = pattern.sub(lambda _: block, text) if pattern.search(text) else text.rstrip("\n") + f"\n\n{block}"
    path.write_text(text.rstrip("\n") + "\n", encoding="utf-8")
