"""Azure Cost Management exports (``FocusCost``): per (scope, dataset, month), only the latest run's blobs.

Layout (notes ``cloud-exports.md`` §2): ``<container>/<root>/<export>/<YYYYMMDD-YYYYMMDD>/[<time>/]<runId>/``
holds a run's ``part_*`` files and its ``manifest.json``. Paths are not parsed; manifests are.

- Every run restates its month to date, and a one-time export of a month restates it too: manifests are
  grouped by (scope = ``exportConfig.resourceId`` without ``/providers/Microsoft.CostManagement/exports/<name>``,
  ``exportConfig.type``, month of ``runInfo.startDate``), so a daily and a backfill export of one scope never
  add up; the manifest with the greatest ``runInfo.submittedTime`` wins and only its ``blobs[]`` load.
- A winning manifest with ``blobCount`` 0 (or no blobs) is an empty run: not an error, nothing is loaded, and
  what an earlier run loaded for that month stays (an empty month-to-date run carries no restatement).
- ``blobName`` is container-relative (a leading container name is tolerated). Fields are read leniently:
  manifests change with API versions.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass

from server.cloud.objects import ObjectMeta, ObjectSource
from server.cloud.units import Unit
from tools.errors import CloudManifestInvalid, CloudObjectMissing

_EXPORT_SUFFIX = re.compile(r"/providers/microsoft\.costmanagement/exports/[^/]+/?$", re.IGNORECASE)


def is_azure_export(listing: Sequence[ObjectMeta]) -> bool:
    return any(_is_manifest(m.key) for m in listing)


def _is_manifest(key: str) -> bool:
    return key.rsplit("/", 1)[-1].lower() == "manifest.json"


@dataclass(frozen=True, slots=True)
class _Run:
    manifest: ObjectMeta
    scope: str
    dataset: str
    month: str
    submitted: str
    run_id: str
    blobs: tuple[str, ...]


def _parse(source: ObjectSource, meta: ObjectMeta) -> _Run:
    where = source.url.url(meta.key)
    raw, fresh = source.read(meta.key)
    try:
        doc = json.loads(raw.decode("utf-8-sig"))
        config, run = doc["exportConfig"], doc["runInfo"]
        scope = _EXPORT_SUFFIX.sub("", str(config["resourceId"])).lower()
        month = str(run["startDate"])[:7]
        if not re.fullmatch(r"\d{4}-\d{2}", month):
            raise ValueError(f"runInfo.startDate {run['startDate']!r} is not a date")
        blobs = tuple(str(b["blobName"]) for b in doc.get("blobs") or [])
        if doc.get("blobCount") == 0:
            blobs = ()
        return _Run(
            manifest=fresh,
            scope=scope,
            dataset=str(config.get("type") or "FocusCost"),
            month=month,
            submitted=str(run.get("submittedTime") or ""),
            run_id=str(run.get("runId") or ""),
            blobs=blobs,
        )
    except (ValueError, KeyError, TypeError) as exc:
        raise CloudManifestInvalid(
            f"the Azure export manifest {where} cannot be read: {type(exc).__name__}: {exc}", {"object": where}
        ) from None


def units(source: ObjectSource, listing: Sequence[ObjectMeta]) -> list[Unit]:
    """One unit per (scope, dataset, month): its latest run (see module doc)."""
    objects = {m.key: m for m in listing}
    latest: dict[tuple[str, str, str], _Run] = {}
    for meta in listing:
        if not _is_manifest(meta.key):
            continue
        run = _parse(source, meta)
        group = (run.scope, run.dataset, run.month)
        best = latest.get(group)
        # submittedTime is ISO 8601 UTC with a fixed layout, so it sorts as text; ties go to the newer blob.
        if best is None or (run.submitted, run.manifest.last_modified) > (best.submitted, best.manifest.last_modified):
            latest[group] = run
    out = []
    for (scope, dataset, month), run in sorted(latest.items()):
        where = source.url.url(run.manifest.key)
        files = []
        for name in run.blobs:
            key = name if name in objects else name.removeprefix(source.url.bucket + "/")
            if key not in objects:
                raise CloudObjectMissing(
                    f"the manifest {where} lists {source.url.url(name)}, which does not exist",
                    {"object": source.url.url(name), "manifest": where},
                )
            files.append(objects[key])
        out.append(
            Unit(
                key=f"azure:{scope}:{dataset}:{month}",
                label=f"Azure {dataset} {month} of {scope} (run {run.run_id or run.manifest.key})",
                files=tuple(files),
                identity=run.run_id,
                manifest=run.manifest,
                notes=("empty run (blobCount 0): nothing to load",) if not run.blobs else (),
            )
        )
    return out
