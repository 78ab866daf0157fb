"""``focus-api load``: ingest FOCUS CSV/Parquet exports of any dataset and version (1.0-1.4) into the store, checked.

A file's dataset (Cost and Usage, Contract Commitment, Billing Period, Invoice Detail) and FOCUS version
are read from its columns, never its name (``tools.catalog.detect_dataset`` / ``detect_version``); one
store holds files of every version side by side (old months 1.3, new ones 1.4). Rows are stored in the
store's layout (``tools.catalog.stored``), which spans 1.3 and 1.4.

Each file is loaded in one transaction: a refused file stores nothing. Two ways to load a file:

- normalising (the default, ``normal_load``): what real exports write is converted exactly to FOCUS
  and every conversion reported; a row that cannot be converted refuses its file, or with
  ``on_bad_rows="quarantine"`` goes to a rejects file while the other rows load;
- strict (``strict_load``): the validator's rules, every quirk an error with its rule id.

Normalisation of older files to FOCUS 1.3:
- columns a file's version does not define are added as NULL (they did not exist for the writer);
- ``ServiceProviderName`` (absent before 1.3) takes ``ProviderName``, which it replaces;
- ``HostProviderName`` (absent before 1.3) takes ``ProviderName`` when the publisher is the provider
  itself (``PublisherName`` equal to it or its leading words, e.g. "Google" for "Google Cloud"): a
  first-party service runs on the provider's own infrastructure. For a third-party publisher (a
  marketplace resale) a pre-1.3 row does not say who hosts the service, so it stays NULL, which the
  column allows;
- custom ``x_`` columns are kept (added to the table as text).

FOCUS 1.4 files:
- ``ProviderName`` and ``PublisherName`` (removed in 1.4) are derived so the 1.3 API keeps working:
  ProviderName = HostProviderName, or ServiceProviderName where no host is named (a direct purchase:
  both are the cloud; a marketplace resale: the host is the cloud that sold it, as 1.2's ProviderName
  was), PublisherName = ServiceProviderName (who made the service). Reported as ``provider_names_derived``;
- the JSON object columns must follow the official schemas (``json_checks``); 1.3 ContractApplied keys
  spelt ``ContractID`` / ``ContractCommitmentID`` are stored as ``...Id``;
- columns the version defines but the file leaves out (not Mandatory: a DatasetConfiguration choice) are
  stored as null and named in the report (``absentColumns``) and the load history.

Re-deliveries replace: rows of a scope loaded by an earlier ``load`` run are deleted when a file of a
later run carries that scope; files of one run (the parts of one delivery) add up. The scope per dataset
is in ``writer``: an invoice scope for Cost and Usage, the ContractCommitmentId, the Billing Period's
(issuer, start), the Invoice Detail's invoice.
"""

from __future__ import annotations

import glob
import gzip
import hashlib
import json
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Literal

import duckdb

from server.store import json_checks, normal_load
from server.store.db import Store, utc_now
from server.store.headers import HeaderRefused, Refused, absent_columns, dataset_hint, first_line
from server.store.load_report import Conversion, FileReport, LoadSummary, Problem
from server.store.normal_load import NormalLoad
from server.store.schema import quote
from server.store.strict_load import FileLoad, Retry
from server.store.writer import Delivery, NothingInserted, insert, replace_earlier
from tools.catalog import Catalog, Dataset, DataType, detect_dataset, detect_version, for_loading

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
    dataset = detect_dataset(columns)
    if dataset is None:
        raise Refused(
            Problem(
                "unknown_dataset",
                "the columns match no FOCUS dataset: Cost and Usage files carry ChargeCategory and BilledCost, "
                "Contract Commitment files ContractCommitmentId, Billing Period files BillingPeriodStatus, "
                "Invoice Detail files InvoiceIssueStatus",
            )
        )
    return dataset


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
    names: Mapping[Path, str] | None = None,
    protected: Sequence[int] = (),
) -> LoadSummary:
    """Load each file in its own transaction; files of one call form one delivery (see module doc).

    ``strict``: every quirk of a real export is an error with its rule (the validator's view). Otherwise
    quirks are normalised exactly and reported; ``on_bad_rows`` decides what an unfixable row does: refuse
    its file whole (nothing stored), or quarantine it to a rejects file and load the rest.
    ``names``: what reports and the load history call a file, when not its path (a cloud object's URL for
    its local cached copy). ``protected``: loads whose rows this delivery never replaces (``writer.Delivery``).
    """
    delivery_id = uuid.uuid4().hex
    reports: list[FileReport] = []
    seen_digests: set[str] = set()
    delivery_loads = Delivery()
    delivery_loads.protected = tuple(protected)
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
            (names or {}).get(path, str(path)),
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
    name: str,
) -> FileReport:
    digest = _sha256(path)
    if digest in seen:
        report = FileReport(file=name, status="skipped")
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
    job = FileLoad(store, path, delivery_id, load_id, demo)
    listener.started(path, index, total, cur)
    temps = [
        job.stage,
        job.rejects,
        f"{job.rejects}_scan",
        f"rejected_{load_id}",
        f"normalised_{load_id}",
        f"raw_{load_id}",
    ]
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
                name,
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
    job.report.file = name
    return job.report


def _history(report: FileReport) -> dict[str, object]:
    """What the load history (getschemametadata) keeps of a loaded file."""
    return {
        "absentColumns": report.absent_columns,
        "normalised": [c.as_json() for c in report.conversions],
        "rejectedRows": report.rejected_rows,
        "rejectsFile": report.rejects_file,
    }


