"""Writing validated rows to the warehouse: one transaction, duplicates skipped, nothing lost.

:func:`write_rows` is the single write path for events. The HTTP collector's group committer
and the file importers both call it. If the warehouse refuses a row that validation let
through, the row is not dropped: the rows are retried one by one and the refused ones go to
quarantine with the warehouse's own message as the reason.
"""

from __future__ import annotations

import logging
import math
import time
import weakref
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from touchpoint.collect import suppression
from touchpoint.collect.consent import Extracted, extract
from touchpoint.collect.decode import EventError
from touchpoint.collect.normalize import EventRows, Rejected, quarantine_table
from touchpoint.errors import KeyConflict, WarehouseError
from touchpoint.warehouse import Warehouse, schema

CONSENT_TABLE = schema.CONSENT_HISTORY.name

log = logging.getLogger(__name__)
MAX_PROBLEMS = 100  # consent problems kept per write (each is also logged)


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
    consent_dropped: int = 0  # not stored: the event's own consent denies analytics (analytics_denied = "drop")
    consent_recorded: int = 0  # new consent_history rows from the events' consent
    consent_problems: list[str] = field(default_factory=list)  # consent that could not be read (the events are kept)
    suppressed: int = 0  # from erased people: dropped, counted (touchpoint.collect.suppression)

    @property
    def duplicates(self) -> int:
        return (
            self.received
            - self.quarantined
            - self.already_quarantined
            - self.stored
            - self.consent_dropped
            - self.suppressed
        )

    @property
    def rejected(self) -> int:
        """Inputs that went to quarantine, whether their record is new or not."""
        return self.quarantined + self.already_quarantined

    def add(self, other: WriteResult) -> None:
        self.received += other.received
        self.stored += other.stored
        self.quarantined += other.quarantined
        self.already_quarantined += other.already_quarantined
        self.consent_dropped += other.consent_dropped
        self.consent_recorded += other.consent_recorded
        self.consent_problems.extend(other.consent_problems[: max(0, MAX_PROBLEMS - len(self.consent_problems))])
        self.suppressed += other.suppressed

    def to_dict(self) -> dict[str, int]:
        return {
            "received": self.received,
            "stored": self.stored,
            "duplicates": self.duplicates,
            "quarantined": self.quarantined,
            "already_quarantined": self.already_quarantined,
            "consent_dropped": self.consent_dropped,
            "suppressed": self.suppressed,
        }


def write_rows(warehouse: Warehouse, rows: EventRows, *, with_consent: bool = True) -> WriteResult:
    """Commit ``rows`` (valid events and rejects) in one durable transaction, in the events write lane.

    Events of erased people (the suppression list) are dropped first and counted. The consent the
    events carry (:mod:`touchpoint.collect.consent`) is appended to ``consent_history`` in the same
    transaction; if the warehouse refuses it, the events are written without it (``with_consent=False``: no
    consent rows, the events whose own consent denies analytics still kept out under ``analytics_denied = drop``).
    """
    received = len(rows) + len(rows.rejected)
    suppressed = suppression.drop_suppressed(warehouse, rows)
    return _commit(warehouse, rows.to_arrow(), rows, received, suppressed, with_consent)


def write_table(
    warehouse: Warehouse,
    events: pa.Table,
    rejects: EventRows,
    *,
    consent: tuple[Extracted | None, int] | None = None,
) -> WriteResult:
    """:func:`write_rows` for events already in Arrow (``events`` schema), with ``rejects`` holding only
    rejected inputs: the engine file import (:mod:`touchpoint.collect.engine_import`) and the collector log's
    loader write this way. ``consent``: :func:`_consent` of ``events``, read already (its denying events by
    their positions in ``events``)."""
    received = events.num_rows + len(rejects.rejected)
    suppressed = suppression.drop_suppressed(warehouse, rejects)
    events, dropped = suppression.drop_suppressed_table(warehouse, events)
    for hit, count in dropped.items():
        suppressed[hit] = suppressed.get(hit, 0) + count
    if dropped:  # (an erasure since the consent was read: its positions are of the rows before the drop)
        consent = None
    return _commit(warehouse, events, rejects, received, suppressed, True, consent)


