"""Validation in worker processes: a batch's body is judged beside the server's event loop, not inside it.

One server process runs its HTTP, the collector log's appender and loader, the dashboard and the jobs under one
interpreter lock; a batch's validation (:func:`~touchpoint.collect.body.rows_from_body`, about 12 µs of Python an
event) and its conversion to Arrow were most of what held that lock under batch load (docs/decisions.md,
2026-12-04, "Validation in worker processes"). With ``collector_processes = N`` the server keeps ``N`` processes
that take a batch's body and give back its events as an Arrow table of the ``events`` schema (sent as an Arrow
IPC stream, read without a copy) with its rejects and the answer's problems; the request then goes on exactly as
before: the same submit, the same acknowledgement, the same write path (:func:`~touchpoint.collect.store.write_rows`
takes the tables). The rules are the same code, run in another process: nothing about what is stored or
quarantined changes (tests/collect/test_workers.py sends the same bodies both ways and compares).

Only bodies from :data:`MIN_BYTES` go to a worker: a small body costs less to judge than to send. A worker that
dies (killed, out of memory) costs nothing acknowledged: its requests are judged again in the server process,
and the pool is replaced; the log says so. Workers ignore SIGINT (the server decides when to stop) and die with
the server (``PR_SET_PDEATHSIG``), so a SIGKILL of the server leaves none behind.

>>> from touchpoint.collect.body import Limits
>>> from touchpoint.collect.normalize import utcnow
>>> body = b'{"batch": [{"type": "track", "userId": "u1", "event": "Signed Up"}, {"type": "track"}]}'
>>> rows, problems = judge(body, "batch", utcnow(), "web", Limits())  # what a worker runs
>>> len(rows), len(rows.rejected), problems[0]["index"]
(1, 1, 1)
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import logging
import multiprocessing
import os
import signal
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from datetime import datetime
from typing import Any

from touchpoint.collect.body import Limits, rows_from_body
from touchpoint.collect.collector_log import decode_payload, encode_payload
from touchpoint.collect.normalize import EventRows

log = logging.getLogger(__name__)

#: A body smaller than this is judged in the server process: sending it to a worker and its rows back costs
#: more than judging it (about 0.2 ms a round trip against 10-20 µs an event).
MIN_BYTES = 8 * 1024
MEMORY_EVERY_S = 1.0  # how stale the workers' memory may be for the ceiling
_PR_SET_PDEATHSIG = 1


def _worker_start(server: int) -> None:
    """In each worker: ignore Ctrl-C (the server stops its workers), die with the server, pay warm-up costs."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL))
    except (OSError, AttributeError):  # not Linux
        pass
    if os.getppid() != server:  # the server died before the line above took effect: nobody will stop this one
        os._exit(1)
    from touchpoint.collect.normalize import utcnow

    judge(b'{"batch":[{"type":"track","userId":"warm-up","event":"Warm Up"},{}]}', "batch", utcnow(), None, Limits())


def _judge_remote(
    body: bytes, kind: str, received_at: datetime, source: str | None, limits: Limits
) -> tuple[bytes, list[dict[str, Any]]]:
    """What a worker runs: the rows with the events as an Arrow table, encoded as the collector log encodes a
    record's payload, and the answer's problems."""
    rows, problems = rows_from_body(body, kind, received_at=received_at, source=source, limits=limits)
    if rows.rows:
        rows.tables, rows.rows = [rows.to_arrow()], []
    return encode_payload(rows), problems


def judge(
    body: bytes, kind: str, received_at: datetime, source: str | None, limits: Limits
) -> tuple[EventRows, list[dict[str, Any]]]:
    """:func:`~touchpoint.collect.body.rows_from_body` as a worker answers it (its events in Arrow), in this
    process: the round trip without the processes, for tests and the doctest above."""
    payload, problems = _judge_remote(body, kind, received_at, source, limits)
    return decode_payload(payload), problems


