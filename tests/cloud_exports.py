"""Cloud-shaped FOCUS exports for the tests, built from the shared samples and written to the emulators.

- ``restated``: a sample's rows moved to another billing period (every timestamp shifted by whole days, from
  May 2026 to a month of 31 days as well, so each charge stays inside its period);
- ``csv_gz`` / ``parquet``: a delivery file's bytes (Parquet with the FOCUS types);
- ``AwsExport``: AWS Data Exports layout (data/ and metadata/ per BILLING_PERIOD, period and per-execution
  manifests), its manifests naming the bucket AWS delivered to, not the copy the test reads;
- ``AzureExport``: Cost Management layout (a folder per run with its parts and manifest.json).
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import tempfile
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import obstore
from conftest import AWS_13, AWS_CREDITS, CONSOLIDATED, read_csv, write_typed_parquet
from emulators import S3Emulator
from obstore.store import AzureStore, S3Store

from tools.catalog import Dataset, columns_at

Row = dict[str, str]
Rows = list[Row]
_TIME = "%Y-%m-%dT%H:%M:%SZ"


def restated(rows: list[Row], month: str) -> list[Row]:
    """``rows`` (of May 2026) as if billed in ``month`` (YYYY-MM of a 31-day month)."""
    start = date.fromisoformat(f"{month}-01")
    shift = start - date(2026, 5, 1)
    out = []
    for row in rows:
        moved = dict(row)
        for column, value in row.items():
            if len(value) == 20 and value[4] == "-" and value[10] == "T" and value.endswith("Z"):
                at = datetime.strptime(value, _TIME).replace(tzinfo=UTC) + timedelta(days=shift.days)
                moved[column] = at.strftime(_TIME)
        out.append(moved)
    return out


def _csv_text(rows: list[Row]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def csv_gz(rows: list[Row]) -> bytes:
    return gzip.compress(_csv_text(rows).encode())


def parquet(rows: list[Row]) -> bytes:
    """The rows as Parquet with the FOCUS types (DECIMAL(38,18), TIMESTAMP, JSON, text), as exports write it."""
    version = "1.3" if "ServiceProviderName" in rows[0] else "1.2"
    types = {c.id: c.data_type for c in columns_at(Dataset.COST_AND_USAGE, version).columns}
    with tempfile.TemporaryDirectory() as tmp:
        source, target = Path(tmp) / "rows.csv", Path(tmp) / "rows.parquet"
        source.write_text(_csv_text(rows))
        write_typed_parquet(source, target, types)
        return target.read_bytes()


def s3_store(endpoint: str, bucket: str) -> S3Store:
    return S3Store(
        bucket,
        endpoint=endpoint,
        region="us-east-1",
        access_key_id="testing",
        secret_access_key="testing",
        client_options={"allow_http": True},
    )


def azure_store(endpoint: str, container: str, key: str) -> AzureStore:
    return AzureStore(
        container,
        account_name="devstoreaccount1",
        account_key=key,
        endpoint=endpoint,
        client_options={"allow_http": True},
    )


@dataclass
class AwsExport:
    """One AWS Data Exports FOCUS export at ``s3://<bucket>/<root>`` (root ends with the export's name)."""

    store: S3Store
    bucket: str
    root: str  # e.g. "focus/123456789012/my-export/"
    delivered_to: str = "aws-delivery-bucket"  # the bucket the manifests name (this one is a copy)

    @property
    def name(self) -> str:
        return self.root.rstrip("/").rsplit("/", 1)[-1]

    @property
    def url(self) -> str:
        return f"s3://{self.bucket}/{self.root}"

    def put(self, key: str, data: bytes) -> None:
        obstore.put(self.store, self.root + key, data)

    def deliver(
        self,
        period: str,
        parts: list[tuple[str, bytes]],
        execution: str,
        *,
        partition: str = "BILLING_PERIOD",
        folder: str | None = None,
        manifest_names: list[str] | None = None,
    ) -> list[str]:
        """Write ``parts`` (suffix, bytes) and then the period manifest naming them; their keys under the root.

        ``folder``: a CREATE_NEW_REPORT execution folder (it gets its own manifest one level deeper too).
        ``manifest_names``: what the manifest lists instead (a file that is not there, say).
        """
        where = f"data/{partition}={period}/" + (f"{folder}/" if folder else "")
        keys = []
        for number, (suffix, data) in enumerate(parts, start=1):
            key = f"{where}{self.name}-{number:05d}.{suffix}"
            self.put(key, data)
            keys.append(key)
        listed = manifest_names if manifest_names is not None else keys
        manifest = {
            "executionId": execution,
            "exportArn": f"arn:aws:bcm-data-exports:us-east-1:123456789012:export/{self.name}-abc",
            "columns": [{"name": "BilledCost", "type": "decimal"}],
            "dataFiles": [f"s3://{self.delivered_to}/copied-from/{self.name}/{k}" for k in listed],
            "additionalOutputFiles": [],
        }
        body = json.dumps(manifest).encode()
        if folder:
            self.put(f"metadata/{partition}={period}/{folder}/{self.name}-Manifest.json", body)
        self.put(f"metadata/{partition}={period}/{self.name}-Manifest.json", body)
        return keys


