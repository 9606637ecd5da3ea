"""What a job is, and the registry of the jobs ``touchpoint serve`` runs.

A job is a name, a function of the library it runs, a default cadence, a trigger and a doc:

``trigger="events"``
    run when events arrived since the job's last run started, at most once every ``every`` seconds
    (profiles: a few seconds, so a new event shows in its profile within 5 s).
``trigger="interval"``
    run every ``every`` seconds (``hourly``, ``daily``, ``weekly`` in ``touchpoint.toml``), whether or not
    events arrived.
``trigger="after"``
    run only once a job it runs after (``after``) has succeeded, at most once every ``every`` seconds
    (automations: most triggers wait for the profiles). With ``on_commit=True`` also once the collector
    has committed events since the job's last run started: the committer tells the runner (a condition
    the job's thread waits on, not a count it polls); the automations' fast lane decides event triggers
    of known people at once.

Any job may name jobs it runs ``after``; ``after_every`` lets a run woken that way start sooner than the
job's own cadence (``deliveries``: every 15 s on its own, 0.05 s after an ``automations`` run that decided
something), and ``wakes_when_empty=False`` keeps a run that wrote no rows from waking the jobs after it.

The function takes a :class:`JobContext` and returns a summary: a dict (its ``"rows"`` is recorded as the
run's rows), a number of rows, or None. It raises :class:`Skip` when there is nothing to do (no orders
yet), which is recorded as ``skipped`` and not retried; any other exception is a failure, retried with
exponential backoff. A long job checks :meth:`JobContext.check_stop` between its steps, so a shutting
down server does not wait for it.

Registering a job (how the audiences, automations and plan layers add theirs)::

    from touchpoint.jobs import Job, register

    def refresh_audiences(ctx):                      # ctx.warehouse, ctx.settings, ctx.check_stop()
        return {"rows": audiences.workflow.refresh(ctx.warehouse)}

    register(Job("audiences", refresh_audiences, every=60, trigger="events",
                 tables=("audience_members",), reads=("profiles",), doc="Recompute audience memberships."))

``tables`` are the tables a job writes and ``reads`` the ones it reads: the data-flow map
(``touchpoint map``, docs/privacy.md) draws them, and a test fails when a job's tables are not in it.

>>> job = Job("demo", lambda ctx: 3, every=5, trigger="events", doc="a job")
>>> job.describe_cadence()
'after new events, at most every 5s'
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from touchpoint.errors import AlreadyExists, ConfigError, InvalidInput, NotFound

if TYPE_CHECKING:
    from touchpoint.config import Settings
    from touchpoint.warehouse import Warehouse

TRIGGERS = ("events", "interval", "after")


class Skip(Exception):
    """Raised by a job with nothing to do (e.g. no orders yet): recorded as ``skipped``, not retried."""


class Interrupted(Exception):
    """Raised by :meth:`JobContext.check_stop` when the server is shutting down."""


@dataclass
class JobContext:
    """What a job's function gets: the warehouse, the settings, why it runs, and the stop signal."""

    warehouse: Warehouse
    settings: Settings
    trigger: str = "manual"
    stopping: threading.Event = field(default_factory=threading.Event)
    every: float = 0.0  # the job's cadence in seconds (0: unknown)
    #: waits until every event acknowledged so far that may carry consent is in the warehouse (the collector
    #: log's ``flush(consent=True)``); False when it could not within its time. Always True where a 200 means
    #: committed (the group commit).
    acknowledged: Callable[[], bool] = field(default=lambda: True)
    log: logging.Logger = field(default_factory=lambda: logging.getLogger("touchpoint.jobs"))

    def fresh_enough(self, refreshed_at: datetime | None, what: str) -> None:
        """Raise :class:`Skip` when ``refreshed_at`` (naive UTC) is younger than the job's cadence and the run
        was not asked for by hand: an output made by hand or by the demo is not redone at the next start."""
        if refreshed_at is None or self.trigger == "manual" or not self.every:
            return
        age = (datetime.now(UTC).replace(tzinfo=None) - refreshed_at).total_seconds()
        if 0 <= age < self.every:
            old, cadence = format_seconds(round(age), words=False), format_seconds(self.every)
            raise Skip(f"{what} is {old} old, younger than the cadence ({cadence})")

    def check_stop(self) -> None:
        """Raise :class:`Interrupted` if the server is stopping (call it between a long job's steps)."""
        if self.stopping.is_set():
            raise Interrupted("the server is shutting down")


