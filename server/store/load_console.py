"""``focus-api load`` on a terminal: a progress bar that moves within a file, then the report as a table.

The bar counts bytes (the files' sizes) and advances inside a file from DuckDB's own progress of the
running statement, so one 10 GB file moves too. It is drawn on stderr only when stderr is a terminal.
The report is a short table (what was refused, kept with a warning, or normalised, with the first
example of each) and a one-line verdict; on a pipe it is the same text without colour.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import duckdb
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from server.store.load_report import Conversion, FileReport, LoadSummary, kind_text
from server.store.loader import FileProgress

_POLL_SECONDS = 0.2


class BarProgress(FileProgress):
    """A rich progress bar over all files' bytes, fed from the running statement's progress."""

    def __init__(self, paths: list[Path], console: Console) -> None:
        self.sizes = [_size(p) for p in paths]
        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            DownloadColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=console,
            transient=True,
        )
        self.task = self.progress.add_task("loading", total=sum(self.sizes) or 1)
        self.done = 0
        self.index = 0
        self.step_name = "loading"
        self._stop = threading.Event()
        self._poller: threading.Thread | None = None

    def __enter__(self) -> BarProgress:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._halt()
        self.progress.stop()

    def started(self, path: Path, index: int, total: int, cursor: duckdb.DuckDBPyConnection) -> None:
        self.index = index
        self.step_name = "reading"
        self._describe(path, index, total)
        self._halt()
        self._stop.clear()
        self._poller = threading.Thread(target=self._poll, args=(cursor,), daemon=True)
        self._poller.start()

    def step(self, name: str) -> None:
        self.step_name = name

    def finished(self, report: FileReport) -> None:
        self._halt()
        self.done += self.sizes[self.index]
        self.progress.update(self.task, completed=self.done)

    def _describe(self, path: Path, index: int, total: int) -> None:
        self.progress.update(self.task, description=f"{index + 1}/{total} {escape(path.name)}")

    def _poll(self, cursor: duckdb.DuckDBPyConnection) -> None:
        best = 0.0
        while not self._stop.wait(_POLL_SECONDS):
            try:
                percent = float(cursor.query_progress())
            except duckdb.Error:
                continue
            if percent > 0:
                # A later pass over the same file (profile, insert) starts at 0 again: never move back.
                best = max(best, percent)
                here = self.done + self.sizes[self.index] * min(best, 100.0) / 100
                self.progress.update(self.task, completed=here)

    def _halt(self) -> None:
        self._stop.set()
        if self._poller is not None:
            self._poller.join()
            self._poller = None


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def print_report(summary: LoadSummary, console: Console) -> None:
    """Per file a status line and a table of what was refused, kept with a warning or normalised; the verdict."""
    for f in summary.files:
        colour = {"loaded": "green", "refused": "red", "skipped": "yellow"}.get(f.status, "white")
        extra = f"; {f.rejected_rows:,} rows quarantined to {f.rejects_file}" if f.rejected_rows else ""
        console.print(
            f"[{colour}]{f.status:8}[/] {escape(f.file)}: {f.rows:,} rows, FOCUS {f.focus_version} "
            f"{f.dataset or ''}{escape(extra)}".rstrip()
        )
        rows = _rows(f)
        if not rows:
            continue
        table = Table(show_header=True, header_style="bold", pad_edge=False, box=None, padding=(0, 2, 0, 2))
        for name in ("column", "what", "rows", "first example"):
            table.add_column(name, overflow="fold", justify="right" if name == "rows" else "left")
        for row in rows:
            table.add_row(*row)
        console.print(table)
    verdict = summary.verdict()
    console.print(f"[bold {'green' if summary.ok else 'red'}]{escape(verdict)}[/]")


def _rows(f: FileReport) -> list[tuple[str, str, str, str]]:
    rows = []
    for p in f.problems:
        example = _example(p.examples[0]) if p.examples else ""
        what = f"[red]refused: {escape(p.rule)}[/] ({escape(p.message)})"
        rows.append((escape(p.column or ""), what, f"{p.count:,}", example))
    # A kind met in many columns (a null spelling, typically) is one line, not one per column.
    by_kind: dict[str, list[Conversion]] = {}
    for c in f.conversions:
        by_kind.setdefault(c.kind, []).append(c)
    for kind, items in by_kind.items():
        style, label = ("yellow", "kept") if items[0].warning else ("green", "normalised")
        what = f"[{style}]{label}: {escape(kind)}[/] ({escape(kind_text(kind))})"
        groups = [items] if len(items) > 3 else [[c] for c in items]
        for group in groups:
            column = escape(group[0].column or "") if len(group) == 1 else f"{len(group)} columns"
            count = sum(c.count for c in group)
            rows.append((column, what, f"{count:,}" if count else "", _example(group[0].example)))
    return rows


def _example(example: dict[str, Any]) -> str:
    if "from" in example:
        return escape(f"{example['from']!r} -> {example['to']!r}")
    if "delimiter" in example:
        return escape(repr(example["delimiter"]))
    value = example.get("value")
    # A null spelling's example is the null it became: the reader does not keep which spelling it was.
    text = f"row {example.get('row')}: " + ("null" if value is None else repr(value))
    if "normalised" in example and example["normalised"] != example.get("value"):
        text += f" -> {example['normalised']!r}"
    return escape(text)
