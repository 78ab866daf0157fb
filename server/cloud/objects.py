"""Object-store access for cloud exports: one obstore store per source URL, and its errors as ``tools.errors``.

URLs: ``s3://BUCKET/PREFIX``, ``az://CONTAINER/PREFIX`` (also ``azure://``, ``abfs://``), ``gs://BUCKET/PREFIX``.
Credentials come from each cloud's standard chain as obstore reads it (AWS: ``AWS_ACCESS_KEY_ID``/..., web
identity, ECS, EC2 instance metadata; Azure: ``AZURE_STORAGE_*``, service principal, workload and managed
identity, or ``AZURE_STORAGE_CONNECTION_STRING``; Google: ``GOOGLE_APPLICATION_CREDENTIALS``, ADC). focus-api
never reads them itself except the connection string, which it splits into obstore's keys; no credential is
ever logged or put in an error (messages carry object URLs without query strings).

Endpoints: ``AWS_ENDPOINT_URL`` (or ``AWS_ENDPOINT_URL_S3``), ``AZURE_STORAGE_ENDPOINT`` or the connection
string's ``BlobEndpoint``, so emulators and S3-compatible stores work; an ``http://`` endpoint is allowed
without also setting ``*_ALLOW_HTTP``, since naming one is the user's explicit choice.

Retries: obstore's own (exponential backoff with jitter on connection errors, timeouts and 5xx/429), bounded
by attempts and a wall-clock budget from Settings; then ``CloudUnreachable``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import obstore
from obstore import exceptions as obx
from obstore.store import AzureStore, GCSStore, S3Store

from tools.errors import (
    CloudAccessDenied,
    CloudExportError,
    CloudObjectMissing,
    CloudSourceInvalid,
    CloudUnreachable,
)

if TYPE_CHECKING:
    from obstore.store import ClientConfig, ObjectStore, RetryConfig

    from server.settings import Settings

SCHEMES = {"s3": "s3", "az": "az", "azure": "az", "abfs": "az", "abfss": "az", "gs": "gs"}
CHUNK = 8 << 20  # bytes per streamed read: memory held per download is about this, whatever the file's size


def is_cloud_url(text: str) -> bool:
    scheme, sep, _ = text.partition("://")
    return bool(sep) and scheme.lower() in SCHEMES


@dataclass(frozen=True, slots=True)
class SourceUrl:
    scheme: str  # s3 | az | gs
    bucket: str  # bucket or container
    prefix: str  # key prefix within it, no leading slash ("" for the whole bucket)

    @classmethod
    def parse(cls, text: str) -> SourceUrl:
        scheme, sep, rest = text.partition("://")
        if not sep or scheme.lower() not in SCHEMES:
            raise CloudSourceInvalid(f"{text!r} is not an s3://, az:// or gs:// URL", {"object": text})
        bucket, _, prefix = rest.partition("/")
        if "@" in bucket:  # abfs://container@account.dfs.core.windows.net/path
            bucket = bucket.split("@", 1)[0]
        if not bucket or "?" in text:
            raise CloudSourceInvalid(
                f"{redact(text)!r} must name a bucket or container and no query (credentials come from the "
                "environment)",
                {"object": redact(text)},
            )
        return cls(SCHEMES[scheme.lower()], bucket, prefix)

    def url(self, key: str | None = None) -> str:
        return f"{self.scheme}://{self.bucket}/{self.prefix if key is None else key}"

    def __str__(self) -> str:
        return self.url()


@dataclass(frozen=True, slots=True)
class ObjectMeta:
    key: str
    size: int
    etag: str
    last_modified: datetime


def redact(text: str) -> str:
    """A URL or message without query strings (a SAS token or a presigned signature travels in one)."""
    return re.sub(r"\?[^\s\"'<>]*", "?…", text)


def _first_line(exc: BaseException) -> str:
    return redact(str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__)


def _http(endpoint: str | None) -> bool:
    return bool(endpoint) and str(endpoint).lower().startswith("http://")


def _azure_connection_string() -> dict[str, str]:
    """obstore's Azure keys from ``AZURE_STORAGE_CONNECTION_STRING`` (the form Azurite and the portal give)."""
    raw = os.environ.get("AZURE_STORAGE_CONNECTION_STRING", "")
    parts = dict(p.split("=", 1) for p in raw.split(";") if "=" in p)
    out: dict[str, str] = {}
    if "AccountName" in parts:
        out["account_name"] = parts["AccountName"]
    if "AccountKey" in parts:
        out["account_key"] = parts["AccountKey"]
    if "SharedAccessSignature" in parts:
        out["sas_key"] = parts["SharedAccessSignature"]
    if "BlobEndpoint" in parts:
        out["endpoint"] = parts["BlobEndpoint"].rstrip("/")
    return out


def _profile_credentials(url: SourceUrl) -> Any:
    """``AWS_PROFILE`` through boto3, which reads profiles and SSO (obstore's own chain does not: it would
    fall through to instance metadata). boto3 is optional: without it, say what to do instead."""
    try:
        from obstore.auth.boto3 import Boto3CredentialProvider
    except ImportError:
        raise CloudSourceInvalid(
            f"AWS_PROFILE is set for {url}, but profiles are read through boto3, which is not installed: "
            "`pip install boto3` beside focus-api, or export the profile's keys (aws configure "
            "export-credentials --format env)",
            {"object": str(url)},
        ) from None
    return Boto3CredentialProvider()