def _as_rows(events: pa.Table, rejects: EventRows) -> EventRows:
    """``events`` as row tuples beside ``rejects`` (only for the one-by-one fallback, which is rare)."""
    rows = EventRows()
    rows.extend(rejects)
    rows.rows.extend(zip(*(column.to_pylist() for column in events.columns), strict=True))
    return rows


def _commit(
    warehouse: Warehouse,
    events: pa.Table,
    rows: EventRows,
    received: int,
    suppressed: dict[str, int],
    with_consent: bool,
    consent_read: tuple[Extracted | None, int] | None = None,
) -> WriteResult:
    """The transaction of :func:`write_rows`; ``rows`` holds the rejects (and, from write_rows, the events);
    ``consent_read``: the events' consent when the caller read it already (:func:`write_table`)."""
    rejects = rows.quarantine_arrow() if rows.rejected else _NO_REJECTS
    every_event = events
    found, dropped = consent_read or _consent(events)  # (without consent rows too: a denying event stays out)
    if found is not None and dropped:  # the denying events themselves (not every event of their messageId)
        keep = np.ones(events.num_rows, dtype=bool)
        keep[found.analytics_denied] = False
        events = events.filter(keep)
    consent = _consent_table(found.rows if found is not None and with_consent else [])
    try:  # (a refused group is isolated with its repeats, each counted)
        stored, new_rejects, recorded = _transaction(warehouse, _first_of_each_id(events), rejects, consent, suppressed)
    except WarehouseError:  # out of memory, closed, unreachable: no row is at fault, retrying them one by one fails too
        raise
    except Exception as exc:  # a value validation did not foresee; isolate it rather than lose the lot
        if not rows.rows and every_event.num_rows:  # from write_table: the events as rows, to isolate them
            rows = _as_rows(every_event, rows)
        if events.num_rows <= 1 and consent.num_rows:  # the consent must never cost the event
            log.warning("the consent of an event was refused (%s); storing the event without it", exc)
            fallback = write_rows(warehouse, rows, with_consent=False)
            fallback.consent_problems.append(f"the warehouse refused the event's consent: {exc}")
        elif events.num_rows == 0:
            raise
        elif events.num_rows == 1:
            fallback = _quarantine_refused(warehouse, rows, events, exc)
        else:
            log.warning("a group of %d events was refused (%s); retrying them one by one", events.num_rows, exc)
            fallback = _write_one_by_one(warehouse, rows)
        if suppressed:  # the drops' counters rolled back with the group: count them again
            with warehouse.write(lane="events") as tx:
                suppression.count_drops(warehouse, tx, suppressed)
            fallback.received += sum(suppressed.values())
            fallback.suppressed += sum(suppressed.values())
        return fallback
    return WriteResult(
        received=received,
        stored=stored,
        quarantined=new_rejects,
        already_quarantined=rejects.num_rows - new_rejects,
        consent_dropped=dropped,
        consent_recorded=recorded,
        consent_problems=found.problems[:MAX_PROBLEMS] if found is not None else [],
        suppressed=sum(suppressed.values()),
    )


#: after an events insert met a stored messageId, the events' inserts check the key first for this long
CHECK_AFTER_CONFLICT = 60.0
_conflicts: weakref.WeakKeyDictionary[Warehouse, float] = weakref.WeakKeyDictionary()  # the last one, monotonic


