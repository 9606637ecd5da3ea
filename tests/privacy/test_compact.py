"""Warehouse.compact(): why erasure needs it (DuckDB keeps deleted bytes) and that it keeps everything else."""

from __future__ import annotations

import threading
from pathlib import Path

from touchpoint.collect.store import write_messages
from touchpoint.warehouse import Warehouse

SECRET = b"yolanda.unmistakable@example.test"


def _bytes_hold(folder: Path, needle: bytes) -> bool:
    return any(needle in p.read_bytes() for p in folder.iterdir() if p.is_file())


def test_deleted_rows_stay_on_disk_until_compact_rewrites_the_file(tmp_path: Path) -> None:
    wh = Warehouse.open(f"duckdb://{tmp_path / 'warehouse.duckdb'}")
    try:
        others = [{"type": "track", "userId": f"u{i}", "event": "Seen", "messageId": f"m{i}"} for i in range(200)]
        write_messages(wh, [*others, {"type": "identify", "userId": "y-1", "traits": {"email": SECRET.decode()}}])
        wh.delete("events", "user_id", ["y-1"])
        wh.ibis.con.execute("CHECKPOINT")
        assert _bytes_hold(tmp_path, SECRET)  # what DuckDB does: freed, not overwritten
        seen: list[int] = []
        reader = threading.Thread(target=lambda: seen.append(wh.count("events")))
        reader.start()
        reader.join()
        out = wh.compact()
        assert out["engine"] == "duckdb" and out["seconds"] >= 0
        assert not _bytes_hold(tmp_path, SECRET)
        assert sorted(p.name for p in tmp_path.iterdir()) == ["warehouse.duckdb"]
        # every thread reads the new file; keys, writes and migrations still work
        again = threading.Thread(target=lambda: seen.append(wh.count("events")))
        again.start()
        again.join()
        assert seen == [200, 200]
        assert write_messages(wh, others[:5]).stored == 0  # the primary key survived the copy
        assert write_messages(wh, [{"type": "track", "userId": "new", "event": "After"}]).stored == 1
    finally:
        wh.close()
    reopened = Warehouse.open(f"duckdb://{tmp_path / 'warehouse.duckdb'}")
    try:
        assert reopened.count("events") == 201
    finally:
        reopened.close()