class ObjectSource:
    """One bucket or container, read with the standard credentials and the Settings' retry budget."""

    def __init__(self, url: SourceUrl, settings: Settings) -> None:
        self.url = url
        budget = timedelta(seconds=settings.cloud_retry_budget_seconds)
        retry: RetryConfig = {
            "max_retries": settings.cloud_max_retries,
            "retry_timeout": budget,
            "backoff": {
                "init_backoff": timedelta(seconds=settings.cloud_backoff_seconds),
                "max_backoff": max(timedelta(seconds=settings.cloud_backoff_seconds), budget / 4),
                "base": 2.0,
            },
        }
        client: ClientConfig = {
            "connect_timeout": timedelta(seconds=settings.cloud_connect_timeout_seconds),
            "timeout": timedelta(seconds=settings.cloud_timeout_seconds),
        }
        self.store: ObjectStore = self._open(url, client, retry)

    @staticmethod
    def _open(url: SourceUrl, client: ClientConfig, retry: RetryConfig) -> ObjectStore:
        try:
            if url.scheme == "s3":
                endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
                if _http(endpoint):
                    client = {**client, "allow_http": True}
                extra: dict[str, Any] = {"endpoint": endpoint} if endpoint else {}
                if endpoint and not (os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")):
                    extra["region"] = "us-east-1"  # S3-compatible stores ignore it; obstore needs one
                if os.environ.get("AWS_PROFILE") and not os.environ.get("AWS_ACCESS_KEY_ID"):
                    extra["credential_provider"] = _profile_credentials(url)
                return S3Store(url.bucket, client_options=client, retry_config=retry, **extra)
            if url.scheme == "az":
                azure: dict[str, Any] = _azure_connection_string()
                endpoint = azure.get("endpoint") or os.environ.get("AZURE_STORAGE_ENDPOINT")
                if _http(endpoint):
                    client = {**client, "allow_http": True}
                return AzureStore(url.bucket, client_options=client, retry_config=retry, **azure)
            return GCSStore(url.bucket, client_options=client, retry_config=retry)
        except (obx.BaseError, ValueError) as exc:
            raise CloudSourceInvalid(
                f"cannot open {url}: {_first_line(exc)}. Check the credential and endpoint variables (README "
                "'Cloud exports')",
                {"object": str(url)},
            ) from None

    def error(self, exc: BaseException, key: str | None, action: str) -> CloudExportError:
        """The ``tools.errors`` error for an obstore failure on ``key`` (or the listing of the source)."""
        where = self.url.url(key) if key is not None else str(self.url)
        details = {"object": where}
        text = _first_line(exc)
        lowered = str(exc).lower()
        if isinstance(exc, FileNotFoundError | obx.NotFoundError):
            return CloudObjectMissing(f"{where} does not exist ({action})", details)
        if (
            isinstance(exc, PermissionError | obx.PermissionDeniedError | obx.UnauthenticatedError)
            or " 403 " in lowered
            or " 401 " in lowered
        ):
            return CloudAccessDenied(
                f"access to {where} was refused ({action}): {text}. focus-api needs list and read permission on "
                "the export (README 'Cloud exports')",
                details,
            )
        # Connection failures and timeouts, or a 5xx/429 still there when the retries ran out.
        if any(t in lowered for t in ("error sending request", "timed out", "timeout", "connection")) or re.search(
            r"status code: (5\d\d|429)", lowered
        ):
            return CloudUnreachable(f"could not reach the object store for {where} ({action}): {text}", details)
        return CloudExportError(f"{action} {where} failed: {text}", details)

    def list(self, prefix: str) -> Iterator[ObjectMeta]:
        """Every object under ``prefix`` (recursively)."""
        try:
            for batch in obstore.list(self.store, prefix=prefix or None, chunk_size=1000):
                for m in batch:
                    yield ObjectMeta(m["path"], int(m["size"]), str(m["e_tag"] or ""), m["last_modified"])
        except (obx.BaseError, OSError) as exc:
            raise self.error(exc, prefix, "listing") from None

    def head(self, key: str) -> ObjectMeta | None:
        try:
            m = obstore.head(self.store, key)
        except (FileNotFoundError, obx.NotFoundError):
            return None
        except (obx.BaseError, OSError) as exc:
            raise self.error(exc, key, "reading") from None
        return ObjectMeta(m["path"], int(m["size"]), str(m["e_tag"] or ""), m["last_modified"])

    def read(self, key: str, limit: int = 64 << 20) -> tuple[bytes, ObjectMeta]:
        """A small object (a manifest) whole, with its metadata."""
        try:
            result = obstore.get(self.store, key)
            meta = result.meta
            if int(meta["size"]) > limit:
                raise CloudExportError(f"{self.url.url(key)} is larger than a manifest can be", {"object": key})
            data = result.bytes().to_bytes()
        except (obx.BaseError, OSError) as exc:
            raise self.error(exc, key, "reading") from None
        return data, ObjectMeta(meta["path"], int(meta["size"]), str(meta["e_tag"] or ""), meta["last_modified"])

    def download(self, key: str, target: Path, etag: str | None) -> int:
        """Stream ``key`` to ``target`` in bounded memory; with ``etag``, fail if the object changed since listed.

        Returns the bytes written. A changed object raises ``obstore.exceptions.PreconditionError`` (the caller
        re-reads its manifest: a delivery overwrote it meanwhile).
        """
        options: dict[str, Any] = {"if_match": etag} if etag else {}
        written = 0
        try:
            result = obstore.get(self.store, key, options=options)  # type: ignore[arg-type]
            with target.open("wb") as out:
                for chunk in result.stream(min_chunk_size=CHUNK):
                    out.write(chunk)
                    written += len(chunk)
        except obx.PreconditionError:
            raise
        except (obx.BaseError, OSError) as exc:
            raise self.error(exc, key, "downloading") from None
        return written
