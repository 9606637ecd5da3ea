"""The collector log (setting ``collector_log``): acknowledged after an fsync'd append, loaded in groups.

The SIGKILL of a live server with the log on is in test_live_server.py (``collector-log``).
"""

from __future__ import annotations

import base64
import logging
import os
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import hypothesis.strategies as st
import pyarrow as pa
import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings

from touchpoint import keys
from touchpoint.api.app import create_app
from touchpoint.collect import collector_log
from touchpoint.collect.collector_log import CollectorLog, encode_record, read_segment
from touchpoint.collect.committer import GroupCommitter
from touchpoint.collect.normalize import EventRows, utcnow
from touchpoint.config import Settings
from touchpoint.errors import ConfigError, Overloaded
from touchpoint.warehouse import Warehouse, open_warehouse


def rows_of(*messages: bytes, origin: str = "http:batch") -> EventRows:
    rows = EventRows()
    for raw in messages:
        rows.add_raw(raw, received_at=utcnow(), source="web", origin=origin)
    return rows


def track(i: int) -> bytes:
    return b'{"type":"track","userId":"u%d","event":"Tick","messageId":"m-%d"}' % (i, i)


def count(wh: Warehouse, table: str = "events") -> int:
    return int(wh.query(f"SELECT count(*) AS n FROM {table}").to_pylist()[0]["n"])


def test_acknowledged_rows_load_and_listeners_hear_the_loader(warehouse: Warehouse, tmp_path: Path) -> None:
    heard: list[int] = []
    with CollectorLog(warehouse, tmp_path / "log", load_ms=10_000) as log:
        log.listeners.append(lambda result, seconds: heard.append(result.stored))
        answer = log.submit(rows_of(track(1), track(2), b'{"type":"nope"}')).result(10)
        assert (answer.received, answer.stored, answer.quarantined) == (3, 2, 1)
        assert log.queued_events == 3  # acknowledged, on disk, not loaded: the interval is long
        assert count(warehouse) == 0
        assert log.flush(10)  # a reader waiting makes the loader go now
        assert count(warehouse) == 2 and count(warehouse, "quarantine") == 1
        assert log.queued_events == 0 and heard == [2]