@dataclass
class AzureExport:
    """Cost Management FOCUS exports under ``az://<container>/<root>`` (any number of exports and runs)."""

    store: AzureStore
    container: str
    root: str  # e.g. "focus/"
    scope: str = "/subscriptions/00000000-1111-2222-3333-444444444444"

    @property
    def url(self) -> str:
        return f"az://{self.container}/{self.root}"

    def run(
        self,
        export: str,
        month: str,
        run_id: str,
        submitted: str,
        parts: list[tuple[str, bytes]],
        *,
        time_frame: str = "MonthToDate",
        listed: list[str] | None = None,
    ) -> list[str]:
        """One run's parts and then its manifest.json; the parts' blob names (container-relative)."""
        first = date.fromisoformat(f"{month}-01")
        last = (first + timedelta(days=32)).replace(day=1) - timedelta(days=1)
        at = submitted[:16].replace("-", "").replace("T", "").replace(":", "")  # yyyyMMddHHmm
        folder = f"{self.root}{export}/{first:%Y%m%d}-{last:%Y%m%d}/{at}/{run_id}/"
        names = []
        for number, (suffix, data) in enumerate(parts):
            name = f"{folder}part_{number}_0001.{suffix}"
            obstore.put(self.store, name, data)
            names.append(name)
        blobs = listed if listed is not None else names
        manifest = {
            "manifestVersion": "2024-04-01",
            "byteCount": sum(len(d) for _, d in parts),
            "blobCount": len(blobs),
            "dataRowCount": 0 if not blobs else 1,
            "exportConfig": {
                "exportName": export,
                "resourceId": f"{self.scope}/providers/Microsoft.CostManagement/exports/{export}",
                "dataVersion": "1.0r2",
                "apiVersion": "2023-07-01-preview",
                "type": "FocusCost",
                "timeFrame": time_frame,
                "granularity": "Daily",
            },
            "deliveryConfig": {
                "partitionData": True,
                "dataOverwriteBehavior": "CreateNewReport",
                "fileFormat": "Csv",
                "containerUri": f"/subscriptions/x/providers/Microsoft.Storage/storageAccounts/{self.container}",
                "rootFolderPath": self.root.rstrip("/"),
            },
            "runInfo": {
                "executionType": "Scheduled",
                "submittedTime": submitted,
                "runId": run_id,
                "startDate": f"{month}-01T00:00:00",
                "endDate": f"{last:%Y-%m-%d}T00:00:00",
            },
            "blobs": [{"blobName": b, "byteCount": 1, "dataRowCount": 1} for b in blobs],
        }
        obstore.put(self.store, f"{folder}manifest.json", json.dumps(manifest).encode())
        return names


def name() -> str:
    return f"t{uuid.uuid4().hex[:12]}"


def samples(month: str) -> tuple[Rows, Rows, Rows]:
    return (
        restated(read_csv(AWS_13), month),
        restated(read_csv(AWS_CREDITS), month),
        restated(read_csv(CONSOLIDATED), month),
    )


def aws_export(s3: S3Emulator) -> tuple[AwsExport, Rows]:
    """Two billing periods; the rows the period manifests name (what must be loaded).

    - 2026-07, lowercase ``billing_period=``, CREATE_NEW_REPORT: an older execution folder (30 rows) and the
      latest one (two parts: CSV.gz and Parquet);
    - 2026-08, ``BILLING_PERIOD=``, OVERWRITE_REPORT: two parts the manifest names and a stray third chunk
      of an earlier delivery (other accounts, in EUR too) that it does not.
    """
    bucket = name()
    s3.create_bucket(bucket)
    export = AwsExport(s3_store(s3.endpoint, bucket), bucket, "focus/123456789012/my-focus-export/")
    july, july_credits, _ = samples("2026-07")
    export.deliver(
        "2026-07",
        [("snappy.parquet", parquet(july[:30]))],
        "exec-0001",
        partition="billing_period",
        folder="20260801T010203Z-exec-0001",
    )
    export.deliver(
        "2026-07",
        [("csv.gz", csv_gz(july)), ("snappy.parquet", parquet(july_credits))],
        "exec-0002",
        partition="billing_period",
        folder="20260802T010203Z-exec-0002",
    )
    august, august_credits, august_stray = samples("2026-08")
    export.put("data/BILLING_PERIOD=2026-08/my-focus-export-00003.csv.gz", csv_gz(august_stray))
    export.deliver("2026-08", [("snappy.parquet", parquet(august)), ("csv.gz", csv_gz(august_credits))], "exec-0003")
    return export, july + july_credits + august + august_credits
