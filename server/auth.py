"""Bearer / X-API-Key authentication for the HTTP transports.

Tokens are kept only as SHA-256 digests and compared in constant time; a token never appears in a log
line, an error or an export. The MCP HTTP transport uses the same check through the SDK's
TokenVerifier; stdio needs no token (the desktop client started the process).
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

from mcp.server.auth.provider import AccessToken, TokenVerifier


@dataclass(frozen=True, slots=True)
class Principal:
    name: str


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


class TokenStore:
    """The configured tokens, by digest."""

    def __init__(self, tokens: list[str]) -> None:
        self._digests = [(_digest(t), f"token-{i + 1}") for i, t in enumerate(tokens)]

    @property
    def enabled(self) -> bool:
        return bool(self._digests)

    def verify(self, presented: str | None) -> Principal | None:
        if not presented:
            return None
        digest = _digest(presented)
        match = None
        for known, name in self._digests:  # no early exit: every check costs the same
            if hmac.compare_digest(known, digest):
                match = name
        return Principal(match) if match else None


def bearer(header: str | None) -> str | None:
    if header and header[:7].lower() == "bearer ":
        return header[7:].strip() or None
    return None


class McpTokenVerifier(TokenVerifier):
    def __init__(self, tokens: TokenStore, resource: str) -> None:
        self.tokens = tokens
        self.resource = resource

    async def verify_token(self, token: str) -> AccessToken | None:
        principal = self.tokens.verify(token)
        if principal is None:
            return None
        return AccessToken(token=token, client_id=principal.name, scopes=[], resource=self.resource)
