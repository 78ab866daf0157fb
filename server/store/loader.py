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

import glob
import gzip
import hashlib
import json
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Literal

import duckdb

from server.store import normal_load
from server.store.db import Store, utc_now
from server.store.headers import HeaderRefused, dataset_hint, mandatory_missing, read_csv_header
from server.store.ingest_rules import ENFORCED_BY_CONVERSION, Rule, WrongType, convert, period_rule, rules_for
from server.store.load_report import Conversion, FileReport, LoadSummary, Problem
from server.store.normal_load import NormalLoad, Refused
from server.store.schema import quote
from server.store.writer import Insert, NothingInserted, insert, replace_earlier
from tools.catalog import (
    Catalog,
    Dataset,
    contract_commitment,
    cost_and_usage,
    detect_version,
    is_custom_column,
)

__all__ = ["Conversion", "FileReport", "LoadSummary", "Problem", "Refused", "expand_paths", "load_files"]

SUFFIXES = (".csv", ".csv.gz", ".parquet")
MAX_EXAMPLES = 5
OnBadRows = Literal["refuse", "quarantine"]


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
    """The digest of the file's content: after decompression, so a.csv and a.csv.gz are the same delivery."""
    digest = hashlib.sha256()
    opener = gzip.open if path.name.lower().endswith(".gz") else open
    try:
        with opener(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
    except (OSError, EOFError):
        # Not readable as gzip: the bytes themselves identify it (the load reports why it cannot be read).
        digest = hashlib.sha256(path.read_bytes())
    return digest.hexdigest()


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
        # The normalising load borrows stage_file to report a malformed CSV in its own dialect.
        self.delimiter = ","
        self.null_tokens = ""

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
            self.columns = read_csv_header(self.path, delimiters=(",",)).names
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
        custom = [(c, f"CAST({quote(c)} AS VARCHAR)") for c in self.columns if is_custom_column(c)]
        exprs = self.select_list(catalog, set(self.columns))
        broken = " OR ".join(r.condition for r in guard) if guard else None
        try:
            self.report.rows = insert(cur, Insert(catalog, rows, exprs, custom, guard=broken), self.load_id)
        except NothingInserted as exc:
            raise _Retry from exc
        self.report.replaced_rows = replace_earlier(cur, catalog, self.load_id, prior_loads)

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


class FileProgress:
    """What a caller (the CLI's progress bar) hears while a file loads: its size, then the cursor running it."""

    def started(self, path: Path, index: int, total: int, cursor: duckdb.DuckDBPyConnection) -> None:
        """A file begins; ``cursor.query_progress()`` tells how far its running statement is."""

    def step(self, name: str) -> None:
        """The file's load moved to another pass over it (profile, rejects, insert)."""

    def finished(self, report: FileReport) -> None:
        """The file is done (loaded, refused or skipped)."""


def load_files(
    store: Store,
    paths: list[Path],
    *,
    demo: bool = False,
    strict: bool = False,
    on_bad_rows: OnBadRows = "refuse",
    on_progress: Callable[[int, int, FileReport], None] | None = None,
    progress: FileProgress | None = None,
) -> LoadSummary:
    """Load each file in its own transaction; files of one call form one delivery (see module doc).

    ``strict``: every quirk of a real export is an error with its rule (the validator's view). Otherwise
    quirks are normalised exactly and reported; ``on_bad_rows`` decides what an unfixable row does: refuse
    its file whole (nothing stored), or quarantine it to a rejects file and load the rest.
    """
    delivery_id = uuid.uuid4().hex
    reports: list[FileReport] = []
    seen_digests: set[str] = set()
    delivery_loads: list[int] = []
    listener = progress or FileProgress()
    for index, path in enumerate(paths):
        report = _load_one(
            store,
            path,
            delivery_id,
            delivery_loads,
            seen_digests,
            demo,
            strict,
            on_bad_rows,
            listener,
            index,
            len(paths),
        )
        reports.append(report)
        listener.finished(report)
        if on_progress is not None:
            on_progress(index + 1, len(paths), report)
    return LoadSummary(reports)


def _load_one(
    store: Store,
    path: Path,
    delivery_id: str,
    delivery_loads: list[int],
    seen: set[str],
    demo: bool,
    strict: bool,
    on_bad_rows: OnBadRows,
    listener: FileProgress,
    index: int,
    total: int,
) -> FileReport:
    digest = _sha256(path)
    if digest in seen:
        report = FileReport(file=str(path), status="skipped")
        report.problems.append(
            Problem("duplicate_file", "the same content (after decompression) was already loaded in this run")
        )
        return report
    seen.add(digest)
    cur = store.cursor()
    # Progress of the running statement is kept per cursor, so the CLI can show movement inside one file.
    cur.execute("SET enable_progress_bar = true")
    cur.execute("SET enable_progress_bar_print = false")
    row = cur.execute("SELECT coalesce(max(load_id), 0) + 1 FROM loads").fetchone()
    assert row is not None
    load_id = int(row[0])
    job = _FileLoad(store, path, delivery_id, load_id, demo)
    listener.started(path, index, total, cur)
    temps = [job.stage, job.rejects, f"{job.rejects}_scan", f"rejected_{load_id}"]
    try:
        cur.execute("BEGIN TRANSACTION")
        if strict:
            version, dataset = _load_strict(cur, job, delivery_loads)
            report = job.report
        else:
            normal = NormalLoad(path, load_id, job.report, on_bad_rows == "quarantine", store.data_dir / "rejects")
            version, dataset = _load_normalising(cur, normal, job, delivery_loads, listener)
            report = normal.report
        cur.execute(
            "INSERT INTO loads (load_id, delivery_id, dataset, source, sha256, focus_version, rows, replaced_rows, "
            "loaded_at, demo, report) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                load_id,
                delivery_id,
                dataset.value,
                str(path),
                digest,
                version,
                report.rows,
                report.replaced_rows,
                utc_now(),
                demo,
                json.dumps(_history(report), default=str),
            ],
        )
        Store.bump_data_version(cur)
        cur.execute(f"DROP TABLE IF EXISTS {job.stage}")
        cur.execute("COMMIT")
        report.status = "loaded"
        delivery_loads.append(load_id)
    except Refused as refused:
        cur.execute("ROLLBACK")
        job.report.problems.extend(p for p in refused.problems if all(p is not q for q in job.report.problems))
        job.report.rejected_rows = 0
        job.report.rejects_file = None
    except HeaderRefused as refused:
        cur.execute("ROLLBACK")
        job.report.problems.append(refused.problem)
    except BaseException:
        cur.execute("ROLLBACK")
        raise
    finally:
        for table in temps:
            cur.execute(f"DROP TABLE IF EXISTS {table}")
        cur.close()
    return job.report


