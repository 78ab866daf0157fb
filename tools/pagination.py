"""Opaque, signed page tokens: a source cursor bound to the tool, the filters and the data version.

Layout: ``base64url(json payload) "." base64url(HMAC-SHA256(secret, payload)[:16])``. The payload is
readable but useless to edit: a changed byte breaks the signature. A token replayed with other filters,
another tool or after the data changed is refused with ``invalid_page_token`` and a reason.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from dataclasses import dataclass
from typing import Any

from tools.errors import InvalidPageToken

_VERSION = 1


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def fingerprint(tool: str, filters: dict[str, Any], scope: str = "") -> str:
    """A short hash of what a walk is over: the tool, its filters (not page size) and the caller's scope."""
    canonical = json.dumps({"tool": tool, "filters": filters, "scope": scope}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:24]


@dataclass(frozen=True, slots=True)
class PageTokens:
    """Issues and checks page tokens with one server secret."""

    secret: bytes

    def _sign(self, payload: bytes) -> str:
        return b64url(hmac.new(self.secret, payload, hashlib.sha256).digest()[:16])

    def issue(self, *, fingerprint: str, data_version: str, cursor: str) -> str:
        payload = json.dumps(
            {"v": _VERSION, "f": fingerprint, "d": data_version, "c": cursor}, separators=(",", ":")
        ).encode()
        return f"{b64url(payload)}.{self._sign(payload)}"

    def open(self, token: str, *, fingerprint: str, data_version: str) -> str:
        """The cursor inside a token issued by this server for this walk; InvalidPageToken otherwise."""
        try:
            body, signature = token.split(".", 1)
            payload = unb64url(body)
            # As bytes: compare_digest refuses str with non-ASCII characters (a TypeError, not a mismatch).
            valid = hmac.compare_digest(signature.encode(), self._sign(payload).encode())
        except (ValueError, UnicodeError):
            valid = False
        if not valid:
            raise InvalidPageToken(
                "pageToken is not a token this server issued (it was altered, truncated or comes from "
                "elsewhere); start again without pageToken",
                {"reason": "forged"},
            )
        data = json.loads(payload)
        if data.get("v") != _VERSION:
            raise InvalidPageToken("pageToken is from an older server version; start again", {"reason": "version"})
        if data.get("f") != fingerprint:
            raise InvalidPageToken(
                "pageToken belongs to a different query: send exactly the filters of the first page "
                "(pageSize may change), or start again without pageToken",
                {"reason": "foreign"},
            )
        if data.get("d") != data_version:
            raise InvalidPageToken(
                "the data changed since this walk began (a new load); start again without pageToken "
                "to read a consistent set",
                {"reason": "stale"},
            )
        return str(data["c"])
