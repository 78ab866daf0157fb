"""The normalising load of one file (the default): real exports in, exact FOCUS 1.3 rows out, every change reported.

The file is read once per step, by DuckDB, with the per-column SQL of ``normalise``:

1. direct: one statement converts, sorts and inserts, and fails at the first value that is not already in
   its FOCUS form (a note). A clean file is done here, in one pass, as under ``--strict``.
2. profiled (when the first rows need normalising, or the direct statement failed): the file is converted
   once into a temp table of values and notes; one aggregate over it groups the rows by what was noted
   (one short code per column, e.g. ``datetime_space_no_zone``, ``null_token``, ``!decimal``) with counts
   and first rows; the first examples are read back; refusals are reported. With no refusal, or with
   ``--on-bad-rows quarantine``, the rows are inserted converted (the refused ones written to a rejects
   file in the data dir and their invoice scopes marked Partial).

Column-level conversions (Parquet types) are counted with one cheap aggregate over those columns.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb

from server.store.headers import (
    Refused,
    mandatory_missing,
    map_columns,
    parquet_columns,
    read_csv_header,
    refuse_repeated,
)
from server.store.ingest_rules import PERIOD_PAIRS
from server.store.load_report import Conversion, FileReport, Problem
from server.store.normalise import VALUE, Plan, WrongType, plan, plan_custom
from server.store.note_codes import BAD_FROM, CODES, REFUSALS, code_name, datetime_kinds
from server.store.schema import DECIMAL_SCALE, literal, quote
from server.store.writer import Insert, derived, quarantine_scopes
from tools.catalog import Catalog, Dataset, DataType, detect_version, for_loading, is_custom_column, stored

MAX_EXAMPLES = 5
# Rows read to decide whether a file is clean enough to try the one-pass statement on.
SAMPLE_ROWS = 2048
NULL_TOKENS = "['NULL', 'null', '\\N']"

RULE_TEXT = {
    "not_null": "{c} must not be null: the tools cannot work without it",
    "datetime_format": "{c} must be a date/time that reads exactly: YYYY-MM-DD, T or space, HH:MM[:SS[.fraction to "
    "the microsecond]], then Z, +HH:MM, UTC or no zone",
    "decimal": "{c} must be a decimal number (digits, optional sign, '.' and E exponent) within "
    f"DECIMAL(38,{DECIMAL_SCALE})",
    "decimal_scale": f"{{c}} has more than {DECIMAL_SCALE} fraction digits; storing it would change the number",
    "json_object": "{c} must be a JSON object (or key/value pairs that make one)",
    "allowed_values": "{c} must be one of the FOCUS 1.3 allowed values (case, spaces and hyphens aside)",
    "currency_code": "{c} must be an ISO 4217 three-letter code such as USD",
    "period_order": "{c} must be later than its start",
}


class DirectFailed(Exception):
    """The one-pass statement met a value not in its FOCUS form: take the profiled path."""


@dataclass
class NormalLoad:
    path: Path
    load_id: int
    report: FileReport
    quarantine: bool = False
    rejects_dir: Path | None = None
    parquet: bool = False
    names: list[str] = field(default_factory=list)
    types: dict[str, str] = field(default_factory=dict)
    delimiter: str = ","
    pairs: list[tuple[str, str]] = field(default_factory=list)
    plans: list[Plan] = field(default_factory=list)
    noted: list[int] = field(default_factory=list)  # the plan of each note column _n<j> (see relation)

    # -- the header ---------------------------------------------------------------------------------

    def read_header(self, cur: duckdb.DuckDBPyConnection) -> None:
        self.parquet = self.path.name.lower().endswith(".parquet")
        if self.parquet:
            self.types = parquet_columns(cur, self.path)
            self.names = list(self.types)
        else:
            header = read_csv_header(self.path)
            self.names, self.delimiter = header.names, header.delimiter
            refuse_repeated(self.names)
            self.types = dict.fromkeys(self.names, "VARCHAR")
            if self.delimiter != ",":
                self.report.conversions.append(Conversion("delimiter", None, 0, {"delimiter": self.delimiter}))

    def source(self, limit: int | None = None) -> str:
        """The file as a relation of its own columns plus ``_row`` (1-based data row number)."""
        path = literal(str(self.path))
        cap = f" LIMIT {limit}" if limit is not None else ""
        if self.parquet:
            return (
                f"(SELECT file_row_number + 1 AS _row, * EXCLUDE (file_row_number) "
                f"FROM read_parquet({path}, file_row_number=true){cap})"
            )
        spec = "{" + ", ".join(f"{literal(c)}: 'VARCHAR'" for c in self.names) + "}"
        # Unquoted NULL, null and \N are SQL NULL; an empty field stays '' and a quoted "NULL" stays text.
        return (
            f"(SELECT row_number() OVER () AS _row, * FROM read_csv({path}, header=true, auto_detect=false, "
            f"delim={literal(self.delimiter)}, quote='\"', escape='\"', columns={spec}, encoding='utf-8', "
            f"nullstr={NULL_TOKENS}, allow_quoted_nulls=false){cap})"
        )

    def prepare(self, dataset: Dataset) -> tuple[str, Catalog]:
        """Map the columns, plan each one; the file's FOCUS version and the catalog its values are checked
        against. Refuses missing or unreadable columns."""
        self.pairs, renames = map_columns(self.names, stored(dataset))
        self.report.conversions.extend(renames)
        targets = {t for _, t in self.pairs}
        version = detect_version(targets, dataset)
        catalog = for_loading(dataset, version)
        problems = []
        missing = mandatory_missing(catalog, targets, version)
        if missing:
            problems.append(
                Problem(
                    "missing_column",
                    f"mandatory FOCUS {version} columns are missing: {', '.join(missing)}",
                    count=len(missing),
                )
            )
        for slot, (source, target) in enumerate(self.pairs):
            try:
                csv = not self.parquet
                if target in catalog:
                    kind = self.types[source]
                    legacy = version != "1.4"
                    self.plans.append(
                        plan(catalog[target], source, kind, csv=csv, slot=slot, dataset=dataset, legacy_keys=legacy)
                    )
                else:
                    self.plans.append(plan_custom(target, source, self.types[source], csv=csv))
            except WrongType as exc:
                problems.append(Problem("wrong_type", str(exc), column=target))
        if problems:
            raise Refused(*problems)
        return version, catalog

    # -- SQL ------------------------------------------------------------------------------------------

    def relation(self, catalog: Catalog, source: str) -> str:
        """The converted rows: ``_row``, every plan's value under its store name, the notes ``_n<j>`` (one
        per noting column, ``self.noted[j]`` its plan), ``_noted`` (anything noted) and ``_bad`` (refused)."""
        prep = [f"{e} AS {quote(n)}" for p in self.plans for n, e in p.prep.items()]
        inner = f"(SELECT *{''.join(', ' + p for p in prep)} FROM {source})"
        values = [f"{p.value} AS {quote('v:' + p.target)}" for p in self.plans]
        notes = [
            (i, str(p.note).replace(VALUE, quote("v:" + p.target))) for i, p in enumerate(self.plans) if p.note
        ] + self._period_notes(catalog)
        self.noted = [i for i, _ in notes]
        names = [f"_n{j}" for j in range(len(notes))]
        renamed = ", ".join(f"{quote('v:' + p.target)} AS {quote(p.target)}" for p in self.plans)
        # One short code per column, not one string per row: grouping by them is what the profile costs.
        # Three layers: helpers (prep), values over them, notes over both (a note reads its value once made).
        converted = f"(SELECT *, {', '.join(values)} FROM {inner})"
        columns = [quote("v:" + p.target) for p in self.plans]
        columns += [f"{n} AS {m}" for (_, n), m in zip(notes, names, strict=True)]
        with_notes = f"(SELECT _row, {', '.join(columns)} FROM {converted})"
        noted = f"coalesce({', '.join(names)}) IS NOT NULL" if names else "false"
        bad = f"coalesce(greatest({', '.join(names)}), 0) >= {BAD_FROM}" if names else "false"
        kept = "".join(m + ", " for m in names)
        return f"(SELECT _row, {renamed}, {kept}{noted} AS _noted, ({bad}) AS _bad FROM {with_notes})"

    def _period_notes(self, catalog: Catalog) -> list[tuple[int, str]]:
        pairs = PERIOD_PAIRS[catalog.dataset]
        index = {p.target: i for i, p in enumerate(self.plans)}
        by_target = set(index)
        out = []
        for start, end in pairs:
            if start in by_target and end in by_target:
                cond = f"{quote('v:' + end)} <= {quote('v:' + start)}"
                out.append((index[end], f"CASE WHEN {cond} THEN {CODES['!period_order']} END"))
        return out

    def insert_spec(self, catalog: Catalog, rows: str, *, guard: str | None = None, where: str | None = None) -> Insert:
        present = {p.target for p in self.plans}
        values = [
            quote(c.id) if c.id in present else derived(catalog.dataset, c.id, present, quote) or "NULL"
            for c in catalog.columns
        ]
        custom = [(p.target, quote(p.target)) for p in self.plans if is_custom_column(p.target)]
        return Insert(catalog, rows, values, custom, guard=guard, where=where)

    # -- the profiled path ----------------------------------------------------------------------------

    def sample_is_clean(self, cur: duckdb.DuckDBPyConnection, catalog: Catalog) -> bool:
        """Whether the first rows need nothing normalised: then the one-pass statement is worth trying."""
        rel = self.relation(catalog, self.source(limit=SAMPLE_ROWS))
        try:
            row = cur.execute(f"SELECT count(*) FILTER (WHERE _noted) FROM {rel}").fetchone()
        except duckdb.InterruptException:
            raise
        except duckdb.Error:
            return False
        return row is not None and row[0] == 0

    def stage(self, cur: duckdb.DuckDBPyConnection, catalog: Catalog) -> str:
        """Convert the file once into a temp table (values, notes): the profile and the insert both read it."""
        table = f"normalised_{self.load_id}"
        if self.parquet:
            cur.execute(f"CREATE TEMP TABLE {table} AS SELECT * FROM {self.relation(catalog, self.source())}")
            return table
        # Numbering CSV rows takes a window, which runs the pipeline above it on one thread: the rows are
        # numbered into a table of text first, then converted from it in parallel (27 % less wall time).
        raw = f"raw_{self.load_id}"
        cur.execute(f"CREATE TEMP TABLE {raw} AS SELECT * FROM {self.source()}")
        cur.execute(f"CREATE TEMP TABLE {table} AS SELECT * FROM {self.relation(catalog, raw)}")
        cur.execute(f"DROP TABLE {raw}")
        return table

    def profile(self, cur: duckdb.DuckDBPyConnection, catalog: Catalog, staged: str) -> bool:
        """Count every note over all rows; fill the report; True when some row is refused."""
        names = [f"_n{j}" for j in range(len(self.noted))]
        groups = cur.execute(
            f"SELECT {''.join(m + ', ' for m in names)}count(*), min_by(_row, _row, {MAX_EXAMPLES}) FROM {staged} "
            "GROUP BY ALL"
        ).fetchall()
        self.report.rows = sum(int(g[-2]) for g in groups)
        found: dict[tuple[int, str], list[Any]] = {}
        for *notes, count, rows in groups:
            for slot, number in zip(self.noted, notes, strict=True):
                if number is None:
                    continue
                note = code_name(int(number))
                # A date/time's shape may hold a '+' (its offset); other notes join their codes with '+'.
                for code in [note] if note.startswith("dt:") else note.split("+"):
                    entry = found.setdefault((slot, code), [0, []])
                    entry[0] += int(count)
                    entry[1] = sorted({*entry[1], *(int(r) for r in rows)})[:MAX_EXAMPLES]
        examples = self._examples(cur, catalog, sorted({r for _, rows in found.values() for r in rows}))
        bad = False
        for (slot, code), (count, rows) in sorted(found.items(), key=lambda kv: (kv[1][1][0], kv[0])):
            p = self.plans[slot]
            if code.startswith("!"):
                bad = True
                rule = code[1:]
                self.report.problems.append(
                    Problem(
                        rule,
                        RULE_TEXT.get(rule, "{c}: " + rule).format(c=p.target),
                        column=p.target,
                        count=count,
                        examples=[{"row": r, "value": examples[r][slot][0]} for r in rows],
                    )
                )
            else:
                kind = datetime_kinds(code[3:]) if code.startswith("dt:") else code
                raw, converted = examples[rows[0]][slot]
                example = {"row": rows[0], "value": raw, "normalised": converted}
                self._add(Conversion(kind, p.target, count, example))
        return bad

    def _add(self, conversion: Conversion) -> None:
        for c in self.report.conversions:
            if (c.kind, c.column) == (conversion.kind, conversion.column):
                c.count += conversion.count
                return
        self.report.conversions.append(conversion)

    def _examples(self, cur: duckdb.DuckDBPyConnection, catalog: Catalog, rows: list[int]) -> dict[int, list[Any]]:
        """Raw and converted text of every planned column at ``rows`` (early rows: read no further)."""
        if not rows:
            return {}
        src = self.source(limit=max(rows))
        prep = [f"{e} AS {quote(n)}" for p in self.plans for n, e in p.prep.items()]
        inner = f"(SELECT *{''.join(', ' + p for p in prep)} FROM {src})"
        cols = [f"CAST({quote(p.source)} AS VARCHAR), {_as_text(catalog, p)}" for p in self.plans]
        fetched = cur.execute(
            f"SELECT _row, {', '.join(cols)} FROM {inner} WHERE _row IN ({', '.join(map(str, rows))})"
        ).fetchall()
        return {int(r[0]): [(r[1 + 2 * i], r[2 + 2 * i]) for i in range(len(self.plans))] for r in fetched}

    def type_conversions(self, cur: duckdb.DuckDBPyConnection) -> None:
        """Column-level conversions: every non-null value of such a column, with its first one."""
        typed = [p for p in self.plans if p.type_kind]
        if not typed:
            return
        aggs = [
            f"count({quote(p.source)}), min_by(CAST({quote(p.source)} AS VARCHAR), _row) FILTER "
            f"(WHERE {quote(p.source)} IS NOT NULL), min(_row) FILTER (WHERE {quote(p.source)} IS NOT NULL)"
            for p in typed
        ]
        row = cur.execute(f"SELECT {', '.join(aggs)} FROM {self.source()}").fetchone()
        assert row is not None
        for i, p in enumerate(typed):
            count, value, first = row[3 * i : 3 * i + 3]
            if count:
                source_type = self.types[p.source]
                example = {"row": first, "value": value, "sourceType": source_type}
                self._add(Conversion(str(p.type_kind), p.target, int(count), example))

    # -- quarantine -----------------------------------------------------------------------------------

    def write_rejects(self, cur: duckdb.DuckDBPyConnection, catalog: Catalog, rel: str) -> str:
        """Keep the refused rows (scope columns readable where they are) in a temp table; write the rejects file."""
        table = f"rejected_{self.load_id}"
        scope = [c for c in ("InvoiceIssuerName", "BillingAccountId", "BillingPeriodStart", "BillingPeriodEnd")]
        have = {p.target for p in self.plans}
        cols = ", ".join(quote(c) if c in have else f"NULL AS {quote(c)}" for c in scope)
        rules = "[" + ", ".join(literal(r) for r in REFUSALS) + "]"
        reasons = ", ".join(
            f"CASE WHEN _n{j} >= {BAD_FROM} THEN {literal(self.plans[slot].target + ': ')} || "
            f"{rules}[_n{j} - {BAD_FROM - 1}] END"
            for j, slot in enumerate(self.noted)
        )
        cur.execute(
            f"CREATE TEMP TABLE {table} AS SELECT _row, concat_ws('; ', {reasons}) AS _reasons, {cols} FROM {rel} "
            "WHERE _bad"
        )
        assert self.rejects_dir is not None
        self.rejects_dir.mkdir(parents=True, exist_ok=True)
        target = self.rejects_dir / f"load-{self.load_id}-{self.path.name.removesuffix('.gz')}.rejects.csv"
        raw = ", ".join(f"CAST(s.{quote(n)} AS VARCHAR) AS {quote(n)}" for n in self.names)
        cur.execute(
            f"COPY (SELECT r._row AS row, r._reasons AS reasons, {raw} FROM {table} r JOIN {self.source()} s "
            f"USING (_row) ORDER BY r._row) TO {literal(str(target))} (FORMAT csv, HEADER)"
        )
        count = cur.execute(f"SELECT count(*) FROM {table}").fetchone()
        self.report.rejected_rows = int(count[0]) if count else 0
        self.report.rejects_file = str(target)
        return table

    def finish_quarantine(self, cur: duckdb.DuckDBPyConnection, table: str) -> None:
        quarantine_scopes(cur, self.load_id, table, self.report.rejected_rows)
        cur.execute(f"DROP TABLE IF EXISTS {table}")


def _as_text(catalog: Catalog, p: Plan) -> str:
    """A converted value as the report shows it (date/times in FOCUS form, fractions only when present)."""
    if p.target in catalog and catalog[p.target].data_type is DataType.DATETIME:
        v = f"({p.value})"
        return (
            f"CASE WHEN microsecond({v}) % 1000000 = 0 THEN strftime({v}, '%Y-%m-%dT%H:%M:%SZ') "
            f"ELSE strftime({v}, '%Y-%m-%dT%H:%M:%S.%fZ') END"
        )
    return f"CAST({p.value} AS VARCHAR)"
