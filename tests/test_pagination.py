"""Page tokens: signed, bound to the walk and to the data version."""

from __future__ import annotations

import pytest

from tools.errors import InvalidPageToken
from tools.pagination import PageTokens, fingerprint

TOKENS = PageTokens(b"secret")
WALK = fingerprint("listcostandusage", {"service_name": "AmazonEC2"})


def reason(token: str, walk: str = WALK, version: str = "1", tokens: PageTokens = TOKENS) -> str:
    with pytest.raises(InvalidPageToken) as caught:
        tokens.open(token, fingerprint=walk, data_version=version)
    return str(caught.value.details["reason"])


def test_a_token_opens_to_its_cursor_for_the_same_walk_and_version() -> None:
    token = TOKENS.issue(fingerprint=WALK, data_version="1", cursor="42")
    assert TOKENS.open(token, fingerprint=WALK, data_version="1") == "42"


def test_a_token_with_one_byte_changed_is_rejected_as_forged() -> None:
    token = TOKENS.issue(fingerprint=WALK, data_version="1", cursor="42")
    body, sig = token.split(".")
    flipped = body[:-1] + ("A" if body[-1] != "A" else "B")
    assert reason(f"{flipped}.{sig}") == "forged"


@pytest.mark.parametrize("junk", ["", "abc", "a.b.c", "!!!.???", "eyJ2IjoxfQ.AAAA", "T.é", "é.é", "YQ.\u00ff\u4e2d"])
def test_garbage_is_rejected_as_forged(junk: str) -> None:
    assert reason(junk) == "forged"


def test_a_token_signed_by_another_server_is_rejected_as_forged() -> None:
    other = PageTokens(b"another secret").issue(fingerprint=WALK, data_version="1", cursor="42")
    assert reason(other) == "forged"


def test_a_token_replayed_with_other_filters_is_rejected_as_foreign() -> None:
    token = TOKENS.issue(fingerprint=WALK, data_version="1", cursor="42")
    other_walk = fingerprint("listcostandusage", {"service_name": "AmazonS3"})
    assert reason(token, walk=other_walk) == "foreign"


def test_a_token_of_another_tool_is_rejected_as_foreign() -> None:
    token = TOKENS.issue(fingerprint=WALK, data_version="1", cursor="42")
    assert reason(token, walk=fingerprint("listcontractcommitments", {"service_name": "AmazonEC2"})) == "foreign"


def test_a_token_from_before_a_reload_is_rejected_as_stale() -> None:
    token = TOKENS.issue(fingerprint=WALK, data_version="1", cursor="42")
    assert reason(token, version="2") == "stale"


def test_the_fingerprint_ignores_filter_order_but_not_scope() -> None:
    a = fingerprint("t", {"a": 1, "b": 2})
    assert a == fingerprint("t", {"b": 2, "a": 1})
    assert a != fingerprint("t", {"a": 1, "b": 2}, scope="team-a")
