"""Which delivery units a source URL holds: an AWS export, an Azure export, a plain prefix, or one object.

- a URL naming one object (``.../part-1.parquet``): that file, a unit of its own;
- a prefix whose ``metadata/`` holds AWS period manifests: ``server.cloud.aws``;
- a prefix holding Azure ``manifest.json`` files: ``server.cloud.azure``;
- otherwise (e.g. a BigQuery ``EXPORT DATA ... overwrite=true`` snapshot on GCS): every CSV/Parquet file under
  it, one unit. A prefix whose keys carry ``billing_period=`` folders but no manifest is refused: it is an AWS
  export whose manifests are missing or unreadable, and globbing it would count deliveries twice.
"""

from __future__ import annotations

import re

from server.cloud import aws, azure
from server.cloud.objects import ObjectSource
from server.cloud.units import Unit, is_data_file
from tools.errors import CloudManifestInvalid, CloudObjectMissing, CloudSourceInvalid

_AWS_DATA = re.compile(r"(?:^|/)(?:data|metadata)/billing_period=", re.IGNORECASE)


def units(source: ObjectSource) -> list[Unit]:
    prefix = source.url.prefix
    if prefix and not prefix.endswith("/"):
        single = source.head(prefix)
        if single is not None:
            if not is_data_file(single.key):
                raise CloudSourceInvalid(
                    f"{source.url} is not a .csv, .csv.gz or .parquet file, nor an export folder",
                    {"object": str(source.url)},
                )
            return [Unit(key=f"file:{single.key}", label=single.key, files=(single,), identity="")]
        prefix += "/"
    listing = list(source.list(prefix))
    if not listing:
        raise CloudObjectMissing(f"nothing is stored under {source.url}", {"object": str(source.url)})
    if aws.is_aws_export(prefix, listing):
        return aws.units(source, prefix, listing)
    if azure.is_azure_export(listing):
        return azure.units(source, listing)
    if any(_AWS_DATA.search(m.key[len(prefix) :]) for m in listing):
        raise CloudManifestInvalid(
            f"{source.url} holds AWS Data Exports folders (billing_period=) but no period manifest "
            "metadata/BILLING_PERIOD=YYYY-MM/<export>-Manifest.json directly under it: point the URL at the export's "
            "folder (the one holding data/ and metadata/); its files are not globbed, which would double count",
            {"object": str(source.url)},
        )
    files = tuple(sorted((m for m in listing if is_data_file(m.key)), key=lambda m: m.key))
    if not files:
        raise CloudObjectMissing(f"no .csv, .csv.gz or .parquet file is stored under {source.url}")
    return [Unit(key=f"prefix:{prefix}", label=f"every file under {source.url.url(prefix)}", files=files, identity="")]