def _transaction(
    warehouse: Warehouse, events: pa.Table, rejects: pa.Table, consent: pa.Table, suppressed: dict[str, int]
) -> tuple[int, int, int]:
    """The write of :func:`_commit`: events, rejects, consent and drop counters in one transaction; returns
    the events stored, the new quarantine records and the consent rows recorded.

    The events are inserted as new (``assume_new``: the engine may skip its separate key lookup) unless an
    insert met a stored messageId in the last :data:`CHECK_AFTER_CONFLICT` seconds (a client's retry, a
    file imported again): a conflict costs the transaction, redone at once with the check, which the next
    inserts keep a while. Inside another write block (whose transaction cannot be redone) the check stays."""
    last = _conflicts.get(warehouse)
    plain = not warehouse.writing() and (last is None or time.monotonic() - last > CHECK_AFTER_CONFLICT)
    while True:
        try:
            with warehouse.write(lane="events") as tx:  # never waits for a derived-table swap
                stored = tx.insert_new("events", events, assume_new=plain)
                if not plain and stored < events.num_rows:  # met stored ids: the lookup stays on a while longer
                    _conflicts[warehouse] = time.monotonic()
                new_rejects = tx.insert_new("quarantine", rejects)
                recorded = tx.insert_new(CONSENT_TABLE, consent) if consent.num_rows else 0
                suppression.count_drops(warehouse, tx, suppressed)
            return stored, new_rejects, recorded
        except KeyConflict:
            if not plain:
                raise
            log.debug("an events insert met a stored messageId; checking keys first for %.0f s", CHECK_AFTER_CONFLICT)
            _conflicts[warehouse] = time.monotonic()
            plain = False


def _first_of_each_id(events: pa.Table) -> pa.Table:
    """``events`` with only the first row of each messageId, in order: a messageId repeated within one write (a
    client's retry inside a batch, a file's repeated line) stores its first event, after the events of erased
    people and those their consent keeps out are gone. Done here, not left to the engine: its insert of a table
    of several batches may keep another row than the first."""
    ids = events.column("message_id")
    if events.num_rows < 2 or pc.count_distinct(ids).as_py() == events.num_rows:
        return events
    rows = pa.table({"id": ids, "at": np.arange(events.num_rows)})
    firsts = rows.group_by("id", use_threads=False).aggregate([("at", "min")]).column("at_min").to_numpy()
    return events.take(np.sort(firsts))


def _consent(events: pa.Table) -> tuple[Extracted | None, int]:
    """The events' consent, and how many events analytics_denied = "drop" keeps out."""
    from touchpoint.config import get_settings

    try:
        settings = get_settings()
        found = extract(events, settings.consent_purposes, settings.consent_categories)
    except Exception:  # never let consent cost the events
        log.exception("reading the consent of %d events failed; they are stored without it", events.num_rows)
        return None, 0
    for problem in found.problems[:10]:
        log.warning("consent not recorded: %s", problem)
    dropped = len(found.analytics_denied) if settings.analytics_denied == "drop" else 0
    return found, dropped


_CONSENT_ARROW = schema.CONSENT_HISTORY.schema.to_pyarrow()
# Most group commits carry no reject and no consent: their empty tables are built once, not per commit.
_NO_REJECTS = EventRows().quarantine_arrow()
_NO_CONSENT = pa.Table.from_pylist([], schema=_CONSENT_ARROW)


def _consent_table(rows: list[dict[str, Any]]) -> pa.Table:
    return pa.Table.from_pylist(rows, schema=_CONSENT_ARROW) if rows else _NO_CONSENT


def _insert_quarantine(warehouse: Warehouse, rejects: pa.Table) -> int:
    with warehouse.write(lane="events") as tx:
        return tx.insert_new("quarantine", rejects)


def _write_one_by_one(warehouse: Warehouse, rows: EventRows) -> WriteResult:
    result = WriteResult()
    new_rejects = _insert_quarantine(warehouse, rows.quarantine_arrow())
    result.received += len(rows.rejected)
    result.quarantined += new_rejects
    result.already_quarantined += len(rows.rejected) - new_rejects
    for row in rows.rows:  # every event, also one the consent rule took out of ``events``: its write decides again
        single = EventRows()
        single.add_row(row)
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
