"""Group commit: many requests share one durable transaction, and each is answered after it.

Request handlers validate their events and :meth:`GroupCommitter.submit` them. One committer
thread takes everything that is waiting, writes it with :func:`~touchpoint.collect.store.write_rows`
in one transaction, and only then resolves each submission's future. Like every write, the commit
takes the warehouse's write lock (:meth:`~touchpoint.warehouse.Warehouse.write`), so events and
other writes (profile rebuilds, predictions, admin changes) never interleave; those other writes
compute their rows before taking the lock, so a commit waits at most for a short swap. While one commit runs,
the next group forms, so the batch size grows with load and no request waits for a timer.
When more events wait than ``queue_max_events``, submit raises :class:`~touchpoint.errors.Overloaded`
(HTTP 429) instead of buffering what it cannot promise to keep.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Protocol

from touchpoint.collect.normalize import EventRows
from touchpoint.collect.store import WriteResult, write_rows
from touchpoint.errors import Overloaded, WarehouseError
from touchpoint.warehouse import Warehouse

log = logging.getLogger(__name__)


@dataclass
class _Submission:
    rows: EventRows
    size: int
    future: Future[WriteResult] = field(default_factory=Future)
    release: Callable[[], None] | None = None  # called once the rows are committed (or failed)


@dataclass
class CommitStats:
    commits: int = 0
    events: int = 0
    stored: int = 0
    quarantined: int = 0
    consent_dropped: int = 0  # not stored: their own consent denied analytics (analytics_denied = "drop")
    failed_commits: int = 0
    largest_group: int = 0
    last_commit_ms: float = 0.0


class Collector(Protocol):
    """What the HTTP collector submits to: this group committer, or the collector log
    (:class:`~touchpoint.collect.collector_log.CollectorLog`, the setting ``collector_log``)."""

    stats: CommitStats
    listeners: list[Callable[[WriteResult, float], None]]

    @property
    def queued_events(self) -> int: ...

    def submit(self, rows: EventRows, *, release: Callable[[], None] | None = None) -> Future[WriteResult]: ...

    def flush(self, timeout: float | None = 30.0, *, consent: bool = False) -> bool: ...

    def purge(self, timeout: float = 60.0) -> bool: ...

    def stop(self, timeout: float = 30.0) -> None: ...


class Intake:
    """The bounded queue both collectors take requests through: :meth:`submit` queues a request's rows for
    the writer thread, or raises :class:`~touchpoint.errors.Overloaded` (HTTP 429) when more than
    ``queue_max_events`` are waiting to be ``done`` (what the subclass does with them: committed, loaded)."""

    done = "committed"

    def __init__(self, queue_max_events: int) -> None:
        self.queue_max_events = queue_max_events
        self._queue: deque[_Submission] = deque()
        self._queued_events = 0
        lock = threading.RLock()
        self._cond = threading.Condition(lock)  # the state: the queue, what is done, the running flag
        #: the writer thread alone waits here for a submission: a request wakes it, not every thread that waits on
        #: ``_cond`` (the collector log's loader, readers in flush), which a request does not concern
        self._arrived = threading.Condition(lock)
        self._running = False

    @property
    def queued_events(self) -> int:
        return self._queued_events

    def submit(self, rows: EventRows, *, release: Callable[[], None] | None = None) -> Future[WriteResult]:
        """Queue ``rows``; the future resolves once they are durable. ``release`` is called once they are
        written to the warehouse, or failed (the request's memory reservation is held until then)."""
        size = len(rows) + len(rows.rejected)
        sub = _Submission(rows, size, release=release)
        with self._cond:
            if not self._running:
                raise WarehouseError("the collector is shutting down", hint="retry in a moment")
            if self._queued_events and self._queued_events + size > self.queue_max_events:
                raise Overloaded(
                    f"{self._queued_events:,} events are waiting to be {self.done}",
                    retry_after=1,
                    hint="retry after the delay in Retry-After",
                )
            self._queue.append(sub)
            self._queued_events += size
            self._arrived.notify()
        return sub.future


class GroupCommitter(Intake):
    """One writer thread committing submissions in groups. Use as a context manager or start/stop."""

    def __init__(
        self,
        warehouse: Warehouse,
        *,
        max_events: int = 50_000,
        max_wait_ms: float = 2.0,
        queue_max_events: int = 200_000,
    ) -> None:
        super().__init__(queue_max_events)
        self.warehouse = warehouse
        self.max_events = max_events
        self.max_wait = max_wait_ms / 1000.0
        self.stats = CommitStats()
        #: called after each group commit with (result, seconds); a metrics exporter listens here
        self.listeners: list[Callable[[WriteResult, float], None]] = []
        self._thread: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------------------------------
    def start(self) -> GroupCommitter:
        with self._cond:
            if self._running:
                return self
            self._running = True
        self._thread = threading.Thread(target=self._run, name="touchpoint-committer", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 30.0) -> None:
        """Commit what is waiting, then stop the writer thread."""
        with self._cond:
            self._running = False
            self._cond.notify_all()
            self._arrived.notify_all()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def __enter__(self) -> GroupCommitter:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def flush(self, timeout: float | None = 30.0, *, consent: bool = False) -> bool:
        """Every acknowledged event is committed already (a 200 waits for the commit): nothing to wait for."""
        return True

    def purge(self, timeout: float = 60.0) -> bool:
        """Nothing of the events is kept outside the warehouse (the collector log's :meth:`purge` deletes its
        files): nothing to do."""
        return True

    # -- the writer thread -----------------------------------------------------------------------
    def _take_group(self) -> list[_Submission]:
        with self._cond:
            while self._running and not self._queue:
                self._arrived.wait(0.5)
            if not self._queue:
                return []
        if self.max_wait and self._queued_events < self.max_events:
            time.sleep(self.max_wait)  # let concurrent requests join this commit
        group: list[_Submission] = []
        total = 0
        with self._cond:
            while self._queue and (not group or total + self._queue[0].size <= self.max_events):
                sub = self._queue.popleft()
                group.append(sub)
                total += sub.size
        return group

    def _run(self) -> None:
        while True:
            group = self._take_group()
            if not group:
                if not self._running:
                    return
                continue
            self._commit(group)

    def _commit(self, group: list[_Submission]) -> None:
        started = time.perf_counter()
        merged = EventRows()
        for sub in group:
            merged.extend(sub.rows)
        size = sum(sub.size for sub in group)
        try:
            result = write_rows(self.warehouse, merged)
        except BaseException:
            self.stats.failed_commits += 1
            log.exception("group commit of %d events failed; nothing in it was acknowledged", size)
            # The engine's own words (SQL, file paths) go to the log above, never to the client.
            error = WarehouseError("the warehouse could not commit the events", hint="retry; nothing was stored")
            for sub in group:
                sub.future.set_exception(error)
        else:
            self.stats.commits += 1
            self.stats.events += size
            self.stats.largest_group = max(self.stats.largest_group, size)
            seconds = time.perf_counter() - started
            self.stats.last_commit_ms = seconds * 1000
            self.stats.stored += result.stored
            self.stats.quarantined += result.quarantined
            self.stats.consent_dropped += result.consent_dropped
            for listener in self.listeners:
                try:
                    listener(result, seconds)
                except Exception:
                    log.exception("a commit listener failed")
            for sub in group:
                sub.future.set_result(
                    WriteResult(received=sub.size, stored=len(sub.rows), quarantined=len(sub.rows.rejected))
                )
            if result.stored == 0 and result.received:
                log.debug("group of %d events were all duplicates or quarantined", size)
        finally:
            with self._cond:
                self._queued_events -= size
            for sub in group:
                if sub.release is not None:
                    sub.release()
