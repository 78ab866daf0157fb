"""Instants on the wire: parsing the date filters callers send, and writing FOCUS UTC date/times.

FOCUS date/times are UTC ``YYYY-MM-DDTHH:MM:SSZ``; the store keeps them as naive UTC timestamps.
"""

from __future__ import annotations

from datetime import UTC, datetime

DATE_HELP = "RFC 3339 date-time in UTC such as 2026-05-01T00:00:00Z (a plain date 2026-05-01 means midnight UTC)"


def parse_instant(value: str, field: str) -> datetime:
    """An RFC 3339 date-time (or plain date) as a naive UTC datetime; ValueError says how to fix it."""
    text = value.strip()
    try:
        if len(text) == 10:
            return datetime.strptime(text, "%Y-%m-%d")
        parsed = datetime.fromisoformat(text.replace("z", "Z").replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"{field} {value!r} is not a date-time; use {DATE_HELP}") from None
    if parsed.tzinfo is None:
        raise ValueError(f"{field} {value!r} has no time zone; use {DATE_HELP}")
    try:
        return parsed.astimezone(UTC).replace(tzinfo=None)
    except OverflowError:
        # 9999-12-31T23:59:59-01:00 is a valid RFC 3339 text whose UTC instant is past year 9999.
        raise ValueError(f"{field} {value!r} is outside the years 0001 to 9999 once converted to UTC") from None


def format_instant(value: datetime | None) -> str | None:
    return None if value is None else value.strftime("%Y-%m-%dT%H:%M:%SZ")
