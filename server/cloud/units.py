"""Delivery units: what a source holds, as the provider's rules say to load it (the resolvers make them).

A unit is the replacement unit of a sync: one AWS billing period of an export, one Azure (scope, dataset,
month), one plain prefix or object. Its files are loaded together, and they replace, all at once, whatever
the unit's previous sync loaded (``server.cloud.sync``). Its fingerprint changes whenever the delivery does
(a new execution or run, a rewritten manifest, any file's ETag), so an unchanged unit is not loaded again.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from server.cloud.objects import ObjectMeta


@dataclass(frozen=True, slots=True)
class Unit:
    key: str  # stable within its source, e.g. "aws:my-export:2026-10"
    label: str  # for people: "billing period 2026-10 (execution 0f5e...)"
    files: tuple[ObjectMeta, ...]
    identity: str  # the delivery's own id: an execution id, a run id, or "" (plain prefixes)
    manifest: ObjectMeta | None = None
    notes: tuple[str, ...] = field(default=())

    @property
    def fingerprint(self) -> str:
        parts = [self.identity, self.manifest.etag if self.manifest else ""]
        parts += sorted(f"{f.key}\0{f.etag}\0{f.size}" for f in self.files)
        return hashlib.sha256("\n".join(parts).encode()).hexdigest()


DATA_SUFFIXES = (".csv", ".csv.gz", ".parquet")


def is_data_file(key: str) -> bool:
    return key.lower().endswith(DATA_SUFFIXES)
