"""The present as the warehouse stores time: naive UTC.

>>> utcnow().tzinfo is None
True
>>> naive_utc(datetime.fromisoformat("2026-03-01T10:00:00+01:00"), "since")
datetime.datetime(2026, 3, 1, 9, 0)
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import overload

from touchpoint.errors import InvalidInput


def utcnow() -> datetime:
    """Now, as naive UTC (how the warehouse stores every timestamp)."""
    return datetime.now(UTC).replace(tzinfo=None)


@overload
def naive_utc(at: datetime, field: str) -> datetime: ...
@overload
def naive_utc(at: None, field: str) -> None: ...
def naive_utc(at: datetime | None, field: str) -> datetime | None:
    """An instant a user gave (``field`` names it) as naive UTC; a naive one is taken as UTC already. One with no
    UTC date (the year 1 or 9999 at a day's edge, with an offset) is refused naming the field, not a crash."""
    if at is None or at.tzinfo is None:
        return at
    try:
        return at.astimezone(UTC).replace(tzinfo=None)
    except OverflowError:
        raise InvalidInput(
            f"{field}: {at.isoformat()} is out of range in UTC", hint="send a time between the years 1 and 9999 in UTC"
        ) from None
