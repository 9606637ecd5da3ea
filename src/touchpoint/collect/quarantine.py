"""Quarantine: input that could not be stored as a valid event, kept with its reason.

Nothing in quarantine is deleted. :func:`replay` validates a quarantined payload again (after
a fix to the data or to the configuration) and, when it now passes, stores the event and
marks the record ``replayed``; a replay that still fails updates the reason.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from touchpoint.collect.normalize import EventRows, utcnow
from touchpoint.collect.spec import EVENT_TYPES
from touchpoint.collect.store import write_rows
from touchpoint.errors import InvalidInput, NotFound
from touchpoint.warehouse import Warehouse

if TYPE_CHECKING:
    import ibis.expr.types as ir

MAX_REPLAY_IDS = 10_000
DEFAULT_MAX_EVENT_BYTES = 32 * 1024  # the setting max_event_bytes; callers pass the configured value
LIST_COLUMNS = ("id", "received_at", "source", "origin", "field", "reason", "status")


def _records(wh: Warehouse, key: tuple[bool, int, int], *status: str) -> ir.Table:
    """The records of ``status`` (when ``key[0]``), newest first, page ``key[1:]`` (limit, offset)."""
    by_status, limit, offset = key
    t = wh.table("quarantine")
    if by_status:
        t = t.filter(t.status == status[0])
    return t.order_by([t.received_at.desc(), t.id]).limit(limit, offset=offset).select(*LIST_COLUMNS)


def _count(wh: Warehouse, by_status: bool, *status: str) -> ir.Scalar:
    t = wh.table("quarantine")
    return (t.filter(t.status == status[0]) if by_status else t).count()


def list_records(
    wh: Warehouse, *, status: str | None = "quarantined", limit: int = 50, offset: int = 0
) -> list[dict[str, Any]]:
    """Quarantine records, newest first (``status=None`` for all)."""
    given = (status,) if status else ()
    rows: list[dict[str, Any]] = wh.prepared(_records, *given, key=(bool(status), limit, offset)).to_pylist()
    return rows


def count(wh: Warehouse, *, status: str | None = "quarantined") -> int:
    given = (status,) if status else ()
    return int(wh.prepared(_count, *given, key=bool(status)).as_py())


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
        return {
            "replayed": len(self.replayed),
            "still_invalid": self.still_invalid,
            "replayed_ids": self.replayed,
        }


def _default_type(origin: str | None) -> str | None:
    if origin and origin.startswith("http:"):
        kind = origin.split(":", 1)[1]
        return kind if kind in EVENT_TYPES else None
    return None


def replay(
    wh: Warehouse,
    ids: list[str] | None = None,
    *,
    payload_override: bytes | None = None,
    max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES,
) -> ReplayResult:
    """Validate quarantined payloads again; store those that pass. ``ids=None`` replays all.

    ``payload_override`` (one id only) replaces the stored payload with a corrected one. A replay
    goes through the same decoder and limits as live input, the size limit per event included.
    """
    if payload_override is not None and (ids is None or len(ids) != 1):
        raise InvalidInput("a corrected payload replays exactly one record", hint="name one quarantine id")
    t = wh.table("quarantine")
    if ids is not None:
        if len(ids) > MAX_REPLAY_IDS:
            raise InvalidInput(
                f"{len(ids):,} ids is more than {MAX_REPLAY_IDS:,} in one replay",
                hint="replay in smaller groups, or replay all with --all",
            )
        wanted = set(ids)
        found = {r["id"] for r in t.filter(t.id.isin(list(wanted))).select("id").to_pyarrow().to_pylist()}
        missing = sorted(wanted - found)
        if missing:  # unknown ids are an error, not a silent no-op
            raise NotFound(
                f"no quarantine record {', '.join(repr(m) for m in missing[:5])}"
                + (f" and {len(missing) - 5} more" if len(missing) > 5 else ""),
                hint="`touchpoint quarantine list` shows the ids",
            )
        t = t.filter(t.id.isin(list(wanted)))
    t = t.filter(t.status == "quarantined")
    records = t.to_pyarrow().to_pylist()
    result = ReplayResult()
    accepted = EventRows()
    replayed: list[tuple[str, str]] = []  # (quarantine id, message id)
    failed: list[tuple[str, str, str | None]] = []  # (quarantine id, reason, field)
    for record in records:
        origin = record["origin"] or ""
        if origin.startswith(("spend:", "orders:")):
            kind = origin.split(":", 1)[0]
            reason = f"{kind} rows are not events: fix the file and run `touchpoint import {kind}` again"
            result.still_invalid.append({"id": record["id"], "reason": reason})
            continue
        rows = EventRows()
        payload = payload_override if payload_override is not None else record["payload"].encode()
        ok = rows.add_raw(
            payload,
            received_at=record["received_at"],
            source=record["source"],
            default_type=_default_type(origin),
            max_bytes=max_event_bytes,
            deterministic_ids=True,
            origin="replay",
        )
        if ok:
            accepted.add_row(rows.rows[0])
            replayed.append((record["id"], rows.rows[0][0]))
        else:
            rejected = rows.rejected[0]
            if (rejected.reason, rejected.field) != (record["reason"], record["field"]):
                failed.append((record["id"], rejected.reason, rejected.field))
            result.still_invalid.append({"id": record["id"], "reason": rejected.reason})
    now = utcnow()
    if len(accepted):
        write_rows(wh, accepted)  # durable before the records are marked replayed
    with wh.write() as tx:
        for record_id, message_id in replayed:
            tx.update(
                "quarantine",
                {"status": "replayed", "replayed_at": now, "message_id": message_id},
                key="id",
                value=record_id,
            )
        for record_id, reason, field_name in failed:
            tx.update("quarantine", {"reason": reason, "field": field_name}, key="id", value=record_id)
    result.replayed = [record_id for record_id, _ in replayed]
    return result
