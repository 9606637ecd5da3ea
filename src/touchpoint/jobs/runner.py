"""The job runner inside ``touchpoint serve``: one thread per job, so two runs of a job never overlap.

Each job's thread sleeps until its job is due, runs it through :func:`execute` (which records the run in
``job_runs``), and works out when it is due next:

* after a success or a skip: ``every`` seconds after this run started; an ``events`` job also waits
  until events arrived after that start (the runner counts the ``events`` table, a metadata read);
* an ``after`` job (automations) runs only once a job it runs after has succeeded since its last run,
  or (``on_commit``) once the collector committed events since then (:meth:`JobRunner.events_committed`,
  a listener of the group committer: the job's thread is woken, no count is polled); a job with
  ``after_every`` (deliveries) runs that soon after its last start once a job it runs after has succeeded
  (and wrote rows, unless that job ``wakes_when_empty``), besides its own cadence;
* after a failure: an exponential backoff (``Job.backoff``), whether or not events arrived. A failing
  job never stops the others: each has its own thread, and nothing it raises leaves that thread.

:meth:`JobRunner.run_now` asks for a run at once (``touchpoint jobs run``, ``POST /v1/jobs/{name}/run``);
while the job runs it raises :class:`~touchpoint.errors.JobRunning` instead of starting a second run.
:meth:`JobRunner.stop` sets the stop signal (long jobs check it between steps and end ``interrupted``),
and waits for the threads.

Jobs write derived tables in the warehouse's ``main`` write lane; the collector commits in the
``events`` lane, so a job never holds up an acknowledgement (see :mod:`touchpoint.warehouse.base`).
"""

from __future__ import annotations

import logging
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC
from typing import TYPE_CHECKING, Any

from touchpoint.errors import JobRunning
from touchpoint.jobs import runlog
from touchpoint.jobs.definitions import Interrupted, Job, JobContext, Skip, configured, get

if TYPE_CHECKING:
    from touchpoint.config import Settings
    from touchpoint.warehouse import Warehouse

log = logging.getLogger("touchpoint.jobs")

Listener = Callable[[Job, runlog.Run], None]
PRUNE_EVERY = 3600.0  # seconds between prunings of the run log


def _rows(result: Any) -> int | None:
    if isinstance(result, bool):
        return None
    if isinstance(result, int):
        return result
    if isinstance(result, dict) and isinstance(result.get("rows"), int):
        return int(result["rows"])
    return None


#: a job that may run more often than this (seconds) has each run written once, when it ends (runlog)
QUICK = 5.0


def quick(job: Job) -> bool:
    """Whether ``job`` may run more often than every :data:`QUICK` seconds (its cadence, or how soon after
    a job it runs after)."""
    return min(job.every, job.after_every if job.after_every is not None else job.every) < QUICK


def execute(
    wh: Warehouse,
    settings: Settings,
    job: Job,
    *,
    trigger: str = "manual",
    attempt: int = 1,
    stopping: threading.Event | None = None,
    run_id: str | None = None,
    acknowledged: Callable[[], bool] | None = None,
) -> runlog.Run:
    """Run ``job`` once, recording the run; never raises for the job's own failure (the run says it). A run
    of a :func:`quick` job the runner started is written once, when it ends."""
    once = trigger != "manual" and quick(job)
    run = runlog.start(wh, job.name, trigger, attempt, run_id=run_id, record=not once)
    ctx = JobContext(wh, settings, trigger=trigger, stopping=stopping or threading.Event(), every=job.every)
    if acknowledged is not None:
        ctx.acknowledged = acknowledged
    log.debug("job %s started", job.name, extra={"fields": {"job": job.name, "trigger": trigger, "attempt": attempt}})
    try:
        result = job.run(ctx)
    except Skip as exc:
        runlog.finish(wh, run, "skipped", error=str(exc) or None, started=not once)
    except Interrupted as exc:
        runlog.finish(wh, run, "interrupted", error=str(exc), started=not once)
    except Exception as exc:
        detail = "".join(traceback.format_exception_only(exc)).strip()
        log.error(
            "job %s failed: %s",
            job.name,
            detail,
            exc_info=exc,
            extra={"fields": {"job": job.name, "attempt": attempt}},
        )
        runlog.finish(wh, run, "failed", error=detail, started=not once)
    else:
        summary = result if isinstance(result, dict) else None
        runlog.finish(wh, run, "succeeded", rows=_rows(result), summary=summary, started=not once)
    log.log(
        logging.DEBUG if run.status in ("succeeded", "skipped") else logging.WARNING,
        "job %s %s in %.3fs",
        job.name,
        run.status,
        run.seconds or 0.0,
        extra={"fields": {"job": job.name, "status": run.status, "seconds": run.seconds, "rows": run.rows}},
    )
    return run


