"""The normalising load of one file (the default): real exports in, exact FOCUS 1.3 rows out, every change reported.

The file is read once per step, by DuckDB, with the per-column SQL of ``normalise``:

1. direct: one statement converts, sorts and inserts, and fails at the first value that is not already in
   its FOCUS form (``_notes`` not empty). A clean file is done here, in one pass, as under ``--strict``.
2. profiled (when the direct statement failed): one aggregate groups the rows by what was noted on them
   (``_notes``: every column's note, e.g. ``4:datetime_space_no_zone|9:null_token``) with counts and first
   rows; the first examples are read back; refusals are reported. With no refusal, or with
   ``--on-bad-rows quarantine``, the rows are inserted converted (the refused ones written to a rejects
   file in the data dir and their invoice scopes marked Partial).

Column-level conversions (Parquet types) are counted with one cheap aggregate over those columns.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb

from server.store.headers import mandatory_missing, map_columns, read_csv_header
from server.store.load_report import Conversion, FileReport, Problem
from server.store.normalise import Plan, WrongType, datetime_kinds, plan, plan_custom
from server.store.schema import DECIMAL_SCALE, quote
from server.store.writer import Insert, quarantine_scopes
from tools.catalog import Catalog, Dataset, DataType, is_custom_column

MAX_EXAMPLES = 5
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


class Refused(Exception):
    def __init__(self, *problems: Problem) -> None:
        super().__init__(problems[0].message if problems else "refused")
        self.problems = list(problems)


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

    # -- the header ---------------------------------------------------------------------------------

    def read_header(self, cur: duckdb.DuckDBPyConnection) -> None:
        self.parquet = self.path.name.lower().endswith(".parquet")
        if self.parquet:
            try:
                described = cur.execute(f"DESCRIBE SELECT * FROM read_parquet({_lit(str(self.path))})").fetchall()
            except duckdb.Error as exc:
                raise Refused(Problem("unreadable_file", f"not a readable Parquet file: {first_line(exc)}")) from exc
            self.names = [str(r[0]) for r in described]
            self.types = {str(r[0]): str(r[1]) for r in described}
        else:
            header = read_csv_header(self.path)
            self.names, self.delimiter = header.names, header.delimiter
            if len(set(self.names)) != len(self.names):
                dup = sorted({c for c in self.names if self.names.count(c) > 1})
                raise Refused(Problem("duplicate_column", f"the header repeats columns: {', '.join(dup)}"))
            self.types = dict.fromkeys(self.names, "VARCHAR")
            if self.delimiter != ",":
                self.report.conversions.append(Conversion("delimiter", None, 0, {"delimiter": self.delimiter}))

    def source(self, limit: int | None = None) -> str:
        """The file as a relation of its own columns plus ``_row`` (1-based data row number)."""
        path = _lit(str(self.path))
        cap = f" LIMIT {limit}" if limit is not None else ""
        if self.parquet:
            return (
                f"(SELECT file_row_number + 1 AS _row, * EXCLUDE (file_row_number) "
                f"FROM read_parquet({path}, file_row_number=true){cap})"
            )
        spec = "{" + ", ".join(f"{_lit(c)}: 'VARCHAR'" for c in self.names) + "}"
        # Unquoted NULL, null and \N are SQL NULL; an empty field stays '' and a quoted "NULL" stays text.
        return (
            f"(SELECT row_number() OVER () AS _row, * FROM read_csv({path}, header=true, auto_detect=false, "
            f"delim={_lit(self.delimiter)}, quote='\"', escape='\"', columns={spec}, encoding='utf-8', "
            f"nullstr={NULL_TOKENS}, allow_quoted_nulls=false){cap})"
        )

    def prepare(self, catalog: Catalog, version_of: Any) -> str:
        """Map the columns, plan each one; the file's FOCUS version. Refuses missing or unreadable columns."""
        self.pairs, renames = map_columns(self.names, catalog)
        self.report.conversions.extend(renames)
        targets = {t for _, t in self.pairs}
        version: str = version_of(targets) if catalog.dataset is Dataset.COST_AND_USAGE else "1.3"
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
                    self.plans.append(plan(catalog[target], source, self.types[source], csv=csv, slot=slot))
                else:
                    self.plans.append(plan_custom(target, source, self.types[source], csv=csv))
            except WrongType as exc:
                problems.append(Problem("wrong_type", str(exc), column=target))
        if problems:
            raise Refused(*problems)
        return version

    # -- SQL ------------------------------------------------------------------------------------------

    def relation(self, catalog: Catalog, source: str) -> str:
        """The converted rows: ``_row``, every plan's value under its store name, and ``_notes``."""
        prep = [f"{e} AS {quote(n)}" for p in self.plans for n, e in p.prep.items()]
        inner = f"(SELECT *{''.join(', ' + p for p in prep)} FROM {source})"
        values = [f"{p.value} AS {quote('v:' + p.target)}" for p in self.plans]
        notes = [f"{_lit(str(i) + ':')} || ({p.note})" for i, p in enumerate(self.plans) if p.note]
        period = self._period_notes(catalog)
        note_sql = f"concat_ws('|', {', '.join(notes + period)})" if notes or period else "''"
        renamed = ", ".join(f"{quote('v:' + p.target)} AS {quote(p.target)}" for p in self.plans)
        # The notes read the converted values of the periods: computed over the converted layer.
        with_notes = f"(SELECT _row, {', '.join(values)}, {note_sql} AS _notes FROM {inner})"
        return f"(SELECT _row, {renamed}, _notes FROM {with_notes})"

    def _period_notes(self, catalog: Catalog) -> list[str]:
        pairs = (
            [("BillingPeriodStart", "BillingPeriodEnd"), ("ChargePeriodStart", "ChargePeriodEnd")]
            if catalog.dataset is Dataset.COST_AND_USAGE
            else [
                ("ContractPeriodStart", "ContractPeriodEnd"),
                ("ContractCommitmentPeriodStart", "ContractCommitmentPeriodEnd"),
            ]
        )
        index = {p.target: i for i, p in enumerate(self.plans)}
        by_target = {p.target: p for p in self.plans}
        out = []
        for start, end in pairs:
            if start in by_target and end in by_target:
                cond = f"({by_target[end].value}) <= ({by_target[start].value})"
                out.append(f"CASE WHEN {cond} THEN '{index[end]}:!period_order' END")
        return out

    def insert_spec(self, catalog: Catalog, rows: str, *, guard: str | None = None, where: str | None = None) -> Insert:
        present = {p.target for p in self.plans}
        values = []
        for column in catalog.columns:
            if column.id in present:
                values.append(quote(column.id))
            elif column.id == "ServiceProviderName" and "ProviderName" in present:
                values.append("ProviderName")
            elif column.id == "HostProviderName" and {"ProviderName", "PublisherName"} <= present:
                values.append(
                    "CASE WHEN PublisherName = ProviderName OR starts_with(ProviderName, PublisherName || ' ') "
                    "THEN ProviderName END"
                )
            else:
                values.append("NULL")
        custom = [(p.target, quote(p.target)) for p in self.plans if is_custom_column(p.target)]
        return Insert(catalog, rows, values, custom, guard=guard, where=where)

    # -- the profiled path ----------------------------------------------------------------------------

    def profile(self, cur: duckdb.DuckDBPyConnection, catalog: Catalog) -> bool:
        """Count every note over all rows; fill the report; True when some row is refused."""
        rel = self.relation(catalog, self.source())
        groups = cur.execute(
            f"SELECT _notes, count(*), min_by(_row, _row, {MAX_EXAMPLES}) FROM {rel} GROUP BY _notes"
        ).fetchall()
        self.report.rows = sum(int(n) for _, n, _ in groups)
        found: dict[tuple[int, str], list[Any]] = {}
        for notes, count, rows in groups:
            for item in str(notes or "").split("|") if notes else []:
                slot_text, _, codes = item.partition(":")
                # A date/time's shape may hold a '+' (its offset); other notes join their codes with '+'.
                for code in [codes] if codes.startswith("dt:") else codes.split("+"):
                    entry = found.setdefault((int(slot_text), code), [0, []])
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
        cur.execute(f"CREATE TEMP TABLE {table} AS SELECT _row, _notes, {cols} FROM {rel} WHERE contains(_notes, '!')")
        names = "[" + ", ".join(_lit(p.target) for p in self.plans) + "]"
        reason = (
            "array_to_string(list_transform(list_filter(string_split(_notes, '|'), lambda x: contains(x, ':!')), "
            f"lambda x: {names}[CAST(split_part(x, ':', 1) AS INTEGER) + 1] || ': ' || split_part(x, ':!', 2)), '; ')"
        )
        assert self.rejects_dir is not None
        self.rejects_dir.mkdir(parents=True, exist_ok=True)
        target = self.rejects_dir / f"load-{self.load_id}-{self.path.name.removesuffix('.gz')}.rejects.csv"
        raw = ", ".join(f"CAST(s.{quote(n)} AS VARCHAR) AS {quote(n)}" for n in self.names)
        cur.execute(
            f"COPY (SELECT r._row AS row, {reason} AS reasons, {raw} FROM {table} r JOIN {self.source()} s "
            f"USING (_row) ORDER BY r._row) TO {_lit(str(target))} (FORMAT csv, HEADER)"
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


def _lit(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
