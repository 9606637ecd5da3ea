"""The collector's log: a request is acknowledged after an fsync'd append; a loader commits the log in groups.

With the setting ``collector_log = true`` the server uses a :class:`CollectorLog` where it would use the
:class:`~touchpoint.collect.committer.GroupCommitter`; both have the same face (``submit``, ``queued_events``,
``stats``, ``listeners``, ``flush``). Request handlers validate their events as before and submit the
:class:`~touchpoint.collect.normalize.EventRows`, rejects included. Two threads do the rest:

- the **appender** takes every submission that is waiting, encodes them as one record (msgpack of the rows and
  the rejects, with their received times; a header with the length, a CRC-32 and the number of inputs),
  writes it to the current segment file and calls ``fdatasync``; only then are the submissions' futures
  resolved, so a 200 means the events are on disk. Many requests share one ``fdatasync``, as they shared one
  commit before; the append costs about 0.2 ms of CPU whatever the group's size. The appender also turns a
  large group's rows into Arrow, while they are still in the processor's cache (:data:`ARROW_FROM`).
- the **loader** commits what was appended to the warehouse with the write path for rows in Arrow,
  :func:`~touchpoint.collect.store.write_table` (suppression, consent, quarantine of refused rows, the events
  lane; the engine import's too), in groups of up to ``commit_max_events``, at most every
  ``collector_log_load_ms`` unless a reader waits (:meth:`CollectorLog.flush`) or the backlog is a full group.
  Its listeners (the job runner's fast lane, the metrics) are called after each of its commits, as the
  committer's were. A commit that fails keeps the records and is retried with a growing pause; nothing is
  acknowledged twice or dropped.

**Restart.** :meth:`CollectorLog.start` replays the segments left on disk before the server accepts requests,
from the position the loader last recorded (a small file beside the segments, replaced atomically after each
commit; it may lag the warehouse, never lead it). Replay is idempotent without that position: ``message_id``
is the events' key, quarantine ids are derived from content and the received time kept in the record, and
``consent_history`` is keyed; so a record loaded twice stores nothing the second time. (The suppression list's
drop counter is the one count a replay can repeat, for the records between the last recorded position and the
crash.) A record whose header, length or CRC does not check out (a power cut in the middle of an append: its
``fdatasync`` never returned, so it was never acknowledged) ends its segment's replay with a warning; the
records before it load.

**Bounds.** The backlog (submitted, not yet loaded) counts against ``queue_max_events``: past it, submit raises
:class:`~touchpoint.errors.Overloaded` (HTTP 429 with Retry-After). The backlog's rows stay in memory for the
loader (as the committer's queue did), and each request's memory reservation (``submit(release=...)``, from
:mod:`touchpoint.api.memory`) is released only once its rows are loaded, not at the 200: so the backlog, and
the loader's commit of it, count against the memory ceiling as the group commit did. Segments roll at
``collector_log_segment_mb`` or when a minute old, and are deleted once loaded past; an erasure rolls the
segment and deletes the older ones once loaded (:meth:`CollectorLog.purge`).

>>> import tempfile
>>> from touchpoint.collect.normalize import EventRows, utcnow
>>> from touchpoint.warehouse import Warehouse
>>> wh = Warehouse.open("duckdb://:memory:")
>>> rows = EventRows()
>>> rows.add_raw(b'{"type":"track","userId":"u1","event":"Signed Up"}', received_at=utcnow(), source="web")
True
>>> with CollectorLog(wh, tempfile.mkdtemp()) as collector:
...     acknowledged = collector.submit(rows).result()  # on disk
...     collector.flush()  # and loaded
True
>>> wh.query("SELECT count(*) AS n FROM events").to_pylist()
[{'n': 1}]
"""

from __future__ import annotations

import logging
import os
import struct
import threading
import time
import zlib
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import msgspec
import pyarrow as pa

from touchpoint.collect import consent
from touchpoint.collect.committer import CommitStats, Intake, _Submission
from touchpoint.collect.normalize import EventRows, Rejected
from touchpoint.collect.store import WriteResult, write_rows, write_table
from touchpoint.errors import WarehouseError
from touchpoint.warehouse import Warehouse, schema

