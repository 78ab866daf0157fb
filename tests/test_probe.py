"""The adversarial probe of issue 10, kept: its exact requests, then a randomised version of them.

Against a real server with tokens (and one without, for the DNS-rebinding requests), on both ports:
every answer is below 500 and carries the one error body when it is an error, no token or token digest
appears in any answer or in the server log, and the server still serves afterwards.

The randomised part draws header bytes, instants at the calendar's edges and nested or ill-formed JSON
from a seed printed at the start (``FOCUS_API_PROBE_SEED=<seed>`` replays a run; ``FOCUS_API_PROBE_CASES``
sets how many cases per port, 60 by default).
"""

from __future__ import annotations

import json
import os
import random
import secrets
import string
from collections.abc import Iterator
from pathlib import Path

import pytest
from serving import SMALL_DEMO_ROWS, Server, copy_store, demo_dir, serving
from test_hardening import (
    INITIALIZE,
    Raw,
    exchange,
    is_error_body,
    mcp_call,
    mcp_post,
    request,
    sha,
    tokens_file,
)

pytestmark = pytest.mark.slow

TOKEN = "probeA-" + secrets.token_hex(16)
SCOPED = "probeB-" + secrets.token_hex(16)
SECRETS = [TOKEN, SCOPED, sha(TOKEN), sha(SCOPED)]
AUTH = [b"Authorization: Bearer " + TOKEN.encode()]
SEED = int(os.environ.get("FOCUS_API_PROBE_SEED") or secrets.randbits(32))
CASES = int(os.environ.get("FOCUS_API_PROBE_CASES") or 60)
DATED_ROUTES = ["/cost-and-usage", "/cost-and-usage/summary", "/cost-and-usage/values?column=ServiceName"]


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return demo_dir(tmp_path_factory, SMALL_DEMO_ROWS)


