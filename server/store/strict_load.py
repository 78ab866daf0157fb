"""The ``--strict`` load of one file: today's validator rules, every quirk of a real export an error.

A file goes one of two ways:

- direct (every file first): one statement reads the file, converts every column strictly, checks
  every row rule on the way (a breaking row raises through ``error()``), sorts and inserts. One pass
  over the data, one sort; this is what a clean file costs.
- checked (only when the direct statement failed, or the header is wrong): the file is staged as-is
  in a temp table, every rule is counted over all rows in one aggregate, and the report names each
  problem with its rule id, count and example rows. A file with no problem there is written from the
  stage.

The same rules (``ingest_rules``) decide both ways, so both accept exactly the same files. The
normalising load borrows ``stage_file`` to name the malformed rows of a CSV it cannot read.
"""

from __future__ import annotations

from pathlib import Path

import duckdb

from server.store import json_checks
from server.store.db import Store
from server.store.headers import (
    Refused,
    first_line,
    mandatory_missing,
    parquet_columns,
    read_csv_header,
    refuse_repeated,
)
from server.store.ingest_rules import (
    ENFORCED_BY_CONVERSION,
    PERIOD_PAIRS,
    Rule,
    WrongType,
    convert,
    period_rule,
    rules_for,
)
from server.store.load_report import FileReport, Problem
from server.store.schema import literal, quote
from server.store.writer import Insert, NothingInserted, derived, insert, replace_earlier
from tools.catalog import Catalog, DataType, is_custom_column

MAX_EXAMPLES = 5


class Retry(Exception):
    """The direct load met something it does not report on: redo the file the checked way."""


