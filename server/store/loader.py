"""``focus-api load``: ingest FOCUS CSV/Parquet exports into the store, checked, normalised to 1.3.

Each file is checked row by row against the catalog and written in one transaction: a bad file is
refused whole with a report and nothing of it is stored. A file goes one of two ways:

- direct (every file first): one statement reads the file, converts every column strictly, checks
  every row rule on the way (a breaking row raises through ``error()``), sorts and inserts. One pass
  over the data, one sort; this is what a clean file costs.
- checked (only when the direct statement failed, or the header is wrong): the file is staged as-is
  in a temp table, every rule is counted over all rows in one aggregate, and the report names each
  problem with its rule id, count and example rows. A file with no problem there is written from the
  stage.

The same rules (``ingest_rules``) decide both ways, so both accept exactly the same files.

Normalisation of older files to FOCUS 1.3:
- columns a file's version does not define are added as NULL (they did not exist for the writer);
- ``ServiceProviderName`` (absent before 1.3) takes ``ProviderName``, which it replaces;
- ``HostProviderName`` (absent before 1.3) takes ``ProviderName`` when the publisher is the provider
  itself (``PublisherName`` equal to it or its leading words, e.g. "Google" for "Google Cloud"): a
  first-party service runs on the provider's own infrastructure. For a third-party publisher (a
  marketplace resale) a pre-1.3 row does not say who hosts the service, so it stays NULL, which the
  column allows;
- custom ``x_`` columns are kept (added to the table as text).

Re-deliveries replace: the unit of replacement is an invoice scope, (InvoiceIssuerName,
BillingAccountId, BillingPeriodStart). Rows of a scope loaded by an earlier ``load`` run are deleted
when a file of a later run carries that scope; files of one run (the parts of one delivery) add up.
Contract Commitment rows are replaced by ContractCommitmentId.
"""

from __future__ import annotations

import csv
import glob
import gzip
import hashlib
import io
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb

from server.store.db import Store, utc_now
from server.store.ingest_rules import ENFORCED_BY_CONVERSION, Rule, WrongType, convert, period_rule, rules_for
from server.store.schema import CC_SORT_KEY, CC_TABLE, CU_SORT_KEY, CU_TABLE, quote
from tools.catalog import (
    Catalog,
    Dataset,
    contract_commitment,
    cost_and_usage,
    cost_and_usage_ids_at,
    detect_version,
    is_custom_column,
)

SUFFIXES = (".csv", ".csv.gz", ".parquet")
MAX_EXAMPLES = 5


@dataclass
class Problem:
    rule: str
    message: str
    column: str | None = None
    count: int = 1
    examples: list[dict[str, Any]] = field(default_factory=list)

    def as_json(self, file: str) -> dict[str, Any]:
        return {
            "file": file,
            "rule": self.rule,
            "column": self.column,
            "count": self.count,
            "message": self.message,
            "examples": self.examples,
        }


@dataclass
class FileReport:
    file: str
    status: str = "refused"  # loaded | refused | skipped
    dataset: str | None = None
    focus_version: str | None = None
    rows: int = 0
    replaced_rows: int = 0
    problems: list[Problem] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "status": self.status,
            "dataset": self.dataset,
            "focusVersion": self.focus_version,
            "rows": self.rows,
            "replacedRows": self.replaced_rows,
            "errors": [p.as_json(self.file) for p in self.problems],
        }


@dataclass
class LoadSummary:
    files: list[FileReport]

    @property
    def ok(self) -> bool:
        return all(f.status != "refused" for f in self.files)

    def as_json(self) -> dict[str, Any]:
        versions = sorted({f.focus_version for f in self.files if f.focus_version})
        return {
            "files": [f.as_json() for f in self.files],
            "rowsLoaded": sum(f.rows for f in self.files if f.status == "loaded"),
            "rowsRejected": sum(f.rows for f in self.files if f.status == "refused"),
            "focusVersion": versions[0] if len(versions) == 1 else ("mixed" if versions else None),
            "storedFocusVersion": "1.3",
            "errors": [p.as_json(f.file) for f in self.files for p in f.problems],
        }


class Refused(Exception):
    def __init__(self, *problems: Problem) -> None:
        super().__init__(problems[0].message if problems else "refused")
        self.problems = list(problems)


