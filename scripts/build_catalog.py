"""Rebuild the packaged FOCUS 1.3 column catalog from the team's spec digest.

The package must not read ``../shared`` at run time, so the catalog ships as package data in
``tools/catalog_data/``. Run this when the digest in ``../shared/focus-spec`` changes:

    python scripts/build_catalog.py ../shared/focus-spec
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

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
FILES = {"cost_and_usage_1_3.json": "cost_and_usage.json", "contract_commitment_1_3.json": "contract_commitment.json"}


def main(spec_dir: Path) -> None:
    out_dir = Path(__file__).resolve().parent.parent / "tools" / "catalog_data"
    for src, dst in FILES.items():
        columns = json.loads((spec_dir / src).read_text(encoding="utf-8"))
        trimmed = [{k: c.get(k) for k in KEEP} for c in sorted(columns, key=lambda c: c["spec_order"])]
        (out_dir / dst).write_text(json.dumps(trimmed, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        print(f"{dst}: {len(trimmed)} columns")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "../shared/focus-spec"))