def _history(report: FileReport) -> dict[str, object]:
    """What the load history (getschemametadata) keeps of a loaded file."""
    return {
        "normalised": [c.as_json() for c in report.conversions],
        "rejectedRows": report.rejected_rows,
        "rejectsFile": report.rejects_file,
    }


def _catalog_of(present: set[str]) -> tuple[Dataset, Catalog]:
    dataset = _detect_dataset(present)
    return dataset, cost_and_usage() if dataset is Dataset.COST_AND_USAGE else contract_commitment()


def _load_strict(cur: duckdb.DuckDBPyConnection, job: _FileLoad, delivery_loads: list[int]) -> tuple[str, Dataset]:
    """Today's validator-strict load: every quirk is an error with its rule."""
    job.read_header(cur)
    present = set(job.columns)
    dataset, catalog = _catalog_of(present)
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
    return version, dataset


def _load_normalising(
    cur: duckdb.DuckDBPyConnection,
    normal: NormalLoad,
    job: _FileLoad,
    delivery_loads: list[int],
    listener: FileProgress,
) -> tuple[str, Dataset]:
    """The default load: see ``normal_load``. Refused (with the conversions found so far) or loaded."""
    normal.read_header(cur)
    dataset, catalog = _catalog_of(dataset_hint(normal.names))
    report = normal.report
    report.dataset = dataset.value
    version = normal.prepare(catalog, detect_version)
    report.focus_version = version
    rel = normal.relation(catalog, normal.source())
    listener.step("loading")
    try:
        report.rows = insert(cur, normal.insert_spec(catalog, rel, guard="_notes <> ''"), normal.load_id)
    except (duckdb.Error, NothingInserted) as exc:
        if isinstance(exc, duckdb.InterruptException):
            raise
        cur.execute("ROLLBACK")
        cur.execute("BEGIN TRANSACTION")
        listener.step("profiling")
        try:
            bad = normal.profile(cur, catalog)
        except duckdb.InterruptException:
            raise
        except duckdb.Error as parse_error:
            _csv_problems(cur, job, normal, parse_error)
        if report.rows == 0:
            raise Refused(Problem("empty_file", "the file has a header but no data rows")) from None
        if bad and not normal.quarantine:
            normal.type_conversions(cur)
            raise Refused(*report.problems) from None
        rejected = None
        if bad:
            listener.step("writing rejects")
            rejected = normal.write_rejects(cur, catalog, rel)
        listener.step("loading")
        where = "NOT contains(_notes, '!')" if bad else None
        try:
            report.rows = insert(cur, normal.insert_spec(catalog, rel, where=where), normal.load_id)
        except NothingInserted:
            raise Refused(
                Problem("no_good_rows", "every row of the file is refused: see the rejects", count=report.rows)
            ) from None
        report.problems.clear()
        report.replaced_rows = replace_earlier(cur, catalog, normal.load_id, delivery_loads)
        if rejected is not None:
            normal.finish_quarantine(cur, rejected)
        normal.type_conversions(cur)
        return version, dataset
    report.replaced_rows = replace_earlier(cur, catalog, normal.load_id, delivery_loads)
    normal.type_conversions(cur)
    return version, dataset


def _csv_problems(cur: duckdb.DuckDBPyConnection, job: _FileLoad, normal: NormalLoad, exc: duckdb.Error) -> None:
    """The file could not be read: name the malformed rows (the strict path's CSV report), or the reason."""
    if not normal.parquet:
        cur.execute("ROLLBACK")
        cur.execute("BEGIN TRANSACTION")
        job.columns, job.delimiter = normal.names, normal.delimiter
        job.null_tokens = f", nullstr={normal_load.NULL_TOKENS}, allow_quoted_nulls=false"
        job.stage_file(cur)
    raise Refused(Problem("unreadable_file", f"the file could not be read: {_first_line(exc)}")) from exc
