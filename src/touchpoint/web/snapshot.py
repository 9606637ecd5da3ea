"""The dashboard's cache of derived results: computed off the request path, refreshed when inputs change.

A page never computes a model or scans the event log while a person waits: it reads the latest
:class:`Entry` of its section. One background thread (:class:`Refresher`) looks at a cheap fingerprint of
each section's inputs (event and spend counts, the latest prediction run, the saved marketing-mix fit,
experiment definitions) every few seconds and recomputes a section when its inputs changed. Sections
fed by the event log wait at least ``min_age`` seconds between runs, so a busy collector does not keep
the machine recomputing. ``refresh(name)`` recomputes one section now (the job runner can call it after a
job run; the pages call it after a change they made, such as a quarantine replay).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from touchpoint.warehouse import Warehouse

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Entry:
    """One computed section: its data (or the error that stopped it), when, and how long it took."""

    data: dict[str, Any] | None
    error: str | None
    computed_at: datetime
    seconds: float
    fingerprint: tuple[Any, ...]


@dataclass(frozen=True)
class Section:
    """How to compute a section and which inputs it depends on (names of :func:`inputs` keys)."""

    name: str
    compute: Callable[[Warehouse, Path], dict[str, Any]]
    depends_on: tuple[str, ...]
    min_age: float = 0.0  # seconds between recomputations when only the inputs moved


def _latest(wh: Warehouse, key: tuple[str, str]) -> Any:
    """The largest value of a column (``key``: table, column): a prepared read, compiled once per process."""
    table, column = key
    return wh.table(table)[column].max()


def _fact(wh: Warehouse, table: str, column: str | None = None) -> Any:
    """A table's row count, or the largest value of one of its columns; None when the table is missing (an
    older warehouse: the section shows its own error)."""
    try:
        return wh.count(table) if column is None else wh.prepared(_latest, key=(table, column)).as_py()
    except Exception:
        return None


def inputs(wh: Warehouse, data_dir: Path) -> dict[str, Any]:
    """Cheap facts that change when a section's inputs change: counts and latest times, each one small query
    compiled once per process (built anew each time, the dozen reads cost a third of a second of CPU every few
    seconds, the server's largest consumer during a burst of events; docs/decisions.md, 2026-12-03)."""
    fit = Path(data_dir) / "mmm" / "fit.json"
    return {
        "events": wh.count("events"),
        "spend": wh.count("spend"),
        "quarantine": wh.count("quarantine"),
        "predictions": _fact(wh, "prediction_runs", "run_at"),
        "experiments": (_fact(wh, "experiments", "updated_at"), _fact(wh, "experiments")),
        "profiles": _fact(wh, "profiles", "built_at"),
        "mmm": fit.stat().st_mtime_ns if fit.exists() else None,
        "audiences": (
            _fact(wh, "audience_state", "evaluated_at"),
            _fact(wh, "audience_state"),
            _fact(wh, "score_results", "computed_at"),
        ),
        "plans": (_fact(wh, "plans", "created_at"), _fact(wh, "plan_reviews", "reviewed_at")),
        "automations": (
            _fact(wh, "automations", "updated_at"),
            _fact(wh, "automation_entries"),
            _fact(wh, "automation_outbox", "updated_at"),
        ),
    }


@dataclass
class Snapshot:
    """The latest entry of every section, safe to read from any request thread."""

    sections: dict[str, Section]
    entries: dict[str, Entry] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def get(self, name: str) -> Entry | None:
        with self.lock:
            return self.entries.get(name)

    def compute(self, name: str, wh: Warehouse, data_dir: Path, fingerprint: tuple[Any, ...]) -> Entry:
        section = self.sections[name]
        started = time.perf_counter()
        try:
            data, error = section.compute(wh, data_dir), None
        except Exception as exc:  # one broken section must not hide the others; its page shows why
            log.exception("dashboard section %s failed", name)
            data, error = None, f"{type(exc).__name__}: {exc}"
        entry = Entry(data, error, datetime.now(UTC), time.perf_counter() - started, fingerprint)
        with self.lock:
            self.entries[name] = entry
        return entry


class Refresher:
    """The background thread that keeps a :class:`Snapshot` current."""

    def __init__(self, snapshot: Snapshot, wh: Warehouse, data_dir: Path, *, every: float = 3.0) -> None:
        self.snapshot, self.wh, self.data_dir, self.every = snapshot, wh, Path(data_dir), every
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._urgent: set[str] = set()
        self._stale: set[str] = set()  # asked for softly: recomputed once their min_age allows
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def _fingerprint(self, section: Section, facts: dict[str, Any]) -> tuple[Any, ...]:
        return tuple(facts.get(k) for k in section.depends_on)

    def run_once(self) -> list[str]:
        """Recompute every section whose inputs changed (or that was asked for); returns their names."""
        facts = inputs(self.wh, self.data_dir)
        with self._lock:
            urgent, self._urgent = self._urgent, set()
            stale = set(self._stale)
        done = []
        for name, section in self.snapshot.sections.items():
            if self._stop.is_set():
                break
            fp = self._fingerprint(section, facts)
            entry = self.snapshot.get(name)
            due = entry is None or name in urgent
            if not due and entry is not None and (entry.fingerprint != fp or name in stale):
                age = (datetime.now(UTC) - entry.computed_at).total_seconds()
                due = age >= section.min_age
            if due:
                with self._lock:
                    self._stale.discard(name)
                self.snapshot.compute(name, self.wh, self.data_dir, fp)
                done.append(name)
        return done

    def request(self, *names: str, soft: bool = False) -> None:
        """Recompute these sections at once, whatever their fingerprint says; ``soft``: at the next regular turn
        (``every`` seconds) once each section's ``min_age`` has passed since it was last computed. A job that
        runs every few seconds would otherwise have its sections recomputed after each run, and a soft request
        that woke the thread cost a turn of :func:`inputs`' reads after a run of any quick job (up to 30 turns of
        14 reads in a 5-s burst of triggers at 100/s, beside the trigger path's own reads)."""
        with self._lock:
            (self._stale if soft else self._urgent).update(names)
        if not soft:
            self._wake.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.run_once()
            except Exception:  # the warehouse closing under us at shutdown, or a transient read error
                if not self._stop.is_set():
                    log.exception("dashboard refresh failed")
            self._wake.wait(self.every)
            self._wake.clear()

    def start(self) -> Refresher:
        self._thread = threading.Thread(target=self._run, name="touchpoint-dashboard", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=60)