class FileLoad:
    """The load of one file: read its header, then load it directly or staged. Holds the per-file state."""

    def __init__(self, store: Store, path: Path, delivery_id: str, load_id: int, demo: bool) -> None:
        self.store = store
        self.path = path
        self.delivery_id = delivery_id
        self.load_id = load_id
        self.demo = demo
        self.stage = f"stage_{load_id}"
        self.rejects = f"rejects_{load_id}"
        self.report = FileReport(file=str(path))
        self.types: dict[str, str] = {}
        self.columns: list[str] = []
        self.parquet = path.name.lower().endswith(".parquet")
        # The normalising load borrows stage_file to report a malformed CSV in its own dialect.
        self.delimiter = ","
        self.null_tokens = ""

    # -- the header -----------------------------------------------------------------------------

    def read_header(self, cur: duckdb.DuckDBPyConnection) -> None:
        """The file's columns and their types (CSV: all text); refuses unreadable files."""
        if self.parquet:
            self.types = parquet_columns(cur, self.path)
            self.columns = list(self.types)
        else:
            self.columns = read_csv_header(self.path, delimiters=(",",)).names
            refuse_repeated(self.columns)
            self.types = dict.fromkeys(self.columns, "VARCHAR")

    def source(self, *, rejects: bool = False) -> str:
        """The file as a relation of its own columns plus ``_row`` (1-based data row number)."""
        path = literal(str(self.path))
        if self.parquet:
            return (
                f"(SELECT file_row_number + 1 AS _row, * EXCLUDE (file_row_number) "
                f"FROM read_parquet({path}, file_row_number=true))"
            )
        spec = "{" + ", ".join(f"{literal(c)}: 'VARCHAR'" for c in self.columns) + "}"
        log = ""
        if rejects:
            log = f", store_rejects=true, rejects_table='{self.rejects}', rejects_scan='{self.rejects}_scan'"
        # Without store_rejects the reader raises at the first malformed row or invalid UTF-8.
        return (
            f"(SELECT row_number() OVER () AS _row, * FROM read_csv({path}, header=true, auto_detect=false, "
            f"delim='{self.delimiter}', quote='\"', escape='\"', columns={spec}, encoding='utf-8'"
            f"{self.null_tokens}{log}))"
        )

    def header_problems(self, catalog: Catalog, version: str) -> list[Problem]:
        present = set(self.columns)
        problems = []
        missing = mandatory_missing(catalog, present, version)
        if missing:
            problems.append(
                Problem(
                    "missing_column",
                    f"mandatory FOCUS {version} columns are missing: {', '.join(missing)}",
                    count=len(missing),
                )
            )
        unknown = sorted(c for c in present if c not in catalog and not is_custom_column(c))
        if unknown:
            problems.append(
                Problem(
                    "unknown_column",
                    f"columns that are not FOCUS {catalog.dataset.value} columns: {', '.join(unknown)}; "
                    "custom columns must start with x_",
                    count=len(unknown),
                )
            )
        return problems

    def rules(self, catalog: Catalog) -> list[Rule]:
        """The row rules of the file's columns; raises Refused when a column's type cannot be converted."""
        rules: list[Rule] = []
        problems: list[Problem] = []
        for column_id in self.columns:
            if column_id not in catalog:
                continue
            try:
                convert(catalog[column_id], self.types[column_id])
            except WrongType as exc:
                problems.append(Problem("wrong_type", str(exc), column=column_id))
                continue
            rules.extend(rules_for(catalog[column_id], self.types[column_id]))
        if problems:
            raise Refused(*problems)
        pairs = PERIOD_PAIRS[catalog.dataset]
        rules.extend(r for s, e in pairs if (r := period_rule(s, e, self.types)) is not None)
        return rules

    # -- the checked path: stage, check every rule, report ---------------------------------------

    def stage_file(self, cur: duckdb.DuckDBPyConnection) -> None:
        try:
            cur.execute(f"CREATE TEMP TABLE {self.stage} AS SELECT * FROM {self.source(rejects=True)}")
        except duckdb.Error as exc:
            raise Refused(Problem("unreadable_file", f"the file could not be parsed: {first_line(exc)}")) from exc
        if not self.parquet:
            self._check_csv_rejects(cur)
        staged = cur.execute(f"SELECT count(*) FROM {self.stage}").fetchone()
        self.report.rows = int(staged[0]) if staged else 0

    def _check_csv_rejects(self, cur: duckdb.DuckDBPyConnection) -> None:
        rows = cur.execute(
            f"SELECT CAST(error_type AS VARCHAR), line, column_name, csv_line, error_message "
            f"FROM {self.rejects} ORDER BY line"
        ).fetchall()
        if not rows:
            return
        by_rule: dict[str, Problem] = {}
        # DuckDB logs one reject per missing column of a short row: count and show each row once.
        seen: set[tuple[str, int]] = set()
        for error_type, line, column, raw, message in rows:
            rule = "encoding" if error_type == "INVALID ENCODING" else "csv_structure"
            line_no = int(line) if line is not None else 0
            if (rule, line_no) in seen:
                continue
            seen.add((rule, line_no))
            text = (
                "the file is not valid UTF-8; save it as UTF-8"
                if rule == "encoding"
                else "rows must have one field per header column, RFC 4180 quoting"
            )
            problem = by_rule.setdefault(rule, Problem(rule, text, count=0))
            problem.count += 1
            if len(problem.examples) < MAX_EXAMPLES:
                problem.examples.append(
                    {"row": line_no - 1, "line": line_no, "column": column, "value": raw, "detail": message}
                )
        self.report.rows += len({line_no for _, line_no in seen})
        raise Refused(*by_rule.values())

    def check(self, cur: duckdb.DuckDBPyConnection, rules: list[Rule]) -> None:
        """Count every rule's breaking rows in one pass over the stage; refuses with examples."""
        if not rules:
            return
        counts = cur.execute(
            "SELECT " + ", ".join(f"count(*) FILTER (WHERE {r.condition})" for r in rules) + f" FROM {self.stage}"
        ).fetchone()
        assert counts is not None
        problems: list[Problem] = []
        for rule, count in zip(rules, counts, strict=True):
            if not count:
                continue
            examples = cur.execute(
                f"SELECT _row, CAST({quote(rule.column)} AS VARCHAR) FROM {self.stage} "
                f"WHERE {rule.condition} ORDER BY _row LIMIT {MAX_EXAMPLES}"
            ).fetchall()
            problems.append(
                Problem(
                    rule.id,
                    rule.message,
                    column=rule.column,
                    count=int(count),
                    examples=[{"row": int(r), "value": v} for r, v in examples],
                )
            )
        if problems:
            raise Refused(*problems)

    # -- writing --------------------------------------------------------------------------------

    def select_list(self, catalog: Catalog, present: set[str]) -> list[str]:
        def value(column_id: str) -> str:
            return convert(catalog[column_id], self.types[column_id])

        return [
            value(c.id) if c.id in present else derived(catalog.dataset, c.id, present, value) or "NULL"
            for c in catalog.columns
        ]

    def write(
        self, cur: duckdb.DuckDBPyConnection, catalog: Catalog, rows: str, guard: list[Rule], prior_loads: list[int]
    ) -> None:
        """Insert ``rows`` (the file, or its stage), sorted, then replace what this delivery re-delivers.

        Every ``guard`` rule is evaluated on the way: a row that breaks one makes the statement fail
        (``error()``), as does a value the strict conversions cannot convert; the caller then takes the
        checked path, which reports. One pass over the rows, one sort, one write.
        """
        custom = [(c, f"CAST({quote(c)} AS VARCHAR)") for c in self.columns if is_custom_column(c)]
        json_values = {
            c.id: convert(c, self.types[c.id]) for c in catalog.of_type(DataType.JSON) if c.id in self.columns
        }
        json_checks.check(cur, rows, json_values, catalog.dataset, self.report.focus_version or "")
        exprs = self.select_list(catalog, set(self.columns))
        broken = " OR ".join(r.condition for r in guard) if guard else None
        try:
            self.report.rows = insert(cur, Insert(catalog, rows, exprs, custom, guard=broken), self.load_id)
        except NothingInserted as exc:
            raise Retry from exc
        self.report.replaced_rows = replace_earlier(cur, catalog, self.load_id, prior_loads)

    # -- the two paths --------------------------------------------------------------------------

    def load_direct(self, cur: duckdb.DuckDBPyConnection, catalog: Catalog, version: str, prior: list[int]) -> None:
        """Read, check, sort and write the file in one statement; Retry when anything is amiss."""
        if self.header_problems(catalog, version):
            raise Retry
        rules = self.rules(catalog)
        # The strict conversions raise on exactly the rows these rules flag: no need to test them twice.
        guard = [r for r in rules if r.id not in ENFORCED_BY_CONVERSION]
        try:
            self.write(cur, catalog, self.source(), guard, prior)
        except duckdb.InterruptException:
            raise
        except duckdb.Error as exc:
            raise Retry from exc

    def load_checked(self, cur: duckdb.DuckDBPyConnection, catalog: Catalog, version: str, prior: list[int]) -> None:
        """Stage the file, check every rule over all rows and report every problem; write when clean."""
        self.stage_file(cur)
        problems = self.header_problems(catalog, version)
        if self.report.rows == 0:
            problems.append(Problem("empty_file", "the file has a header but no data rows"))
        if problems:
            raise Refused(*problems)
        rules = self.rules(catalog)
        self.check(cur, rules)
        self.write(cur, catalog, self.stage, [], prior)