log = logging.getLogger(__name__)

MAGIC = b"TPL1"
HEADER = struct.Struct("<4sIII")  # magic, payload bytes, CRC-32 of the payload, inputs (events and rejects)
SUFFIX = ".seg"
POSITION = "loaded"  # the loader's last recorded position: "<segment> <offset>"
#: A segment older than this rolls at the next append, so loaded records (an erased person's events dropped
#: at the load among them) leave the disk within about a minute, not when 64 MB have been written.
SEGMENT_SECONDS = 60.0
RETRY_FIRST_S, RETRY_MAX_S = 0.2, 5.0  # a failed load is retried after these pauses (doubling)
#: Under load the interval between loads stretches to BUSY times the last load's wall time (the loader commits
#: at most about 1/BUSY of the time), up to STRETCH times ``load_ms`` or LONGEST_S, whichever is longer: larger
#: groups, fewer fixed costs per event.
BUSY, STRETCH, LONGEST_S = 4.0, 5.0, 1.0
#: A load of fewer events does not stretch the wait: a trickle (a trigger a few times a second) is loaded every
#: ``load_ms`` even when a busy interpreter makes each small load slow in wall time (measured: with the stretch
#: on every load, a 100/s trigger burst waited 0.2-0.4 s more for its decision, p99).
STRETCH_FROM = 1000
#: An appended group of this many events or more is turned into Arrow by the appender, while its rows are still in
#: the processor's cache (about half the interpreter time of the loader's conversion, measured, and no pause of the
#: event loop while one conversion of a whole load holds the interpreter); a smaller group (single events) is left
#: to the loader, which converts the small groups of a load together: a conversion's fixed cost, 29 columns, is
#: about that of 50 rows.
ARROW_FROM = 256


def _row_type() -> Any:
    """The events row as msgspec decodes it back: one typed slot per column of ``events``."""
    slots: list[Any] = []
    for dtype in schema.EVENTS.schema.types:
        if dtype.is_timestamp():
            slots.append(datetime | None)
        elif dtype.is_floating():
            slots.append(float | None)
        else:  # strings, and JSON kept as its text
            slots.append(str | None)
    return tuple.__class_getitem__(tuple(slots))


#: where a row of ``events`` holds what :func:`touchpoint.collect.consent.mentions` reads
_CONSENT_AT = tuple(schema.EVENTS.schema.names.index(c) for c in ("event", "traits", "context", "properties"))


def carries_consent(rows: EventRows) -> bool:
    """Whether any valid row may carry consent (rejects carry none: they are not stored as events)."""
    e, t, c, p = _CONSENT_AT
    return any(consent.mentions(row[e], row[t], row[c], row[p]) for row in rows.rows)


_REJECTED: Any = tuple[str, str | None, str, str | None, str | None]
_RECORD: Any = tuple[list[_row_type()], list[_REJECTED], list[datetime], list[str | None]]  # type: ignore[misc]
_encode = msgspec.msgpack.Encoder().encode
_decode = msgspec.msgpack.Decoder(_RECORD).decode


def encode_record(rows: EventRows) -> bytes:
    """One record: header and payload (the rows, the rejects with their received times and sources)."""
    rejected = [(r.reason, r.field, r.payload, r.message_id, r.origin) for r in rows.rejected]
    payload = _encode((rows.rows, rejected, rows.rejected_at, rows.rejected_source))
    count = len(rows) + len(rows.rejected)
    return HEADER.pack(MAGIC, len(payload), zlib.crc32(payload), count) + payload


def decode_payload(payload: bytes) -> EventRows:
    found, rejected, at, sources = _decode(payload)
    rows = EventRows()
    rows.rows.extend(found)
    rows.rejected.extend(Rejected(*r) for r in rejected)
    rows.rejected_at.extend(at)
    rows.rejected_source.extend(sources)
    return rows


def _call(callbacks: Iterable[Callable[[], None] | None]) -> None:
    for callback in callbacks:
        if callback is not None:
            try:
                callback()
            except Exception:
                log.exception("a release callback failed")


@dataclass
class Torn:
    """Where a segment stopped making sense: the records before it are kept."""

    segment: Path
    offset: int
    reason: str
    bytes_after: int


