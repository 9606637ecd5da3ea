"""Quarantine: input that could not be stored as a valid event, kept with its reason.

Nothing in quarantine is deleted. :func:`replay` validates a quarantined payload again (after
a fix to the data or to the configuration) and, when it now passes, stores the event and
marks the record ``replayed``; a replay that still fails updates the reason.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from touchpoint.collect.normalize import EventRows, utcnow
from touchpoint.collect.spec import EVENT_TYPES
from touchpoint.collect.store import write_rows
from touchpoint.errors import InvalidInput, NotFound
from touchpoint.warehouse import Warehouse

LIST_COLUMNS = ("id", "received_at", "source", "origin", "field", "reason", "status")


def list_records(
    wh: Warehouse, *, status: str | None = "quarantined", limit: int = 50, offset: int = 0
) -> list[dict[str, Any]]:
    """Quarantine records, newest first (``status=None`` for all)."""
    t = wh.table("quarantine")
    if status:
        t = t.filter(t.status == status)
    t = t.order_by([t.received_at.desc(), t.id]).limit(limit, offset=offset)
    return t.select(*LIST_COLUMNS).to_pyarrow().to_pylist()


def count(wh: Warehouse, *, status: str | None = "quarantined") -> int:
    t = wh.table("quarantine")
    if status:
        t = t.filter(t.status == status)
    return int(t.count().to_pyarrow().as_py())


def get_record(wh: Warehouse, record_id: str) -> dict[str, Any]:
    t = wh.table("quarantine")
    rows = t.filter(t.id == record_id).to_pyarrow().to_pylist()
    if not rows:
        raise NotFound(f"no quarantine record {record_id!r}", hint="`touchpoint quarantine list` shows the ids")
    record: dict[str, Any] = rows[0]
    return record


@dataclass
class ReplayResult:
    replayed: list[str] = field(default_factory=list)
    still_invalid: list[dict[str, str]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"replayed": len(self.replayed), "still_invalid": self.still_invalid, "replayed_ids": self.replayed}


def _default_type(origin: str | None) -> str | None:
    if origin and origin.startswith("http:"):
        kind = origin.split(":", 1)[1]
        return kind if kind in EVENT_TYPES else None
    return None


def replay(
    wh: Warehouse, ids: list[str] | None = None, *, payload_override: bytes | None = None
) -> ReplayResult:
    """Validate quarantined payloads again; store those that pass. ``ids=None`` replays all.

    ``payload_override`` (one id only) replaces the stored payload with a corrected one.
    """
    if payload_override is not None and (ids is None or len(ids) != 1):
        raise InvalidInput("a corrected payload replays exactly one record", hint="name one quarantine id")
    t = wh.table("quarantine")
    t = t.filter(t.status == "quarantined")
    if ids is not None:
        for record_id in ids:
            get_record(wh, record_id)  # unknown ids are an error, not a silent no-op
        t = t.filter(t.id.isin(ids))
    records = t.to_pyarrow().to_pylist()
    result = ReplayResult()
    adapter = wh.adapter
    cur = adapter.cursor()
    now = utcnow()
    try:
        for record in records:
            origin = record["origin"] or ""
            if origin.startswith(("spend:", "orders:")):
                kind = origin.split(":", 1)[0]
                result.still_invalid.append(
                    {
                        "id": record["id"],
                        "reason": f"{kind} rows are not events: fix the file and run `touchpoint import {kind}` again",
                    }
                )
                continue
            rows = EventRows()
            payload = payload_override if payload_override is not None else record["payload"].encode()
            ok = rows.add_raw(
                payload,
                received_at=record["received_at"],
                source=record["source"],
                default_type=_default_type(record["origin"]),
                deterministic_ids=True,
                origin="replay",
            )
            if ok:
                accepted = EventRows()
                accepted.rows = rows.rows
                write_rows(wh, cur, accepted)
                message_id = rows.rows[0][0]
                with adapter.transaction(cur):
                    adapter.update(
                        cur,
                        "quarantine",
                        {"status": "replayed", "replayed_at": now, "message_id": message_id},
                        key="id",
                        value=record["id"],
                    )
                result.replayed.append(record["id"])
            else:
                reason = rows.rejected[0].reason
                with adapter.transaction(cur):
                    adapter.update(
                        cur, "quarantine", {"reason": reason, "field": rows.rejected[0].field}, key="id", value=record["id"]
                    )
                result.still_invalid.append({"id": record["id"], "reason": reason})
    finally:
        cur.close()
    return result


def to_table(records: list[dict[str, Any]]) -> pa.Table:
    return pa.Table.from_pylist(records)