@dataclass
class JobState:
    """What the runner knows about one job between runs."""

    job: Job
    running: runlog.Run | None = None
    last: runlog.Run | None = None
    last_success: runlog.Run | None = None
    failures: int = 0
    runs: int = 0
    failed_total: int = 0
    next_due: float = 0.0  # time.time() when it may run next (events jobs: and there are new events)
    events_seen: int | None = None  # the events count when the last run started
    requested: str | None = None  # a run id asked for by run_now
    upstream: bool = False  # a job it runs after (Job.after) has succeeded since its last run
    committed: bool = False  # events were committed since its last run started (Job.on_commit)
    started: float = 0.0  # time.time() when its last run started


class JobRunner:
    """Runs ``jobs`` (default: the registry with ``[jobs.NAME]`` applied) on their cadence, in threads."""

    def __init__(
        self,
        warehouse: Warehouse,
        settings: Settings,
        jobs: Iterable[Job] | None = None,
        *,
        tick: float = 0.1,
        startup_delay: float = 3.0,
        acknowledged: Callable[[], bool] | None = None,
    ) -> None:
        self.warehouse = warehouse
        self.acknowledged = acknowledged  # the collector's barrier (JobContext.acknowledged), for the jobs
        self.settings = settings
        self.jobs = configured(settings, jobs)
        self.tick = tick
        self.startup_delay = startup_delay
        self.listeners: list[Listener] = []
        self.stopping = threading.Event()
        self.started_at = time.time()
        self._cond = threading.Condition()
        self._states = {job.name: JobState(job) for job in self.jobs}
        self._threads: list[threading.Thread] = []
        self._events_count: tuple[float, int] = (0.0, 0)
        self._last_prune = 0.0

    # -- lifecycle -------------------------------------------------------------------------------------
    def start(self) -> JobRunner:
        """Start in the background: the server answers at once; the run log is read, then the jobs start."""
        starter = threading.Thread(target=self._start, name="touchpoint-jobs-start", daemon=True)
        self._threads.append(starter)
        starter.start()
        return self

    def _start(self) -> None:
        try:
            self._load_history()
        except Exception:  # the warehouse closed during a very short life: nothing to run
            log.exception("the job runner could not read the run log; no job runs")
            return
        for state in self._states.values():
            if self.stopping.is_set():
                return
            thread = threading.Thread(target=self._loop, args=(state,), name=f"touchpoint-job-{state.job.name}")
            thread.daemon = True  # a job still running past stop()'s timeout must not keep the process alive
            thread.start()
            self._threads.append(thread)

    def _load_history(self) -> None:
        interrupted = runlog.mark_interrupted(self.warehouse)
        if interrupted:
            log.warning("%d job runs were interrupted by the last shutdown", interrupted)
        history = runlog.summaries(self.warehouse)
        now = time.time()
        for state in self._states.values():
            h = history.get(state.job.name)
            if h is not None:
                state.last, state.last_success = h.last, h.last_success
                state.failures, state.runs, state.failed_total = h.failures, h.runs, h.failed_total
            state.next_due = self._due_after_restart(state, now)

    def _due_after_restart(self, state: JobState, now: float) -> float:
        """An interval job runs ``every`` after its last run; one that never ran, and an events job that runs
        seldom, ``startup_delay`` after the start (the server's first seconds are the collector's); a
        frequent events job (profiles) at once."""
        if state.job.trigger == "after" or (state.job.trigger == "events" and state.job.every <= 10):
            return now  # an "after" job runs only once its upstream job has run
        if state.job.trigger == "events" or state.last is None:
            return now + self.startup_delay
        last = state.last.started_at.replace(tzinfo=UTC).timestamp()
        wait = state.job.backoff(state.failures) if state.last.status == "failed" else state.job.every
        return last + wait

    def stop(self, timeout: float = 30.0) -> list[str]:
        """Signal every job to stop and wait up to ``timeout`` s; returns the jobs still running then."""
        self.stopping.set()
        with self._cond:
            self._cond.notify_all()
        deadline = time.monotonic() + timeout
        for thread in list(self._threads):  # the starter first: no job thread starts after it ends
            thread.join(max(0.0, deadline - time.monotonic()))
        for thread in list(self._threads):
            thread.join(max(0.0, deadline - time.monotonic()))
        still = [s.job.name for s in self._states.values() if s.running is not None]
        if still:
            log.warning("jobs still running at shutdown: %s (recorded as interrupted at the next start)", still)
        return still

    def __enter__(self) -> JobRunner:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- asking ---------------------------------------------------------------------------------------
    def run_now(self, name: str) -> str:
        """Ask for a run of ``name`` at once; returns its run id. Raises if it is running or asked for."""
        state = self._states.get(name)
        if state is None:
            get(name, self.jobs)  # raises NotFound naming the jobs
            raise AssertionError  # pragma: no cover
        with self._cond:
            if state.running is not None or state.requested is not None:
                raise JobRunning(
                    f"job {name!r} is running already; two runs of one job never overlap",
                    hint=f"wait for it to finish (`touchpoint jobs show {name}`)",
                )
            state.requested = uuid.uuid4().hex
            self._cond.notify_all()
            return state.requested

    def wait(self, name: str, run_id: str, timeout: float | None = None) -> runlog.Run | None:
        """The run ``run_id`` of ``name`` once it has finished; ``None`` if ``timeout`` s pass first or the
        runner stops."""
        state = self.state(name)
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            last = state.last
            if last is not None and last.run_id == run_id and state.running is None:
                return last
            if self.stopping.is_set() or (deadline is not None and time.monotonic() >= deadline):
                return None
            time.sleep(0.05)

    def states(self) -> list[JobState]:
        return list(self._states.values())

    def state(self, name: str) -> JobState:
        if name not in self._states:
            get(name, self.jobs)
        return self._states[name]

    # -- the job threads ---------------------------------------------------------------------------------
    def events_count(self) -> int:
        """How many events are stored (cached for one tick: every events job asks)."""
        at, count = self._events_count
        if time.monotonic() - at > self.tick:
            count = self.warehouse.count("events")
            self._events_count = (time.monotonic(), count)
        return count

    def _due(self, state: JobState) -> tuple[str | None, int | None]:
        """Why ``state``'s job should run now (``None``: not yet), and the events count it would see."""
        if state.requested is not None:
            return "manual", None
        if not state.job.enabled:
            return None, None
        gap = state.job.after_every
        if gap is not None and state.upstream and not state.failures and time.time() >= state.started + gap:
            return "upstream", None  # woken by a job it runs after, sooner than its own cadence
        if time.time() < state.next_due:
            return None, None
        if state.failures:
            return "retry", None
        if state.upstream:
            return "upstream", None
        if state.committed:
            return "events", None
        if state.job.trigger == "interval":
            return "schedule", None
        if state.job.trigger == "after":
            return None, None
        count = self.events_count()
        if state.events_seen is None or count != state.events_seen:
            return "events", count
        return None, None

    def _loop(self, state: JobState) -> None:
        while not self.stopping.is_set():
            try:
                trigger, count = self._due(state)
            except Exception:  # the warehouse is closing, or a count failed: try again next tick
                log.exception("job %s: could not decide whether it is due", state.job.name)
                trigger, count = None, None
            if trigger is None:
                with self._cond:
                    if state.requested is None and not self.stopping.is_set():
                        # until the next tick, or the instant the job's cadence allows it again if sooner
                        ahead = state.next_due - time.time()
                        if state.upstream and state.job.after_every is not None:
                            ahead = min(ahead, state.started + state.job.after_every - time.time())
                        self._cond.wait(min(self.tick, ahead) if ahead > 0.005 else self.tick)
                continue
            self._run(state, trigger, count)
            if state.job.name == self.jobs[0].name:
                self._maybe_prune()

    def _run(self, state: JobState, trigger: str, count: int | None) -> None:
        with self._cond:
            run_id, state.requested = state.requested or uuid.uuid4().hex, None
            state.upstream = state.committed = False
        if count is None and state.job.trigger == "events":
            count = self.warehouse.count("events")
        started = state.started = time.time()
        attempt = state.failures + 1
        state.running = runlog.Run(run_id, state.job.name, trigger, attempt, runlog.now())
        try:
            run = execute(
                self.warehouse,
                self.settings,
                state.job,
                trigger=trigger,
                attempt=attempt,
                stopping=self.stopping,
                run_id=run_id,
                acknowledged=self.acknowledged,
            )
        except Exception:  # recording the run failed (the warehouse is closing): retry later
            log.exception("job %s: the run could not be recorded", state.job.name)
            state.running = None
            state.next_due = time.time() + state.job.backoff(max(1, state.failures))
            return
        state.running = None
        state.last = run
        state.runs += 1
        if run.status == "failed":
            state.failures += 1
            state.failed_total += 1
            state.next_due = time.time() + state.job.backoff(state.failures)
        else:
            state.failures = 0
            state.next_due = started + state.job.every
            if run.status == "succeeded":
                state.last_success = run
                if state.job.wakes_when_empty or run.rows:
                    self._wake_downstream(state.job.name)
            if count is not None:
                state.events_seen = count
        for listener in self.listeners:
            try:
                listener(state.job, run)
            except Exception:
                log.exception("a job listener failed")

    def _wake_downstream(self, name: str) -> None:
        """Jobs that run after ``name`` (``Job.after``: audiences after profiles) become due at their cadence."""
        with self._cond:
            for other in self._states.values():
                if name in other.job.after:
                    other.upstream = True
            self._cond.notify_all()

    def events_committed(self, result: Any = None, seconds: float = 0.0) -> None:
        """The collector committed events (a :class:`~touchpoint.collect.committer.GroupCommitter` listener):
        jobs with ``on_commit`` become due at their cadence, and their threads wake now."""
        if result is not None and not getattr(result, "stored", 1):
            return
        with self._cond:
            for state in self._states.values():
                if state.job.on_commit:
                    state.committed = True
            self._cond.notify_all()

    def _maybe_prune(self) -> None:
        if time.time() - self._last_prune < PRUNE_EVERY:
            return
        self._last_prune = time.time()
        try:
            runlog.prune(self.warehouse)
        except Exception:
            log.exception("pruning the job run log failed")
