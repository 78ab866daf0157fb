"""Cloud exports (issue 15): ``load``/``sync`` of S3 and Azure Blob exports, against real emulators.

moto's S3 server and Azurite run on 127.0.0.1 for the whole module. Each test writes its own export (its
own bucket or container) in the provider's layout, built from the shared samples, and checks the store's
per-currency Decimal totals against its own sums of exactly the files the manifests name.
"""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import tracemalloc
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import duckdb
import obstore
import pytest
from cloud_exports import (
    AwsExport,
    AzureExport,
    aws_export,
    azure_store,
    csv_gz,
    name,
    parquet,
    restated,
    s3_store,
    samples,
)
from conftest import AWS_13, AWS_CREDITS, CONSOLIDATED, GCP_12, decimal_sums, read_csv
from emulators import AZURE_KEY, AzureEmulator, S3Emulator, azure_emulator, s3_emulator
from serving import FOCUS_API, clean_env

from server.cloud.cache import Cache
from server.cloud.objects import ObjectSource, SourceUrl
from server.cloud.sync import SyncResult, run_sync
from server.settings import Settings
from server.store.generations import Layout
from tools.errors import (
    CloudAccessDenied,
    CloudFileRefused,
    CloudManifestInvalid,
    CloudObjectMissing,
    CloudUnreachable,
)

Rows = list[dict[str, str]]
MONEY = ("BilledCost", "EffectiveCost", "ListCost")


@pytest.fixture(scope="module")
def s3() -> Iterator[S3Emulator]:
    with s3_emulator() as emulator:
        yield emulator


@pytest.fixture(scope="module")
def azure() -> Iterator[AzureEmulator]:
    with azure_emulator() as emulator:
        yield emulator


@pytest.fixture
def aws_env(s3: S3Emulator, monkeypatch: pytest.MonkeyPatch) -> S3Emulator:
    for variable, value in s3.env().items():
        monkeypatch.setenv(variable, value)
    return s3


@pytest.fixture
def azure_env(azure: AzureEmulator, monkeypatch: pytest.MonkeyPatch) -> AzureEmulator:
    for variable, value in azure.env().items():
        monkeypatch.setenv(variable, value)
    return azure


def settings(data_dir: Path) -> Settings:
    # A small retry budget: the unreachable-endpoint test must fail quickly, and nothing else retries.
    return Settings(
        data_dir=data_dir,
        cloud_max_retries=2,
        cloud_retry_budget_seconds=5,
        cloud_backoff_seconds=0.05,
        cloud_connect_timeout_seconds=2,
    )


def sync(data_dir: Path, *sources: str, only_changed: bool = True) -> SyncResult:
    return run_sync(settings(data_dir), list(sources), only_changed=only_changed)


def totals(data_dir: Path) -> tuple[dict[tuple[str, str], Decimal], int]:
    """The store's per (currency, column) sums and its Cost and Usage row count."""
    path = Layout(data_dir).current()
    assert path is not None
    con = duckdb.connect(str(path), read_only=True)
    try:
        sums: dict[tuple[str, str], Decimal] = {}
        for column in MONEY:
            for currency, total in con.execute(
                f"SELECT BillingCurrency, sum({column}) FROM cost_and_usage GROUP BY 1"
            ).fetchall():
                if total is not None:
                    sums[(currency, column)] = Decimal(total)
        row = con.execute("SELECT count(*) FROM cost_and_usage").fetchone()
        return sums, int(row[0]) if row else 0
    finally:
        con.close()


def expected(rows: Rows) -> tuple[dict[tuple[str, str], Decimal], int]:
    return decimal_sums(rows, MONEY), len(rows)


def loaded_sources(data_dir: Path) -> list[str]:
    path = Layout(data_dir).current()
    assert path is not None
    con = duckdb.connect(str(path), read_only=True)
    try:
        return [str(r[0]) for r in con.execute("SELECT source FROM loads ORDER BY load_id").fetchall()]
    finally:
        con.close()


def test_an_aws_export_loads_exactly_the_files_its_period_manifests_name(aws_env: S3Emulator, tmp_path: Path) -> None:
    export, named = aws_export(aws_env)

    result = sync(tmp_path / "data", export.url)

    assert totals(tmp_path / "data") == expected(named)
    assert [u.unit for u in result.loaded] == [
        "aws:my-focus-export:2026-07",
        "aws:my-focus-export:2026-08",
    ]
    assert all(f.status == "loaded" for f in result.reports)


