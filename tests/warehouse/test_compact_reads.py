"""Compaction (an erasure's last step) swaps the DuckDB file under a running server: reads on other threads
neither fail nor crash the engine meanwhile (it waits for the reads in flight, and new ones wait for it)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from touchpoint.collect.store import write_messages
from touchpoint.warehouse import Warehouse


def test_reads_on_other_threads_go_on_through_compactions(tmp_path: Path) -> None:
    wh = Warehouse.open(f"duckdb://{tmp_path / 'w.duckdb'}")
    try:
        events = [
            {"type": "track", "userId": f"u{i % 500}", "event": "Seen", "messageId": f"m{i}"} for i in range(20_000)
        ]
        write_messages(wh, events)
        stop, errors, reads = threading.Event(), [], [0]

        def reader() -> None:
            while not stop.is_set():
                try:
                    e = wh.table("events")
                    assert wh.to_arrow(e.group_by("user_id").agg(n=e.count())).num_rows == 500
                    assert wh.count("events") == 20_000
                    reads[0] += 1
                except Exception as exc:  # before the gate: "Connection already closed!", or a crash
                    errors.append(f"{type(exc).__name__}: {exc}")

        threads = [threading.Thread(target=reader) for _ in range(3)]
        for t in threads:
            t.start()
        try:
            for _ in range(4):
                time.sleep(0.2)
                assert wh.compact()["bytes_after"] > 0
        finally:
            stop.set()
            for t in threads:
                t.join()
        assert errors == [] and reads[0] > 0
        assert wh.count("events") == 20_000
    finally:
        wh.close()
