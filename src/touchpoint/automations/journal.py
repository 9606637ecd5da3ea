"""The sender's journal: one line per message a receiver accepted, written before the outbox records it.

The outbox records outcomes in groups (one transaction costs ~10 ms, whatever its size), so a sender killed
after the SMTP server accepted a message and before the group was recorded leaves its row ``sending``, and
the next run would send it again. The journal closes that window: the moment a lane reads the server's
``250`` (a webhook's 2xx), it appends ``{"id", "at", "payload"}`` to
``<data_dir>/automations-sent-<warehouse>.jsonl`` (mode 0600) with one ``write`` call, which a SIGKILL cannot
undo (the kernel has the bytes). Every delivery run first **settles** the journal: the rows it names that are
still ``sending`` are recorded ``sent`` (with the rendered payload they were sent with), and the file is
emptied; the run empties it again each time everything it sent is recorded. What remains re-sendable after a
SIGKILL is a message the server accepted in the instant before the kill, whose line was not written yet: at
most one per connection. A power loss can also lose lines not yet flushed to the disk (the outbox's own
commits are synced); those messages, at most one recording group, are sent again.

The file holds the rendered payloads of the messages a run sent since it last had nothing in flight (it claims
its next batch while the previous one is being sent, and empties the file whenever it has caught up with the
outbox, and at its end): the same data the outbox holds, for seconds while the run keeps up.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import threading
from datetime import datetime
from pathlib import Path
from typing import Any

import ibis
import pyarrow as pa

from touchpoint.automations import outbox
from touchpoint.warehouse import Warehouse
from touchpoint.warehouse.private_files import private_dir


def path_for(data_dir: Path | str, warehouse_url: str) -> Path:
    """The journal of the deliveries to ``warehouse_url`` run from ``data_dir`` (one per warehouse)."""
    tag = hashlib.sha256(warehouse_url.encode()).hexdigest()[:12]
    return Path(data_dir).expanduser() / f"automations-sent-{tag}.jsonl"


class Journal:
    """An append-only file of accepted messages; ``write`` is safe from several threads (one ``O_APPEND``
    write per line)."""

    def __init__(self, path: Path) -> None:
        private_dir(path.parent)
        self.path = path
        self.fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        self.lock = threading.Lock()  # only ``clear`` and ``close`` take it; writes are atomic appends

    def accepted(self, row: dict[str, Any], at: datetime) -> None:
        line = json.dumps({"id": row["outbox_id"], "at": at.isoformat(), "payload": row["payload"]})
        os.write(self.fd, (line + "\n").encode())

    def clear(self) -> None:
        """Empty the journal: call only when every line in it is recorded and no message is being sent."""
        with self.lock:
            os.ftruncate(self.fd, 0)

    def close(self) -> None:
        with self.lock:
            if self.fd >= 0:
                os.close(self.fd)
                self.fd = -1


def settle(wh: Warehouse, path: Path, now: datetime) -> int:
    """Record as ``sent`` the ``sending`` rows the journal at ``path`` names (a run that died before recording
    them), then empty it; returns how many rows it recorded."""
    if not path.exists():
        return 0
    lines = {}
    with path.open(encoding="utf-8") as f:
        for text in f:
            with contextlib.suppress(ValueError):  # a line cut by a power loss: its message is sent again
                line = json.loads(text)
                lines[line["id"]] = line
    rows: list[dict[str, Any]] = []
    if lines:
        t = wh.table(outbox.TABLE)
        who = ibis.memtable(pa.table({"tp_id": pa.array(sorted(lines), pa.string())}))
        t = t.filter(t.status == "sending")
        rows = wh.to_arrow(t.semi_join(who, t.outbox_id == who.tp_id)).to_pylist()
        for row in rows:
            line = lines[row["outbox_id"]]
            row.update(
                status="sent",
                sent_at=datetime.fromisoformat(line["at"]),
                last_error=None,
                updated_at=now,
                payload=row["payload"] if row["payload"] is not None else line["payload"],
            )
        outbox.record(wh, rows)
    os.truncate(path, 0)
    return len(rows)
