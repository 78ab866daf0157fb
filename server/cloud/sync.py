"""Loading and syncing cloud exports into the store: ``focus-api load URL``, ``focus-api sync``, ``serve --sync``.

One sync is one ``Store`` writer, so one generation: every unit it loads, the rows they replace and the sync
state are published together, and any failure (a missing file, a refused file, an unreachable endpoint)
abandons the generation: the served data and the sync state stay as they were.

Per unit (``server.cloud.units``), in the source's order:
1. unchanged (same fingerprint as the last sync recorded) is skipped by ``sync`` (``load`` loads it anyway);
2. its files are streamed to the cache (``server.cloud.cache``), checked against their listed ETags, and the
   unit's manifest is read again: if a delivery landed meanwhile, the source is resolved afresh (3 tries);
3. the files are loaded by ``load_files`` as one delivery: they add up, and replace earlier rows of the same
   invoice scope as any load does, except rows of other synced units (two Azure subscriptions of one billing
   account share invoice scopes, and must not delete each other's rows);
4. the rows the unit's previous sync loaded that this delivery did not replace are deleted: a re-delivered
   month with fewer files (an account that left, a part that is gone) leaves nothing of the old delivery.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import duckdb
import structlog

from server.cloud import resolve, state
from server.cloud.cache import Cache, ObjectChanged
from server.cloud.objects import ObjectSource, SourceUrl
from server.cloud.units import Unit
from server.settings import Settings
from server.store.db import Store, utc_now
from server.store.load_report import FileReport, LoadSummary
from server.store.loader import load_files
from server.store.schema import CU_TABLE, TABLES
from tools.errors import CloudExportError, CloudFileRefused, FocusApiError

log = structlog.get_logger(__name__)

ATTEMPTS = 3  # resolutions of a source while deliveries keep landing under it
UnitStatus = Literal["loaded", "unchanged", "empty"]


@dataclass
class UnitResult:
    source: str
    unit: str
    label: str
    status: UnitStatus
    files: list[str] = field(default_factory=list)
    rows: int = 0
    replaced_rows: int = 0

    def as_json(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "unit": self.unit,
            "label": self.label,
            "status": self.status,
            "files": self.files,
            "rows": self.rows,
            "replacedRows": self.replaced_rows,
        }


@dataclass
class SyncResult:
    units: list[UnitResult] = field(default_factory=list)
    reports: list[FileReport] = field(default_factory=list)

    @property
    def summary(self) -> LoadSummary:
        return LoadSummary(self.reports)

    @property
    def loaded(self) -> list[UnitResult]:
        return [u for u in self.units if u.status == "loaded"]

    def as_json(self) -> dict[str, Any]:
        return {
            "loadedUnits": len(self.loaded),
            "unchangedUnits": sum(u.status == "unchanged" for u in self.units),
            "rows": sum(u.rows for u in self.units),
            "units": [u.as_json() for u in self.units],
            "files": [f.as_json() for f in self.reports],
        }


def sync_sources(
    store: Store,
    sources: list[str],
    settings: Settings,
    *,
    only_changed: bool = True,
    strict: bool = False,
    on_bad_rows: Literal["refuse", "quarantine"] = "refuse",
) -> SyncResult:
    """Load (``only_changed``: sync) each source into ``store``; raises a ``CloudExportError`` on any failure."""
    result = SyncResult()
    with Cache(store.data_dir, settings.cloud_download_concurrency) as cache:
        for text in sources:
            url = SourceUrl.parse(text)
            source = ObjectSource(url, settings)
            for attempt in range(ATTEMPTS):
                try:
                    done = _sync_source(store, source, cache, only_changed, strict, on_bad_rows)
                except ObjectChanged as changed:
                    log.info("sync: a delivery landed while reading; reading the export again", object=str(changed))
                    if attempt == ATTEMPTS - 1:
                        raise CloudExportError(
                            f"{changed} kept changing while it was read ({ATTEMPTS} tries): a delivery is still "
                            "landing; sync again later",
                            {"object": str(changed)},
                        ) from None
                    continue
                result.units.extend(done.units)
                result.reports.extend(done.reports)
                if done.loaded:  # what a source last loaded (state module doc): a no-op sync keeps it
                    with store.transaction() as cur:
                        state.record_source(cur, str(url), _source_result(done))
                break
    return result


def _source_result(done: SyncResult) -> dict[str, Any]:
    return {
        "loaded": [{"unit": u.label, "rows": u.rows, "files": len(u.files)} for u in done.loaded],
        "unchangedUnits": sum(u.status == "unchanged" for u in done.units),
        "rows": sum(u.rows for u in done.loaded),
    }


def _sync_source(
    store: Store,
    source: ObjectSource,
    cache: Cache,
    only_changed: bool,
    strict: bool,
    on_bad_rows: Literal["refuse", "quarantine"],
) -> SyncResult:
    name = str(source.url)
    done = SyncResult()
    units = resolve.units(source)
    with store.open_cursor() as cur:
        before = state.previous(cur, name)
    for unit in units:
        prior = before.get(unit.key)
        if only_changed and prior is not None and prior.fingerprint == unit.fingerprint:
            done.units.append(UnitResult(name, unit.key, unit.label, "unchanged"))
            continue
        if not unit.files:
            # An empty run loads nothing and keeps what the unit had (azure module doc).
            with store.transaction() as cur:
                kept = list(prior.load_ids) if prior else []
                state.record_unit(cur, name, unit.key, unit.fingerprint, kept, [])
            done.units.append(UnitResult(name, unit.key, unit.label, "empty"))
            continue
        done.units.append(_load_unit(store, source, cache, unit, prior, strict, on_bad_rows, done.reports))
    return done


def _load_unit(
    store: Store,
    source: ObjectSource,
    cache: Cache,
    unit: Unit,
    prior: state.Synced | None,
    strict: bool,
    on_bad_rows: Literal["refuse", "quarantine"],
    reports: list[FileReport],
) -> UnitResult:
    name = str(source.url)
    names = cache.fetch(source, unit.files)
    if unit.manifest is not None:
        now = source.head(unit.manifest.key)
        if now is None or now.etag != unit.manifest.etag:
            raise ObjectChanged(source.url.url(unit.manifest.key))
    with store.open_cursor() as cur:
        row = cur.execute("SELECT coalesce(max(load_id), 0) FROM loads").fetchone()
        others = state.loads_of_other_units(cur, name, unit.key)
    first_new = int(row[0]) + 1 if row else 1
    paths = list(names)
    # Other units' rows are theirs to replace, even where they share an invoice scope (writer.Delivery).
    summary = load_files(store, paths, strict=strict, on_bad_rows=on_bad_rows, names=names, protected=others)
    refused = [f for f in summary.files if f.status == "refused"]
    if refused:
        raise _refused(refused, unit)
    reports.extend(summary.files)
    with store.transaction() as cur:
        fresh = cur.execute("SELECT load_id FROM loads WHERE load_id >= ?", [first_new]).fetchall()
        new_ids = [int(r[0]) for r in fresh]
        removed = _remove_loads(cur, [i for i in (prior.load_ids if prior else ()) if i not in new_ids])
        state.record_unit(cur, name, unit.key, unit.fingerprint, new_ids, [names[p] for p in paths])
        Store.bump_data_version(cur)
    cache.release(paths)
    rows = sum(f.rows for f in summary.files if f.status == "loaded")
    replaced = sum(f.replaced_rows for f in summary.files) + removed
    log.info("sync: loaded", source=name, unit=unit.label, files=len(paths), rows=rows, replaced_rows=replaced)
    return UnitResult(name, unit.key, unit.label, "loaded", [names[p] for p in paths], rows, replaced)


def _refused(refused: list[FileReport], unit: Unit) -> CloudFileRefused:
    first = refused[0]
    problems = [{"rule": p.rule, "column": p.column, "message": p.message} for p in first.problems[:5]]
    reason = f"{problems[0]['rule']}: {problems[0]['message']}" if problems else "refused"
    return CloudFileRefused(
        f"{first.file} ({unit.label}) was refused, so nothing of this sync was stored: {reason}",
        {"object": first.file, "problems": problems, "refusedFiles": [f.file for f in refused]},
    )


def _remove_loads(cur: duckdb.DuckDBPyConnection, load_ids: list[int]) -> int:
    """Delete the rows of an earlier delivery of a unit (what its new delivery did not replace)."""
    if not load_ids:
        return 0
    removed = 0
    for table in TABLES.values():
        row = cur.execute(f"DELETE FROM {table} WHERE list_contains(?, _load_id)", [load_ids]).fetchone()
        removed += int(row[0]) if row else 0
    cur.execute("DELETE FROM quarantined_scopes WHERE list_contains(?, load_id)", [load_ids])
    cur.execute(
        "DELETE FROM billing_periods WHERE (BillingPeriodStart, BillingPeriodEnd) NOT IN "
        f"(SELECT DISTINCT BillingPeriodStart, BillingPeriodEnd FROM {CU_TABLE})"
    )
    return removed


def run_sync(
    settings: Settings,
    sources: list[str],
    *,
    only_changed: bool = True,
    strict: bool = False,
    on_bad_rows: Literal["refuse", "quarantine"] = "refuse",
) -> SyncResult:
    """One sync of ``sources`` in its own writer; the attempt's outcome goes to the status file (``state``)."""
    started = utc_now()
    status: dict[str, Any] = {"sources": sources, "startedAt": started.isoformat() + "Z"}
    try:
        with Store(settings.data_dir, memory_limit=settings.memory_limit) as store:
            result = sync_sources(
                store, sources, settings, only_changed=only_changed, strict=strict, on_bad_rows=on_bad_rows
            )
    except FocusApiError as exc:
        log.warning("sync failed: nothing of it was stored", code=exc.code, error=exc.message)
        _write(settings.data_dir, status | {"finishedAt": _now(), "ok": False, "error": exc.body()})
        raise
    except (OSError, duckdb.Error) as exc:
        log.warning("sync failed: nothing of it was stored", error=str(exc).splitlines()[0])
        error = {"code": "cloud_export_error", "message": str(exc).splitlines()[0], "details": {}}
        _write(settings.data_dir, status | {"finishedAt": _now(), "ok": False, "error": error})
        raise
    outcome = result.as_json()
    _write(
        settings.data_dir,
        status
        | {
            "finishedAt": _now(),
            "ok": True,
            "error": None,
            "loadedUnits": outcome["loadedUnits"],
            "unchangedUnits": outcome["unchangedUnits"],
            "rows": outcome["rows"],
            "loaded": [{"unit": u.label, "rows": u.rows} for u in result.loaded],
        },
    )
    return result


def _now() -> str:
    return utc_now().isoformat() + "Z"


def _write(data_dir: Path, status: dict[str, Any]) -> None:
    try:
        state.write_status(data_dir, status)
    except OSError as exc:  # the status is a courtesy; the sync's own outcome stands
        log.warning("could not write the sync status file", error=str(exc))
