"""AWS Data Exports (FOCUS tables): per billing period, exactly the ``dataFiles`` of the period's manifest.

Layout (docs/notes ``cloud-exports.md`` §1): ``<root>/data/BILLING_PERIOD=YYYY-MM/...`` and
``<root>/metadata/BILLING_PERIOD=YYYY-MM/<export>-Manifest.json``, the root being the export's folder.

- The period-level manifest is rewritten by every refresh and names the latest delivery: its ``dataFiles``
  are the period. Files under ``data/`` it does not name (stale OVERWRITE_REPORT chunks, older
  CREATE_NEW_REPORT execution folders) are never loaded; per-execution manifests one level deeper are history.
- ``BILLING_PERIOD=`` is matched case-insensitively (``billing_period=`` has been delivered); when both
  casings hold a manifest for one period, the newer manifest wins (AWS switched, the other is orphaned).
- ``dataFiles`` are full URIs of the bucket AWS delivered to: each is rebased onto the configured root from
  its ``data/`` segment, so a copied or replicated export reads its own copies.
- A manifest that cannot be read fails the sync: data without a readable manifest is never globbed.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence

from server.cloud.objects import ObjectMeta, ObjectSource
from server.cloud.units import Unit
from tools.errors import CloudManifestInvalid, CloudObjectMissing

PARTITION = re.compile(r"^billing_period=(\d{4}-\d{2})$", re.IGNORECASE)
DATA_TAIL = re.compile(r"(?:^|/)(data/billing_period=[^/]+/.+)$", re.IGNORECASE)


def period_manifests(root: str, listing: Sequence[ObjectMeta]) -> dict[str, ObjectMeta]:
    """The period-level manifest of each billing period (``metadata/<partition>/<name>-Manifest.json``)."""
    found: dict[str, ObjectMeta] = {}
    for meta in listing:
        parts = meta.key[len(root) :].split("/")
        if len(parts) != 3 or parts[0] != "metadata" or not parts[2].lower().endswith("manifest.json"):
            continue
        match = PARTITION.match(parts[1])
        if match is None:
            continue
        period = match.group(1)
        if period not in found or meta.last_modified > found[period].last_modified:
            found[period] = meta
    return found


def is_aws_export(root: str, listing: Sequence[ObjectMeta]) -> bool:
    return bool(period_manifests(root, listing))


def _rebase(uri: str, root: str, bucket: str) -> str | None:
    """The key under ``root`` of a manifest's data file URI (rebased from its ``data/`` segment)."""
    match = DATA_TAIL.search(uri)
    if match:
        return root + match.group(1)
    prefix = f"s3://{bucket}/"
    return uri[len(prefix) :] if uri.startswith(prefix) else None


def units(source: ObjectSource, root: str, listing: Sequence[ObjectMeta]) -> list[Unit]:
    """One unit per billing period, from its manifest (see module doc)."""
    export = root.rstrip("/").rsplit("/", 1)[-1] or source.url.bucket
    objects = {m.key: m for m in listing}
    out = []
    for period, manifest in sorted(period_manifests(root, listing).items()):
        where = source.url.url(manifest.key)
        raw, fresh = source.read(manifest.key)
        try:
            doc = json.loads(raw)
            data_files = doc["dataFiles"]
            if not isinstance(data_files, list) or not all(isinstance(u, str) for u in data_files):
                raise TypeError("dataFiles is not a list of URIs")
        except (ValueError, KeyError, TypeError) as exc:
            raise CloudManifestInvalid(
                f"the AWS Data Exports manifest {where} cannot be read: {exc}", {"object": where}
            ) from None
        files = []
        for uri in data_files:
            key = _rebase(uri, root, source.url.bucket)
            if key is None:
                raise CloudManifestInvalid(
                    f"the manifest {where} lists {uri}, which is neither under a data/BILLING_PERIOD= folder nor "
                    "in this bucket",
                    {"object": where, "file": uri},
                )
            if key not in objects:
                raise CloudObjectMissing(
                    f"the manifest {where} lists {source.url.url(key)}, which does not exist",
                    {"object": source.url.url(key), "manifest": where},
                )
            files.append(objects[key])
        execution = str(doc.get("executionId") or "")
        out.append(
            Unit(
                key=f"aws:{export}:{period}",
                label=f"AWS billing period {period}" + (f" (execution {execution})" if execution else ""),
                files=tuple(files),
                identity=execution,
                manifest=fresh,
            )
        )
    return out