class ValidationWorkers:
    """``processes`` worker processes judging batch bodies; none: every body is judged in this process."""

    def __init__(self, processes: int, *, min_bytes: int | None = None) -> None:
        self.processes = processes
        self._min_bytes = min_bytes
        self.replaced = 0  # pools replaced after a worker died
        self._pool: ProcessPoolExecutor | None = None  # ready: every worker has started and warmed up
        self._starter: threading.Thread | None = None  # starts the workers and outlives them (start())
        self._wanted = threading.Event()
        self._stopped = False
        self._lock = threading.Lock()
        self._memory: tuple[float, int] = (-MEMORY_EVERY_S, 0)

    def _new_pool(self) -> ProcessPoolExecutor:
        pool = ProcessPoolExecutor(
            self.processes,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_worker_start,
            initargs=(os.getpid(),),
        )
        try:
            for future in [pool.submit(os.getpid) for _ in range(self.processes)]:
                future.result()  # each worker has imported the rules and warmed up (about a second of CPU)
        except BaseException:  # a worker that could not start: none of this pool is left running
            pool.shutdown(wait=False, cancel_futures=True)
            raise
        return pool

    def start(self) -> ValidationWorkers:
        """Start the workers from this thread and wait until they are ready. The server starts them from a thread
        of their own instead, at the first batch that would use them (until they are ready, bodies are judged in
        its process); this thread must outlive them: a worker is killed when the thread that started it ends
        (``PR_SET_PDEATHSIG``)."""
        if self.processes and self._pool is None:
            pool = self._new_pool()
            with self._lock:
                self._pool, stopped = (pool, False) if not self._stopped else (None, True)
            if stopped:
                pool.shutdown(wait=True)
        return self

    def _start_in_background(self) -> None:
        with self._lock:
            if self._stopped:
                return
            if self._starter is None:
                self._starter = threading.Thread(target=self._starter_loop, name="touchpoint-workers", daemon=True)
                self._starter.start()
        self._wanted.set()

    def _starter_loop(self) -> None:
        """Start a pool whenever one is wanted (the first, or the next after a worker died); lives until stop."""
        while True:
            self._wanted.wait()
            self._wanted.clear()
            if self._stopped:
                return
            try:
                self.start()
            except Exception:  # bodies go on being judged in the server process; the next large batch retries
                log.exception("the validation workers could not start; batches are validated in the server process")

    @property
    def min_bytes(self) -> int:
        """The smallest body sent to a worker (:data:`MIN_BYTES` unless given)."""
        return MIN_BYTES if self._min_bytes is None else self._min_bytes

    def pids(self) -> list[int]:
        """The workers' process ids."""
        pool = self._pool
        processes = getattr(pool, "_processes", None) or {}
        return [pid for pid, process in list(processes.items()) if process.is_alive()]

    def memory(self) -> int:
        """The workers' memory for the ceiling: their proportional set size (``/proc/PID/smaps_rollup``; the
        libraries they share with the server counted once, not in every process), read at most every
        :data:`MEMORY_EVERY_S` (a worker holds at most the bodies in flight, which the server reserved)."""
        at, known = self._memory
        now = time.monotonic()
        if now - at < MEMORY_EVERY_S:
            return known
        total = sum(proportional_bytes(pid) or 0 for pid in self.pids())
        self._memory = (now, total)
        return total

    async def rows_from_body(
        self, body: bytes, kind: str, *, received_at: datetime, source: str | None, limits: Limits
    ) -> tuple[EventRows, list[dict[str, Any]]]:
        """:func:`~touchpoint.collect.body.rows_from_body`, in a worker for a batch from :attr:`min_bytes`."""
        if not self.processes or kind != "batch" or len(body) < self.min_bytes:
            return rows_from_body(body, kind, received_at=received_at, source=source, limits=limits)
        pool = self._pool
        if pool is None:  # not started yet (or being replaced): start them, judge this one here meanwhile
            self._start_in_background()
            return rows_from_body(body, kind, received_at=received_at, source=source, limits=limits)
        try:
            future = pool.submit(_judge_remote, body, kind, received_at, source, limits)
            payload, problems = await asyncio.wrap_future(future)
        except BrokenProcessPool:
            self._replace(pool)
            return rows_from_body(body, kind, received_at=received_at, source=source, limits=limits)
        return decode_payload(payload), problems

    def _replace(self, broken: ProcessPoolExecutor) -> None:
        with self._lock:
            if self._pool is not broken:
                return  # another request replaced it already
            self._pool = None
            self.replaced += 1
        log.warning(
            "a validation worker died; its requests are judged in the server process and the workers are restarted"
        )
        broken.shutdown(wait=False, cancel_futures=True)

    def stop(self) -> None:
        with self._lock:
            pool, self._pool, self._stopped = self._pool, None, True
            starter = self._starter
        if pool is not None:  # before the thread that started them ends, which would kill them
            pool.shutdown(wait=True, cancel_futures=True)
        self._wanted.set()
        if starter is not None:
            starter.join(30)


def proportional_bytes(pid: int) -> int | None:
    """A process's proportional set size (Linux ``/proc/PID/smaps_rollup``), or None where it cannot be read."""
    try:
        with open(f"/proc/{pid}/smaps_rollup", "rb") as f:
            for line in f:
                if line.startswith(b"Pss:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


__all__ = ["MIN_BYTES", "ValidationWorkers", "judge"]
