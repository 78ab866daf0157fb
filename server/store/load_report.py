"""What a load reports: per file its status, the problems that refused rows, and every normalisation.

``Problem`` is a rule a file or row broke (refused); ``Conversion`` is a normalisation that was made (or a
value kept but worth a look, such as a conformance gap): per column and kind, with its count and first
example. Both go into ``--json``, the terminal table and the store's load history.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# What each conversion kind means, for the report (datetime_* kinds are described from their tags).
KIND_TEXT = {
    "null_token": "an unquoted NULL, null or \\N read as null",
    "conformance_gap": "a null where FOCUS requires a value: loaded, a conformance gap of the provider",
    "json_null": "a JSON null read as null",
    "json_braces_added": "object members without braces (Azure legacy tags) wrapped in { }",
    "json_map": "a Parquet MAP written as a JSON object",
    "json_key_value_array": "a Parquet list of key/value structs written as a JSON object (other fields dropped)",
    "json_struct": "a Parquet STRUCT written as a JSON object",
    "json_text": "a nested Parquet value kept as JSON text",
    "exponent": "a decimal in E notation, stored as its exact value",
    "leading_plus": "a decimal with a leading +",
    "whitespace": "a decimal with spaces around it",
    "binary_float": "source was binary floating point (Parquet DOUBLE): read from its shortest round-trip text",
    "decimal_type": "a Parquet DECIMAL wider than DECIMAL(38,18): every value fits exactly",
    "integer_as_text": "a Parquet integer column read as its digits",
    "allowed_value_spelling": "an allowed value spelt with other case, spaces or hyphens",
    "value_not_allowed": "a value outside the FOCUS allowed values: kept as written",
    "currency_case": "a currency code in lower case, upper-cased",
    "timestamp_no_zone": "a Parquet timestamp without a zone, read as UTC",
    "timestamp_with_zone": "a Parquet timestamp with a zone, converted to UTC",
    "column_renamed": "a column name mapped to its FOCUS 1.3 name",
    "column_kept_as_custom": "a column FOCUS does not define, kept with the x_ prefix",
    "delimiter": "fields separated by another delimiter than a comma",
    "json_key_recased": "ContractApplied keys spelt ContractID / ContractCommitmentID (FOCUS 1.3 before its erratum) "
    "stored as ContractId / ContractCommitmentId",
    "provider_names_derived": "ProviderName and PublisherName (removed in FOCUS 1.4) derived for the 1.3 API: "
    "ProviderName = HostProviderName, or ServiceProviderName where no host is named; PublisherName = "
    "ServiceProviderName",
    "columns_absent": "columns FOCUS defines but the file leaves out (a dataset configuration choice): stored as null",
}
# Kinds that keep a value FOCUS would not accept: shown as warnings, not as normalisations.
WARNING_KINDS = frozenset({"conformance_gap", "value_not_allowed"})
_TAGS = {
    "space": "a space for T",
    "no_seconds": "no seconds",
    "fraction": "a zero fraction of a second",
    "subsecond": "a fraction of a second (stored to the microsecond; the API writes whole seconds)",
    "no_zone": "no zone (read as UTC)",
    "utc_suffix": "' UTC' for Z",
    "offset": "a UTC offset (converted exactly to UTC)",
}


def kind_text(kind: str) -> str:
    if kind.startswith("datetime_"):
        tags = [_TAGS[t] for t in _split_tags(kind.removeprefix("datetime_")) if t in _TAGS]
        return "a date/time with " + ", ".join(tags) if tags else "a date/time in another form"
    return KIND_TEXT.get(kind, kind)


def _split_tags(rest: str) -> list[str]:
    tags, words = [], rest.split("_")
    i = 0
    while i < len(words):
        two = "_".join(words[i : i + 2])
        if two in _TAGS:
            tags.append(two)
            i += 2
        else:
            tags.append(words[i])
            i += 1
    return tags


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
class Conversion:
    kind: str
    column: str | None
    count: int
    example: dict[str, Any] = field(default_factory=dict)

    @property
    def warning(self) -> bool:
        return self.kind in WARNING_KINDS

    def as_json(self, file: str | None = None) -> dict[str, Any]:
        out: dict[str, Any] = {} if file is None else {"file": file}
        return out | {
            "column": self.column,
            "kind": self.kind,
            "count": self.count,
            "message": kind_text(self.kind),
            "example": self.example,
        }


@dataclass
class FileReport:
    file: str
    status: str = "refused"  # loaded | refused | skipped
    dataset: str | None = None
    focus_version: str | None = None
    rows: int = 0
    replaced_rows: int = 0
    rejected_rows: int = 0  # quarantined: written to rejects_file, not stored
    rejects_file: str | None = None
    problems: list[Problem] = field(default_factory=list)
    conversions: list[Conversion] = field(default_factory=list)
    # Columns the file's FOCUS version defines that it left out (stored as null): DatasetConfiguration.
    absent_columns: list[str] = field(default_factory=list)

    @property
    def normalised_values(self) -> int:
        return sum(c.count for c in self.conversions if not c.warning)

    def as_json(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "status": self.status,
            "dataset": self.dataset,
            "focusVersion": self.focus_version,
            "rows": self.rows,
            "replacedRows": self.replaced_rows,
            "rejectedRows": self.rejected_rows,
            "rejectsFile": self.rejects_file,
            "absentColumns": self.absent_columns,
            "normalised": [c.as_json() for c in self.conversions],
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
            "rowsRejected": sum(f.rows for f in self.files if f.status == "refused")
            + sum(f.rejected_rows for f in self.files if f.status == "loaded"),
            "rowsQuarantined": sum(f.rejected_rows for f in self.files if f.status == "loaded"),
            "focusVersion": versions[0] if len(versions) == 1 else ("mixed" if versions else None),
            "normalised": [c.as_json(f.file) for f in self.files for c in f.conversions],
            "errors": [p.as_json(f.file) for f in self.files for p in f.problems],
        }

    def verdict(self) -> str:
        """One line: what happened to the whole call."""
        data = self.as_json()
        loaded = [f for f in self.files if f.status == "loaded"]
        refused = [f for f in self.files if f.status == "refused"]
        parts = [
            f"loaded {data['rowsLoaded']} rows from {len(loaded)} of {len(self.files)} files",
            f"refused {data['rowsRejected']} rows",
        ]
        normalised = sum(f.normalised_values for f in loaded)
        if normalised:
            parts.append(f"{normalised:,} values normalised")
        warnings = sum(c.count for f in loaded for c in f.conversions if c.warning)
        if warnings:
            parts.append(f"{warnings:,} values kept with a warning")
        if data["rowsQuarantined"]:
            parts.append(f"{data['rowsQuarantined']:,} rows quarantined")
        if refused:
            parts.append(f"{len(refused)} files refused whole: nothing of them stored")
        return ("OK: " if not refused else "REFUSED: ") + "; ".join(parts)