def _described(report: FileReport, catalog: Catalog, version: str, present: set[str]) -> None:
    """What a loaded file left out (by configuration) and what the store derived for it."""
    report.absent_columns = absent_columns(catalog, present, version)
    removed = {"ProviderName", "PublisherName"}
    if catalog.dataset is Dataset.COST_AND_USAGE and version == "1.4" and not present & removed:
        rule = "ProviderName = coalesce(HostProviderName, ServiceProviderName); PublisherName = ServiceProviderName"
        report.conversions.append(Conversion("provider_names_derived", "ProviderName", report.rows, {"rule": rule}))


def _json_values(catalog: Catalog, present: set[str], value: Callable[[str], str]) -> dict[str, str]:
    return {c.id: value(c.id) for c in catalog.of_type(DataType.JSON) if c.id in present}


def _load_strict(cur: duckdb.DuckDBPyConnection, job: FileLoad, delivery_loads: list[int]) -> tuple[str, Dataset]:
    """Today's validator-strict load: every quirk is an error with its rule."""
    job.read_header(cur)
    present = set(job.columns)
    dataset = _detect_dataset(present)
    version = detect_version(present, dataset)
    catalog = for_loading(dataset, version)
    job.report.dataset, job.report.focus_version = dataset.value, version
    try:
        job.load_direct(cur, catalog, version, delivery_loads)
    except Retry:
        # Something is wrong with the file (or the direct path cannot tell): the checked path
        # finds and reports every problem, or loads the file when there is none.
        cur.execute("ROLLBACK")
        job.report.rows = job.report.replaced_rows = 0
        cur.execute("BEGIN TRANSACTION")
        job.load_checked(cur, catalog, version, delivery_loads)
    _described(job.report, catalog, version, present & set(catalog.ids))
    return version, dataset


def _load_normalising(
    cur: duckdb.DuckDBPyConnection,
    normal: NormalLoad,
    job: FileLoad,
    delivery_loads: list[int],
    listener: FileProgress,
) -> tuple[str, Dataset]:
    """The default load: see ``normal_load``. Refused (with the conversions found so far) or loaded."""
    normal.read_header(cur)
    dataset = _detect_dataset(dataset_hint(normal.names))
    report = normal.report
    report.dataset = dataset.value
    version, catalog = normal.prepare(dataset)
    report.focus_version = version
    present = {p.target for p in normal.plans}
    json_values = _json_values(catalog, present, quote)
    # A file whose first rows are clean is tried in one statement that fails at the first noted value.
    if normal.sample_is_clean(cur, catalog):
        listener.step("loading")
        rel = normal.relation(catalog, normal.source())
        json_checks.check(cur, rel, json_values, dataset, version)
        try:
            report.rows = insert(cur, normal.insert_spec(catalog, rel, guard="_noted"), normal.load_id)
        except duckdb.InterruptException:
            raise
        except (duckdb.Error, NothingInserted):
            cur.execute("ROLLBACK")
            cur.execute("BEGIN TRANSACTION")
        else:
            report.replaced_rows = replace_earlier(cur, catalog, normal.load_id, delivery_loads)
            normal.type_conversions(cur)
            _described(report, catalog, version, present)
            return version, dataset
    listener.step("normalising")
    try:
        staged = normal.stage(cur, catalog)
    except duckdb.InterruptException:
        raise
    except duckdb.Error as parse_error:
        _csv_problems(cur, job, normal, parse_error)
    listener.step("profiling")
    bad = normal.profile(cur, catalog, staged)
    if report.rows == 0:
        raise Refused(Problem("empty_file", "the file has a header but no data rows")) from None
    if bad and not normal.quarantine:
        normal.type_conversions(cur)
        raise Refused(*report.problems) from None
    json_checks.check(cur, f"(SELECT * FROM {staged} WHERE NOT _bad)", json_values, dataset, version)
    rejected = None
    if bad:
        listener.step("writing rejects")
        rejected = normal.write_rejects(cur, catalog, staged)
    listener.step("loading")
    where = "NOT _bad" if bad else None
    try:
        report.rows = insert(cur, normal.insert_spec(catalog, staged, where=where), normal.load_id)
    except NothingInserted:
        raise Refused(
            Problem("no_good_rows", "every row of the file is refused: see the rejects", count=report.rows)
        ) from None
    report.problems.clear()
    report.replaced_rows = replace_earlier(cur, catalog, normal.load_id, delivery_loads)
    if rejected is not None:
        normal.finish_quarantine(cur, rejected)
    normal.type_conversions(cur)
    cur.execute(f"DROP TABLE IF EXISTS {staged}")
    _described(report, catalog, version, present)
    return version, dataset


def _csv_problems(cur: duckdb.DuckDBPyConnection, job: FileLoad, normal: NormalLoad, exc: duckdb.Error) -> None:
    """The file could not be read: name the malformed rows (the strict path's CSV report), or the reason."""
    if not normal.parquet:
        cur.execute("ROLLBACK")
        cur.execute("BEGIN TRANSACTION")
        job.columns, job.delimiter = normal.names, normal.delimiter
        job.null_tokens = f", nullstr={normal_load.NULL_TOKENS}, allow_quoted_nulls=false"
        job.stage_file(cur)
    raise Refused(Problem("unreadable_file", f"the file could not be read: {first_line(exc)}")) from exc