def test_a_load_of_groups_in_arrow_and_as_rows_stores_them_all(
    warehouse: Warehouse, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The appender turns a group of ARROW_FROM events or more into Arrow and leaves a smaller one as rows; one load
    of both kinds stores every event and quarantines every reject, each once, with the rows' values."""
    monkeypatch.setattr(collector_log, "ARROW_FROM", 3)
    bad = b'{"type":"track","userId":"u9"}'  # no event name: quarantined
    loads: list[list[bool]] = []  # per load: which of its records came in Arrow
    with CollectorLog(warehouse, tmp_path / "log", load_ms=60_000) as log:
        real = log._load

        def load(group: list[Any], total: int) -> bool:
            loads.append([item.events is not None for item in group])
            return real(group, total)

        monkeypatch.setattr(log, "_load", load)
        log.submit(rows_of(track(1), bad)).result(10)  # 1 event: rows
        log.submit(rows_of(track(2), track(3), track(4), b"{}")).result(10)  # 3 events: Arrow
        log.submit(rows_of(track(5))).result(10)  # rows again
        again = track(5).replace(b'"u5"', b'"someone else"')  # the same messageId: the first one sent is kept
        log.submit(rows_of(again, track(6), track(7))).result(10)  # Arrow
        assert log.flush(10)
    assert [kind for kinds in loads for kind in kinds] == [False, True, False, True]
    assert any(len(set(kinds)) == 2 for kinds in loads)  # (the first load may come at once; the rest wait)
    got = warehouse.query("SELECT message_id, user_id, event FROM events ORDER BY message_id").to_pylist()
    assert got == [{"message_id": f"m-{i}", "user_id": f"u{i}", "event": "Tick"} for i in range(1, 8)]
    assert count(warehouse, "quarantine") == 2


def test_a_failed_load_keeps_the_records_and_retries(
    warehouse: Warehouse, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = collector_log.write_table
    calls: list[int] = []

    def flaky(wh: Warehouse, events: pa.Table, rejects: EventRows) -> Any:
        calls.append(events.num_rows)
        if len(calls) == 1:
            raise RuntimeError("the disk is full")
        return real(wh, events, rejects)

    monkeypatch.setattr(collector_log, "write_table", flaky)
    with CollectorLog(warehouse, tmp_path / "log", load_ms=0) as log:
        log.submit(rows_of(track(1), track(2))).result(10)
        assert log.flush(10)
        assert log.stats.failed_commits == 1
    assert calls == [2, 2]
    assert count(warehouse) == 2


def test_a_flush_waiting_on_the_load_under_way_does_not_hurry_the_next(
    warehouse: Warehouse, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A flush whose records the loader has already taken waits for that load; it does not make the loader
    load again at once (records appended meanwhile wait for the interval, as nobody asked for them)."""
    real = collector_log.write_table
    taken, go = threading.Event(), threading.Event()

    def held(wh: Warehouse, events: pa.Table, rejects: EventRows) -> Any:
        taken.set()
        assert go.wait(10)
        return real(wh, events, rejects)

    monkeypatch.setattr(collector_log, "write_table", held)
    with CollectorLog(warehouse, tmp_path / "log", load_ms=60_000) as log, ThreadPoolExecutor(1) as pool:
        log.submit(rows_of(track(1))).result(10)
        flushed = pool.submit(log.flush, 10)
        assert taken.wait(10)  # the flush made the loader take record 1, and the load is under way
        log.submit(rows_of(track(2))).result(10)  # appended meanwhile: the appender's notice wakes the flush
        time.sleep(0.2)  # (the window in which the woken flush used to ask for another load)
        go.set()
        assert flushed.result(10)
        deadline = time.monotonic() + 0.5
        while time.monotonic() < deadline:  # the next load waits its minute: nothing is loaded in this window
            assert log.stats.commits == 1 and log.queued_events == 1
            time.sleep(0.02)
        assert count(warehouse) == 1
        assert log.flush(10) and count(warehouse) == 2


def test_loads_stretch_their_interval_under_load_and_return_to_it_when_quiet(
    warehouse: Warehouse, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = collector_log.write_table
    seconds = [1.5]  # the first load is slow (a busy stream's group), the next quick

    def timed(wh: Warehouse, events: pa.Table, rejects: EventRows) -> Any:
        if seconds:
            time.sleep(seconds.pop())
        return real(wh, events, rejects)

    monkeypatch.setattr(collector_log, "write_table", timed)
    monkeypatch.setattr(collector_log, "STRETCH_FROM", 2)  # a group of 2 events is a busy stream's here
    with CollectorLog(warehouse, tmp_path / "log", load_ms=1000) as log:
        assert log.interval == 1.0
        log.submit(rows_of(track(1), track(3))).result(10)
        assert log.flush(10)
        assert log.interval == 5.0  # 4 x 1.5 s, at most 5 x load_ms
        log.submit(rows_of(track(2))).result(10)
        assert log.flush(10)
        assert log.interval == 1.0  # a quick load (under 0.25 s): back to load_ms
        seconds.append(1.5)
        log.submit(rows_of(track(4))).result(10)
        assert log.flush(10)
        assert log.interval == 1.0  # a slow load of a trickle (1 event) does not stretch
    assert count(warehouse) == 4


def test_stop_loads_everything_acknowledged(warehouse: Warehouse, tmp_path: Path) -> None:
    directory = tmp_path / "log"
    log = CollectorLog(warehouse, directory, load_ms=10_000).start()
    futures = [log.submit(rows_of(track(i))) for i in range(50)]
    log.stop()  # while appends are still under way
    assert all(f.result(0).stored == 1 for f in futures)
    assert count(warehouse) == 50 and list(directory.glob("*.seg")) == []


def test_segments_roll_and_are_deleted_once_loaded(warehouse: Warehouse, tmp_path: Path) -> None:
    directory = tmp_path / "log"
    size = len(encode_record(rows_of(track(10))))  # the records below are this size, give or take a digit
    with CollectorLog(warehouse, directory, load_ms=10_000, segment_bytes=int(size * 2.5)) as log:
        for i in range(10, 22):  # one record each: two to a segment
            log.submit(rows_of(track(i))).result(10)
        assert len(list(directory.glob("*.seg"))) == 6
        assert log.flush(10)
        assert len(list(directory.glob("*.seg"))) <= 2  # what the loader passed is gone; the one written stays
    assert list(directory.glob("*.seg")) == []
    assert count(warehouse) == 12


def test_a_segment_rolls_when_older_than_segment_seconds(warehouse: Warehouse, tmp_path: Path) -> None:
    """However little is written, a loaded record leaves the disk soon: its segment rolls when old, and the
    loader deletes the segments it passed (an erased person's later events, dropped at the load, included)."""
    directory = tmp_path / "log"
    with CollectorLog(warehouse, directory, load_ms=10_000, segment_seconds=0.0) as log:
        for i in range(3):  # one record each, and each segment already "old" at the next append
            log.submit(rows_of(track(i))).result(10)
        assert len(list(directory.glob("*.seg"))) == 3
        assert log.flush(10)
        assert len(list(directory.glob("*.seg"))) == 1  # only the one being written
        assert log.purge(10)
        assert len(list(directory.glob("*.seg"))) == 1  # purge rolled to a new, empty segment
        assert all(p.stat().st_size == 0 for p in directory.glob("*.seg"))
    assert count(warehouse) == 3


def test_a_restart_replays_what_was_not_loaded_once(warehouse: Warehouse, tmp_path: Path) -> None:
    directory = tmp_path / "log"
    directory.mkdir()
    first, second = rows_of(track(1), track(2)), rows_of(track(2), track(3), b"{}")
    (directory / "0000000000000001.seg").write_bytes(encode_record(first) + encode_record(second))
    with CollectorLog(warehouse, directory):
        assert count(warehouse) == 3 and count(warehouse, "quarantine") == 1
    with CollectorLog(warehouse, directory):  # the position was recorded: nothing is replayed twice
        pass
    (directory / "0000000000000009.seg").write_bytes(encode_record(first) + encode_record(second))
    (directory / "loaded").unlink()  # without the position, replay is idempotent by the tables' keys
    with CollectorLog(warehouse, directory) as log:
        assert log.stats.stored == 0
    assert count(warehouse) == 3 and count(warehouse, "quarantine") == 1


def test_a_torn_last_record_is_skipped_with_a_log_line(
    warehouse: Warehouse, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    directory = tmp_path / "log"
    directory.mkdir()
    records = [encode_record(rows_of(track(i), track(i + 100))) for i in range(3)]
    segment = directory / "0000000000000001.seg"
    cut = len(records[0]) + len(records[1]) + len(records[2]) // 2  # a power cut in the middle of the third
    segment.write_bytes(b"".join(records)[:cut])
    found, torn = read_segment(segment)
    assert len(found) == 2 and torn is not None and torn.offset == len(records[0]) + len(records[1])
    logger = logging.getLogger("touchpoint.collect.collector_log")
    # directly: a logging set-up earlier in the process (the CLI's dictConfig) may have disabled or cut it off
    logger.addHandler(caplog.handler)
    disabled, logger.disabled = logger.disabled, False
    try:
        with caplog.at_level(logging.WARNING, logger=logger.name), CollectorLog(warehouse, directory) as log:
            assert len(log.torn) == 1
    finally:
        logger.removeHandler(caplog.handler)
        logger.disabled = disabled
    assert "were never acknowledged and are skipped" in caplog.text
    stored = {r["message_id"] for r in warehouse.query("SELECT message_id FROM events").to_pylist()}
    assert stored == {"m-0", "m-100", "m-1", "m-101"}


@pytest.mark.parametrize("damage", ["crc", "header"])
def test_a_damaged_record_ends_its_segment_not_the_next(warehouse: Warehouse, tmp_path: Path, damage: str) -> None:
    directory = tmp_path / "log"
    directory.mkdir()
    record = bytearray(encode_record(rows_of(track(1))))
    if damage == "crc":
        record[-3] ^= 0xFF
    else:
        record[0:4] = b"XXXX"
    (directory / "0000000000000001.seg").write_bytes(encode_record(rows_of(track(0))) + bytes(record))
    (directory / "0000000000000002.seg").write_bytes(encode_record(rows_of(track(2))))
    with CollectorLog(warehouse, directory) as log:
        assert len(log.torn) == 1
    stored = {r["message_id"] for r in warehouse.query("SELECT message_id FROM events").to_pylist()}
    assert stored == {"m-0", "m-2"}


def test_the_backlog_counts_against_queue_max_events(warehouse: Warehouse, tmp_path: Path) -> None:
    with CollectorLog(warehouse, tmp_path / "log", load_ms=10_000, queue_max_events=5) as log:
        log.submit(rows_of(*(track(i) for i in range(4)))).result(10)  # acknowledged, not loaded
        with pytest.raises(Overloaded):
            log.submit(rows_of(track(10), track(11)))
        assert log.flush(10)
        log.submit(rows_of(track(10), track(11))).result(10)
    assert count(warehouse) == 6


def test_the_log_needs_a_directory_beside_a_file(tmp_path: Path) -> None:
    assert Settings(data_dir=tmp_path).resolved_collector_log_dir() == tmp_path.absolute() / "collector-log"
    with pytest.raises(ConfigError, match="collector_log_dir"):
        create_app(Settings(warehouse_url="duckdb://:memory:", collector_log=True))
    elsewhere = Settings(warehouse_url="postgresql://u@h/db", collector_log_dir=tmp_path / "x")
    assert elsewhere.resolved_collector_log_dir() == tmp_path / "x"


@pytest.mark.parametrize("engine", ["duckdb-memory", "postgresql"])
def test_without_a_directory_the_server_commits_each_group(engine: str, request: pytest.FixtureRequest) -> None:
    """PostgreSQL and an in-memory DuckDB (no directory for a log) use the group commit: a 200 after the
    warehouse commit, so the event is in the warehouse when the answer arrives (no flush)."""
    url = "duckdb://:memory:" if engine == "duckdb-memory" else str(request.getfixturevalue("postgres_url"))
    with TestClient(create_app(Settings(warehouse_url=url))) as client:
        state = client.app.state.touchpoint  # type: ignore[attr-defined]
        assert isinstance(state.committer, GroupCommitter)
        key = keys.create_source(state.warehouse, "web")
        answer = client.post("/v1/track", json={"userId": "u", "event": "E", "messageId": "m-1"}, headers=basic(key))
        assert answer.status_code == 200 and answer.json()["accepted"] == 1
        assert count(state.warehouse) == 1


# -- through HTTP ------------------------------------------------------------------------------------


def basic(key: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{key}:".encode()).decode()}


def served(settings: Settings, *, run_jobs: bool | None = None) -> tuple[TestClient, str]:
    wh = open_warehouse(settings)
    try:
        key = keys.create_source(wh, "web")
    finally:
        wh.close()
    return TestClient(create_app(settings, run_jobs=run_jobs)), key


def test_overload_is_a_429_with_retry_after(tmp_path: Path) -> None:
    settings = Settings(
        data_dir=tmp_path / "data", collector_log=True, collector_log_load_ms=60_000, queue_max_events=50
    )
    client, key = served(settings)
    batch = {"batch": [{"type": "track", "userId": "u", "event": "E", "messageId": f"m{i}"} for i in range(40)]}
    with client:
        assert client.post("/v1/batch", json=batch, headers=basic(key)).status_code == 200
        refused = client.post("/v1/batch", json=batch | {"batch": batch["batch"][:20]}, headers=basic(key))
        assert refused.status_code == 429 and refused.headers["retry-after"] == "1"
        assert refused.json()["error"]["code"] == "overloaded"
        assert client.app.state.touchpoint.committer.flush(10)  # type: ignore[attr-defined]
        assert client.post("/v1/batch", json=batch, headers=basic(key)).status_code == 200


_ids = st.sampled_from([f"m-{i}" for i in range(12)])
_times = st.sampled_from(["2026-01-02T03:04:05Z", "2026-01-02", "not a time", "1960-01-01T00:00:00Z", 17])
_item = st.fixed_dictionaries(
    {"messageId": _ids},
    optional={
        "type": st.sampled_from(["track", "identify", "page", "alias", "nope", 3]),
        "userId": st.one_of(st.text(max_size=6), st.integers(), st.none()),
        "anonymousId": st.text(max_size=4),
        "event": st.one_of(st.text(max_size=8), st.integers()),
        "timestamp": _times,
        "properties": st.one_of(
            st.fixed_dictionaries({}, optional={"revenue": st.one_of(st.floats(-1e3, 1e3), st.text(max_size=3))}),
            st.integers(),
        ),
        "traits": st.fixed_dictionaries({}, optional={"email": st.sampled_from(["A@b.co", "nope", ""])}),
        "context": st.fixed_dictionaries({}, optional={"consent": st.sampled_from([{}, {"categoryPreferences": 1}])}),
    },
)


@pytest.fixture(scope="module")
def both(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, tuple[TestClient, str]]]:
    base = tmp_path_factory.mktemp("both")
    pair = {
        "commit": served(Settings(data_dir=base / "commit", collector_log=False)),
        "log": served(Settings(data_dir=base / "log", collector_log=True)),
    }
    for client, _ in pair.values():
        client.__enter__()
    yield pair
    for client, _ in pair.values():
        client.__exit__(None, None, None)


def _stored(client: TestClient) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    wh: Warehouse = client.app.state.touchpoint.warehouse  # type: ignore[attr-defined]
    events = wh.query(
        # an event without a timestamp takes its received time, which differs between the two servers
        "SELECT * EXCLUDE (received_at, timestamp), if(original_timestamp IS NULL, NULL, timestamp) AS sent_time "
        "FROM events WHERE message_id LIKE 'm-%' ORDER BY message_id"
    ).to_pylist()
    quarantine = wh.query("SELECT reason, field, payload, message_id, origin FROM quarantine ORDER BY ALL").to_pylist()
    return events, quarantine


@hypothesis_settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(items=st.lists(_item, max_size=6), single=st.booleans())
def test_the_log_answers_and_stores_what_the_commit_path_does(
    both: dict[str, tuple[TestClient, str]], items: list[dict[str, Any]], single: bool
) -> None:
    answers = {}
    for name, (client, key) in both.items():
        if single and items:
            response = client.post("/v1/track", json=items[0], headers=basic(key))
        else:
            response = client.post("/v1/batch", json={"batch": items}, headers=basic(key))
        answers[name] = (response.status_code, response.json())
        assert client.app.state.touchpoint.committer.flush(10)  # type: ignore[attr-defined]
    assert answers["log"] == answers["commit"]
    assert _stored(both["log"][0]) == _stored(both["commit"][0])


def test_the_log_loads_into_postgresql(postgres_url: str, tmp_path: Path) -> None:
    """The loader writes with store.write_table, the write path of the engine import: PostgreSQL takes the log as
    DuckDB does."""
    wh = Warehouse.open(postgres_url)
    try:
        with CollectorLog(wh, tmp_path / "log", load_ms=10_000) as log:
            log.submit(rows_of(track(1), track(2), b"{}")).result(10)
            log.submit(rows_of(track(2), track(3))).result(10)
            assert log.flush(10)
        assert count(wh) == 3 and count(wh, "quarantine") == 1
    finally:
        wh.close()


def test_a_profile_read_right_after_the_200_sees_the_event(tmp_path: Path) -> None:
    """The loader would not commit for a minute; the profile read waits for it instead (flush), so the pending
    overlay shows the trait the 200 acknowledged. (No jobs: the sender's consent barrier flushes the log too, and
    could load the event between the 200 and the check that it is still queued.)"""
    settings = Settings(data_dir=tmp_path / "data", collector_log=True, collector_log_load_ms=60_000)
    client, key = served(settings, run_jobs=False)
    wh = open_warehouse(settings)
    try:
        read = {"Authorization": f"Bearer {keys.create_api_key(wh, 'reader', 'read')}"}
    finally:
        wh.close()
    with client:
        log: CollectorLog = client.app.state.touchpoint.committer  # type: ignore[attr-defined]
        # the loader takes the first record after its start at once: load one first, so the next waits its minute
        # (without it, the loader could load the identify between the 200 and the check below)
        warm = {"userId": "u-warm", "event": "Warm", "messageId": "m-warm"}
        assert client.post("/v1/track", json=warm, headers=basic(key)).status_code == 200
        assert log.flush(10)
        identify = {"userId": "u-fresh", "traits": {"plan": "pro"}, "messageId": "m-fresh"}
        assert client.post("/v1/identify", json=identify, headers=basic(key)).status_code == 200
        assert log.queued_events == 1  # acknowledged and not loaded
        profile = client.get("/v1/profiles/u-fresh", headers=read)
        assert profile.status_code == 200, profile.text
        assert profile.json()["traits"]["plan"] == "pro"
        assert log.queued_events == 0


def _served_with_admin(settings: Settings) -> tuple[TestClient, str, str]:
    """A served app (its client, a write key) and an admin key for its erasures."""
    client, key = served(settings)
    wh = open_warehouse(settings)
    try:
        return client, key, keys.create_api_key(wh, "dpo", "admin")
    finally:
        wh.close()


def test_an_erasure_waits_for_what_was_acknowledged_before_it(tmp_path: Path) -> None:
    """With the log, an erasure first waits for the loader: an anonymous id tied to the person by an identify
    acknowledged (not yet loaded) before the request is followed and erased, not left behind."""
    settings = Settings(data_dir=tmp_path / "data", collector_log=True, collector_log_load_ms=60_000)
    client, key, admin = _served_with_admin(settings)
    with client:
        tie = {"type": "identify", "userId": "to-erase", "anonymousId": "anon-7", "messageId": "tie"}
        browse = {"type": "track", "anonymousId": "anon-7", "event": "Browsed", "messageId": "browse"}
        other = {"type": "track", "userId": "someone-else", "event": "Browsed", "messageId": "other"}
        batch = {"batch": [tie, browse, other]}
        state = client.app.state.touchpoint  # type: ignore[attr-defined]
        warm = {"type": "track", "userId": "first", "event": "E", "messageId": "first"}
        assert client.post("/v1/track", json=warm, headers=basic(key)).status_code == 200
        assert state.committer.flush(10)  # loaded (and the next load still waits its interval: not hurried)
        assert state.committer.loaded_up_to == 1
        assert client.post("/v1/batch", json=batch, headers=basic(key)).json()["accepted"] == 3
        assert count(state.warehouse) == 1  # acknowledged, not loaded: the erasure must wait for it
        erased = client.post(
            "/v1/privacy/erase", json={"identifier": "to-erase"}, headers={"Authorization": f"Bearer {admin}"}
        )
        assert erased.status_code == 200, erased.text
        assert state.committer.flush(10)
        left = state.warehouse.query("SELECT message_id FROM events ORDER BY message_id").to_pylist()
        assert left == [{"message_id": "first"}, {"message_id": "other"}]


def test_an_erasure_purges_the_logs_segments_and_never_unlinks_the_one_being_written(tmp_path: Path) -> None:
    """The erasure's file step once deleted the segment the log was appending to (it names the person): the
    events acknowledged after it went to a file no longer on disk, lost at a crash before their load. Now the
    log rolls to a new segment and deletes the older ones once loaded: the person's bytes leave the log's
    files, and what is acknowledged after the erasure is in a segment a restart replays."""
    settings = Settings(data_dir=tmp_path / "data", collector_log=True, collector_log_load_ms=60_000)
    client, key, admin = _served_with_admin(settings)
    folder = settings.resolved_collector_log_dir()
    with client:
        state = client.app.state.touchpoint  # type: ignore[attr-defined]
        ann = {"type": "identify", "userId": "ann", "traits": {"email": "ann@people.test"}, "messageId": "a1"}
        assert client.post("/v1/identify", json=ann, headers=basic(key)).status_code == 200
        erased = client.post(
            "/v1/privacy/erase", json={"identifier": "ann"}, headers={"Authorization": f"Bearer {admin}"}
        )
        assert erased.status_code == 200, erased.text
        segments = list(folder.glob("*.seg"))
        assert segments and not any(b"ann@people.test" in p.read_bytes() for p in segments)
        after = {"type": "track", "userId": "bob", "event": "E", "messageId": "after-the-erasure"}
        assert client.post("/v1/track", json=after, headers=basic(key)).status_code == 200
        # acknowledged, not loaded (60-s interval): it must be in a segment on disk, for a restart to replay
        assert any(b"after-the-erasure" in p.read_bytes() for p in folder.glob("*.seg"))
        assert os.fstat(state.committer._fd).st_nlink == 1
