"""Issue 10: the defects an adversarial probe found, each replayed against a real server on loopback ports.

Raw sockets send what a client library would refuse to (control bytes, non-UTF-8 headers, oversized lines,
half requests). Unit tests pin the rules of ``server/http_guard.py`` and the tokens-file checks.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from serving import FOCUS_API, SMALL_DEMO_ROWS, Server, clean_env, copy_store, demo_dir, free_ports, serving
from starlette.applications import Starlette
from starlette.routing import Route

from server.app import mcp_security
from server.auth import TokenFileError, TokenStore
from server.http_guard import INVALID, MISSING, Credential, HostPolicy, credential
from server.mcp.sdk_shim import replace_resource_metadata, resource_metadata
from server.mcp.server import FocusMCPServer
from server.pipeline import Pipeline
from server.services import Services
from server.settings import Settings

TOKEN_A = "hardA-" + secrets.token_hex(16)  # unscoped (FOCUS_API_TOKENS)
TOKEN_B = "hardB-" + secrets.token_hex(16)  # scoped to one account and to listcostandusage
SCOPED_ACCOUNT = "483920175526"
SECRETS = [TOKEN_A, TOKEN_B, *(hashlib.sha256(t.encode()).hexdigest() for t in (TOKEN_A, TOKEN_B))]
INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "0"}},
}


def sha(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def tokens_file(path: Path, entries: list[dict[str, Any]]) -> Path:
    path.write_text(json.dumps({"tokens": entries}))
    return path


# ---------------------------------------------------------------- raw HTTP


class Raw:
    """One raw HTTP/1.1 exchange: the bytes go out exactly as given."""

    def __init__(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.status, self.headers, self.body = status, headers, body

    def json(self) -> Any:
        return json.loads(self.body)

    def __repr__(self) -> str:
        return f"Raw({self.status}, {self.headers}, {self.body[:300]!r})"


def exchange(port: int, data: bytes, timeout: float = 20) -> Raw:
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(data)
        buf = b""
        while b"\r\n\r\n" not in buf:
            chunk = s.recv(65536)
            if not chunk:
                raise AssertionError(f"connection closed before a response head: {buf!r}")
            buf += chunk
        head, _, body = buf.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
        if "content-length" in headers:
            length = int(headers["content-length"])
            while len(body) < length:
                chunk = s.recv(65536)
                if not chunk:
                    break
                body += chunk
            body = body[:length]  # what follows answers a second request the bytes happened to hold
        else:  # every request here says Connection: close, so the body ends with the connection
            while chunk := s.recv(65536):
                body += chunk
            if headers.get("transfer-encoding") == "chunked":
                body = dechunk(body)
        return Raw(status, headers, body)


def dechunk(body: bytes) -> bytes:
    out = b""
    while body:
        size, _, rest = body.partition(b"\r\n")
        length = int(size.split(b";")[0] or b"0", 16)
        if length == 0:
            break
        out, body = out + rest[:length], rest[length + 2 :]
    return out


def request(
    method: str, path: str, port: int, headers: list[bytes] | None = None, body: bytes = b"", host: bytes | None = None
) -> bytes:
    lines = [f"{method} {path} HTTP/1.1".encode(), b"Host: " + (host or f"127.0.0.1:{port}".encode())]
    lines += headers or []
    if body or method == "POST":
        lines.append(f"Content-Length: {len(body)}".encode())
    lines.append(b"Connection: close")
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


def mcp_post(port: int, payload: Any, headers: list[bytes] | None = None, host: bytes | None = None) -> bytes:
    body = json.dumps(payload).encode()
    extra = [b"Content-Type: application/json", b"Accept: application/json, text/event-stream", *(headers or [])]
    return request("POST", "/mcp", port, extra, body, host)


def is_error_body(raw: Raw) -> bool:
    """The one error body: {code, message, details} (REST) or a JSON-RPC error carrying it (MCP)."""
    if not raw.headers.get("content-type", "").startswith("application/json"):
        return False
    body = raw.json()
    if "jsonrpc" in body:
        return set(body) == {"jsonrpc", "id", "error"} and {"code", "message"} <= set(body["error"])
    return set(body) == {"code", "message", "details"}


def error_code(raw: Raw) -> str:
    body = raw.json()
    return str(body["error"]["data"]["code"] if "jsonrpc" in body else body["code"])


def sse_json(raw: Raw) -> Any:
    """The JSON-RPC answer of an MCP POST, from JSON or from an SSE stream."""
    if raw.headers.get("content-type", "").startswith("application/json"):
        return raw.json()
    text = raw.body.decode()
    data = [line[5:].strip() for line in text.splitlines() if line.startswith("data:") and line[5:].strip()]
    return json.loads(data[-1])


# ---------------------------------------------------------------- unit: item 1 and 11 (startup refusals)


@pytest.mark.parametrize(
    ("plain", "entries", "problem"),
    [
        ([], [{"name": "team-x", "sha256": sha("a")}, {"name": "team-x", "sha256": sha("b")}], "team-x"),
        (["tok-1"], [{"name": "token-1", "sha256": sha("b")}], "token-1"),
        ([], [{"name": "local", "sha256": sha("b")}], "local"),
        ([], [{"name": "token-7", "sha256": sha("b")}], "token-7"),  # reserved even without a 7th entry
        (
            [],
            [{"name": "x", "sha256": sha("a")}, {"name": "y", "sha256": sha("a").upper()}],
            "tokens\\[0\\].*tokens\\[1\\]",
        ),
        (["same", "same"], [], "FOCUS_API_TOKENS"),
        (["dup"], [{"name": "x", "sha256": sha("dup")}], "token-1.*x|x.*token-1"),
    ],
)
def test_a_tokens_file_with_clashing_names_or_repeated_tokens_is_refused(
    tmp_path: Path, plain: list[str], entries: list[dict[str, Any]], problem: str
) -> None:
    with pytest.raises(TokenFileError, match=problem):
        TokenStore(plain, tokens_file(tmp_path / "tokens.json", entries))


@pytest.mark.parametrize("token", ["caf\u00e9-token", "two words", "tab\there", "ctl\x01x"])
def test_a_token_no_client_can_send_on_both_ports_is_refused_at_startup(token: str) -> None:
    with pytest.raises(TokenFileError, match="visible ASCII"):
        TokenStore([token])


def test_the_error_names_every_clashing_name(tmp_path: Path) -> None:
    entries = [{"name": n, "sha256": sha(n)} for n in ("a", "a", "token-1", "local")]
    with pytest.raises(TokenFileError) as info:
        TokenStore(["t"], tokens_file(tmp_path / "tokens.json", entries))
    assert all(name in str(info.value) for name in ("a", "token-1", "local"))


def test_distinct_names_and_tokens_are_accepted_and_looked_up_by_credential(tmp_path: Path) -> None:
    store = TokenStore(["t1"], tokens_file(tmp_path / "t.json", [{"name": "team-x", "sha256": sha("t2")}]))
    assert store.verify("t1").name == "token-1"  # type: ignore[union-attr]
    assert store.verify("t2").name == "team-x"  # type: ignore[union-attr]
    assert store.verify("team-x") is None


# ---------------------------------------------------------------- unit: item 11 (one credential rule)

OK = "tok-" + "x" * 10


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ([(b"Authorization", b"Bearer " + OK.encode())], Credential(OK, None)),
        ([(b"authorization", b"bEaReR " + OK.encode())], Credential(OK, None)),
        ([(b"X-API-Key", OK.encode())], Credential(OK, None)),
        ([], MISSING),
        ([(b"Authorization", b"Bearer  " + OK.encode())], INVALID),  # two spaces
        ([(b"Authorization", b"Bearer " + OK.encode() + b" ")], INVALID),
        ([(b"Authorization", b"Bearer")], INVALID),
        ([(b"Authorization", b"Basic dXNlcjpwYXNz"), (b"X-API-Key", OK.encode())], INVALID),
        ([(b"Authorization", OK.encode())], INVALID),
        ([(b"Authorization", b"Bearer \xff\xfe\x80")], INVALID),
        ([(b"X-API-Key", b"\xff\xfe")], INVALID),
        ([(b"X-API-Key", OK.encode()), (b"X-API-Key", OK.encode())], INVALID),
        ([(b"Authorization", b"Bearer a"), (b"Authorization", b"Bearer b")], INVALID),
    ],
)
def test_the_one_credential_rule(headers: list[tuple[bytes, bytes]], expected: Credential) -> None:
    assert credential(headers) == expected


# ---------------------------------------------------------------- unit: item 2 (Host / Origin policy)


@pytest.mark.parametrize(
    ("env", "host", "origin", "code"),
    [
        ({}, b"127.0.0.1:9090", None, None),
        ({}, b"localhost:9090", b"http://localhost:9090", None),
        ({}, b"[::1]:9090", None, None),
        ({}, b"localhost", None, None),
        ({}, b"evil.example:9090", None, "misdirected_request"),
        ({}, None, None, "misdirected_request"),
        ({}, b"127.0.0.1:9090", b"http://evil.example:9090", "forbidden"),
        ({}, b"127.0.0.1:9090", b"null", "forbidden"),
        ({}, b"127.0.0.1:9090", b"http://localhost:6274", None),  # a local page (an MCP inspector)
        ({}, b"127.0.0.1:9090", b"http://localhost", None),
        ({}, b"127.0.0.1:9090", b"http://localhost:x", "forbidden"),
        ({}, b"127.0.0.1:9090", b"http://localhost.evil.example:9090", "forbidden"),
        ({"host": "0.0.0.0"}, b"x", b"http://localhost:6274", "forbidden"),
        ({"host": "0.0.0.0"}, b"x", b"http://localhost:9090", None),
        ({"allowed_origins": "https://app.example"}, b"127.0.0.1:9090", b"https://app.example", None),
        ({"allowed_hosts": "proxy.example"}, b"proxy.example:443", None, None),
        ({"host": "0.0.0.0"}, b"anything.example:9090", None, None),
        ({"host": "0.0.0.0"}, b"anything.example:9090", b"http://anything.example:9090", "forbidden"),
        ({"host": "0.0.0.0", "allowed_hosts": "api.example"}, b"other.example", None, "misdirected_request"),
        ({"host": "0.0.0.0", "public_url": "https://api.example"}, b"x", b"https://api.example", None),
    ],
)
def test_the_host_and_origin_rule(env: dict[str, str], host: bytes | None, origin: bytes | None, code: str) -> None:
    policy = HostPolicy(Settings(**env), 9090)  # type: ignore[arg-type]
    error = policy.check(host, origin)
    assert (error.code if error else None) == code


# ---------------------------------------------------------------- real servers


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return demo_dir(tmp_path_factory, SMALL_DEMO_ROWS)


@pytest.fixture(scope="module")
def authed(data: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    work = tmp_path_factory.mktemp("hardening")
    entry = {
        "name": "team-b",
        "sha256": sha(TOKEN_B),
        "tools": ["listcostandusage"],
        "billingAccountIds": [SCOPED_ACCOUNT],
    }
    env = {
        "FOCUS_API_TOKENS": TOKEN_A,
        "FOCUS_API_TOKENS_FILE": str(tokens_file(work / "tokens.json", [entry])),
        "FOCUS_API_LOG_LEVEL": "debug",
    }
    with serving(copy_store(data, work / "data"), work / "server.log", **env) as server:
        yield server


@pytest.fixture(scope="module")
def open_loopback(data: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """No tokens, loopback: the configuration a DNS-rebinding page attacks."""
    work = tmp_path_factory.mktemp("open")
    env = {"FOCUS_API_ALLOWED_ORIGINS": "https://app.example"}
    with serving(copy_store(data, work / "data"), work / "server.log", **env) as server:
        yield server


A = [b"Authorization: Bearer " + TOKEN_A.encode()]
B = [b"Authorization: Bearer " + TOKEN_B.encode()]


def mcp_call(server: Server, tool: str, args: dict[str, Any], auth: list[bytes]) -> Any:
    """tools/call on the MCP port with raw bytes (stateless: initialize, then the call on its session)."""
    init = exchange(server.mcp_port, mcp_post(server.mcp_port, INITIALIZE, auth))
    assert init.status == 200, init
    session = [f"Mcp-Session-Id: {init.headers['mcp-session-id']}".encode()] if "mcp-session-id" in init.headers else []
    version = [b"MCP-Protocol-Version: 2025-11-25"]
    note = {"jsonrpc": "2.0", "method": "notifications/initialized"}
    exchange(server.mcp_port, mcp_post(server.mcp_port, note, auth + session + version))
    call = {"jsonrpc": "2.0", "id": 2, "method": tool, "params": args}
    raw = exchange(server.mcp_port, mcp_post(server.mcp_port, call, auth + session + version))
    assert raw.status == 200, raw
    return sse_json(raw)


def tool_error(answer: Any) -> dict[str, Any]:
    result = answer["result"]
    assert result["isError"] is True, answer
    return json.loads(result["content"][0]["text"])  # type: ignore[no-any-return]


# item 4 (done by the lead): the exact requests of the issue


@pytest.mark.slow
@pytest.mark.parametrize("instant", ["9999-12-31T23:59:59-01:00", "0001-01-01T00:30:00+01:00"])
def test_instants_beyond_the_calendar_are_400_naming_the_field_on_rest_and_mcp(authed: Server, instant: str) -> None:
    raw = exchange(authed.rest_port, request("GET", f"/cost-and-usage?billingPeriodStart={instant}", 0, A))
    assert raw.status == 400 and raw.json()["code"] == "invalid_argument", raw
    assert "billingPeriodStart" in raw.json()["message"]
    body = tool_error(
        mcp_call(authed, "tools/call", {"name": "listcostandusage", "arguments": {"billingPeriodStart": instant}}, A)
    )
    assert body["code"] == "invalid_argument" and "billingPeriodStart" in body["message"]


# item 7 (done by the lead): resources obey the tool permissions


@pytest.mark.slow
def test_the_schema_resource_is_refused_to_a_token_limited_to_listcostandusage(authed: Server) -> None:
    answer = mcp_call(authed, "resources/read", {"uri": "focus://schema"}, B)
    assert "error" in answer and "getschemametadata" in answer["error"]["message"], answer
    allowed = mcp_call(authed, "resources/read", {"uri": "focus://schema"}, A)
    assert "result" in allowed, allowed


# item 1 over MCP: the scoped token sees its account only (lookup by credential)


@pytest.mark.slow
def test_the_scoped_token_over_mcp_sees_only_its_account(authed: Server) -> None:
    answer = mcp_call(authed, "tools/call", {"name": "listcostandusage", "arguments": {"pageSize": 1000}}, B)
    data = answer["result"]["structuredContent"]
    assert {row["BillingAccountId"] for row in data["data"]} == {SCOPED_ACCOUNT}
    rest = exchange(authed.rest_port, request("GET", "/cost-and-usage?pageSize=1000", 0, B)).json()
    assert data["totalRecords"] == rest["totalRecords"]


@pytest.mark.slow
def test_a_tokens_file_with_a_duplicate_name_stops_the_server_at_startup(tmp_path: Path, data: Path) -> None:
    path = tokens_file(
        tmp_path / "tokens.json",
        [
            {"name": "team-x", "sha256": sha("one"), "billingAccountIds": [SCOPED_ACCOUNT]},
            {"name": "team-x", "sha256": sha("two")},
        ],
    )
    rest_port, mcp_port = free_ports(2)
    done = subprocess.run(
        [FOCUS_API, "serve", "--data-dir", data, "--rest-port", str(rest_port), "--mcp-port", str(mcp_port)],
        capture_output=True,
        text=True,
        timeout=60,
        env=clean_env(FOCUS_API_TOKENS_FILE=str(path)),
    )
    assert done.returncode != 0
    assert "team-x" in done.stderr and "more than once" in done.stderr, done.stderr


# item 2: Host and Origin on both ports


@pytest.mark.slow
def test_a_dns_rebinding_page_cannot_read_rest_data(open_loopback: Server) -> None:
    port = open_loopback.rest_port
    evil_host = f"evil.example:{port}".encode()
    raw = exchange(port, request("GET", "/cost-and-usage?pageSize=2", port, host=evil_host))
    assert raw.status == 421 and raw.json()["code"] == "misdirected_request", raw
    origin = [f"Origin: http://evil.example:{port}".encode()]
    raw = exchange(port, request("GET", "/cost-and-usage?pageSize=2", port, origin, host=evil_host))
    assert raw.status in (403, 421) and is_error_body(raw), raw
    raw = exchange(port, request("GET", "/cost-and-usage?pageSize=2", port, origin))
    assert raw.status == 403 and raw.json()["code"] == "forbidden", raw
    export = [*origin, b"Content-Type: text/plain"]
    raw = exchange(port, request("POST", "/cost-and-usage/export", port, export, b'{"format":"csv"}'))
    assert raw.status == 403 and raw.json()["code"] == "forbidden", raw
    for host in (f"localhost:{port}", f"[::1]:{port}", f"127.0.0.1:{port}"):
        ok = [f"Origin: http://{host}".encode()]
        assert exchange(port, request("GET", "/cost-and-usage?pageSize=2", port, ok, host=host.encode())).status == 200
    configured = [b"Origin: https://app.example"]
    assert exchange(port, request("GET", "/cost-and-usage?pageSize=2", port, configured)).status == 200
    assert exchange(port, request("GET", "/cost-and-usage?pageSize=2", port)).status == 200  # no Origin


@pytest.mark.slow
def test_the_mcp_port_refuses_rebinding_as_the_conformance_scenario_sends_it(open_loopback: Server) -> None:
    port = open_loopback.mcp_port
    evil = b"evil.example.com"
    raw = exchange(port, mcp_post(port, INITIALIZE, [b"Origin: http://evil.example.com"], host=evil))
    assert 400 <= raw.status < 500 and is_error_body(raw), raw
    raw = exchange(port, mcp_post(port, INITIALIZE, [f"Origin: http://evil.example:{port}".encode()]))
    assert raw.status == 403 and is_error_body(raw) and error_code(raw) == "forbidden", raw
    raw = exchange(port, mcp_post(port, INITIALIZE, host=f"evil.example:{port}".encode()))
    assert raw.status == 421 and is_error_body(raw), raw
    good = f"localhost:{port}".encode()
    raw = exchange(port, mcp_post(port, INITIALIZE, [b"Origin: http://" + good], host=good))
    assert 200 <= raw.status < 300, raw
    assert exchange(port, mcp_post(port, INITIALIZE, [b"Origin: https://app.example"])).status == 200


# item 3: no credential in any log line


@pytest.mark.slow
def test_malformed_headers_carrying_a_token_never_reach_the_log(authed: Server) -> None:
    token = TOKEN_A.encode()
    cases = [
        b"Authorization: Bearer " + token + b"\x01",
        b"X-API-Key: " + token + b"\x7f",
        b"Authorization: Bearer " + token + b"A" * 9000,
        b"X-API-Key: " + token + b"\x00",
        b"Cookie: session=" + token + b"\x01",
    ]
    for port in (authed.rest_port, authed.mcp_port):
        for header in cases:
            path = "/mcp" if port == authed.mcp_port else "/cost-and-usage"
            raw = exchange(port, request("GET", path, port, [header]))
            assert raw.status in (400, 401, 405, 406) and is_error_body(raw), (header[:40], raw)
            assert token not in raw.body
        raw = exchange(port, b"GET /" + token + b"\x01 HTTP/1.1\r\nHost: x\r\n\r\n")
        assert raw.status == 400 and token not in raw.body
    log = authed.log_text()
    assert [s for s in SECRETS if s in log or s.lower() in log.lower()] == []


# item 5: non-UTF-8 header bytes


@pytest.mark.slow
@pytest.mark.parametrize(
    ("header", "status"),
    [
        (b"Authorization: Bearer \xff\xfe\x80", 401),
        (b"X-API-Key: \xff\xfe", 401),
    ],
)
def test_non_utf8_credentials_are_401_on_both_ports(authed: Server, header: bytes, status: int) -> None:
    raw = exchange(authed.rest_port, request("GET", "/cost-and-usage", 0, [header]))
    assert raw.status == status and raw.json()["code"] == "unauthorized", raw
    raw = exchange(authed.mcp_port, mcp_post(authed.mcp_port, INITIALIZE, [header]))
    assert raw.status == status and is_error_body(raw), raw


@pytest.mark.slow
def test_a_non_utf8_idempotency_key_is_400(authed: Server) -> None:
    headers = [*A, b"Idempotency-Key: \xe9t\xe9", b"Content-Type: application/json"]
    raw = exchange(authed.rest_port, request("POST", "/cost-and-usage/export", 0, headers, b'{"format":"csv"}'))
    assert raw.status == 400 and raw.json()["code"] == "invalid_argument", raw
    assert raw.json()["details"]["field"] == "Idempotency-Key"


# item 6: export bodies that were 500s


@pytest.mark.slow
@pytest.mark.parametrize("body", [b"[" * 30_000, b'{"providerName":"\\ud800"}', b'{"format":"csv","x":"\xff"}'])
def test_hostile_export_bodies_are_400(authed: Server, body: bytes) -> None:
    headers = [*A, b"Content-Type: application/json"]
    raw = exchange(authed.rest_port, request("POST", "/cost-and-usage/export", 0, headers, body))
    assert raw.status == 400 and raw.json()["code"] == "invalid_argument", raw


@pytest.mark.slow
def test_a_lone_surrogate_over_mcp_is_refused_not_an_internal_error(authed: Server) -> None:
    call = {"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "listcostandusage"}}
    body = json.dumps(call).replace('"params": {', '"params": {"arguments": {"providerName": "\\ud800"}, ').encode()
    headers = [*A, b"Content-Type: application/json", b"Accept: application/json, text/event-stream"]
    raw = exchange(authed.mcp_port, request("POST", "/mcp", authed.mcp_port, headers, body))
    assert raw.status == 400 and is_error_body(raw), raw
    assert raw.json()["error"]["code"] == -32700  # the SDK's JSON-RPC parse error


# item 9: RFC 9728 metadata names no authorization server unless one is configured


@pytest.mark.slow
def test_the_resource_metadata_names_no_authorization_server_by_default(authed: Server) -> None:
    raw = exchange(authed.mcp_port, request("GET", "/.well-known/oauth-protected-resource/mcp", authed.mcp_port))
    meta = raw.json()
    assert raw.status == 200 and meta["resource"] == authed.mcp
    assert "authorization_servers" not in meta, meta
    assert f":{authed.rest_port}" not in raw.body.decode()


# item 10: every error is the one JSON body


RAW_ERRORS = {
    "request line over 8190 bytes": lambda port: b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
    "header over 8190 bytes": lambda port: request("GET", "/x", port, [b"X-Long: " + b"a" * 9000]),
    "control character in a header": lambda port: request("GET", "/x", port, [b"X-Ctl: a\x01b"]),
    "method FOO": lambda port: request("FOO", "/", port),
    "Content-Length -1": lambda port: b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: -1\r\n\r\n",
    "not HTTP": lambda port: b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n",
    "unknown path": lambda port: request("GET", "/nope", port),
}


@pytest.mark.slow
@pytest.mark.parametrize("case", sorted(RAW_ERRORS))
def test_every_error_on_either_port_is_the_json_error_body(authed: Server, case: str) -> None:
    for port in (authed.rest_port, authed.mcp_port):
        raw = exchange(port, RAW_ERRORS[case](port))
        assert 400 <= raw.status < 500 and is_error_body(raw), (port == authed.mcp_port, raw)


@pytest.mark.slow
def test_the_mcp_sdk_own_refusals_are_json_rpc_errors(authed: Server) -> None:
    port = authed.mcp_port
    text = request(
        "POST", "/mcp", port, [*A, b"Content-Type: text/plain", b"Accept: application/json, text/event-stream"], b"{}"
    )
    raw = exchange(port, text)
    assert raw.status == 400 and is_error_body(raw), raw
    missing = exchange(port, request("GET", "/mcp", port, [*A, b"Accept: text/html"]))
    assert 400 <= missing.status < 500 and is_error_body(missing), missing


# item 11: one credential rule on both ports


@pytest.mark.slow
@pytest.mark.parametrize(
    ("headers", "accepted"),
    [
        ([b"Authorization: Bearer " + TOKEN_A.encode()], True),
        ([b"Authorization: bearer " + TOKEN_A.encode()], True),
        ([b"X-API-Key: " + TOKEN_A.encode()], True),
        ([b"Authorization: Bearer  " + TOKEN_A.encode()], False),
        ([b"Authorization: Basic dXNlcjpwYXNz", b"X-API-Key: " + TOKEN_A.encode()], False),
    ],
)
def test_a_credential_is_accepted_on_both_ports_or_on_neither(
    authed: Server, headers: list[bytes], accepted: bool
) -> None:
    rest = exchange(authed.rest_port, request("GET", "/cost-and-usage?pageSize=1", 0, headers))
    mcp = exchange(authed.mcp_port, mcp_post(authed.mcp_port, INITIALIZE, headers))
    assert (rest.status == 200) is accepted and (mcp.status == 200) is accepted, (rest, mcp)


# item 13 (done by the lead): a dropped NDJSON stream is not an error


@pytest.mark.slow
def test_reading_then_dropping_an_ndjson_stream_logs_no_error(authed: Server) -> None:
    before = len(authed.log_text())
    port = authed.rest_port
    with socket.create_connection(("127.0.0.1", port), timeout=20) as s:
        s.sendall(request("GET", "/cost-and-usage?pageSize=1", port, [*A, b"Accept: application/x-ndjson"]))
        assert s.recv(4096).startswith(b"HTTP/1.1 200")
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")  # RST on close
    authed.until(lambda: "client_gone" in authed.log_text()[before:] or None, "the dropped stream's audit line")
    tail = authed.log_text()[before:]
    assert "Traceback" not in tail and "[error" not in tail and "ERROR" not in tail, tail


# item 8: read timeouts, the per-IP cap and an early 413


@pytest.fixture(scope="module")
def tight(data: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    work = tmp_path_factory.mktemp("tight")
    env = {
        "FOCUS_API_TOKENS": TOKEN_A,
        "FOCUS_API_HEADER_TIMEOUT_SECONDS": "3",
        "FOCUS_API_BODY_TIMEOUT_SECONDS": "1.5",
        "FOCUS_API_MAX_UNAUTHENTICATED_CONNECTIONS_PER_IP": "20",
        "FOCUS_API_AUTHORIZATION_SERVERS": "https://auth.example/realm",
    }
    with serving(copy_store(data, work / "data"), work / "server.log", **env) as server:
        yield server


def closed_by_server(s: socket.socket, deadline: float) -> bool:
    """True once the server closed ``s`` (EOF or reset), polling until ``deadline``."""
    s.settimeout(max(0.05, deadline - time.monotonic()))
    try:
        while s.recv(65536):
            pass
        return True
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False


@pytest.mark.slow
@pytest.mark.parametrize("which", ["rest", "mcp"])
def test_half_sent_requests_are_closed_within_the_header_timeout(tight: Server, which: str) -> None:
    port = tight.rest_port if which == "rest" else tight.mcp_port
    sockets = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(15)]
    try:
        for s in sockets:
            s.sendall(b"GET /cost-and-usage HTT")
        deadline = time.monotonic() + 15
        assert all(closed_by_server(s, deadline) for s in sockets)
    finally:
        for s in sockets:
            s.close()


@pytest.mark.slow
@pytest.mark.parametrize("which", ["rest", "mcp"])
def test_a_slow_body_is_cut_off(tight: Server, which: str) -> None:
    port = tight.rest_port if which == "rest" else tight.mcp_port
    path = "/cost-and-usage/export" if which == "rest" else "/mcp"
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        head = request("POST", path, port, [*A, b"Content-Type: application/json"], b"")
        s.sendall(head.replace(b"Content-Length: 0", b"Content-Length: 100") + b'{"format"')
        assert closed_by_server(s, time.monotonic() + 15)


@pytest.mark.slow
@pytest.mark.parametrize("which", ["rest", "mcp"])
def test_unauthenticated_connections_per_ip_are_capped(tight: Server, which: str) -> None:
    port = tight.rest_port if which == "rest" else tight.mcp_port
    held = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(20)]
    try:
        for s in held:
            s.sendall(b"GET / HT")

        def refused() -> Raw | None:
            raw = exchange(port, request("GET", "/healthz", port))
            return raw if raw.status == 503 else None

        raw = tight.until(refused, "the 21st connection refused", seconds=5)
        assert is_error_body(raw), raw
    finally:
        for s in held:
            s.close()
    # Once they are gone, connections are served again.
    tight.until(lambda: exchange(port, request("GET", "/healthz", port)).status != 503, "the cap released")


@pytest.mark.slow
@pytest.mark.parametrize("which", ["rest", "mcp"])
def test_a_huge_content_length_gets_an_early_413(tight: Server, which: str) -> None:
    port = tight.rest_port if which == "rest" else tight.mcp_port
    path = "/cost-and-usage/export" if which == "rest" else "/mcp"
    head = f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
    raw = exchange(port, (head + "Content-Length: 99999999999\r\n\r\n").encode(), timeout=5)
    assert raw.status == 413 and is_error_body(raw), raw


@pytest.mark.slow
def test_a_configured_authorization_server_is_named_in_the_metadata(tight: Server) -> None:
    raw = exchange(tight.mcp_port, request("GET", "/.well-known/oauth-protected-resource/mcp", tight.mcp_port))
    assert raw.json()["authorization_servers"] == ["https://auth.example/realm"]


# item 9: the metadata shim (server/mcp/sdk_shim.py) fails loudly if the SDK moves its route


async def test_the_metadata_shim_fails_loudly_if_the_sdk_route_moves(services: Services) -> None:
    resource = "http://127.0.0.1:9090/mcp"
    mcp = FocusMCPServer(Pipeline(services), http_auth=TokenStore(["tok"]), resource_url=resource)
    app = mcp.streamable_http_app()
    (route,) = [r for r in app.routes if isinstance(r, Route) and r.path == "/.well-known/oauth-protected-resource/mcp"]
    assert route.endpoint.__qualname__.startswith("replace_resource_metadata")  # ours, not the SDK's handler
    assert resource_metadata(resource, []) == {
        "resource": resource,
        "bearer_methods_supported": ["header"],
        "resource_name": "focus-api",
    }
    with pytest.raises(RuntimeError, match="sdk_shim"):
        replace_resource_metadata(Starlette(routes=[]), resource, [])


def test_mcp_transport_security_matches_the_host_policy() -> None:
    loopback = mcp_security(HostPolicy(Settings(), 9090))
    assert loopback.enable_dns_rebinding_protection
    assert {"127.0.0.1:9090", "localhost:*", "[::1]:*"} <= set(loopback.allowed_hosts)
    assert "http://localhost:9090" in loopback.allowed_origins
    pinned = mcp_security(
        HostPolicy(Settings(host="0.0.0.0", allowed_hosts="mcp.example", allowed_origins="https://app.example"), 9090)
    )
    assert pinned.enable_dns_rebinding_protection
    assert "mcp.example:*" in pinned.allowed_hosts and "https://app.example" in pinned.allowed_origins
    # A non-loopback bind without FOCUS_API_ALLOWED_HOSTS serves any Host; McpHttpGuard still checks Origin.
    assert not mcp_security(HostPolicy(Settings(host="0.0.0.0"), 9090)).enable_dns_rebinding_protection
