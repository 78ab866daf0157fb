"""A file's header as the normalising load reads it: the CSV dialect, and which store column each file column feeds.

- Dialect: the delimiter (``,``, ``;``, tab or ``|``) is the one that splits the header into the most
  fields; a UTF-8 byte order mark and CRLF line ends are read as such; ``.gz`` files are decompressed.
- Columns: FOCUS 1.3 names are kept; FOCUS 1.0-preview names (OCI's and Azure's 1.0-preview exports) map
  to their 1.0 names; a name differing from a FOCUS name only by case or surrounding spaces (Glue/Athena
  lower-cases them) maps to it; any other name without the ``x_`` prefix is kept as ``x_<Name>``. Nothing
  is dropped, and every mapping is reported.
"""

from __future__ import annotations

import csv
import gzip
import io
from dataclasses import dataclass
from pathlib import Path

import duckdb

from server.store.load_report import Conversion, Problem
from server.store.schema import literal
from tools.catalog import Catalog, columns_at, is_custom_column

DELIMITERS = (",", ";", "\t", "|")
# FOCUS 1.0-preview -> 1.0 (the notes on real exports, section 4.2). ChargeSubcategory has no 1.0
# column (its values moved to CommitmentDiscountStatus and ChargeClass): it is kept as x_ChargeSubcategory.
PREVIEW_NAMES = {
    "Provider": "ProviderName",
    "Publisher": "PublisherName",
    "InvoiceIssuer": "InvoiceIssuerName",
    "Region": "RegionId",
    "UsageQuantity": "ConsumedQuantity",
    "UsageUnit": "ConsumedUnit",
}


class HeaderRefused(Exception):
    def __init__(self, problem: Problem) -> None:
        super().__init__(problem.message)
        self.problem = problem


@dataclass(frozen=True, slots=True)
class CsvHeader:
    names: list[str]
    delimiter: str


def read_csv_header(path: Path, delimiters: tuple[str, ...] = DELIMITERS) -> CsvHeader:
    opener = gzip.open if path.name.lower().endswith(".gz") else open
    try:
        with opener(path, "rb") as raw:
            first = raw.readline(1 << 20)
    except (OSError, EOFError) as exc:
        raise HeaderRefused(Problem("unreadable_file", f"cannot read the file: {exc}")) from exc
    if not first.strip():
        raise HeaderRefused(Problem("empty_file", "the file is empty: a FOCUS CSV needs a header row and data rows"))
    try:
        text = first.decode("utf-8-sig").rstrip("\r\n")
    except UnicodeDecodeError as exc:
        raise HeaderRefused(
            Problem("encoding", f"the header is not UTF-8 ({exc.reason}); save the file as UTF-8")
        ) from exc
    best = max(delimiters, key=lambda d: len(next(csv.reader(io.StringIO(text), delimiter=d))))
    return CsvHeader(next(csv.reader(io.StringIO(text), delimiter=best)), best)


def map_columns(names: list[str], catalog: Catalog) -> tuple[list[tuple[str, str]], list[Conversion]]:
    """(file column, store column) pairs and the renamings made; refuses two columns that would collide."""
    present = {n.strip() for n in names}
    by_lower = {c.id.lower(): c.id for c in catalog.columns}
    pairs: list[tuple[str, str]] = []
    notes: list[Conversion] = []
    for name in names:
        clean = name.strip()
        if clean in catalog or is_custom_column(clean):
            target = clean
        elif clean in PREVIEW_NAMES and PREVIEW_NAMES[clean] not in present:
            target = PREVIEW_NAMES[clean]
        elif clean.lower() in by_lower and by_lower[clean.lower()] not in present:
            target = by_lower[clean.lower()]
        else:
            target = "x_" + clean
        if target != name:
            kind = "column_kept_as_custom" if target == "x_" + clean else "column_renamed"
            notes.append(Conversion(kind, target, 0, {"from": name, "to": target}))
        pairs.append((name, target))
    targets = [t for _, t in pairs]
    clashes = sorted({t for t in targets if targets.count(t) > 1})
    if clashes:
        raise HeaderRefused(
            Problem(
                "duplicate_column",
                f"the header repeats columns (after mapping names to FOCUS 1.3): {', '.join(clashes)}",
            )
        )
    return pairs, notes


def dataset_hint(names: list[str]) -> set[str]:
    """The names as the dataset detection should see them (case and spaces aside, preview names mapped)."""
    out = set()
    for n in names:
        clean = n.strip()
        out.add(PREVIEW_NAMES.get(clean, clean))
        out.add(_DETECTED_BY.get(clean.lower(), clean))
    return out


# The columns dataset detection reads, by their lower-case spelling (Glue/Athena lower-case names).
_DETECTED_BY = {
    c.lower(): c
    for c in (
        "ChargeCategory",
        "BilledCost",
        "ContractCommitmentId",
        "BillingPeriodStatus",
        "InvoiceIssueStatus",
        "InvoiceDetailCreated",
        "PaymentTerms",
    )
}


def mandatory_missing(catalog: Catalog, present: set[str], version: str) -> list[str]:
    """Mandatory columns of the file's FOCUS version that it does not carry."""
    return [c.id for c in columns_at(catalog.dataset, version).columns if c.is_mandatory and c.id not in present]


def absent_columns(catalog: Catalog, present: set[str], version: str) -> list[str]:
    """Columns the file's FOCUS version defines that it leaves out (allowed unless Mandatory: 1.4 calls
    the choice DatasetConfiguration); they are stored as null."""
    return [c.id for c in columns_at(catalog.dataset, version).columns if c.id not in present]


class Refused(Exception):
    def __init__(self, *problems: Problem) -> None:
        super().__init__(problems[0].message if problems else "refused")
        self.problems = list(problems)


def first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def parquet_columns(cur: duckdb.DuckDBPyConnection, path: Path) -> dict[str, str]:
    """A Parquet file's columns and their DuckDB types, in file order; Refused when it cannot be read."""
    try:
        described = cur.execute(f"DESCRIBE SELECT * FROM read_parquet({literal(str(path))})").fetchall()
    except duckdb.Error as exc:
        raise Refused(Problem("unreadable_file", f"not a readable Parquet file: {first_line(exc)}")) from exc
    return {str(r[0]): str(r[1]) for r in described}


def refuse_repeated(names: list[str]) -> None:
    if len(set(names)) != len(names):
        dup = sorted({c for c in names if names.count(c) > 1})
        raise Refused(Problem("duplicate_column", f"the header repeats columns: {', '.join(dup)}"))