def test_a_stray_chunk_under_data_is_not_loaded(aws_env: S3Emulator, tmp_path: Path) -> None:
    export, _ = aws_export(aws_env)

    sync(tmp_path / "data", export.url)

    sources = loaded_sources(tmp_path / "data")
    assert not any(s.endswith("my-focus-export-00003.csv.gz") for s in sources)
    assert "EUR" not in {currency for currency, _ in totals(tmp_path / "data")[0]}


def test_an_older_execution_folder_of_a_create_new_export_is_not_loaded(aws_env: S3Emulator, tmp_path: Path) -> None:
    export, _ = aws_export(aws_env)

    sync(tmp_path / "data", export.url)

    sources = loaded_sources(tmp_path / "data")
    assert not any("exec-0001" in s for s in sources)
    assert sum("exec-0002" in s for s in sources) == 2


def test_manifest_uris_of_the_bucket_aws_delivered_to_are_read_from_the_copy(
    aws_env: S3Emulator, tmp_path: Path
) -> None:
    export, _ = aws_export(aws_env)

    sync(tmp_path / "data", export.url)

    assert all(s.startswith(export.url) for s in loaded_sources(tmp_path / "data"))


def test_syncing_twice_loads_nothing_the_second_time(aws_env: S3Emulator, tmp_path: Path) -> None:
    export, named = aws_export(aws_env)
    sync(tmp_path / "data", export.url)
    generation = Layout(tmp_path / "data").current()

    again = sync(tmp_path / "data", export.url)

    assert again.loaded == [] and {u.status for u in again.units} == {"unchanged"}
    assert Layout(tmp_path / "data").current() == generation
    assert totals(tmp_path / "data") == expected(named)


def test_a_new_execution_replaces_its_billing_period_only(aws_env: S3Emulator, tmp_path: Path) -> None:
    export, named = aws_export(aws_env)
    sync(tmp_path / "data", export.url)
    august, _, _ = samples("2026-08")
    # The restatement has fewer files and drops a billing account: nothing of the old delivery may remain.
    kept = [r for r in august if r["BillingAccountId"] == "100000000001"][:20]
    export.deliver("2026-08", [("csv.gz", csv_gz(kept))], "exec-0004")

    result = sync(tmp_path / "data", export.url)

    july = [r for r in named if r["BillingPeriodStart"].startswith("2026-07")]
    assert totals(tmp_path / "data") == expected(july + kept)
    assert [u.unit for u in result.loaded] == ["aws:my-focus-export:2026-08"]


def test_focus_api_load_of_an_s3_export_reports_each_object_like_a_local_file(
    aws_env: S3Emulator, tmp_path: Path
) -> None:
    export, named = aws_export(aws_env)

    done = subprocess.run(
        [FOCUS_API, "load", "--json", "--data-dir", tmp_path / "data", export.url],
        capture_output=True,
        text=True,
        timeout=300,
        env=clean_env(**aws_env.env()),
    )

    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert {f["status"] for f in report["files"]} == {"loaded"}
    assert sorted(f["file"] for f in report["files"]) == sorted(loaded_sources(tmp_path / "data"))
    assert totals(tmp_path / "data") == expected(named)


def test_focus_api_sync_run_twice_loads_nothing_the_second_time(aws_env: S3Emulator, tmp_path: Path) -> None:
    export, _ = aws_export(aws_env)
    command = [FOCUS_API, "sync", "--json", "--data-dir", tmp_path / "data", export.url]

    first = subprocess.run(command, capture_output=True, text=True, timeout=300, env=clean_env(**aws_env.env()))
    second = subprocess.run(command, capture_output=True, text=True, timeout=300, env=clean_env(**aws_env.env()))

    assert first.returncode == 0 and second.returncode == 0, first.stderr + second.stderr
    assert json.loads(first.stdout)["loadedUnits"] == 2
    assert json.loads(second.stdout)["loadedUnits"] == 0 and json.loads(second.stdout)["unchangedUnits"] == 2


def test_a_single_object_url_loads_that_file(aws_env: S3Emulator, tmp_path: Path) -> None:
    bucket = name()
    aws_env.create_bucket(bucket)
    rows = restated(read_csv(GCP_12), "2026-07")
    export = AwsExport(s3_store(aws_env.endpoint, bucket), bucket, "bigquery/")
    export.put("snapshot-000000000000.parquet", parquet(rows))

    sync(tmp_path / "data", f"s3://{bucket}/bigquery/snapshot-000000000000.parquet")

    assert totals(tmp_path / "data") == expected(rows)


# -- bad AWS deliveries -------------------------------------------------------------------------------


