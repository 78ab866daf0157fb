"""Who is calling: tokens, principals and their scopes, for the HTTP transports.

A token maps to a principal: a name, the tools it may call, and an optional allow-list of
BillingAccountIds / SubAccountIds applied inside every query (absent lists mean no restriction).
Principals come from ``FOCUS_API_TOKENS_FILE`` (JSON, tokens given as SHA-256 hex digests) and from
``FOCUS_API_TOKENS`` (plain tokens, unscoped). Tokens are kept only as digests and compared in constant
time; a token never appears in a log line, an error or an export. stdio needs no token.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mcp.server.auth.provider import AccessToken, TokenVerifier

from server.http_guard import valid_token
from tools.errors import Forbidden
from tools.registry import BY_NAME
from tools.source import Scope


@dataclass(frozen=True, slots=True)
class Principal:
    name: str
    tools: frozenset[str] | None = None
    scope: Scope = field(default_factory=Scope)

    def require(self, tool: str) -> None:
        if self.tools is not None and tool not in self.tools:
            raise Forbidden(
                f"this token may not call {tool}; it may call {', '.join(sorted(self.tools)) or 'no tool'}",
                {"tool": tool, "principal": self.name},
            )


LOCAL = Principal("local")
_GENERATED = re.compile(r"token-[0-9]+")


class TokenFileError(ValueError):
    """The tokens file is not what ``FOCUS_API_TOKENS_FILE`` must hold; the message says what is wrong."""


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8", "surrogateescape")).digest()


def _ids(entry: dict[str, Any], key: str, where: str) -> frozenset[str] | None:
    value = entry.get(key)
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise TokenFileError(f"{where}: {key} must be a list of strings")
    return frozenset(value)


def load_token_file(path: Path) -> list[tuple[bytes, Principal]]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise TokenFileError(f"cannot read the tokens file {path}: {exc}") from None
    entries = data.get("tokens") if isinstance(data, dict) else None
    if not isinstance(entries, list):
        raise TokenFileError(f'{path}: expected {{"tokens": [{{"name": ..., "sha256": ...}}, ...]}}')
    out = []
    for i, entry in enumerate(entries):
        where = f"{path}: tokens[{i}]"
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
            raise TokenFileError(f"{where}: each entry needs a name")
        digest = entry.get("sha256")
        if not isinstance(digest, str) or not re.fullmatch(r"[0-9a-fA-F]{64}", digest):
            raise TokenFileError(f"{where}: sha256 must be the 64-hex SHA-256 of the token (sha256sum)")
        tools = _ids(entry, "tools", where)
        unknown = sorted((tools or frozenset()) - set(BY_NAME))
        if unknown:
            raise TokenFileError(f"{where}: unknown tools {', '.join(unknown)}; the tools are {', '.join(BY_NAME)}")
        scope = Scope(_ids(entry, "billingAccountIds", where), _ids(entry, "subAccountIds", where))
        out.append((bytes.fromhex(digest), Principal(entry["name"], tools, scope)))
    return out


class TokenStore:
    """The configured principals, by token digest.

    Export jobs are owned by principal name, so names are unique: a tokens file that repeats a name, uses
    a ``token-N`` name (reserved for ``FOCUS_API_TOKENS`` entries) or the reserved ``local`` (stdio and
    unauthenticated callers), or lists one token twice, is refused at startup. Callers are still looked up
    by credential.
    """

    def __init__(self, tokens: list[str], token_file: Path | None = None) -> None:
        bad = [i + 1 for i, t in enumerate(tokens) if not valid_token(t)]
        if bad:
            raise TokenFileError(
                f"FOCUS_API_TOKENS entries {', '.join(map(str, bad))} are not tokens every client can send on both "
                "ports: a token must be visible ASCII (letters, digits, punctuation) without spaces"
            )
        entries = [(_digest(t), Principal(f"token-{i + 1}")) for i, t in enumerate(tokens)]
        wheres = [f"FOCUS_API_TOKENS entry {i + 1} (token-{i + 1})" for i in range(len(tokens))]
        if token_file is not None:
            loaded = load_token_file(token_file)
            entries += loaded
            wheres += [f"{token_file}: tokens[{i}] ({p.name})" for i, (_, p) in enumerate(loaded)]
        _check_unique(entries, wheres)
        self._entries = entries

    @property
    def enabled(self) -> bool:
        return bool(self._entries)

    def verify(self, presented: str | None) -> Principal | None:
        if not presented:
            return None
        digest = _digest(presented)
        match = None
        for known, principal in self._entries:  # no early exit: every check costs the same
            if hmac.compare_digest(known, digest):
                match = principal
        return match


def _check_unique(entries: list[tuple[bytes, Principal]], wheres: list[str]) -> None:
    problems = []
    names: dict[str, list[str]] = {}
    for (_, principal), where in zip(entries, wheres, strict=True):
        names.setdefault(principal.name, []).append(where)
    for name, places in names.items():
        if len(places) > 1:
            problems.append(f"the name {name!r} is used more than once: {'; '.join(places)}")
    reserved = [
        where
        for (_, principal), where in zip(entries, wheres, strict=True)
        if _GENERATED.fullmatch(principal.name) and not where.startswith("FOCUS_API_TOKENS")
    ]
    if reserved:
        # Reserved even where no FOCUS_API_TOKENS entry has that number yet: adding one later would
        # silently hand it this principal's exports.
        problems.append(f"names token-<N> are reserved for FOCUS_API_TOKENS entries: {'; '.join(reserved)}")
    if LOCAL.name in names:
        problems.append(
            f"the name {LOCAL.name!r} is reserved for stdio and unauthenticated callers: {names['local'][0]}"
        )
    digests: dict[bytes, list[str]] = {}
    for (digest, _), where in zip(entries, wheres, strict=True):
        digests.setdefault(digest, []).append(where)
    problems += [f"the same token is listed more than once: {'; '.join(p)}" for p in digests.values() if len(p) > 1]
    if problems:
        raise TokenFileError(
            "principal names and tokens must be unique (exports belong to a principal by name): " + " | ".join(problems)
        )


class McpTokenVerifier(TokenVerifier):
    def __init__(self, tokens: TokenStore, resource: str) -> None:
        self.tokens = tokens
        self.resource = resource

    async def verify_token(self, token: str) -> AccessToken | None:
        principal = self.tokens.verify(token)
        if principal is None:
            return None
        return AccessToken(token=token, client_id=principal.name, scopes=[], resource=self.resource)