@pytest.fixture(scope="module")
def target(data: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    work = tmp_path_factory.mktemp("probe")
    scoped = {"name": "scoped", "sha256": sha(SCOPED), "tools": ["listcostandusage"], "billingAccountIds": ["1"]}
    env = {
        "FOCUS_API_TOKENS": TOKEN,
        "FOCUS_API_TOKENS_FILE": str(tokens_file(work / "tokens.json", [scoped])),
        "FOCUS_API_LOG_LEVEL": "debug",
    }
    with serving(copy_store(data, work / "data"), work / "server.log", **env) as server:
        yield server
    log = server.log_text()
    assert [s for s in SECRETS if s in log or s.lower() in log.lower()] == [], "a token reached the server log"
    assert "Traceback" not in log, "the probe made the server log a traceback"


@pytest.fixture(scope="module")
def open_target(data: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    work = tmp_path_factory.mktemp("probe-open")
    with serving(copy_store(data, work / "data"), work / "server.log") as server:
        yield server


def judged(raw: Raw) -> Raw:
    """The probe's invariants for one answer."""
    assert raw.status < 500, raw
    if raw.status >= 400:
        assert is_error_body(raw), raw
    assert not any(s.encode() in raw.body for s in SECRETS), raw
    return raw


def still_serving(server: Server) -> None:
    assert judged(exchange(server.rest_port, request("GET", "/cost-and-usage?pageSize=1", 0, AUTH))).status == 200
    assert judged(exchange(server.mcp_port, mcp_post(server.mcp_port, INITIALIZE, AUTH))).status == 200


# ---------------------------------------------------------------- the exact requests


def test_replay_rebinding_requests(open_target: Server) -> None:
    port = open_target.rest_port
    rebound = [f"Origin: http://evil.example:{port}".encode()]
    host = f"evil.example:{port}".encode()
    raw = judged(exchange(port, request("GET", "/cost-and-usage?pageSize=2", port, rebound, host=host)))
    assert raw.status in (403, 421)
    post = [*rebound, b"Content-Type: text/plain"]
    raw = judged(exchange(port, request("POST", "/cost-and-usage/export", port, post, b"{}", host=host)))
    assert raw.status in (403, 421)
    mcp = open_target.mcp_port
    raw = judged(exchange(mcp, mcp_post(mcp, INITIALIZE, [b"Origin: http://evil.example"], host=b"evil.example")))
    assert 400 <= raw.status < 500


def test_replay_the_exact_requests(target: Server) -> None:
    rest, mcp = target.rest_port, target.mcp_port
    token = TOKEN.encode()
    for header in (b"Authorization: Bearer " + token + b"\x01", b"X-API-Key: " + token + b"\x7f"):
        assert judged(exchange(rest, request("GET", "/cost-and-usage", rest, [header]))).status == 400
        assert judged(exchange(mcp, mcp_post(mcp, INITIALIZE, [header]))).status in (400, 401)  # h11 takes \x01
    long = [b"Authorization: Bearer " + token * 300]
    assert judged(exchange(rest, request("GET", "/cost-and-usage", rest, long))).status == 400
    assert judged(exchange(mcp, mcp_post(mcp, INITIALIZE, long))).status == 401  # h11 takes up to 16 KiB heads
    for instant in ("9999-12-31T23:59:59-01:00", "0001-01-01T00:30:00+01:00"):
        for route in DATED_ROUTES:
            sep = "&" if "?" in route else "?"
            raw = judged(exchange(rest, request("GET", f"{route}{sep}billingPeriodStart={instant}", rest, AUTH)))
            assert raw.status == 400 and "billingPeriodStart" in raw.json()["message"], (route, raw)
        answer = mcp_call(
            target, "tools/call", {"name": "listcostandusage", "arguments": {"billingPeriodStart": instant}}, AUTH
        )
        assert answer["result"]["isError"] and "billingPeriodStart" in answer["result"]["content"][0]["text"]
    for header, status in ((b"Authorization: Bearer \xff\xfe\x80", 401), (b"X-API-Key: \xff\xfe", 401)):
        assert judged(exchange(rest, request("GET", "/cost-and-usage", rest, [header]))).status == status
        assert judged(exchange(mcp, mcp_post(mcp, INITIALIZE, [header]))).status == status
    idem = [*AUTH, b"Idempotency-Key: \xe9t\xe9", b"Content-Type: application/json"]
    assert judged(exchange(rest, request("POST", "/cost-and-usage/export", rest, idem, b"{}"))).status == 400
    for body in (b"[" * 30_000, b'{"providerName":"\\ud800"}'):
        json_body = [*AUTH, b"Content-Type: application/json"]
        assert judged(exchange(rest, request("POST", "/cost-and-usage/export", rest, json_body, body))).status == 400
    scoped = [b"Authorization: Bearer " + SCOPED.encode()]
    assert "error" in mcp_call(target, "resources/read", {"uri": "focus://schema"}, scoped)
    meta = judged(exchange(mcp, request("GET", "/.well-known/oauth-protected-resource/mcp", mcp))).json()
    assert "authorization_servers" not in meta
    for raw_request in (
        b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-A: " + b"a" * 9000 + b"\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-A: a\x01\r\n\r\n",
        b"FOO / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: -1\r\n\r\n",
    ):
        assert judged(exchange(rest, raw_request)).status == 400
        assert 400 <= judged(exchange(mcp, raw_request)).status < 500  # h11 reads heads up to 16 KiB: 404 there
    for header in (b"Authorization: Bearer  " + token, b"Authorization: Basic eDp5\r\nX-API-Key: " + token):
        assert judged(exchange(rest, request("GET", "/cost-and-usage", rest, [header]))).status == 401
        assert judged(exchange(mcp, mcp_post(mcp, INITIALIZE, [header]))).status == 401
    still_serving(target)


# ---------------------------------------------------------------- the randomised probe


def random_bytes(rng: random.Random, size: int) -> bytes:
    pools = [bytes(range(256)), b"\x00\x01\x7f\x80\xff\xfe\r\n\t :;,=\"'\\", string.printable.encode()]
    return bytes(rng.choice(rng.choice(pools)) for _ in range(size))


def random_instant(rng: random.Random) -> str:
    year = rng.choice([1, 2, 1969, 1970, 2026, 9998, 9999, rng.randint(1, 9999), 0, 10000])
    month, day = rng.choice([(1, 1), (12, 31), (2, 29), (2, 30), (13, 1), (rng.randint(1, 12), rng.randint(1, 28))])
    time = rng.choice(["00:00:00", "23:59:59", "00:30:00", "24:00:00", "23:59:60", "12:00:00.999999999"])
    zone = rng.choice(["Z", "+00:00", "-01:00", "+01:00", "+23:59", "-23:59", "+24:00", "", "+99:99"])
    return f"{year:04d}-{month:02d}-{day:02d}T{time}{zone}"


def random_json_body(rng: random.Random) -> bytes:
    kind = rng.randrange(6)
    if kind == 0:
        return b"[" * rng.randint(1000, 32_000)
    if kind == 1:
        return b'{"a":' * rng.randint(1000, 10_000) + b"1" + b"}" * rng.randint(0, 10_000)
    if kind == 2:
        surrogate = rng.choice(["\\ud800", "\\udfff", "\\ud83d", "\\udc00\\ud800"])
        return json.dumps({rng.choice(["providerName", "format", "x"]): "v"}).replace('"v"', f'"{surrogate}"').encode()
    if kind == 3:
        return random_bytes(rng, rng.randint(1, 2000))
    if kind == 4:
        return json.dumps(
            {"billingPeriodStart": random_instant(rng), "format": rng.choice(["csv", "json", "x"])}
        ).encode()
    return json.dumps([{"format": "csv"}] * rng.randint(0, 100)).encode()


def random_header(rng: random.Random) -> bytes:
    name = rng.choice(
        [b"Authorization", b"X-API-Key", b"Idempotency-Key", b"Origin", b"Cookie", b"X-" + random_bytes(rng, 5)]
    )
    if name == b"Authorization" and rng.random() < 0.5:
        value = (
            rng.choice([b"Bearer ", b"bearer  ", b"Basic ", b""])
            + rng.choice([TOKEN.encode(), b""])
            + random_bytes(rng, rng.randint(0, 40))
        )
    elif rng.random() < 0.05:
        value = random_bytes(rng, rng.randint(8000, 9000))
    else:
        value = rng.choice([TOKEN.encode(), b""]) + random_bytes(rng, rng.randint(0, 60))
    return name + b": " + value.replace(b"\r\n", b"")


def random_request(rng: random.Random, port: int, mcp: bool) -> bytes:
    headers = [random_header(rng) for _ in range(rng.randint(1, 3))]
    if rng.random() < 0.5:
        headers.append(AUTH[0])
    shape = rng.randrange(3)
    if mcp:
        if shape == 0:
            return mcp_post(port, INITIALIZE, headers)
        body = random_json_body(rng)
        return request(
            "POST",
            "/mcp",
            port,
            [*headers, b"Content-Type: application/json", b"Accept: application/json, text/event-stream"],
            body,
        )
    if shape == 0:
        route = rng.choice(DATED_ROUTES)
        sep = "&" if "?" in route else "?"
        key = rng.choice(["billingPeriodStart", "billingPeriodEnd"])
        return request("GET", f"{route}{sep}{key}={random_instant(rng)}", port, headers)
    if shape == 1:
        return request(
            "POST", "/cost-and-usage/export", port, [*headers, b"Content-Type: application/json"], random_json_body(rng)
        )
    return request("GET", "/cost-and-usage?pageSize=1", port, headers)


@pytest.mark.parametrize("which", ["rest", "mcp"])
def test_randomised_probe(target: Server, which: str) -> None:
    print(f"probe seed {SEED} ({CASES} cases per port); replay with FOCUS_API_PROBE_SEED={SEED}")
    rng = random.Random(f"{SEED}-{which}")
    port = target.mcp_port if which == "mcp" else target.rest_port
    for case in range(CASES):
        data = random_request(rng, port, which == "mcp")
        try:
            judged(exchange(port, data))
        except Exception as exc:
            raise AssertionError(f"seed {SEED}, {which} case {case}: {data[:300]!r}\n{exc}") from None
    still_serving(target)
