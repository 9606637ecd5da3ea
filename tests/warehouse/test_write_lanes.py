"""Event commits run in their own write lane: a derived-table transaction held open does not delay them,
and the two lanes committing at once lose nothing; on every engine."""

from __future__ import annotations

import threading
import time

import pyarrow as pa
import pytest

from touchpoint import identity, profiles
from touchpoint.collect.normalize import EventRows, utcnow
from touchpoint.collect.store import write_messages, write_rows
from touchpoint.warehouse import Warehouse

HOLD = 1.5


def _rows(tag: str, n: int = 10) -> EventRows:
    rows = EventRows()
    for i in range(n):
        body = f'{{"type":"identify","userId":"{tag}-u{i}","messageId":"{tag}-m{i}"}}'
        rows.add_raw(body.encode(), received_at=utcnow(), source="test")
    return rows


def _commit_while_main_lane_is_held(wh: Warehouse) -> float:
    """Seconds an event commit takes while another thread holds a main-lane transaction for HOLD s."""
    holding = threading.Event()

    def swap() -> None:
        with wh.write() as tx:
            tx.replace("identity_state", pa.table({"key": ["k"], "value": ['"v"']}))
            holding.set()
            time.sleep(HOLD)

    swapper = threading.Thread(target=swap)
    swapper.start()
    holding.wait(10)
    started = time.perf_counter()
    write_rows(wh, _rows(f"t{time.monotonic_ns()}"))
    took = time.perf_counter() - started
    swapper.join()
    return took


@pytest.fixture
def wh(warehouse_url: str) -> Warehouse:
    warehouse = Warehouse.open(warehouse_url)
    yield warehouse  # type: ignore[misc]
    warehouse.close()


def test_an_event_commit_does_not_wait_for_an_open_derived_table_transaction(wh: Warehouse) -> None:
    took = _commit_while_main_lane_is_held(wh)
    assert took < HOLD / 2, f"the event commit waited {took:.2f}s for the derived-table transaction"
    assert wh.count("events") == 10 and wh.count("identity_state") == 1


def test_with_one_lane_the_commit_waits_which_is_what_the_lanes_remove(wh: Warehouse) -> None:
    wh.separate_event_lane = False  # type: ignore[attr-defined]
    took = _commit_while_main_lane_is_held(wh)
    assert took >= HOLD * 0.8


def test_commits_and_rebuilds_at_once_lose_nothing_and_resolve_everything(wh: Warehouse) -> None:
    write_messages(wh, [{"type": "identify", "userId": f"seed{i}", "anonymousId": f"a{i}"} for i in range(200)])
    identity.rebuild(wh)
    stop = threading.Event()
    failures: list[BaseException] = []
    modes: list[str] = []

    def rebuild_loop() -> None:
        try:
            while not stop.is_set():
                modes.append(identity.update(wh).mode)
                profiles.build(wh)
        except BaseException as exc:  # pragma: no cover - reported below
            failures.append(exc)

    rebuilder = threading.Thread(target=rebuild_loop)
    rebuilder.start()
    stored = 0
    for k in range(40):
        stored += write_rows(wh, _rows(f"c{k}")).stored
        time.sleep(0.02)
    stop.set()
    rebuilder.join(120)
    assert failures == []
    # events committed while an update runs are left for the next one, not a reason to rebuild everything
    assert "rebuild" not in modes and "incremental" in modes, modes
    assert stored == 400 and wh.count("events") == 600
    identity.update(wh)
    profiles.build(wh)
    assert wh.count("profiles") == 600  # every event resolved, none twice


def test_a_commit_between_the_updates_two_reads_is_taken_by_a_second_look_not_a_rebuild(
    wh: Warehouse, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the race behind the test above: a snapshot with no new event, then the collector commits, then the count
    write_messages(wh, [{"type": "identify", "userId": f"seed{i}", "anonymousId": f"a{i}"} for i in range(20)])
    identity.rebuild(wh)
    real = type(wh).count
    committed: list[int] = []

    def count_after_a_commit(self: Warehouse, name: str) -> int:
        if name == "events" and not committed:
            committed.append(write_rows(self, _rows("late")).stored)
        return real(self, name)

    monkeypatch.setattr(type(wh), "count", count_after_a_commit)
    result = identity.update(wh)
    assert committed == [10]
    assert result.mode == "incremental", result.notes
    monkeypatch.undo()
    assert identity.update(wh).mode == "noop"  # the late events were resolved by the second look