def expand_paths(patterns: Iterable[str]) -> list[Path]:
    """Files named by PATH arguments: files, folders (searched recursively) and globs, in a stable order."""
    found: list[Path] = []
    for pattern in patterns:
        path = Path(pattern)
        if path.is_dir():
            found.extend(sorted(p for p in path.rglob("*") if p.is_file() and p.name.lower().endswith(SUFFIXES)))
        elif path.is_file():
            found.append(path)
        else:
            matches = sorted(Path(m) for m in glob.glob(pattern, recursive=True))
            files = [m for m in matches if m.is_file()]
            if not files:
                raise FileNotFoundError(f"no file matches {pattern!r}")
            found.extend(files)
    # The same file named twice (or through a symlink) loads once; reports keep the name it was given.
    unique: dict[Path, Path] = {}
    for p in found:
        unique.setdefault(p.resolve(), p.absolute())
    return list(unique.values())


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _csv_header(path: Path) -> list[str]:
    opener = gzip.open if path.name.lower().endswith(".gz") else open
    try:
        with opener(path, "rb") as raw:
            first = raw.readline(1 << 20)
    except (OSError, EOFError) as exc:
        raise Refused(Problem("unreadable_file", f"cannot read the file: {exc}")) from exc
    if not first.strip():
        raise Refused(Problem("empty_file", "the file is empty: a FOCUS CSV needs a header row and data rows"))
    try:
        text = first.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise Refused(Problem("encoding", f"the header is not UTF-8 ({exc.reason}); save the file as UTF-8")) from exc
    return next(csv.reader(io.StringIO(text)))


def _detect_dataset(columns: set[str]) -> Dataset:
    if "ChargeCategory" in columns or "BilledCost" in columns:
        return Dataset.COST_AND_USAGE
    if "ContractCommitmentId" in columns:
        return Dataset.CONTRACT_COMMITMENT
    raise Refused(
        Problem(
            "unknown_dataset",
            "the columns match neither FOCUS dataset: Cost and Usage files carry ChargeCategory and "
            "BilledCost, Contract Commitment files carry ContractCommitmentId",
        )
    )


class _Retry(Exception):
    """The direct load met something it does not report on: redo the file the checked way."""


