"""The events' write (collect.store): inserted as new unless a stored messageId was met lately."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msgspec
import pyarrow as pa
import pytest

from touchpoint.collect import store
from touchpoint.collect.normalize import EventRows, utcnow
from touchpoint.collect.store import write_rows, write_table
from touchpoint.config import override_settings
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


def test_retries_keep_the_key_checked_first(
    warehouse: Warehouse, asked: list[bool], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each write meeting stored ids (a re-import, a stream of retries) keeps the lookup on: the plain insert is
    not tried, refused and redone again each time the quiet while would have ended."""
    write_rows(warehouse, rows(range(0, 10)))
    write_rows(warehouse, rows(range(0, 10)))  # the conflict: the lookup is on
    monkeypatch.setattr(store, "CHECK_AFTER_CONFLICT", 0.5)
    for _ in range(3):
        store._conflicts[warehouse] -= 0.4  # most of the while gone...
        assert write_rows(warehouse, rows(range(0, 10))).duplicates == 10  # ...and met stored ids again
    assert asked == [True, True, False, False, False, False]


def test_a_refused_value_is_not_taken_for_a_stored_key(warehouse: Warehouse, asked: list[bool]) -> None:
    """A NOT NULL refusal of the plain insert is a row the warehouse refuses (isolated and quarantined as
    before), not a key conflict: no redo with the lookup, and the plain insert stays on."""
    events = rows(range(0, 3)).to_arrow()
    types = pa.array([None, "track", "track"], pa.string())
    result = write_table(
        warehouse, events.set_column(events.schema.get_field_index("type"), "type", types), EventRows()
    )
    assert (result.stored, result.quarantined) == (2, 1)
    assert asked[0] is True and False not in asked  # the group refused, then one by one: never a lookup redo
    assert warehouse not in store._conflicts


def _refusing(monkeypatch: pytest.MonkeyPatch, refused: Callable[[pa.Table, pa.Table], bool]) -> None:
    """The write's transaction raises, as for a value validation did not foresee, when ``refused(events, consent)``."""
    transaction = store._transaction

    def refusing(wh: Warehouse, events: pa.Table, rejects: pa.Table, consent: pa.Table, suppressed: Any) -> Any:
        if refused(events, consent):
            raise ValueError("a value the warehouse refuses")
        return transaction(wh, events, rejects, consent, suppressed)

    monkeypatch.setattr(store, "_transaction", refusing)


def test_a_refused_event_and_its_repeat_are_each_counted(warehouse: Warehouse, monkeypatch: pytest.MonkeyPatch) -> None:
    """A refused group is isolated with its repeats: two inputs of one messageId are two received."""
    _refusing(monkeypatch, lambda events, consent: "m1" in events.column("message_id").to_pylist())
    twice = rows(range(1, 2))
    twice.extend(rows(range(1, 2)))
    result = write_rows(warehouse, twice)
    assert (result.received, result.rejected + result.duplicates) == (2, 2)


def test_an_event_denying_analytics_stays_out_when_its_consent_is_refused(
    warehouse: Warehouse, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With analytics_denied = drop, the write without consent rows (the warehouse refused them) still keeps the
    denying event out (it was stored before)."""
    override_settings(analytics_denied="drop")
    _refusing(monkeypatch, lambda events, consent: consent.num_rows > 0)
    denying = EventRows()
    no = {"consent": {"categoryPreferences": {"analytics": False}}}
    item = {"type": "track", "messageId": "d1", "userId": "u1", "event": "Viewed", "context": no}
    assert denying.add_raw(msgspec.json.encode(item), received_at=utcnow(), source="test")
    result = write_rows(warehouse, denying)
    assert (result.received, result.stored, result.consent_dropped) == (1, 0, 1)
    assert warehouse.count("events") == 0
