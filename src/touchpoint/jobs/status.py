"""What ``touchpoint jobs list``, ``GET /v1/jobs`` and ``/healthz`` show: each job's state and each derived
table's staleness, from the running server's runner when there is one, else from the run log alone.

A job is **failing** when its last finished run failed (it is being retried with backoff) and **overdue**
when it should have run and has not: an interval job more than ``max(60 s, every / 2)`` past its due
time, an events job whose tables miss events for longer than ``every + 60 s``. Either makes it
**degraded**; ``/healthz`` lists the degraded jobs.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from touchpoint.jobs import runlog
from touchpoint.jobs.definitions import Job, configured
from touchpoint.jobs.runner import JobRunner, JobState

if TYPE_CHECKING:
    import ibis.expr.types as ir

    from touchpoint.config import Settings
    from touchpoint.warehouse import Warehouse

GRACE_SECONDS = 60.0


def _ts(value: datetime | None) -> float | None:
    return None if value is None else value.replace(tzinfo=UTC).timestamp()


def _iso(seconds: float | None) -> str | None:
    return None if seconds is None else datetime.fromtimestamp(seconds, UTC).replace(tzinfo=None).isoformat()


def _states(wh: Warehouse, jobs: list[Job]) -> list[JobState]:
    """Job states from the run log only (no server runs these jobs now)."""
    history = runlog.summaries(wh)
    out = []
    for job in jobs:
        state = JobState(job)
        h = history.get(job.name)
        if h is not None:
            state.last, state.last_success = h.last, h.last_success
            state.failures, state.runs, state.failed_total = h.failures, h.runs, h.failed_total
            started = _ts(h.last.started_at) if h.last is not None else None
            if started is not None:
                state.next_due = started + (job.backoff(h.failures) if h.failures else job.every)
        out.append(state)
    return out


def _events_since(wh: Warehouse, moments: Sequence[datetime | None]) -> list[int]:
    """How many events were received after each moment (``None``: ever), counted in one scan of the log."""
    if not moments:
        return []
    shape = tuple(at is not None for at in moments)
    naive = [at.astimezone(UTC).replace(tzinfo=None) if at and at.tzinfo else at for at in moments]
    values = [at.isoformat() for at in naive if at is not None]
    row = wh.prepared(_counts_since, *values, key=shape).to_pylist()[0]
    return [int(row[f"n{i}"] or 0) for i in range(len(moments))]


def _counts_since(wh: Warehouse, shape: tuple[bool, ...], *moments: str) -> ir.Table:
    """``n0, n1, ...``: events received after each moment (the values, in order, where ``shape`` is true),
    or all events (where it is false)."""
    import ibis

    events = wh.table("events")
    given = iter(moments)
    counts = {
        f"n{i}": (events.received_at > ibis.literal(next(given)).cast("timestamp")).sum() if dated else events.count()
        for i, dated in enumerate(shape)
    }
    return events.aggregate(**counts)


def _looked_at(state: JobState) -> datetime | None:
    """When an events job last looked at the events: its last success, or a skipped run (it had nothing to do,
    no audience defined: it is not behind)."""
    looked = state.last if state.last is not None and state.last.status == "skipped" else state.last_success
    return looked.started_at if looked is not None else None


def describe(state: JobState, behind: int | None, *, serving: bool, since: float) -> dict[str, Any]:
    """One job's state as the surfaces show it (``behind``: events it has not seen, for an events job)."""
    job, now = state.job, time.time()
    success_at = state.last_success.started_at if state.last_success is not None else None
    looked_at = _looked_at(state)
    running = state.running is not None or (not serving and state.last is not None and state.last.status == "running")
    overdue = False
    if job.enabled and not running and serving:
        if job.trigger == "interval" or state.failures:
            overdue = now > max(state.next_due, since) + max(GRACE_SECONDS, job.every / 2)
        elif behind:
            reference = _ts(looked_at) or since
            overdue = now - max(reference, since) > job.every + GRACE_SECONDS
    if not job.enabled:
        status = "disabled"
    elif running:
        status = "running"
    elif state.failures:
        status = "failing"
    elif overdue:
        status = "overdue"
    elif state.last is None:
        status = "never run"
    else:
        status = "ok"
    if not job.enabled:
        next_due = None
    elif job.trigger == "events" and not state.failures and not behind:
        next_due = "after new events"
    elif job.trigger == "after" and not state.failures:
        next_due = f"after a {'/'.join(job.after)} run"
    else:
        next_due = _iso(max(state.next_due, now) if serving else state.next_due or now)
    return {
        **job.to_dict(),
        "status": status,
        # a failing job's retry in progress is still degraded (else /healthz flickers "ok" during each retry)
        "degraded": status in ("failing", "overdue") or (running and state.failures > 0),
        "running": running,
        "last_run": state.last.to_dict() if state.last is not None else None,
        "last_success_at": success_at.isoformat() if success_at is not None else None,
        "next_due": next_due,
        "failures": state.failures,
        "runs": state.runs,
        "failed_total": state.failed_total,
        "events_behind": behind,
    }