def format_seconds(seconds: float, *, words: bool = True) -> str:
    """``5s``, ``10m``, ``2h``, ``daily``, ``weekly`` (the words ``touchpoint.toml`` takes; ``words=False``: ``1d``)."""
    named = {3600.0: "hourly", 86400.0: "daily", 604800.0: "weekly"}
    if words and seconds in named:
        return named[seconds]
    for unit, size in (("d", 86400.0), ("h", 3600.0), ("m", 60.0)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"


@dataclass(frozen=True)
class Job:
    """One job: ``run(ctx)`` every ``every`` seconds (``trigger="interval"``) or after new events."""

    name: str
    run: Callable[[JobContext], Any]
    every: float
    trigger: str = "interval"
    tables: tuple[str, ...] = ()
    doc: str = ""
    enabled: bool = True
    retry_base: float = 1.0  # the first retry after a failure waits this long, then doubles
    retry_max: float = 600.0  # ... up to this long (and never longer than ``every`` for interval jobs)
    after: tuple[str, ...] = ()  # also due (at its cadence) once a run of one of these jobs has succeeded
    on_commit: bool = False  # also due (at its cadence) once the collector committed events since its last run
    after_every: float | None = None  # a run woken by a job in ``after`` may start this soon (default: ``every``)
    wakes_when_empty: bool = True  # False: a run that wrote no rows does not wake the jobs that run after it
    reads: tuple[str, ...] = ()  # the tables it reads (``tables`` are the ones it writes): the data-flow map
    models: tuple[str, ...] = ()  # the models it fits or scores with, by name in ``touchpoint.datamap.MODELS``

    def __post_init__(self) -> None:
        if not self.name or not self.name.replace("_", "").isalnum() or not self.name.islower():
            raise InvalidInput(f"job name {self.name!r} must be lower-case letters, digits and '_'")
        if self.trigger not in TRIGGERS:
            raise InvalidInput(f"job {self.name!r}: trigger {self.trigger!r} is not one of {', '.join(TRIGGERS)}")
        if not self.every > 0:
            raise InvalidInput(f"job {self.name!r}: every must be a positive number of seconds, got {self.every!r}")
        if self.trigger == "after" and not self.after:
            raise InvalidInput(f"job {self.name!r}: trigger 'after' needs the jobs it runs after (after=...)")
        if self.after_every is not None and not (self.after and self.after_every > 0):
            raise InvalidInput(f"job {self.name!r}: after_every needs the jobs it runs after and a positive number")

    def describe_cadence(self) -> str:
        if self.trigger == "events":
            return f"after new events, at most every {format_seconds(self.every)}"
        if self.trigger == "after":
            return f"after a {'/'.join(self.after)} run, at most every {format_seconds(self.every)}"
        own = (
            f"every {format_seconds(self.every)}"
            if format_seconds(self.every)[0].isdigit()
            else format_seconds(self.every)
        )
        if self.after_every is not None:
            return f"{own}, and {format_seconds(self.after_every)} after a {'/'.join(self.after)} run"
        return own

    def backoff(self, failures: int) -> float:
        """Seconds before retry number ``failures`` (1, 2, ...): doubling from ``retry_base``."""
        ceiling = self.retry_max if self.trigger != "interval" else min(self.retry_max, self.every)
        return float(min(ceiling, self.retry_base * 2 ** max(0, failures - 1)))

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "doc": self.doc,
            "trigger": self.trigger,
            "every_seconds": self.every,
            "cadence": self.describe_cadence(),
            "enabled": self.enabled,
            "tables": list(self.tables),
            "reads": list(self.reads),
            "models": list(self.models),
        }


#: The registry: every job ``touchpoint serve`` runs, by name (built-in ones from :mod:`touchpoint.jobs.builtin`).
JOBS: dict[str, Job] = {}


def register(job: Job, *, replace_existing: bool = False) -> Job:
    """Add ``job`` to :data:`JOBS` (a second job of one name raises unless ``replace_existing``)."""
    if job.name in JOBS and not replace_existing:
        raise AlreadyExists(f"a job named {job.name!r} is registered already", hint="choose another name")
    JOBS[job.name] = job
    return job


def get(name: str, jobs: Iterable[Job] | None = None) -> Job:
    known = {j.name: j for j in (jobs if jobs is not None else JOBS.values())}
    if name not in known:
        raise NotFound(f"no job named {name!r}", hint=f"the jobs: {', '.join(sorted(known)) or 'none'}")
    return known[name]


def configured(settings: Settings, jobs: Iterable[Job] | None = None) -> list[Job]:
    """The jobs with the cadence and switch of ``[jobs.NAME]`` in the settings applied.

    A ``[jobs.NAME]`` for a job that does not exist raises :class:`ConfigError` naming the known jobs.
    """
    available = {j.name: j for j in (jobs if jobs is not None else JOBS.values())}
    unknown = sorted(set(settings.jobs) - set(available))
    if unknown:
        raise ConfigError(
            f"[jobs.{unknown[0]}] in the configuration names no job",
            hint=f"the jobs: {', '.join(sorted(available))} (see docs/jobs.md)",
        )
    out = []
    for name, job in available.items():
        own = settings.jobs.get(name)
        if own is not None:
            seconds = own.seconds()
            job = replace(job, enabled=own.enabled, every=seconds if seconds is not None else job.every)
        out.append(job)
    return out
