"""SIGKILL during an erasure's compaction (issue 21, part 7; docs/privacy.md, "Erasure").

A subprocess erases one person from a warehouse big enough that the compaction (a copy of the whole
database into ``warehouse.duckdb.compact``, then a rename) takes a moment; the test kills it with SIGKILL
while the copy is being written. Then: the warehouse opens, the half-written copy is gone, nobody else
lost an event, and erasing the person again finishes the job: no byte and no column holds them.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.privacy.test_erase import columns_holding, files_holding

from touchpoint.collect.store import write_messages
from touchpoint.privacy import erase
from touchpoint.warehouse import Warehouse

VICTIM = {"user": "user-vesna-30b7d", "email": "vesna.kilkenny@example.test", "coupon": "VK-OCHRE-9150"}
NEEDLES = sorted(VICTIM.values())
OTHERS = 2_000
COPIES = 60  # the others' events, multiplied in SQL: 120,000 rows to copy

ERASE = """
import sys
from pathlib import Path
from touchpoint.privacy import erase
from touchpoint.warehouse import Warehouse
wh = Warehouse.open(f"duckdb://{sys.argv[1]}/warehouse.duckdb")
print("erasing", flush=True)
erase.erase(wh, sys.argv[2], actor="test", data_dir=Path(sys.argv[1]))
print("erased", flush=True)
"""


def _build(folder: Path) -> int:
    wh = Warehouse.open(f"duckdb://{folder / 'warehouse.duckdb'}")
    try:
        others = [
            {
                "type": "track",
                "userId": f"user-{i % 300}",
                "event": "Product Viewed",
                "messageId": f"o-{i}",
                "properties": {"sku": f"SKU-{i % 97}", "note": "x" * 200},
            }
            for i in range(OTHERS)
        ]
        victim = [
            {"type": "identify", "userId": VICTIM["user"], "traits": {"email": VICTIM["email"]}, "messageId": "v-1"},
            {
                "type": "track",
                "userId": VICTIM["user"],
                "event": "Order Completed",
                "properties": {"coupon": VICTIM["coupon"], "revenue": 12.5},
                "messageId": "v-2",
            },
        ]
        write_messages(wh, [*others, *victim])
        con = wh.ibis.con
        con.execute(
            "INSERT INTO events SELECT events.* "
            "REPLACE (message_id || '-c' || CAST(c.range AS VARCHAR) AS message_id) "
            f"FROM events, range(1, {COPIES}) AS c WHERE message_id LIKE 'o-%'"
        )
        con.execute("CHECKPOINT")
        return wh.count("events") - len(victim)
    finally:
        wh.close()


def _kill_during_compaction(folder: Path, identifier: str) -> tuple[int, bool]:
    compact = folder / "warehouse.duckdb.compact"
    process = subprocess.Popen(
        [sys.executable, "-c", ERASE, str(folder), identifier], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    seen = False
    deadline = time.monotonic() + 120
    while process.poll() is None and time.monotonic() < deadline:
        if compact.exists() and compact.stat().st_size > 0:
            process.send_signal(signal.SIGKILL)
            seen = True
            break
        time.sleep(0.001)
    process.communicate(timeout=60)
    return process.returncode, seen


def test_a_kill_during_compaction_loses_nothing_and_erasing_again_finishes(tmp_path: Path) -> None:
    folder = tmp_path / "data"
    others = _build(folder)
    code, seen = _kill_during_compaction(folder, VICTIM["email"])
    assert seen and code == -signal.SIGKILL, "the erasure was not caught in its compaction"
    assert (folder / "warehouse.duckdb.compact").exists(), "the kill left the half-written copy"

    wh = Warehouse.open(f"duckdb://{folder / 'warehouse.duckdb'}")
    try:
        assert not (folder / "warehouse.duckdb.compact").exists(), "opening removes the partial copy"
        assert wh.count("events") == others, "an event of somebody else was lost"
        assert wh.count("privacy_erasures") == 0, "the erasure was cut short before its record"
        again = erase.erase(wh, VICTIM["email"], actor="test", data_dir=folder)
        assert again["compaction"]["bytes_after"] > 0
        assert wh.count("events") == others
        assert [r["status"] for r in erase.erasures(wh)] == ["erased"]
        assert columns_holding(wh, NEEDLES) == {}
    finally:
        wh.close()
    assert files_holding(folder, NEEDLES) == {}
    assert sorted(p.name for p in folder.iterdir() if p.name.startswith("warehouse")) == ["warehouse.duckdb"]
    assert os.stat(folder / "warehouse.duckdb").st_mode & 0o077 == 0