class _FileLoad:
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

    # -- the header -----------------------------------------------------------------------------

    def read_header(self, cur: duckdb.DuckDBPyConnection) -> None:
        """The file's columns and their types (CSV: all text); refuses unreadable files."""
        if self.parquet:
            try:
                described = cur.execute(f"DESCRIBE SELECT * FROM read_parquet({_literal(str(self.path))})").fetchall()
            except duckdb.Error as exc:
                raise Refused(Problem("unreadable_file", f"not a readable Parquet file: {_first_line(exc)}")) from exc
            self.columns = [str(r[0]) for r in described]
            self.types = {str(r[0]): str(r[1]) for r in described}
        else:
            self.columns = _csv_header(self.path)
            if len(set(self.columns)) != len(self.columns):
                dup = sorted({c for c in self.columns if self.columns.count(c) > 1})
                raise Refused(Problem("duplicate_column", f"the header repeats columns: {', '.join(dup)}"))
            self.types = dict.fromkeys(self.columns, "VARCHAR")

    def source(self, *, rejects: bool = False) -> str:
        """The file as a relation of its own columns plus ``_row`` (1-based data row number)."""
        path = _literal(str(self.path))
        if self.parquet:
            return (
                f"(SELECT file_row_number + 1 AS _row, * EXCLUDE (file_row_number) "
                f"FROM read_parquet({path}, file_row_number=true))"
            )
        spec = "{" + ", ".join(f"{_literal(c)}: 'VARCHAR'" for c in self.columns) + "}"
        log = ""
        if rejects:
            log = f", store_rejects=true, rejects_table='{self.rejects}', rejects_scan='{self.rejects}_scan'"
        # Without store_rejects the reader raises at the first malformed row or invalid UTF-8.
        return (
            f"(SELECT row_number() OVER () AS _row, * FROM read_csv({path}, header=true, auto_detect=false, "
            f"delim=',', quote='\"', escape='\"', columns={spec}, encoding='utf-8'{log}))"
        )

    def header_problems(self, catalog: Catalog, version: str) -> list[Problem]:
        present = set(self.columns)
        problems = []
        missing = _mandatory_missing(catalog, present, version)
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
        pairs = (
            [("BillingPeriodStart", "BillingPeriodEnd"), ("ChargePeriodStart", "ChargePeriodEnd")]
            if catalog.dataset is Dataset.COST_AND_USAGE
            else [
                ("ContractPeriodStart", "ContractPeriodEnd"),
                ("ContractCommitmentPeriodStart", "ContractCommitmentPeriodEnd"),
            ]
        )
        rules.extend(r for s, e in pairs if (r := period_rule(s, e, self.types)) is not None)
        return rules

    # -- the checked path: stage, check every rule, report ---------------------------------------

    def stage_file(self, cur: duckdb.DuckDBPyConnection) -> None:
        try:
            cur.execute(f"CREATE TEMP TABLE {self.stage} AS SELECT * FROM {self.source(rejects=True)}")
        except duckdb.Error as exc:
            raise Refused(Problem("unreadable_file", f"the file could not be parsed: {_first_line(exc)}")) from exc
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
        exprs = []
        for column in catalog.columns:
            if column.id in present:
                exprs.append(convert(column, self.types[column.id]))
            elif column.id == "ServiceProviderName" and "ProviderName" in present:
                exprs.append(convert(catalog["ProviderName"], self.types["ProviderName"]))
            elif column.id == "HostProviderName" and {"ProviderName", "PublisherName"} <= present:
                provider = convert(catalog["ProviderName"], self.types["ProviderName"])
                publisher = convert(catalog["PublisherName"], self.types["PublisherName"])
                exprs.append(
                    f"CASE WHEN {publisher} = {provider} OR starts_with({provider}, {publisher} || ' ') "
                    f"THEN {provider} END"
                )
            else:
                exprs.append("NULL")
        return exprs

    def write(
        self, cur: duckdb.DuckDBPyConnection, catalog: Catalog, rows: str, guard: list[Rule], prior_loads: list[int]
    ) -> None:
        """Insert ``rows`` (the file, or its stage), sorted, then replace what this delivery re-delivers.

        Every ``guard`` rule is evaluated on the way: a row that breaks one makes the statement fail
        (``error()``), as does a value the strict conversions cannot convert; the caller then takes the
        checked path, which reports. One pass over the rows, one sort, one write.
        """
        custom = [c for c in self.columns if is_custom_column(c)]
        table = CU_TABLE if catalog.dataset is Dataset.COST_AND_USAGE else CC_TABLE
        for name in custom:
            cur.execute(f"ALTER TABLE {table} ADD COLUMN IF NOT EXISTS {quote(name)} VARCHAR")
            cur.execute("INSERT OR IGNORE INTO custom_columns VALUES (?, ?)", [catalog.dataset.value, name])
        exprs = self.select_list(catalog, set(self.columns))
        names = [quote(c.id) for c in catalog.columns] + [quote(c) for c in custom]
        values = exprs + [f"CAST({quote(c)} AS VARCHAR)" for c in custom]
        sort_key = CU_SORT_KEY if catalog.dataset is Dataset.COST_AND_USAGE else CC_SORT_KEY
        typed = {c.id: e for c, e in zip(catalog.columns, exprs, strict=True)}
        order = ", ".join(f"{typed[k]} NULLS LAST" for k in sort_key) + ", _row"
        load_id = str(self.load_id)
        if guard:
            broken = " OR ".join(r.condition for r in guard)
            load_id = f"CASE WHEN {broken} THEN error('a row breaks a FOCUS rule') ELSE {load_id} END"

        base_row = cur.execute(f"SELECT coalesce(max(_row_id), 0) FROM {table}").fetchone()
        assert base_row is not None
        # _row_id numbers the rows in the sort order: the streaming row_number() keeps its input's order.
        inserted = cur.execute(
            f"INSERT INTO {table} (_row_id, _load_id, {', '.join(names)}) "
            f"SELECT {int(base_row[0])} + row_number() OVER (), * FROM "
            f"(SELECT {load_id}, {', '.join(values)} FROM {rows} ORDER BY {order})"
        ).fetchone()
        self.report.rows = int(inserted[0]) if inserted else 0
        if self.report.rows == 0:
            raise _Retry

        keep = ", ".join(str(i) for i in [*prior_loads, self.load_id])
        this = f"_load_id = {self.load_id}"
        if catalog.dataset is Dataset.COST_AND_USAGE:
            scope = "InvoiceIssuerName, BillingAccountId, BillingPeriodStart"
            deleted = cur.execute(
                f"DELETE FROM {table} WHERE ({scope}) IN (SELECT DISTINCT {scope} FROM {table} WHERE {this}) "
                f"AND _load_id NOT IN ({keep})"
            ).fetchone()
        else:
            deleted = cur.execute(
                f"DELETE FROM {table} WHERE ContractCommitmentId IN "
                f"(SELECT ContractCommitmentId FROM {table} WHERE {this}) AND _load_id NOT IN ({keep})"
            ).fetchone()
        self.report.replaced_rows = int(deleted[0]) if deleted else 0
        if catalog.dataset is Dataset.COST_AND_USAGE:
            # Periods wholly replaced by this delivery must not linger in the statistics.
            cur.execute(
                "DELETE FROM billing_periods WHERE (BillingPeriodStart, BillingPeriodEnd) NOT IN "
                f"(SELECT DISTINCT BillingPeriodStart, BillingPeriodEnd FROM {CU_TABLE})"
            )
            cur.execute(
                "INSERT OR REPLACE INTO billing_periods "
                f"SELECT DISTINCT BillingPeriodStart, BillingPeriodEnd, ? FROM {CU_TABLE} WHERE {this}",
                [utc_now()],
            )

    # -- the two paths --------------------------------------------------------------------------

    def load_direct(self, cur: duckdb.DuckDBPyConnection, catalog: Catalog, version: str, prior: list[int]) -> None:
        """Read, check, sort and write the file in one statement; _Retry when anything is amiss."""
        if self.header_problems(catalog, version):
            raise _Retry
        rules = self.rules(catalog)
        # The strict conversions raise on exactly the rows these rules flag: no need to test them twice.
        guard = [r for r in rules if r.id not in ENFORCED_BY_CONVERSION]
        try:
            self.write(cur, catalog, self.source(), guard, prior)
        except duckdb.InterruptException:
            raise
        except duckdb.Error as exc:
            raise _Retry from exc

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


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def _mandatory_missing(catalog: Catalog, present: set[str], version: str) -> list[str]:
    if catalog.dataset is Dataset.CONTRACT_COMMITMENT:
        return [c.id for c in catalog.columns if c.is_mandatory and c.id not in present]
    defined = cost_and_usage_ids_at(version)
    return [c.id for c in catalog.columns if c.is_mandatory and c.id in defined and c.id not in present]


