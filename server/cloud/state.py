"""Sync state: what each sync loaded, kept in the store generation beside the rows it describes.

``sync_units`` holds per (source, unit) the delivery fingerprint last loaded and the ``loads`` it made;
``sync_sources`` the last sync of each source that loaded something, and what it loaded (a sync that
loads nothing publishes no generation, so page walks and caches stay valid; its time is in the status
file). Both are written by the same ``Store`` writer as the rows, so the data and "what was synced" are
published together, and a sync that fails (its generation abandoned) changes neither.

The outcome of the latest attempt, a failed one included, cannot live in the store (a failure publishes
nothing): it is written to ``DATA_DIR/sync-status.json`` (atomically), which every serving process reads
for ``getschemametadata``.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb

from server.store.db import utc_now

STATUS_FILE = "sync-status.json"


@dataclass(frozen=True, slots=True)
class Synced:
    fingerprint: str
    load_ids: tuple[int, ...]


def previous(cur: duckdb.DuckDBPyConnection, source: str) -> dict[str, Synced]:
    rows = cur.execute("SELECT unit, fingerprint, load_ids FROM sync_units WHERE source = ?", [source]).fetchall()
    return {str(u): Synced(str(f), tuple(int(i) for i in ids)) for u, f, ids in rows}


def loads_of_other_units(cur: duckdb.DuckDBPyConnection, source: str, unit: str) -> list[int]:
    """The loads every other synced unit (of any source) holds."""
    rows = cur.execute(
        "SELECT DISTINCT unnest(load_ids) FROM sync_units WHERE NOT (source = ? AND unit = ?)", [source, unit]
    ).fetchall()
    return [int(r[0]) for r in rows]


def record_unit(
    cur: duckdb.DuckDBPyConnection, source: str, unit: str, fingerprint: str, load_ids: list[int], files: list[str]
) -> None:
    rows = cur.execute(
        "SELECT coalesce(sum(rows), 0) FROM loads WHERE list_contains(?, load_id)", [load_ids]
    ).fetchone()
    cur.execute(
        "INSERT OR REPLACE INTO sync_units VALUES (?, ?, ?, ?, ?, ?, ?)",
        [source, unit, fingerprint, load_ids, json.dumps(files), int(rows[0]) if rows else 0, utc_now()],
    )


def record_source(cur: duckdb.DuckDBPyConnection, source: str, result: dict[str, Any]) -> None:
    cur.execute("INSERT OR REPLACE INTO sync_sources VALUES (?, ?, ?)", [source, utc_now(), json.dumps(result)])


def synced_sources(cur: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]:
    """Per source the last sync that loaded something (for getschemametadata)."""
    rows = cur.execute(
        "SELECT source, strftime(synced_at, '%Y-%m-%dT%H:%M:%SZ'), result FROM sync_sources ORDER BY source"
    ).fetchall()
    return [{"source": s, "lastLoadedAt": at, **json.loads(r)} for s, at, r in rows]


def write_status(data_dir: Path, status: dict[str, Any]) -> None:
    """The latest attempt's outcome, replacing the file atomically (readers never see half of it)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    target = data_dir / STATUS_FILE
    tmp = target.with_name(f".{STATUS_FILE}.{os.getpid()}")
    tmp.write_text(json.dumps(status, indent=2, default=str))
    tmp.replace(target)


def read_status(data_dir: Path) -> dict[str, Any] | None:
    try:
        value = json.loads((data_dir / STATUS_FILE).read_text())
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None