def read_segment(path: Path, start: int = 0) -> tuple[list[tuple[int, EventRows]], Torn | None]:
    """The records of a segment from ``start``: (end offset, rows) each, and where it was torn, if it was."""
    data = path.read_bytes()
    out: list[tuple[int, EventRows]] = []
    at = start
    while at < len(data):
        if len(data) - at < HEADER.size:
            return out, Torn(path, at, "a partial header", len(data) - at)
        magic, size, crc, _count = HEADER.unpack_from(data, at)
        if magic != MAGIC:
            return out, Torn(path, at, "no record header", len(data) - at)
        body = data[at + HEADER.size : at + HEADER.size + size]
        if len(body) < size:
            return out, Torn(path, at, f"a record of {size:,} bytes cut at {len(body):,}", len(data) - at)
        if zlib.crc32(body) != crc:
            return out, Torn(path, at, "a record whose CRC does not match", len(data) - at)
        try:
            rows = decode_payload(body)
        except msgspec.DecodeError as exc:
            return out, Torn(path, at, f"a record that does not decode ({exc})", len(data) - at)
        at += HEADER.size + size
        out.append((at, rows))
    return out, None


@dataclass
class _Appended:
    """A durable record waiting for the loader: its events in Arrow (a large group's) or as rows (``events`` None),
    and its rejects."""

    segment: int
    end: int
    events: pa.Table | None
    rows: EventRows  # the rejects, and the events too when ``events`` is None
    size: int
    seq: int
    releases: list[Callable[[], None]]


