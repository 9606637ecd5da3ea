"""The server's memory ceiling: under overload the collector answers 429 before it runs out of memory.

A request to the collector reserves, before its body is read, what it will hold at its peak: :data:`EXPANSION`
times its size. Measured on Segment batches, parsing holds 3.5 times the body (the body, the parsed items and
the rows), and the group commit that writes them about 12 times more in the engine (the Arrow table and
DuckDB's insert with its primary-key check); so the reservations of the requests in one group cover its
commit. A request is admitted while the process's resident memory plus every reservation in flight stays
under ``memory_ceiling_mb`` less a tenth of it, and at least 64 MB (:data:`HEADROOM` and :data:`HEADROOM_MIN`,
kept for what the estimate misses: connection buffers and malloc's arenas, which do not shrink with the
ceiling); its reservation lasts until its events are committed and the client answered.

Otherwise the body is read and thrown away chunk by chunk (so the client can read the answer on the same
connection instead of meeting a reset while it writes) and the answer is 429 with ``Retry-After``
(:class:`~touchpoint.errors.Overloaded`, the collector's back-pressure). Nothing acknowledged is at risk: a
refused request stored nothing and the client retries it.

The resident size is read from ``/proc/self/statm`` (Linux), at most every :data:`RSS_EVERY_S`. When it is
over the ceiling, freed memory is handed back to the system (a garbage collection and glibc's
``malloc_trim``) at most once a second before refusing. When memory stays over the ceiling with no request
in flight (held by a job, or not given back), one request is admitted every :data:`STALL_S` seconds, so the
collector keeps making progress, and the log says so.

>>> ceiling = MemoryCeiling(ceiling_bytes=200 * MB, rss=lambda: 100 * MB)
>>> first, second = ceiling.admit(1 * MB), ceiling.admit(1 * MB)  # 16 MB each: 100 + 32 <= 200 - 64
>>> ceiling.admit(1 * MB)  # doctest: +ELLIPSIS
Traceback (most recent call last):
    ...
touchpoint.errors.Overloaded: the server is at its memory ceiling of 200 MB (100 MB in use, 32 MB reserved by ...)
>>> first.release(); ceiling.admit(1 * MB).release()
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import logging
import math
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from touchpoint.errors import Overloaded

log = logging.getLogger("touchpoint.api")

MB = 1024 * 1024
EXPANSION = 16.0  # peak bytes held per byte of body, parsed (3.5) and then committed (about 12 more)
RSS_EVERY_S = 0.02  # how stale the resident size may be
TRIM_EVERY_S = 1.0  # how often memory is handed back to the system when over the ceiling
HEADROOM = 0.1  # the share of the ceiling kept free of reservations, for what the estimate misses
HEADROOM_MIN = 64 * MB  # and at least this: 48 clients at once took 25-45 MB past a 10% headroom of 420 MB
MIN_ROOM = 64 * MB  # below this room for requests at start, the log says the ceiling is too low (8 full batches)
STALL_S = 5.0  # with nothing in flight and memory still over the ceiling, one request is admitted this often
_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def resident_bytes() -> int | None:
    """This process's resident memory (Linux ``/proc/self/statm``), or None where it cannot be read.

    The file stays open (per process: a forked child opens its own) and is read with ``pread``: 2 µs a
    reading instead of 13 for an open, read and close; the collector reads it up to 50 times a second."""
    global _statm
    try:
        pid = os.getpid()
        if _statm is None or _statm[0] != pid:
            _statm = (pid, os.open("/proc/self/statm", os.O_RDONLY | os.O_CLOEXEC))
        return int(os.pread(_statm[1], 128, 0).split()[1]) * _PAGE
    except (OSError, ValueError, IndexError):
        return None


_statm: tuple[int, int] | None = None  # (pid, descriptor) of /proc/self/statm, opened by the first reading


def physical_bytes() -> int | None:
    """The machine's memory, or None where it cannot be read."""
    try:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (AttributeError, ValueError, OSError):
        return None


def ceiling_bytes(memory_ceiling_mb: int | None) -> int | None:
    """The configured ceiling; unset: half the machine's memory; 0: none."""
    if memory_ceiling_mb is None:
        physical = physical_bytes()
        return None if physical is None else physical // 2
    return memory_ceiling_mb * MB if memory_ceiling_mb > 0 else None


