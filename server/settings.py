"""The one settings object, built at the entry point from ``FOCUS_API_*`` variables and CLI flags."""

from __future__ import annotations

import ipaddress
import secrets
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import AliasChoices, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from server.store.db import default_data_dir


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="FOCUS_API_", extra="ignore")

    data_dir: Path = Field(default_factory=default_data_dir)
    host: str = "127.0.0.1"
    rest_port: int = 8080
    mcp_port: int = 9090
    # Comma-separated bearer tokens (also accepted as X-API-Key). Empty: no auth, loopback only.
    tokens: SecretStr = SecretStr("")
    # JSON file of scoped principals: {"tokens": [{"name", "sha256", "tools", "billingAccountIds", ...}]}.
    tokens_file: Path | None = None
    # HMAC key for page tokens; generated once and kept in the data dir when not given.
    token_secret: SecretStr | None = None
    # Base URL clients use to reach the REST port (for downloadUrl); defaults to http://host:rest_port.
    public_url: str | None = None
    demo_rows: int = 50_000
    memory_limit: str | None = None
    query_threads: int = 4
    export_concurrency: int = 2
    # Exports one principal may have Pending or Processing at once, and in the whole queue (429 beyond).
    exports_per_principal: int = 2
    export_queue_limit: int = 16
    # A query running longer than this is interrupted (503 query_timeout); 0 disables.
    query_timeout_seconds: float = 30.0
    # Token bucket per principal (requests/second and burst); 0 disables. Off by default for loopback dev use.
    rate_limit_per_second: float = 0.0
    rate_limit_burst: int = 50
    export_ttl_seconds: int = 24 * 3600
    # REST answers of read-only GETs kept per data version (server/response_cache.py); 0 disables.
    response_cache_mb: int = 32
    # The query engine: the embedded DuckDB store, or a Spark cluster through Spark Connect (server/spark/,
    # docs/scale-out.md). With spark, data lives in spark_database (focus-api's layout, written by
    # `load --engine spark`) or in spark_table (an existing FOCUS table, keyed by spark_key).
    engine: Literal["duckdb", "spark"] = "duckdb"
    # A Databricks URL carries a token (sc://host:443/;token=...): never in a repr or a log line.
    spark_remote: str | None = Field(default=None, repr=False)
    spark_database: str = "focus_api"
    spark_table: str | None = None
    spark_key: str | None = None
    spark_connect_timeout_seconds: float = Field(default=15.0, gt=0)
    # Upstream mode: serve this remote FOCUS API instead of the store (see server/sources/upstream.py).
    upstream_url: str | None = None
    # The bearer sent upstream (the seed's consumes block): the only credential that ever leaves.
    finops_foundation_token: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("FINOPS_FOUNDATION_TOKEN", "finops_foundation_token")
    )
    upstream_connect_timeout_seconds: float = 5.0
    upstream_timeout_seconds: float = 60.0
    # Attempts per upstream call in all, and the wall-clock budget for retrying one call.
    upstream_max_attempts: int = Field(default=3, ge=1)
    upstream_retry_budget_seconds: float = 30.0
    upstream_backoff_seconds: float = 0.25
    upstream_max_response_bytes: int = 256 * 1024 * 1024
    upstream_max_connections: int = 32
    # Cloud exports (server/cloud): attempts per object-store request after the first, the wall-clock budget
    # for retrying one request, the first backoff (doubling, with jitter), timeouts, parallel downloads.
    cloud_max_retries: int = Field(default=4, ge=0)
    cloud_retry_budget_seconds: float = Field(default=60.0, gt=0)
    cloud_backoff_seconds: float = Field(default=0.25, gt=0)
    cloud_connect_timeout_seconds: float = Field(default=5.0, gt=0)
    # One request's whole time, body included: a large export file streams within it.
    cloud_timeout_seconds: float = Field(default=1800.0, gt=0)
    cloud_download_concurrency: int = Field(default=4, ge=1)
    # serve --sync: comma-separated export URLs synced in the background, every sync_every_seconds.
    sync: str = ""
    sync_every_seconds: float = Field(default=6 * 3600.0, gt=0)
    log_level: str = "info"
    # JSON log lines; unset: JSON unless stderr is a terminal.
    log_json: bool | None = None
    # HTTP hardening (README "Security"). Comma-separated Host values (host or host:port) accepted besides the
    # loopback names on a loopback bind; on another bind, when set, the only Host values accepted.
    allowed_hosts: str = ""
    # Comma-separated browser origins (scheme://host[:port]) allowed besides the loopback ones; any other
    # Origin is 403. Requests without Origin (non-browser clients) are not affected.
    allowed_origins: str = ""
    # Comma-separated OAuth authorization servers named in the MCP port's RFC 9728 metadata; none by default.
    authorization_servers: str = ""
    # A connection must send its request line and headers within this, and a body within body_timeout.
    header_timeout_seconds: float = Field(default=10.0, gt=0)
    body_timeout_seconds: float = Field(default=30.0, gt=0)
    # An idle keep-alive connection is closed after this.
    keepalive_timeout_seconds: float = Field(default=30.0, gt=0)
    # Connections one client IP may hold open before presenting a valid credential (503 beyond), per port.
    max_unauthenticated_connections_per_ip: int = Field(default=128, ge=1)

    @model_validator(mode="after")
    def _engine(self) -> Settings:
        if self.engine == "spark" and not self.spark_remote:
            raise ValueError("--engine spark needs --spark-remote sc://HOST:PORT (FOCUS_API_SPARK_REMOTE)")
        if self.engine == "spark" and self.upstream_url:
            raise ValueError("--engine spark serves a Spark cluster; upstream mode serves a remote FOCUS API: pick one")
        if self.spark_key and not self.spark_table:
            raise ValueError("--spark-key names the ordering key of --spark-table; give the table too")
        return self

    @field_validator("upstream_url")
    @classmethod
    def _upstream_url(cls, value: str | None) -> str | None:
        if not value:
            return None
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"upstream URL {value!r} must be an http:// or https:// URL")
        if parts.username or parts.password:
            raise ValueError("put the upstream credential in FINOPS_FOUNDATION_TOKEN, not in the upstream URL")
        if parts.query or parts.fragment:
            raise ValueError(f"upstream URL {value!r} must be a base URL without query or fragment")
        return value.rstrip("/")

    @staticmethod
    def _csv(value: str) -> list[str]:
        return [v.strip() for v in value.split(",") if v.strip()]

    def allowed_host_list(self) -> list[str]:
        return [h.lower() for h in self._csv(self.allowed_hosts)]

    def allowed_origin_list(self) -> list[str]:
        return [o.lower().rstrip("/") for o in self._csv(self.allowed_origins)]

    def authorization_server_list(self) -> list[str]:
        return self._csv(self.authorization_servers)

    def sync_list(self) -> list[str]:
        return self._csv(self.sync)

    def token_list(self) -> list[str]:
        return [t.strip() for t in self.tokens.get_secret_value().split(",") if t.strip()]

    def is_loopback(self) -> bool:
        if self.host == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False

    def base_url(self) -> str:
        if self.public_url:
            return self.public_url.rstrip("/")
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.rest_port}"

    def page_token_secret(self) -> bytes:
        """The page-token HMAC key: configured, or generated once and kept (mode 0600) in the data dir."""
        if self.token_secret is not None:
            return self.token_secret.get_secret_value().encode()
        path = self.data_dir / "page-token.key"
        if not path.exists():
            self.data_dir.mkdir(parents=True, exist_ok=True)
            path.touch(mode=0o600)
            path.write_text(secrets.token_hex(32))
        return path.read_text().strip().encode()
