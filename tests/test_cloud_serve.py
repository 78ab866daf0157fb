"""``focus-api serve --sync``: a real server syncing an S3 export (moto) in the background while clients read.

The server syncs every second; the tests poll for the state they expect (with deadlines), never sleep, and
assert nothing about timing.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from cloud_exports import aws_export, csv_gz, samples
from emulators import S3Emulator, s3_emulator
from serving import Server, serving

pytestmark = pytest.mark.slow

# moto accepts any key; a distinctive one shows that no credential reaches the log or an answer.
SECRET = "s3cr3t-never-logged-7f3a9c"


@pytest.fixture(scope="module")
def s3() -> Iterator[S3Emulator]:
    with s3_emulator() as emulator:
        yield emulator


def rest_totals(server: Server) -> dict[str, Decimal]:
    reply = server.call("GET", "/cost-and-usage/summary?metrics=BilledCost")
    assert reply.status == 200, reply.body
    totals = json.loads(reply.body, parse_float=Decimal)["totals"]
    return {t["BillingCurrency"]: Decimal(t["BilledCost"]) for t in totals}


def billed(rows: list[dict[str, str]]) -> dict[str, Decimal]:
    out: dict[str, Decimal] = {}
    for row in rows:
        out[row["BillingCurrency"]] = out.get(row["BillingCurrency"], Decimal(0)) + Decimal(row["BilledCost"])
    return out


def sync_info(server: Server) -> dict[str, Any]:
    reply = server.call("GET", "/schema")
    assert reply.status == 200, reply.body
    info: dict[str, Any] = reply.json()["loaded"]["sync"] or {}
    return info


def test_serve_sync_picks_up_a_new_delivery_while_a_client_walks_pages(s3: S3Emulator, tmp_path: Path) -> None:
    export, named = aws_export(s3)
    july = [r for r in named if r["BillingPeriodStart"].startswith("2026-07")]
    env = s3.env() | {"AWS_SECRET_ACCESS_KEY": SECRET}

    with serving(
        tmp_path / "data", tmp_path / "serve.log", "--sync", export.url, "--sync-every", "1s", **env
    ) as server:
        server.until(lambda: rest_totals(server) == billed(named), "the first background sync to be served", 120)
        first = server.call("GET", "/cost-and-usage?pageSize=7").json()
        second = server.call("GET", f"/cost-and-usage?pageSize=7&pageToken={first['nextPageToken']}").json()

        # A restatement of August lands: one account only now.
        kept = [r for r in samples("2026-08")[0] if r["BillingAccountId"] == "100000000001"][:20]
        export.deliver("2026-08", [("csv.gz", csv_gz(kept))], "exec-0010")
        server.until(lambda: rest_totals(server) == billed(july + kept), "the new delivery to be served", 120)
        stale = server.call("GET", f"/cost-and-usage?pageSize=7&pageToken={second['nextPageToken']}")
        info = sync_info(server)

    assert stale.status == 400
    assert stale.json()["code"] == "invalid_page_token"
    assert stale.json()["details"]["reason"] == "stale"
    assert info["sources"][0]["source"] == export.url
    assert info["sources"][0]["lastLoadedAt"]
    assert info["sources"][0]["loaded"][0]["unit"].startswith("AWS billing period 2026-08")
    assert info["lastAttempt"]["ok"] is True and info["lastAttempt"]["error"] is None
    log = server.log_text()
    assert "background sync: done" in log
    assert SECRET not in log


def test_serve_sync_reports_a_failed_sync_and_keeps_serving_the_data_it_had(s3: S3Emulator, tmp_path: Path) -> None:
    export, named = aws_export(s3)

    with serving(
        tmp_path / "data", tmp_path / "serve.log", "--sync", export.url, "--sync-every", "1s", **s3.env()
    ) as server:
        server.until(lambda: rest_totals(server) == billed(named), "the first background sync to be served", 120)
        export.deliver(
            "2026-08",
            [("csv.gz", csv_gz(samples("2026-08")[0][:5]))],
            "exec-0011",
            manifest_names=["data/BILLING_PERIOD=2026-08/not-there.csv.gz"],
        )

        def failed() -> dict[str, Any] | None:
            attempt = sync_info(server).get("lastAttempt") or {}
            return attempt if attempt.get("ok") is False else None

        attempt = server.until(failed, "the failed sync to be reported", 120)
        served = rest_totals(server)

    assert attempt["error"]["code"] == "cloud_object_missing"
    assert attempt["error"]["details"]["object"].endswith("data/BILLING_PERIOD=2026-08/not-there.csv.gz")
    assert served == billed(named)
    assert "background sync: failed" in server.log_text()
