"""Rebuild the packaged FOCUS column catalogs (1.3 and 1.4) and the official 1.4 JSON schemas.

The package must not read ``../shared`` at run time, so the catalogs ship as package data in
``tools/catalog_data/``: ``v1_3/`` from the 1.3 spec digest (Cost and Usage 1.0-1.3 columns carry the
version that introduced them), ``v1_4/`` from the FOCUS 1.4 data model (four datasets) with the official
JSON schemas beside it. Run this when ``../shared/focus-spec`` changes:

    python scripts/build_catalog.py ../shared/focus-spec
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path
from typing import Any

KEEP = (
    "column_id",
    "display_name",
    "category",
    "column_type",
    "data_type",
    "value_format",
    "feature_level",
    "allows_nulls",
    "allowed_values",
    "allowed_value_parents",
    "introduced_in",
    "deprecated",
    "deprecated_in",
    "replaced_by",
    "short_description",
)
FILES_1_3 = {
    "cost_and_usage_1_3.json": "cost_and_usage.json",
    "contract_commitment_1_3.json": "contract_commitment.json",
}
DATASETS_1_4 = {
    "Cost and Usage": "cost_and_usage.json",
    "Contract Commitment": "contract_commitment.json",
    "Billing Period": "billing_period.json",
    "Invoice Detail": "invoice_detail.json",
}


def _write(path: Path, columns: list[dict[str, Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(columns, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"{path.parent.name}/{path.name}: {len(columns)} columns")


def _column_1_4(column_id: str, raw: dict[str, Any], known: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """A 1.4 model column in the catalog's form; text the model lacks (description) comes from 1.3 when it has it."""
    earlier = known.get(column_id, {})
    condition = raw.get("condition")
    description = earlier.get("short_description") or raw["display_name"] + (
        f" (present when the provider: {condition[0].lower() + condition[1:]})"
        if condition and condition != "n/a"
        else ""
    )
    return {
        "column_id": column_id,
        "display_name": raw["display_name"],
        "category": raw.get("category"),
        "column_type": earlier.get("column_type"),
        "data_type": raw["data_type"],
        "value_format": raw.get("value_format"),
        "feature_level": raw["feature_level"],
        "allows_nulls": bool(raw["allows_nulls"]),
        "allowed_values": raw.get("allowed_values"),
        "allowed_value_parents": earlier.get("allowed_value_parents"),
        "introduced_in": raw["version"],
        "deprecated": bool(raw.get("deprecated")),
        "deprecated_in": earlier.get("deprecated_in"),
        "replaced_by": earlier.get("replaced_by"),
        "short_description": description,
    }


def main(spec_dir: Path) -> None:
    out_dir = Path(__file__).resolve().parent.parent / "tools" / "catalog_data"
    known: dict[str, dict[str, Any]] = {}
    for src, dst in FILES_1_3.items():
        columns = json.loads((spec_dir / src).read_text(encoding="utf-8"))
        trimmed = [{k: c.get(k) for k in KEEP} for c in sorted(columns, key=lambda c: c["spec_order"])]
        known.update({c["column_id"]: c for c in trimmed})
        _write(out_dir / "v1_3" / dst, trimmed)
    model = json.loads((spec_dir / "1.4" / "focus_1_4_model.json").read_text(encoding="utf-8"))
    for dataset, dst in DATASETS_1_4.items():
        raw = model["datasets"][dataset]["columns"]
        _write(out_dir / "v1_4" / dst, [_column_1_4(cid, raw[cid], known) for cid in sorted(raw)])
    schemas = out_dir / "v1_4" / "json_schemas"
    schemas.mkdir(parents=True, exist_ok=True)
    for schema in sorted((spec_dir / "1.4" / "json_schemas").glob("*objectschema.json")):
        shutil.copyfile(schema, schemas / schema.name)
        print(f"json_schemas/{schema.name}")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "../shared/focus-spec"))
