"""What both HTTP ports check before any route runs: the credential, Host and Origin, and open connections.

One function each, used by the REST app (aiohttp, ``server/rest/``) and the MCP ASGI wrapper
(``server/mcp/http.py``), so a request is judged the same way on either port:

- ``credential``: ``Authorization: Bearer <token>`` (scheme case-insensitive, exactly one space, the token
  visible ASCII without spaces) or, when no Authorization header is given, ``X-API-Key: <token>``. An
  Authorization header with another scheme (``Basic ...``) or a malformed Bearer is an invalid credential,
  even beside a valid ``X-API-Key``: a request carrying a credential the server cannot use is refused rather
  than judged by a second header. Repeated headers, non-ASCII or control bytes are invalid too.
- ``HostPolicy``: on a loopback bind only loopback Host names (``127.0.0.1``, ``localhost``, ``[::1]``, with
  the port or without) and ``FOCUS_API_ALLOWED_HOSTS`` are served (421 otherwise), which defeats DNS
  rebinding; on every bind an ``Origin`` header must be a loopback origin of the port (of any port on a
  loopback bind), ``FOCUS_API_PUBLIC_URL``'s origin or one of ``FOCUS_API_ALLOWED_ORIGINS`` (403
  otherwise). Requests without Origin (non-browser clients) pass.
- ``ConnectionGuard``: per client IP, the connections open that have not yet presented a valid credential
  (503 beyond ``FOCUS_API_MAX_UNAUTHENTICATED_CONNECTIONS_PER_IP``).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

from server.settings import Settings
from tools.errors import FocusApiError, Forbidden, MisdirectedRequest

LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")
_TOKEN = re.compile(rb"[\x21-\x7e]+")
_BEARER = re.compile(rb"bearer ([\x21-\x7e]+)", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Credential:
    """What a request presented: a token, nothing (``missing``) or something unusable (``invalid``)."""

    token: str | None
    problem: str | None  # None (a token), "missing" or "invalid"


MISSING = Credential(None, "missing")
INVALID = Credential(None, "invalid")


def valid_token(token: str) -> bool:
    """A token the server can be configured with: visible ASCII, no spaces (what every client can send)."""
    return _TOKEN.fullmatch(token.encode("utf-8", "surrogateescape")) is not None


def credential(headers: Iterable[tuple[bytes, bytes]]) -> Credential:
    """The one credential rule of both ports, applied to the raw header bytes (names in any case)."""
    authorization: list[bytes] = []
    api_key: list[bytes] = []
    for name, value in headers:
        lowered = name.lower()
        if lowered == b"authorization":
            authorization.append(value)
        elif lowered == b"x-api-key":
            api_key.append(value)
    if authorization:
        if len(authorization) > 1:
            return INVALID
        match = _BEARER.fullmatch(authorization[0])
        return Credential(match.group(1).decode("ascii"), None) if match else INVALID
    if api_key:
        if len(api_key) > 1 or _TOKEN.fullmatch(api_key[0]) is None:
            return INVALID
        return Credential(api_key[0].decode("ascii"), None)
    return MISSING


def _bare(host: str) -> str:
    """A Host value without its port (``[::1]:9090`` -> ``[::1]``)."""
    return host[: host.rindex(":")] if host.rfind(":") > host.rfind("]") else host


def _loopback_origin(origin: str) -> bool:
    """``http://`` + a loopback name, with a numeric port or none."""
    scheme, _, netloc = origin.partition("://")
    host = _bare(netloc)
    port = netloc[len(host) + 1 :]
    return scheme == "http" and host in LOOPBACK_NAMES and (netloc == host or port.isdigit())


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


class HostPolicy:
    """Which Host and Origin values one port serves (see the module docstring)."""

    def __init__(self, settings: Settings, port: int) -> None:
        configured = settings.allowed_host_list()
        self.hosts: frozenset[str] | None
        if settings.is_loopback():
            loopback = [f"{h}:{port}" for h in LOOPBACK_NAMES] + list(LOOPBACK_NAMES)
            self.hosts = frozenset(loopback + configured)
        else:
            self.hosts = frozenset(configured) if configured else None  # None: any Host (tokens guard the bind)
        origins = {f"http://{h}:{port}" for h in LOOPBACK_NAMES} | set(settings.allowed_origin_list())
        # On a loopback bind a page served from this machine (any loopback port, as the MCP SDK allows by
        # default: browser-based MCP inspectors run on their own port) is not a rebinding attacker.
        self.any_loopback_origin = settings.is_loopback()
        if settings.public_url:
            origins.add(_origin(settings.public_url))
            if self.hosts is not None:
                self.hosts |= {urlsplit(settings.public_url).netloc.lower()}
        self.origins = frozenset(origins)

    def host_patterns(self) -> list[str]:
        """The Host values for the MCP SDK's own check (a bare name there means any port: ``name:*``)."""
        assert self.hosts is not None
        return sorted(self.hosts | {f"{h}:*" for h in self.hosts if _bare(h) == h})

    def check(self, host: bytes | None, origin: bytes | None) -> FocusApiError | None:
        """None when the request may be served, else the error to answer with."""
        if self.hosts is not None:
            name = (host or b"").decode("latin-1").strip().lower()
            if name not in self.hosts and _bare(name) not in self.hosts:
                return MisdirectedRequest(
                    "this server does not serve that Host; on a loopback bind use 127.0.0.1, localhost or [::1], "
                    "or add the name to FOCUS_API_ALLOWED_HOSTS",
                    {"reason": "host"},
                )
        if origin is not None:
            value = origin.decode("latin-1").strip().lower().rstrip("/")
            if value not in self.origins and not (self.any_loopback_origin and _loopback_origin(value)):
                return Forbidden(
                    "requests from this browser origin are refused; add it to FOCUS_API_ALLOWED_ORIGINS to allow it",
                    {"reason": "origin"},
                )
        return None


class ConnectionGuard:
    """Open connections per client IP that have not presented a valid credential yet."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._open: Counter[str] = Counter()
        self._pending: set[object] = set()

    def opened(self, connection: object, ip: str | None) -> bool:
        """Count a new connection; False when its IP already holds ``limit`` (the caller closes it)."""
        key = ip or "?"
        if self._open[key] >= self.limit:
            return False
        self._open[key] += 1
        self._pending.add((connection, key))
        return True

    def authenticated(self, connection: object, ip: str | None) -> None:
        """The connection presented a valid credential (or auth is off): it no longer counts."""
        entry = (connection, ip or "?")
        if entry in self._pending:
            self._pending.discard(entry)
            self._open[entry[1]] -= 1
            if self._open[entry[1]] <= 0:
                del self._open[entry[1]]

    def closed(self, connection: object, ip: str | None) -> None:
        self.authenticated(connection, ip)


def header(headers: Iterable[tuple[bytes, bytes]], name: bytes) -> bytes | None:
    """The value of one header by lower-case name (the first), from raw header pairs."""
    return next((v for k, v in headers if k.lower() == name), None)