class CollectorLog(Intake):
    """Acknowledge after an fsync'd append to ``directory``; load into ``warehouse`` in groups. Requests are
    taken as the group committer takes them (:class:`~touchpoint.collect.committer.Intake`): the backlog not
    yet loaded counts against ``queue_max_events``, and each request's memory reservation is released once
    its events are loaded."""

    done = "loaded"

    def __init__(
        self,
        warehouse: Warehouse,
        directory: str | Path,
        *,
        max_events: int = 50_000,
        load_ms: float = 200.0,
        queue_max_events: int = 200_000,
        segment_bytes: int = 64 * 1024 * 1024,
        segment_seconds: float = SEGMENT_SECONDS,
    ) -> None:
        super().__init__(queue_max_events)  # queued: waiting to be appended, or appended and not yet loaded
        self.warehouse = warehouse
        self.directory = Path(directory)
        self.max_events = max_events
        self.load_interval = load_ms / 1000.0
        self.segment_bytes = segment_bytes
        self.segment_seconds = segment_seconds
        self.stats = CommitStats()
        self.appends = 0
        self.torn: list[Torn] = []  # found at start, for the log and the tests
        #: called after each loader commit with (result, seconds), as the group committer's listeners are
        self.listeners: list[Callable[[WriteResult, float], None]] = []
        self._appended: deque[_Appended] = deque()
        self._appended_events = 0  # appended and not yet loaded
        self._acked_seq = 0  # records appended (fsync'd)
        self._consent_seq = 0  # the last of them with an event that may carry consent (flush(consent=True))
        self._loaded_seq = 0  # records loaded
        self._taken_seq = 0  # records the loader has taken into its current (or last) load
        self._urgent = False  # a reader waits in flush() for a record not yet taken: load now, not at the interval
        self.interval = self.load_interval  # the wait between loads now: load_ms, stretched under load
        self._appending = False  # the appender holds a group taken from the queue
        self._appender: threading.Thread | None = None
        self._loader: threading.Thread | None = None
        self._fd = -1
        self._segment = 0
        self._offset = 0
        self._opened = time.monotonic()
        self._fd_lock = threading.Lock()  # the segment being written: an append, or purge() rolling it

    # -- lifecycle -------------------------------------------------------------------------------
    def start(self) -> CollectorLog:
        """Replay what an earlier process left in the log, then open a new segment and start the threads."""
        with self._cond:
            if self._running:
                return self
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._open_segment(self._replay())
        self._running = True
        self._appender = threading.Thread(target=self._append_loop, name="touchpoint-log-append", daemon=True)
        self._loader = threading.Thread(target=self._load_loop, name="touchpoint-log-load", daemon=True)
        self._appender.start()
        self._loader.start()
        return self

    def stop(self, timeout: float = 30.0) -> None:
        """Append what is waiting, load what the log holds (what cannot be loaded stays for the next start)."""
        with self._cond:
            self._running = False
            self._cond.notify_all()
            self._arrived.notify_all()
        for thread in (self._appender, self._loader):
            if thread is not None:
                thread.join(timeout)
        self._appender = self._loader = None
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
        if not self._appended:
            self._delete_before(self._segment + 1)

    def __enter__(self) -> CollectorLog:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def loaded_up_to(self) -> int:
        """How many records (appends) the loader has committed; :meth:`flush` waits on it."""
        return self._loaded_seq

    def flush(self, timeout: float | None = 30.0, *, consent: bool = False) -> bool:
        """Wait until every event acknowledged before this call is in the warehouse; False on timeout.

        Reads that must see what was just acknowledged (the profile routes, tests) call it. The loader does
        not wait for its interval while someone flushes for a record it has not taken yet; a flush whose records
        are in the load under way waits for that load and does not hurry the next one. ``consent=True`` (the
        sender, before its consent check) waits only for the events that may carry consent
        (:func:`touchpoint.collect.consent.mentions`): with none unloaded it returns at once.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            target = self._consent_seq if consent else self._acked_seq
            while self._loaded_seq < target:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return False
                if self._taken_seq < target:
                    self._urgent = True
                    self._cond.notify_all()
                self._cond.wait(remaining if remaining is not None else 1.0)
        return True

    # -- segments --------------------------------------------------------------------------------
    def _segments(self) -> list[Path]:
        return sorted(self.directory.glob(f"*{SUFFIX}"))

    @staticmethod
    def _seq_of(path: Path) -> int:
        return int(path.name.removesuffix(SUFFIX))

    def _path(self, segment: int) -> Path:
        return self.directory / f"{segment:016d}{SUFFIX}"

    def _open_segment(self, segment: int) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1  # never a stale number: the process may reuse it for another file
        self._fd = os.open(self._path(segment), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        self._segment, self._offset, self._opened = segment, os.fstat(self._fd).st_size, time.monotonic()
        self._sync_directory()  # the new file's name is durable before anything in it is acknowledged

    def _sync_directory(self) -> None:
        fd = os.open(self.directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def _record_position(self, segment: int, offset: int) -> None:
        path = self.directory / POSITION
        tmp = path.with_suffix(".tmp")
        tmp.write_text(f"{segment} {offset}\n")
        os.replace(tmp, path)  # atomic; not fsync'd: a lost position only means a longer (idempotent) replay

    def _read_position(self) -> tuple[int, int]:
        try:
            segment, offset = (self.directory / POSITION).read_text().split()
            return int(segment), int(offset)
        except (OSError, ValueError):
            return 0, 0

    def purge(self, timeout: float = 60.0) -> bool:
        """Make every record appended so far leave the disk: start a new segment, wait until everything
        acknowledged is loaded, delete the older segments. An erasure calls it after writing the person's
        suppression, so their events before it leave the log's files as they left the warehouse; False when the
        loader did not catch up in ``timeout`` (the segments are then deleted by the loader as it passes them)."""
        with self._fd_lock:
            if self._fd >= 0 and self._offset:
                self._open_segment(self._segment + 1)
            current = self._segment
        if not self.flush(timeout):
            return False
        self._delete_before(current)
        return True

    def _delete_before(self, segment: int) -> None:
        for path in self._segments():
            if self._seq_of(path) < segment:
                path.unlink(missing_ok=True)

    # -- restart ---------------------------------------------------------------------------------
    def _replay(self) -> int:
        """Load every record after the recorded position; the number of the next segment to write."""
        position = self._read_position()
        following = max([position[0], *(self._seq_of(p) for p in self._segments())]) + 1
        for path in self._segments():
            segment = self._seq_of(path)
            if segment < position[0]:
                continue
            start = position[1] if segment == position[0] else 0
            records, torn = read_segment(path, start)
            if torn is not None:
                self.torn.append(torn)
                log.warning(
                    "collector log %s: %s at offset %d; the %d bytes from there were never acknowledged and "
                    "are skipped, the %d records before it are loaded",
                    torn.segment.name,
                    torn.reason,
                    torn.offset,
                    torn.bytes_after,
                    len(records),
                )
            group = EventRows()
            for end, rows in records:
                group.extend(rows)
                if len(group) + len(group.rejected) >= self.max_events:
                    self._load_replayed(group, segment, end)
                    group = EventRows()
            if len(group) or group.rejected:
                self._load_replayed(group, segment, records[-1][0])
            if records:
                log.info("collector log %s: replayed %d records", path.name, len(records))
        self._record_position(following, 0)
        self._delete_before(following)
        return following

    def _load_replayed(self, rows: EventRows, segment: int, end: int) -> None:
        """Load replayed rows; a warehouse that refuses stops the start (the log stays for the next one)."""
        started = time.perf_counter()
        result = write_rows(self.warehouse, rows)
        self._record_position(segment, end)
        self._count(result, len(rows) + len(rows.rejected), time.perf_counter() - started)

    # -- the appender ----------------------------------------------------------------------------
    def _append_loop(self) -> None:
        while True:
            with self._cond:
                while self._running and not self._queue:
                    self._arrived.wait(0.5)
                if not self._queue:
                    return
                group = list(self._queue)
                self._queue.clear()
                self._appending = True  # the loader does not stop while a group is between the queue and the log
            try:
                self._append(group)
            finally:
                with self._cond:
                    self._appending = False
                    self._cond.notify_all()

    def _append(self, group: list[_Submission]) -> None:
        with self._fd_lock:  # purge() rolls the segment between two appends, never inside one
            self._append_locked(group)

    def _append_locked(self, group: list[_Submission]) -> None:
        merged = EventRows()
        for sub in group:
            merged.extend(sub.rows)
        size = sum(sub.size for sub in group)
        carries = carries_consent(merged)
        try:
            record = encode_record(merged)
            # The rows in Arrow now, while the requests' objects are still in the cache: about half the CPU of
            # converting the loader's whole group later, and it holds the interpreter in short pieces, not for
            # one conversion of tens of thousands of rows (docs/decisions.md, 2026-12-05).
            events, rows = None, merged
            if len(merged) >= ARROW_FROM:
                events, rows = merged.to_arrow(), EventRows()
                rows.extend_rejects(merged)
            full = self._offset + len(record) > self.segment_bytes
            old = time.monotonic() - self._opened > self.segment_seconds  # what is loaded leaves the disk soon
            if self._fd < 0 or (self._offset and (full or old)):
                self._open_segment(self._segment + 1)
            view = memoryview(record)
            while view:
                view = view[os.write(self._fd, view) :]
            os.fdatasync(self._fd)
        except BaseException:
            log.exception("appending %d events to the collector log failed; nothing in it was acknowledged", size)
            with self._cond:
                self._queued_events -= size
            try:  # what may have reached the file is garbage at its end: the next record goes to a new segment
                self._open_segment(self._segment + 1)
            except OSError:
                log.exception("the collector log cannot open a new segment")
            error = WarehouseError(
                "the events could not be written to the collector log", hint="retry; nothing was stored"
            )
            for sub in group:
                sub.future.set_exception(error)
            _call(sub.release for sub in group)
            return
        self._offset += len(record)
        with self._cond:
            self._acked_seq += 1
            if carries:
                self._consent_seq = self._acked_seq
            releases = [sub.release for sub in group if sub.release is not None]
            self._appended.append(_Appended(self._segment, self._offset, events, rows, size, self._acked_seq, releases))
            self._appended_events += size
            self.appends += 1
            self._cond.notify_all()
        for sub in group:
            sub.future.set_result(
                WriteResult(received=sub.size, stored=len(sub.rows), quarantined=len(sub.rows.rejected))
            )

    # -- the loader ------------------------------------------------------------------------------
    def _load_loop(self) -> None:
        last = 0.0
        pause = 0.0
        while True:
            with self._cond:
                while True:
                    if not self._running and not self._queue and not self._appending and not self._appended:
                        return
                    if self._appended and (
                        not self._running
                        or self._urgent
                        or self._appended_events >= self.max_events
                        or time.monotonic() - last >= self.interval + pause
                    ):
                        break
                    wait = self.interval + pause - (time.monotonic() - last) if self._appended else 0.5
                    self._cond.wait(max(0.001, min(wait, 0.5)))
                group: list[_Appended] = []
                total = 0
                for item in self._appended:
                    if group and total + item.size > self.max_events:
                        break
                    group.append(item)
                    total += item.size
                self._taken_seq = group[-1].seq
                self._urgent = False
            last = time.monotonic()
            if self._load(group, total):
                pause = 0.0
            else:
                with self._cond:  # nothing was loaded: a flush waiting for these records hurries the retry
                    self._taken_seq = self._loaded_seq
                if not self._running and pause >= RETRY_MAX_S:
                    log.error("stopping with %d events unloaded in the collector log; the next start loads them", total)
                    return
                pause = min(RETRY_MAX_S, max(RETRY_FIRST_S, pause * 2))

    def _stretched(self, seconds: float, events: int = STRETCH_FROM) -> float:
        """The wait before the next load after one that took ``seconds``: ``load_ms`` while loads are quick
        (a quiet stream: an event reaches the warehouse, and the automations, within about ``load_ms``), up to
        ``STRETCH`` times it or ``LONGEST_S`` while they are long (a busy one), so that under load the groups
        grow and each commit's fixed cost is shared by more events.

        >>> log = CollectorLog(None, "/nonexistent", load_ms=20)  # type: ignore[arg-type]
        >>> log._stretched(0.002), log._stretched(0.1), log._stretched(2.0), log._stretched(0.1, events=20)
        (0.02, 0.4, 1.0, 0.02)
        """
        if events < STRETCH_FROM:
            return self.load_interval
        longest = max(self.load_interval * STRETCH, LONGEST_S)
        return min(longest, max(self.load_interval, BUSY * seconds))

    def _load(self, group: list[_Appended], total: int) -> bool:
        started = time.perf_counter()
        try:
            rejects, small = EventRows(), EventRows()  # small: a run of groups the appender left as rows
            tables: list[pa.Table] = []  # in the order appended: of a messageId sent twice, the first is kept
            for item in group:
                if item.events is not None:
                    if small.rows:
                        tables.append(small.to_arrow())
                        small = EventRows()
                    tables.append(item.events)
                else:
                    small.rows.extend(item.rows.rows)
                rejects.extend_rejects(item.rows)
            if small.rows or not tables:
                tables.append(small.to_arrow())
            # one chunk a column: DuckDB inserts a table of many small chunks 2-3 times slower
            events = pa.concat_tables(tables).combine_chunks() if len(tables) > 1 else tables[0]
            result = write_table(self.warehouse, events, rejects)
        except BaseException:
            self.stats.failed_commits += 1
            log.exception(
                "loading %d events from the collector log failed; they stay in the log and are retried", total
            )
            return False
        seconds = time.perf_counter() - started
        last = group[-1]
        try:  # before the readers in flush() are told: the segments passed are gone when flush returns
            self._record_position(last.segment, last.end)
            self._delete_before(last.segment)
        except OSError:
            log.exception("the collector log's position could not be recorded (a restart replays more; harmless)")
        self._count(result, total, seconds)  # the listeners (the jobs' fast lane) too, before flush returns
        with self._cond:
            for _ in group:
                self._appended.popleft()
            self._queued_events -= total
            self._appended_events -= total
            self._loaded_seq = last.seq
            self.interval = self._stretched(seconds, total)  # before flush() returns: the next wait is known
            self._cond.notify_all()
        _call(release for item in group for release in item.releases)
        return True

    def _count(self, result: WriteResult, size: int, seconds: float) -> None:
        self.stats.commits += 1
        self.stats.events += size
        self.stats.largest_group = max(self.stats.largest_group, size)
        self.stats.last_commit_ms = seconds * 1000
        self.stats.stored += result.stored
        self.stats.quarantined += result.quarantined
        self.stats.consent_dropped += result.consent_dropped
        for listener in self.listeners:
            try:
                listener(result, seconds)
            except Exception:
                log.exception("a commit listener failed")
