"""The events' write (collect.store): inserted as new unless a stored messageId was met lately."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from touchpoint.collect import store
from touchpoint.collect.normalize import EventRows, utcnow
from touchpoint.collect.store import write_rows
from touchpoint.warehouse import Warehouse
from touchpoint.warehouse.duckdb_engine import DuckDBTransaction


def rows(ids: range) -> EventRows:
    made = EventRows()
    for i in ids:
        item = {"type": "track", "messageId": f"m{i}", "userId": f"u{i % 7}", "event": "Viewed"}
        assert made.add_raw(msgspec.json.encode(item), received_at=utcnow(), source="test")
    return made


@pytest.fixture
def asked(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """The ``assume_new`` of each events insert, in order."""
    seen: list[bool] = []
    insert_new = DuckDBTransaction.insert_new

    def spy(self: DuckDBTransaction, table: str, rows: Any, *, assume_new: bool = False) -> int:
        if table == "events":
            seen.append(assume_new)
        return insert_new(self, table, rows, assume_new=assume_new)

    monkeypatch.setattr(DuckDBTransaction, "insert_new", spy)
    return seen


def test_a_stored_message_id_costs_the_plain_insert_not_the_event(warehouse: Warehouse, asked: list[bool]) -> None:
    """New events go in without the separate key lookup; a batch meeting stored ids (a client's retry) is
    redone with the lookup: the new events of it are stored once, the stored ones counted as duplicates, and
    the following writes check the key first for a while."""
    first = write_rows(warehouse, rows(range(0, 50)))
    assert (first.stored, asked) == (50, [True])
    again = write_rows(warehouse, rows(range(25, 100)))  # 25 stored already, 50 new
    assert (again.received, again.stored, again.duplicates) == (75, 50, 25)
    assert asked == [True, True, False]  # refused as a whole, then redone with the check
    assert warehouse.count("events") == 100
    assert write_rows(warehouse, rows(range(100, 110))).stored == 10
    assert asked[-1] is False  # within CHECK_AFTER_CONFLICT of the conflict


def test_the_plain_insert_comes_back_after_a_quiet_while(
    warehouse: Warehouse, asked: list[bool], monkeypatch: pytest.MonkeyPatch
) -> None:
    write_rows(warehouse, rows(range(0, 10)))
    assert write_rows(warehouse, rows(range(0, 10))).duplicates == 10
    monkeypatch.setattr(store, "CHECK_AFTER_CONFLICT", 0.0)
    assert write_rows(warehouse, rows(range(10, 20))).stored == 10
    assert asked == [True, True, False, True]
    assert warehouse.count("events") == 20


def test_inside_another_write_the_key_is_checked_first(warehouse: Warehouse, asked: list[bool]) -> None:
    """A write joining an outer transaction cannot redo it: a conflict there would cost the outer writes."""
    write_rows(warehouse, rows(range(0, 10)))
    with warehouse.write(lane="events"):
        result = write_rows(warehouse, rows(range(5, 15)))
    assert (result.stored, result.duplicates) == (5, 5)
    assert asked == [True, False]
    assert warehouse.count("events") == 15