def test_a_manifest_listing_a_missing_file_fails_naming_it_and_changes_nothing(
    aws_env: S3Emulator, tmp_path: Path
) -> None:
    export, named = aws_export(aws_env)
    sync(tmp_path / "data", export.url)
    generation = Layout(tmp_path / "data").current()
    export.deliver(
        "2026-08",
        [("csv.gz", csv_gz(samples("2026-08")[0][:10]))],
        "exec-0005",
        manifest_names=[
            "data/BILLING_PERIOD=2026-08/my-focus-export-00001.csv.gz",
            "data/BILLING_PERIOD=2026-08/gone.csv.gz",
        ],
    )

    with pytest.raises(CloudObjectMissing) as failed:
        sync(tmp_path / "data", export.url)

    assert failed.value.details["object"] == f"{export.url}data/BILLING_PERIOD=2026-08/gone.csv.gz"
    assert Layout(tmp_path / "data").current() == generation
    assert totals(tmp_path / "data") == expected(named)


def test_a_truncated_gzip_part_fails_naming_it_and_changes_nothing(aws_env: S3Emulator, tmp_path: Path) -> None:
    export, named = aws_export(aws_env)
    sync(tmp_path / "data", export.url)
    generation = Layout(tmp_path / "data").current()
    august, credits, _ = samples("2026-08")
    whole = csv_gz(august)
    export.deliver("2026-08", [("csv.gz", csv_gz(credits)), ("csv.gz", whole[: len(whole) // 2])], "exec-0006")

    with pytest.raises(CloudFileRefused) as failed:
        sync(tmp_path / "data", export.url)

    assert failed.value.details["object"] == f"{export.url}data/BILLING_PERIOD=2026-08/my-focus-export-00002.csv.gz"
    assert Layout(tmp_path / "data").current() == generation
    assert totals(tmp_path / "data") == expected(named)


def test_a_file_whose_columns_are_not_focus_fails_naming_it_and_changes_nothing(
    aws_env: S3Emulator, tmp_path: Path
) -> None:
    export, named = aws_export(aws_env)
    sync(tmp_path / "data", export.url)
    generation = Layout(tmp_path / "data").current()
    legacy_cur = gzip.compress(b"identity/LineItemId,lineItem/UnblendedCost\nabc,1.5\n")
    export.deliver("2026-08", [("csv.gz", legacy_cur)], "exec-0007")

    with pytest.raises(CloudFileRefused) as failed:
        sync(tmp_path / "data", export.url)

    assert failed.value.details["object"] == f"{export.url}data/BILLING_PERIOD=2026-08/my-focus-export-00001.csv.gz"
    assert failed.value.details["problems"][0]["rule"] == "unknown_dataset"
    assert Layout(tmp_path / "data").current() == generation
    assert totals(tmp_path / "data") == expected(named)


def test_an_unreachable_endpoint_fails_after_bounded_retries_and_changes_nothing(
    aws_env: S3Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    export, named = aws_export(aws_env)
    sync(tmp_path / "data", export.url)
    generation = Layout(tmp_path / "data").current()
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")  # the discard port: nothing listens

    with pytest.raises(CloudUnreachable) as failed:
        sync(tmp_path / "data", export.url)

    assert failed.value.details["object"] == export.url
    assert "after 2 retries" in failed.value.message
    assert Layout(tmp_path / "data").current() == generation
    assert totals(tmp_path / "data") == expected(named)


def test_data_files_without_a_period_manifest_are_refused_rather_than_globbed(
    aws_env: S3Emulator, tmp_path: Path
) -> None:
    bucket = name()
    aws_env.create_bucket(bucket)
    export = AwsExport(s3_store(aws_env.endpoint, bucket), bucket, "focus/my-focus-export/")
    export.put("data/BILLING_PERIOD=2026-07/my-focus-export-00001.csv.gz", csv_gz(samples("2026-07")[0]))

    with pytest.raises(CloudManifestInvalid) as failed:
        sync(tmp_path / "data", export.url)

    assert "manifest" in failed.value.message
    assert Layout(tmp_path / "data").current() is None


# -- an Azure-shaped export ---------------------------------------------------------------------------


def azure_export(azure: AzureEmulator) -> tuple[AzureExport, Rows, Rows]:
    """A daily month-to-date export with three runs of 2026-10, one run of 2026-08, an empty run of 2026-12,
    and a one-time export of 2026-10 submitted between the daily runs 2 and 3; the rows of the winning runs
    of 2026-08 and 2026-10."""
    container = name()
    azure.create_container(container)
    export = AzureExport(azure_store(azure.endpoint, container, AZURE_KEY), container, "exports/focus/")
    october = restated(read_csv(GCP_12), "2026-10")
    october_more = restated(read_csv(CONSOLIDATED), "2026-10")
    export.run("daily-focus", "2026-10", "run-1", "2026-10-05T06:00:00.1234567Z", [("csv.gz", csv_gz(october[:40]))])
    export.run(
        "daily-focus",
        "2026-10",
        "run-2",
        "2026-10-06T06:00:00.1234567Z",
        [("csv.gz", csv_gz(october[:35])), ("snappy.parquet", parquet(october[35:70]))],
    )
    export.run(
        "backfill-focus",
        "2026-10",
        "one-time",
        "2026-10-06T12:00:00.0000000Z",
        [("csv.gz", csv_gz(october))],
        time_frame="OneTime",
    )
    export.run(
        "daily-focus",
        "2026-10",
        "run-3",
        "2026-10-07T06:00:00.1234567Z",
        [("snappy.parquet", parquet(october)), ("csv.gz", csv_gz(october_more))],
    )
    august = restated(read_csv(AWS_CREDITS), "2026-08")
    export.run("daily-focus", "2026-08", "run-a", "2026-09-01T06:00:00.0000000Z", [("csv.gz", csv_gz(august))])
    export.run("daily-focus", "2026-12", "run-empty", "2026-12-01T06:00:00.0000000Z", [])
    return export, august, october + october_more


def test_an_azure_export_loads_only_the_latest_run_of_each_scope_and_month(
    azure_env: AzureEmulator, tmp_path: Path
) -> None:
    export, august, october = azure_export(azure_env)

    result = sync(tmp_path / "data", export.url)

    assert totals(tmp_path / "data") == expected(august + october)
    assert sum("run-3" in s for s in loaded_sources(tmp_path / "data")) == 2
    assert not any(k in s for s in loaded_sources(tmp_path / "data") for k in ("run-1", "run-2", "one-time"))
    assert len(result.loaded) == 2


def test_an_empty_azure_run_is_not_an_error(azure_env: AzureEmulator, tmp_path: Path) -> None:
    export, _, _ = azure_export(azure_env)

    result = sync(tmp_path / "data", export.url)

    empty = [u for u in result.units if u.unit.endswith(":2026-12")]
    assert [u.status for u in empty] == ["empty"]


def test_a_one_time_export_submitted_later_replaces_the_daily_runs_of_its_month(
    azure_env: AzureEmulator, tmp_path: Path
) -> None:
    export, august, _ = azure_export(azure_env)
    sync(tmp_path / "data", export.url)
    backfill = restated(read_csv(AWS_13), "2026-10")
    export.run(
        "backfill-focus",
        "2026-10",
        "one-time-2",
        "2026-10-08T00:00:00.0000000Z",
        [("csv.gz", csv_gz(backfill))],
        time_frame="OneTime",
    )

    sync(tmp_path / "data", export.url)

    assert totals(tmp_path / "data") == expected(august + backfill)


def test_a_new_azure_run_replaces_its_month_only(azure_env: AzureEmulator, tmp_path: Path) -> None:
    export, august, october = azure_export(azure_env)
    sync(tmp_path / "data", export.url)
    fewer = october[:50]  # one part now: the consolidated rows (other accounts, EUR) are gone

    export.run("daily-focus", "2026-10", "run-4", "2026-10-08T06:00:00.1234567Z", [("csv.gz", csv_gz(fewer))])
    result = sync(tmp_path / "data", export.url)

    assert totals(tmp_path / "data") == expected(august + fewer)
    assert [u.unit.rsplit(":", 1)[-1] for u in result.loaded] == ["2026-10"]


def test_access_denied_fails_naming_the_container_and_changes_nothing(
    azure_env: AzureEmulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    export, august, october = azure_export(azure_env)
    sync(tmp_path / "data", export.url)
    generation = Layout(tmp_path / "data").current()
    wrong = AZURE_KEY[:-8] + "AAAAAAA="
    monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING", azure_env.connection_string(wrong))

    with pytest.raises(CloudAccessDenied) as failed:
        sync(tmp_path / "data", export.url)

    assert failed.value.details["object"] == export.url
    assert wrong not in failed.value.message and AZURE_KEY not in failed.value.message
    assert Layout(tmp_path / "data").current() == generation
    assert totals(tmp_path / "data") == expected(august + october)


def test_an_azure_manifest_listing_a_missing_blob_fails_naming_it(azure_env: AzureEmulator, tmp_path: Path) -> None:
    export, _, _ = azure_export(azure_env)
    gone = f"{export.root}daily-focus/20261001-20261031/202610090600/run-5/part_9_0001.csv.gz"
    export.run("daily-focus", "2026-10", "run-5", "2026-10-09T06:00:00.0000000Z", [], listed=[gone])

    with pytest.raises(CloudObjectMissing) as failed:
        sync(tmp_path / "data", export.url)

    assert failed.value.details["object"] == f"az://{export.container}/{gone}"
    assert Layout(tmp_path / "data").current() is None


def test_two_subscriptions_of_one_billing_account_add_up_and_each_replaces_only_its_own_month(
    azure_env: AzureEmulator, tmp_path: Path
) -> None:
    container = name()
    azure_env.create_container(container)
    store = azure_store(azure_env.endpoint, container, AZURE_KEY)
    first = AzureExport(store, container, "exports/", scope="/subscriptions/aaaaaaaa-0000-0000-0000-000000000001")
    second = AzureExport(store, container, "exports/", scope="/subscriptions/bbbbbbbb-0000-0000-0000-000000000002")
    october = restated(read_csv(GCP_12), "2026-10")  # one billing account's rows, split between two subscriptions
    first.run("sub-a", "2026-10", "a-1", "2026-10-05T06:00:00.0000000Z", [("csv.gz", csv_gz(october[:50]))])
    second.run("sub-b", "2026-10", "b-1", "2026-10-05T07:00:00.0000000Z", [("csv.gz", csv_gz(october[50:]))])
    sync(tmp_path / "data", first.url)
    assert totals(tmp_path / "data") == expected(october)

    first.run("sub-a", "2026-10", "a-2", "2026-10-06T06:00:00.0000000Z", [("csv.gz", csv_gz(october[:30]))])
    result = sync(tmp_path / "data", first.url)

    assert totals(tmp_path / "data") == expected(october[:30] + october[50:])
    assert [u.unit for u in result.loaded] == [
        "azure:/subscriptions/aaaaaaaa-0000-0000-0000-000000000001:FocusCost:2026-10"
    ]


def test_a_delivery_landing_while_its_period_downloads_is_read_again(
    aws_env: S3Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    export, named = aws_export(aws_env)
    august = [r for r in samples("2026-08")[0] if r["BillingAccountId"] == "100000000002"][:15]
    original = ObjectSource.download
    landed: list[str] = []

    def download(self: ObjectSource, key: str, target: Path, etag: str | None) -> int:
        if "BILLING_PERIOD=2026-08" in key and not landed:
            landed.append(key)  # AWS rewrites the period while we read its previous delivery
            export.deliver("2026-08", [("csv.gz", csv_gz(august))], "exec-0009", folder="20260903T000000Z-exec-0009")
        return original(self, key, target, etag)

    monkeypatch.setattr(ObjectSource, "download", download)
    sync(tmp_path / "data", export.url)

    july = [r for r in named if r["BillingPeriodStart"].startswith("2026-07")]
    assert landed
    assert totals(tmp_path / "data") == expected(july + august)


def test_focus_api_sync_of_a_source_that_is_not_a_cloud_url_fails_with_its_code(tmp_path: Path) -> None:
    done = subprocess.run(
        [FOCUS_API, "sync", "--data-dir", tmp_path / "data", "ftp://billing/export/"],
        capture_output=True,
        text=True,
        timeout=120,
        env=clean_env(),
    )

    assert done.returncode == 1
    assert "cloud_source_invalid" in done.stderr and "ftp://billing/export/" in done.stderr
    assert Layout(tmp_path / "data").current() is None


def test_a_large_object_streams_to_the_cache_in_bounded_memory(azure_env: AzureEmulator, tmp_path: Path) -> None:
    container = name()
    azure_env.create_container(container)
    size = 64 << 20
    obstore.put(azure_store(azure_env.endpoint, container, AZURE_KEY), "big/part_0_0001.csv.gz", os.urandom(size))
    source = ObjectSource(SourceUrl.parse(f"az://{container}/big/"), settings(tmp_path / "data"))
    (listed,) = list(source.list("big/"))

    with Cache(tmp_path / "data", 1) as cache:
        tracemalloc.start()
        try:
            (path,) = cache.fetch(source, (listed,))
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert path.stat().st_size == size

    assert peak < size // 2  # chunks of CHUNK bytes, never the whole object
    assert not (tmp_path / "data" / "cache").exists() or not any((tmp_path / "data" / "cache").iterdir())


def test_an_aws_profile_is_read_through_boto3(
    aws_env: S3Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    export, named = aws_export(aws_env)
    credentials = tmp_path / "aws-credentials"
    credentials.write_text("[billing-reader]\naws_access_key_id = from-profile\naws_secret_access_key = from-profile\n")
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(credentials))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_PROFILE", "billing-reader")

    sync(tmp_path / "data", export.url)

    assert totals(tmp_path / "data") == expected(named)
