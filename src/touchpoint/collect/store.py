"""Writing validated rows to the warehouse: one transaction, duplicates skipped, nothing lost.

:func:`write_rows` is the single write path for events. The HTTP collector's group committer
and the file importers both call it. If the warehouse refuses a row that validation let
through, the row is not dropped: the rows are retried one by one and the refused ones go to
quarantine with the warehouse's own message as the reason.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from touchpoint.collect import suppression
from touchpoint.collect.decode import EventError
from touchpoint.collect.normalize import EventRows, Rejected, quarantine_table
from touchpoint.warehouse import Warehouse

log = logging.getLogger(__name__)


@dataclass
class WriteResult:
    """What one write did, counting what is new.

    ``stored`` excludes events whose messageId was already stored (``duplicates``); ``quarantined``
    counts new quarantine records, ``already_quarantined`` rejects whose record already existed
    (a file imported again, a client retrying the same bad batch).
    """

    received: int = 0
    stored: int = 0
    quarantined: int = 0
    already_quarantined: int = 0
    suppressed: int = 0  # from erased people: dropped, counted (touchpoint.collect.suppression)

    @property
    def duplicates(self) -> int:
        return self.received - self.quarantined - self.already_quarantined - self.stored - self.suppressed

    @property
    def rejected(self) -> int:
        """Inputs that went to quarantine, whether their record is new or not."""
        return self.quarantined + self.already_quarantined

    def add(self, other: WriteResult) -> None:
        self.received += other.received
        self.stored += other.stored
        self.quarantined += other.quarantined
        self.already_quarantined += other.already_quarantined
        self.suppressed += other.suppressed

    def to_dict(self) -> dict[str, int]:
        return {
            "received": self.received,
            "stored": self.stored,
            "duplicates": self.duplicates,
            "quarantined": self.quarantined,
            "already_quarantined": self.already_quarantined,
            "suppressed": self.suppressed,
        }


def write_rows(warehouse: Warehouse, rows: EventRows) -> WriteResult:
    """Commit ``rows`` (valid events and rejects) in one durable transaction, in the events write lane.

    Events of erased people (the suppression list) are dropped first and counted.
    """
    received = len(rows) + len(rows.rejected)
    dropped = suppression.drop_suppressed(warehouse, rows)
    events = rows.to_arrow()
    rejects = rows.quarantine_arrow()
    try:
        with warehouse.write(lane="events") as tx:  # never waits for a derived-table swap
            stored = tx.insert_new("events", events)
            new_rejects = tx.insert_new("quarantine", rejects)
            suppression.count_drops(warehouse, tx, dropped)
    except Exception as exc:  # a value validation did not foresee; isolate it rather than lose the lot
        if events.num_rows <= 1:
            if events.num_rows == 0:
                raise
            fallback = _quarantine_refused(warehouse, rows, events, exc)
        else:
            log.warning("a group of %d events was refused (%s); retrying them one by one", events.num_rows, exc)
            fallback = _write_one_by_one(warehouse, rows, events)
        if dropped:  # the drops' counters rolled back with the group: count them again
            with warehouse.write(lane="events") as tx:
                suppression.count_drops(warehouse, tx, dropped)
            fallback.received += sum(dropped.values())
            fallback.suppressed += sum(dropped.values())
        return fallback
    return WriteResult(
        received=received,
        stored=stored,
        quarantined=new_rejects,
        already_quarantined=rejects.num_rows - new_rejects,
        suppressed=sum(dropped.values()),
    )


def _insert_quarantine(warehouse: Warehouse, rejects: pa.Table) -> int:
    with warehouse.write(lane="events") as tx:
        return tx.insert_new("quarantine", rejects)


def _write_one_by_one(warehouse: Warehouse, rows: EventRows, events: pa.Table) -> WriteResult:
    result = WriteResult()
    new_rejects = _insert_quarantine(warehouse, rows.quarantine_arrow())
    result.received += len(rows.rejected)
    result.quarantined += new_rejects
    result.already_quarantined += len(rows.rejected) - new_rejects
    for i in range(events.num_rows):
        single = EventRows()
        single.add_row(rows.rows[i])
        result.add(write_rows(warehouse, single))
    return result


def _quarantine_refused(warehouse: Warehouse, rows: EventRows, events: pa.Table, exc: Exception) -> WriteResult:
    import msgspec

    record = {name: value for name, value in zip(events.column_names, rows_as_list(events), strict=True)}
    payload = msgspec.json.encode(record, enc_hook=str).decode()
    rejected = [
        *rows.rejected,
        Rejected(f"the warehouse refused the event: {exc}", None, payload, str(record.get("message_id"))),
    ]
    received_at = [*rows.rejected_at, record["received_at"]]
    sources = [*rows.rejected_source, record.get("source")]
    new_rejects = _insert_quarantine(warehouse, quarantine_table(rejected, received_at, sources))
    return WriteResult(
        received=len(rejected), stored=0, quarantined=new_rejects, already_quarantined=len(rejected) - new_rejects
    )


def rows_as_list(table: pa.Table) -> list[Any]:
    return [table.column(i)[0].as_py() for i in range(table.num_columns)]


def _check_amounts(message: Any) -> None:
    """JSON has no inf or nan (msgspec writes them as null): a typed amount holding one is refused."""
    properties = message.get("properties") if isinstance(message, dict) else None
    if not isinstance(properties, dict):
        return
    for name in ("revenue", "total", "value"):
        value = properties.get(name)
        if isinstance(value, float) and not math.isfinite(value):
            raise EventError(f"field 'properties.{name}': {value!r} is out of range", f"properties.{name}")


def write_messages(
    warehouse: Warehouse,
    messages: Any,
    *,
    source: str | None = "python",
    received_at: Any = None,
    chunk: int = 100_000,
) -> WriteResult:
    """Validate and store Segment-shaped dicts (an iterable), as the collector would.

    Events without ``messageId`` get one derived from their content, so calling this twice with
    the same data stores it once. Useful from notebooks, tests and simulators.

    >>> from touchpoint.warehouse import Warehouse
    >>> wh = Warehouse.open("duckdb://:memory:")
    >>> write_messages(wh, [{"type": "track", "userId": "u1", "event": "Signed Up"}]).stored
    1
    """
    import msgspec

    from touchpoint.collect.normalize import utcnow

    encode = msgspec.json.Encoder().encode
    now = received_at or utcnow()
    total = WriteResult()
    rows = EventRows()
    for message in messages:
        try:
            _check_amounts(message)
            raw = encode(message)
        except Exception as exc:  # the boundary: this message is quarantined, the others go on
            field = exc.field if isinstance(exc, EventError) else None
            reason = exc.reason if isinstance(exc, EventError) else f"not encodable as JSON: {exc}"
            rows.reject(Rejected(reason, field, repr(message)[:10_000]), now, source)
        else:
            rows.add_raw(raw, received_at=now, source=source, deterministic_ids=True, origin="python")
        if len(rows) + len(rows.rejected) >= chunk:
            total.add(write_rows(warehouse, rows))
            rows = EventRows()
    if len(rows) or rows.rejected:
        total.add(write_rows(warehouse, rows))
    return total
