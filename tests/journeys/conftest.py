"""Fixtures for the journeys tests: an in-memory warehouse and Segment message builders."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest

from touchpoint.collect.store import write_messages
from touchpoint.warehouse import Warehouse

T0 = datetime(2026, 3, 2, 9, 0, 0)  # a Monday


def iso(ts: datetime) -> str:
    return ts.isoformat(timespec="milliseconds") + "Z"


def page(
    who: str,
    ts: datetime,
    path: str = "/",
    *,
    query: str = "",
    referrer: str | None = None,
    user: str | None = None,
    mid: str | None = None,
) -> dict[str, Any]:
    url = f"https://shop.example{path}" + (f"?{query}" if query else "")
    msg: dict[str, Any] = {
        "type": "page",
        "anonymousId": who,
        "timestamp": iso(ts),
        "properties": {"url": url, "path": path, "referrer": referrer},
    }
    if user:
        msg["userId"] = user
    if mid:
        msg["messageId"] = mid
    return msg


def track(
    who: str, event: str, ts: datetime, *, user: str | None = None, mid: str | None = None, **props: Any
) -> dict[str, Any]:
    msg: dict[str, Any] = {"type": "track", "event": event, "timestamp": iso(ts), "properties": props}
    if user:
        msg["userId"] = user
    else:
        msg["anonymousId"] = who
    if mid:
        msg["messageId"] = mid
    return msg


def minutes(n: float) -> timedelta:
    return timedelta(minutes=n)


class Messages:
    """The builders above, handed to tests as the ``m`` fixture."""

    T0 = T0
    iso = staticmethod(iso)
    page = staticmethod(page)
    track = staticmethod(track)
    minutes = staticmethod(minutes)


@pytest.fixture(scope="session")
def m() -> type[Messages]:
    return Messages


@pytest.fixture
def wh() -> Iterator[Warehouse]:
    warehouse = Warehouse.open("duckdb://:memory:")
    yield warehouse
    warehouse.close()


@pytest.fixture
def write(wh: Warehouse) -> Callable[[list[dict[str, Any]]], None]:
    def _write(messages: list[dict[str, Any]]) -> None:
        result = write_messages(wh, messages, source="test")
        assert result.quarantined == 0, result

    return _write