def _malloc_trim() -> Callable[[], None]:
    name = ctypes.util.find_library("c")
    try:
        trim = ctypes.CDLL(name).malloc_trim if name else None
    except (OSError, AttributeError):
        trim = None
    return (lambda: trim(0)) if trim is not None else (lambda: None)


@dataclass
class Reservation:
    """Memory promised to one request in flight; :meth:`release` it when the request is answered."""

    ceiling: MemoryCeiling | None
    nbytes: int

    def release(self) -> None:
        if self.ceiling is not None:
            self.ceiling._release(self.nbytes)
            self.ceiling = None


class MemoryCeiling:
    """Admission of collector requests under a ceiling on the process's resident memory."""

    def __init__(self, ceiling_bytes: int | None, rss: Callable[[], int | None] = resident_bytes) -> None:
        self.ceiling_bytes = ceiling_bytes if ceiling_bytes and rss() is not None else None
        self.refused = 0  # requests answered 429 because of the ceiling (the metrics show it)
        self._rss = rss
        self._reserved = 0
        self._in_flight = 0
        self._seen: tuple[float, int] = (-1.0, 0)
        self._trimmed_at = -TRIM_EVERY_S
        self._admitted_at = time.monotonic()
        self._trim = _malloc_trim()
        self._lock = threading.Lock()
        if ceiling_bytes and self.ceiling_bytes is None:
            log.warning("memory_ceiling_mb is set but this system does not report resident memory: not enforced")
        at_rest = rss() or 0
        if self.ceiling_bytes is not None and self._room() - at_rest < MIN_ROOM:
            enough = max(at_rest + HEADROOM_MIN + MIN_ROOM, (at_rest + MIN_ROOM) / (1 - HEADROOM))
            log.warning(
                "memory_ceiling_mb=%d leaves the collector almost no room: the server holds %d MB at rest, so most "
                "requests will answer 429; raise it to at least %d",
                self.ceiling_bytes // MB,
                at_rest // MB,
                math.ceil(enough / MB),
                extra={"fields": {"resident_mb": at_rest // MB, "ceiling_mb": self.ceiling_bytes // MB}},
            )

    @property
    def enabled(self) -> bool:
        return self.ceiling_bytes is not None

    def admit(self, body_bytes: int) -> Reservation:
        """Reserve room for a body of ``body_bytes``, or raise :class:`Overloaded` (429)."""
        if self.ceiling_bytes is None:
            return Reservation(None, 0)
        need = int(body_bytes * EXPANSION)
        with self._lock:
            now = time.monotonic()
            rss = self._resident()
            room = self._room()
            if rss + self._reserved + need > room:
                rss = self._give_back() if rss > room - need else rss
                over = rss + self._reserved + need > room
                if over and (self._in_flight or now - self._admitted_at < STALL_S):
                    self.refused += 1
                    raise Overloaded(
                        f"the server is at its memory ceiling of {self.ceiling_bytes / MB:,.0f} MB "
                        f"({rss / MB:,.0f} MB in use, {self._reserved / MB:,.0f} MB reserved by requests in flight)",
                        retry_after=1,
                        hint="retry after the delay in Retry-After; an operator can raise memory_ceiling_mb",
                    )
                if over:
                    log.warning(
                        "resident memory stays over the ceiling with no request in flight: admitting one",
                        extra={"fields": {"resident_mb": rss // MB, "ceiling_mb": self.ceiling_bytes // MB}},
                    )
            self._reserved += need
            self._in_flight += 1
            self._admitted_at = now
        return Reservation(self, need)

    def _room(self) -> float:
        """What resident memory and reservations may add up to: the ceiling less its headroom."""
        assert self.ceiling_bytes is not None
        return self.ceiling_bytes - max(self.ceiling_bytes * HEADROOM, HEADROOM_MIN)

    def _release(self, nbytes: int) -> None:
        with self._lock:
            self._reserved -= nbytes
            self._in_flight -= 1

    def _resident(self) -> int:
        at, value = self._seen
        now = time.monotonic()
        if now - at > RSS_EVERY_S:
            value = self._rss() or 0
            self._seen = (now, value)
        return value

    def _give_back(self) -> int:
        """Return freed memory to the system (at most once a second); the resident size after it."""
        now = time.monotonic()
        if now - self._trimmed_at >= TRIM_EVERY_S:
            self._trimmed_at = now
            gc.collect()
            self._trim()
            self._seen = (-1.0, 0)
        return self._resident()