def _described(wh: Warehouse, states: list[JobState], *, serving: bool, since: float) -> list[dict[str, Any]]:
    """Every state described, with the backlog of all events jobs counted in one query."""
    watching = [i for i, state in enumerate(states) if state.job.trigger == "events"]
    behind = dict(zip(watching, _events_since(wh, [_looked_at(states[i]) for i in watching]), strict=True))
    return [describe(state, behind.get(i), serving=serving, since=since) for i, state in enumerate(states)]


def tables(wh: Warehouse, described: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """How stale each derived table is: when the job writing it last succeeded, and events since then."""
    now = time.time()
    described = list(described)
    refreshed = [datetime.fromisoformat(j["last_success_at"]) if j["last_success_at"] else None for j in described]
    unknown = [i for i, j in enumerate(described) if j["events_behind"] is None]
    counted = dict(zip(unknown, _events_since(wh, [refreshed[i] for i in unknown]), strict=True))
    out = []
    for i, job in enumerate(described):
        at = job["last_success_at"]
        behind = job["events_behind"] if job["events_behind"] is not None else counted[i]
        for table in job["tables"]:
            out.append(
                {
                    "table": table,
                    "job": job["name"],
                    "refreshed_at": at,
                    "age_seconds": round(now - (_ts(refreshed[i]) or now), 3) if refreshed[i] else None,
                    "events_since": behind,
                }
            )
    return out


def overview(
    wh: Warehouse,
    settings: Settings,
    *,
    runner: JobRunner | None = None,
    jobs: Iterable[Job] | None = None,
    with_tables: bool = True,
) -> dict[str, Any]:
    """Every job and (``with_tables``) every derived table; ``degraded`` lists the jobs failing or overdue."""
    if runner is not None:
        states, since = runner.states(), runner.started_at
    else:
        states, since = _states(wh, configured(settings, jobs)), 0.0
    described = _described(wh, states, serving=runner is not None, since=since)
    return {
        "served": runner is not None,
        "jobs": described,
        "tables": tables(wh, described) if with_tables else [],
        "degraded": [
            {"name": j["name"], "status": j["status"], "failures": j["failures"]} for j in described if j["degraded"]
        ],
    }


def one(
    wh: Warehouse, settings: Settings, name: str, *, runner: JobRunner | None = None, history: int = 20
) -> dict[str, Any]:
    """One job with its latest runs."""
    from touchpoint.jobs.definitions import get

    if runner is not None:
        state, since = runner.state(name), runner.started_at
    else:
        job = get(name, configured(settings))
        state, since = _states(wh, [job])[0], 0.0
    out = _described(wh, [state], serving=runner is not None, since=since)[0]
    out["history"] = [r.to_dict() for r in runlog.history(wh, name, history)]
    return out
