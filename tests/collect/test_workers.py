"""Validation in worker processes (setting ``collector_processes``): the same rows, quarantine and answers as in
the server process; a worker killed mid-stream costs nothing acknowledged."""

from __future__ import annotations

import asyncio
import os
import signal
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import hypothesis.strategies as st
import msgspec
import pytest
from hypothesis import given, settings
from tests.collect.test_common_path import contexts, events, objects, times, usual
from tests.conftest import Server, events_in

from touchpoint.api.memory import resident_bytes
from touchpoint.collect import collector_log, workers
from touchpoint.collect.body import Limits, rows_from_body
from touchpoint.collect.collector_log import CollectorLog, encode_record
from touchpoint.collect.normalize import EventRows
from touchpoint.collect.workers import ValidationWorkers
from touchpoint.warehouse import Warehouse

RECEIVED = datetime(2026, 12, 4, 9, 0, 0, 654321)
LIMITS = Limits(max_event_bytes=4000, max_batch_events=50)


@pytest.fixture(scope="module")
def pool() -> Iterator[ValidationWorkers]:
    started = ValidationWorkers(1, min_bytes=0).start()
    yield started
    started.stop()


def _comparable(rows: EventRows, problems: list[dict[str, Any]]) -> Any:
    events = rows.to_arrow().to_pylist()
    for event in events:  # an event sent without messageId gets a random one, in whichever process judged it
        if event["message_id"].startswith("tp-"):
            event["message_id"] = "tp-drawn"
    return events, rows.rejected, rows.rejected_at, rows.rejected_source, problems


def _judged(judge: Callable[[], tuple[EventRows, list[dict[str, Any]]]]) -> Any:
    try:
        return _comparable(*judge())
    except Exception as exc:  # a refusal of the whole body must be the same too
        return type(exc).__name__, str(exc)


@settings(max_examples=150, deadline=None)
@given(
    items=st.lists(st.one_of(usual, events), min_size=1, max_size=8),
    shared=st.fixed_dictionaries({}, optional={"context": contexts, "integrations": objects, "sentAt": times}),
)
def test_a_worker_judges_a_batch_as_the_server_process_does(
    pool: ValidationWorkers, items: list[dict[str, Any]], shared: dict[str, Any]
) -> None:
    body = msgspec.json.encode(shared | {"batch": items})
    here = _judged(lambda: rows_from_body(body, "batch", received_at=RECEIVED, source="web", limits=LIMITS))
    there = _judged(
        lambda: asyncio.run(pool.rows_from_body(body, "batch", received_at=RECEIVED, source="web", limits=LIMITS))
    )
    assert there == here


def test_small_bodies_and_single_events_stay_in_the_server_process() -> None:
    pool = ValidationWorkers(1)  # never started: a body sent to it would start a worker
    body = msgspec.json.encode({"batch": [{"type": "track", "userId": "u", "event": "E"}]})
    rows, _ = asyncio.run(pool.rows_from_body(body, "batch", received_at=RECEIVED, source=None, limits=LIMITS))
    assert len(rows) == 1 and rows.rows and not rows.tables and pool.pids() == []
    big = msgspec.json.encode({"type": "track", "userId": "u", "event": "E", "properties": {"p": "x" * 9000}})
    rows, _ = asyncio.run(pool.rows_from_body(big, "track", received_at=RECEIVED, source=None, limits=Limits()))
    assert rows.rows and pool.pids() == []


def test_workers_report_their_memory(pool: ValidationWorkers) -> None:
    (pid,) = pool.pids()
    shared = resident_bytes(pid) or 0
    assert 10 * 1024 * 1024 < pool.memory() < shared  # the ceiling counts their share of the libraries once


def test_the_first_large_batch_starts_the_workers_and_is_judged_meanwhile() -> None:
    pool = ValidationWorkers(1, min_bytes=0)
    body = msgspec.json.encode({"batch": [{"type": "track", "userId": "u", "event": "E"}]})
    try:
        rows, _ = asyncio.run(pool.rows_from_body(body, "batch", received_at=RECEIVED, source=None, limits=LIMITS))
        assert rows.rows and not rows.tables  # judged here while the worker starts
        deadline = time.monotonic() + 60
        while not pool.pids() and time.monotonic() < deadline:
            time.sleep(0.05)
        rows, _ = asyncio.run(pool.rows_from_body(body, "batch", received_at=RECEIVED, source=None, limits=LIMITS))
        assert rows.tables and not rows.rows  # judged by the worker
    finally:
        pool.stop()
    assert pool.pids() == []