def load_files(
    store: Store,
    paths: list[Path],
    *,
    demo: bool = False,
    on_progress: Callable[[int, int, FileReport], None] | None = None,
) -> LoadSummary:
    """Load each file in its own transaction; files of one call form one delivery (see module doc)."""
    delivery_id = uuid.uuid4().hex
    reports: list[FileReport] = []
    seen_digests: set[str] = set()
    delivery_loads: list[int] = []
    for index, path in enumerate(paths):
        report = _load_one(store, path, delivery_id, delivery_loads, seen_digests, demo)
        reports.append(report)
        if on_progress is not None:
            on_progress(index + 1, len(paths), report)
    return LoadSummary(reports)


def _load_one(
    store: Store, path: Path, delivery_id: str, delivery_loads: list[int], seen: set[str], demo: bool
) -> FileReport:
    digest = _sha256(path)
    if digest in seen:
        report = FileReport(file=str(path), status="skipped")
        report.problems.append(Problem("duplicate_file", "the same content was already loaded in this run"))
        return report
    seen.add(digest)
    cur = store.cursor()
    row = cur.execute("SELECT coalesce(max(load_id), 0) + 1 FROM loads").fetchone()
    assert row is not None
    job = _FileLoad(store, path, delivery_id, int(row[0]), demo)
    try:
        cur.execute("BEGIN TRANSACTION")
        job.read_header(cur)
        present = set(job.columns)
        dataset = _detect_dataset(present)
        catalog = cost_and_usage() if dataset is Dataset.COST_AND_USAGE else contract_commitment()
        version = detect_version(present) if dataset is Dataset.COST_AND_USAGE else "1.3"
        job.report.dataset, job.report.focus_version = dataset.value, version
        try:
            job.load_direct(cur, catalog, version, delivery_loads)
        except _Retry:
            # Something is wrong with the file (or the direct path cannot tell): the checked path
            # finds and reports every problem, or loads the file when there is none.
            cur.execute("ROLLBACK")
            job.report.rows = job.report.replaced_rows = 0
            cur.execute("BEGIN TRANSACTION")
            job.load_checked(cur, catalog, version, delivery_loads)
        cur.execute(
            "INSERT INTO loads VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                job.load_id,
                delivery_id,
                dataset.value,
                str(path),
                digest,
                version,
                job.report.rows,
                job.report.replaced_rows,
                utc_now(),
                demo,
            ],
        )
        Store.bump_data_version(cur)
        cur.execute(f"DROP TABLE IF EXISTS {job.stage}")
        cur.execute("COMMIT")
        job.report.status = "loaded"
        delivery_loads.append(job.load_id)
    except Refused as refused:
        cur.execute("ROLLBACK")
        job.report.problems.extend(refused.problems)
    except BaseException:
        cur.execute("ROLLBACK")
        raise
    finally:
        for table in (job.stage, job.rejects, f"{job.rejects}_scan"):
            cur.execute(f"DROP TABLE IF EXISTS {table}")
        cur.close()
    return job.report