def test_a_record_with_tables_replays_beside_a_version_1_record(warehouse: Warehouse, tmp_path: Path) -> None:
    """Segments written before the tables existed (magic TPL1) still load; a record of tables loads too."""
    body = msgspec.json.encode({"batch": [{"type": "track", "userId": "u", "event": "E", "messageId": "t-1"}, {}]})
    judged, _ = workers.judge(body, "batch", RECEIVED, "web", LIMITS)
    assert judged.tables and not judged.rows
    old = EventRows()
    old.add_raw(b'{"type":"track","userId":"u","event":"E","messageId":"v1-1"}', received_at=RECEIVED, source="web")
    payload = msgspec.msgpack.encode((old.rows, [], [], []))
    import zlib

    v1 = collector_log.HEADER.pack(collector_log.MAGIC_V1, len(payload), zlib.crc32(payload), 1) + payload
    directory = tmp_path / "log"
    directory.mkdir()
    (directory / "0000000000000001.seg").write_bytes(v1 + encode_record(judged))
    with CollectorLog(warehouse, directory) as log:
        assert log.torn == []
    stored = {r["message_id"] for r in warehouse.query("SELECT message_id FROM events").to_pylist()}
    assert stored == {"v1-1", "t-1"}
    assert warehouse.query("SELECT count(*) AS n FROM quarantine").to_pylist() == [{"n": 1}]


def _children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(stat.parent.name))
        except (OSError, ValueError):
            continue
    return found


WORKERS_ON = {"TOUCHPOINT_COLLECTOR_LOG": "true", "TOUCHPOINT_COLLECTOR_PROCESSES": "1"}


@pytest.mark.slow
def test_a_worker_killed_mid_stream_costs_nothing_acknowledged(make_server: Callable[..., Server]) -> None:
    server = make_server(WORKERS_ON)
    assert server.process is not None
    acked: set[str] = set()
    failed: list[int] = []
    lock = threading.Lock()
    stop = threading.Event()

    def sender(worker: int) -> None:
        with httpx.Client(auth=(server.write_key, ""), timeout=10.0) as http:
            n = 0
            while not stop.is_set():
                ids = [f"k{worker}-{n + k}-{uuid.uuid4().hex[:6]}" for k in range(40)]
                n += 40
                batch = [
                    {
                        "type": "track",
                        "userId": f"u{n}",
                        "event": "Tick",
                        "messageId": m,
                        "properties": {"p": "x" * 300},
                    }
                    for m in ids
                ]  # about 16 KB: over MIN_BYTES, so the workers judge it
                status = http.post(f"{server.url}/v1/batch", json={"batch": batch}).status_code
                with lock:
                    if status == 200:
                        acked.update(ids)
                    else:
                        failed.append(status)

    threads = [threading.Thread(target=sender, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    try:
        deadline = time.monotonic() + 30
        while len(acked) < 2000 and time.monotonic() < deadline:
            time.sleep(0.05)
        while _ready(server) < 1 and time.monotonic() < deadline + 30:  # started by the first large batch
            time.sleep(0.05)
        (child,) = worker_pids(server)
        os.kill(child, signal.SIGKILL)  # requests are in the worker's hands
        killed_at = len(acked)
        deadline = time.monotonic() + 30
        while len(acked) < killed_at + 2000 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        stop.set()
        for t in threads:
            t.join(30)
    assert len(acked) >= killed_at + 2000, "the stream stopped after the worker died"
    assert failed == []  # every request was judged: in a worker, or again in the server process
    deadline = time.monotonic() + 30
    while _ready(server) < 1 and time.monotonic() < deadline:  # restarted at the next large batch
        time.sleep(0.05)
    replacement = worker_pids(server)
    assert replacement and child not in replacement
    server.stop()
    assert server.log is not None and "a validation worker died" in server.log.read_text()
    wh = events_in(server.data_dir)
    stored = wh.query("SELECT count(*) AS n, count(DISTINCT message_id) AS d FROM events").to_pylist()[0]
    ids = {r["message_id"] for r in wh.query("SELECT message_id FROM events").to_pylist()}
    wh.close()
    assert acked <= ids and stored["n"] == stored["d"] == len(acked)


def _ready(server: Server) -> int:
    return int(httpx.get(f"{server.url}/healthz", timeout=10).json()["validation_workers"])


def worker_pids(server: Server) -> list[int]:
    """The validation workers of a running ``touchpoint serve``."""
    assert server.process is not None
    return [pid for pid in _children(server.process.pid) if b"spawn_main" in _cmdline(pid)]


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""
