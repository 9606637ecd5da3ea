"""The run log: every run of every job in the ``job_runs`` table, and what it says about staleness.

A run is inserted as ``running`` when it starts and updated when it ends (``succeeded``, ``failed``,
``skipped`` or ``interrupted``). A server killed mid-run leaves ``running`` rows behind; the next start marks
them ``interrupted`` (:func:`mark_interrupted`). A job that runs every few seconds (the runner's
:data:`~touchpoint.jobs.runner.QUICK`: profiles, automations, deliveries) has its run written once, when it
ends (``start(..., record=False)``, then ``finish(..., started=False)``): two transactions of the shared write
lane per run were a third of a deciding run's time (docs/decisions.md, 2026-12-03), and such a run, killed, is
simply not in the log (the server's job state shows it while it runs). A derived table is as fresh as the
start of the last successful run of the job that writes it: the events it could see were those committed by
then.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from touchpoint.warehouse import Warehouse, schema
from touchpoint.warehouse.clock import utcnow

if TYPE_CHECKING:
    import ibis.expr.types as ir

TABLE = schema.JOB_RUNS.name
LANE = "runs"  # the run log's own write lane: a run's record never waits for a derived table's swap
STATUSES = ("running", "succeeded", "failed", "skipped", "interrupted")
ERROR_CHARS = 2000  # an engine's message can run to pages


now = utcnow  # the warehouse's clock (touchpoint.warehouse.clock)


@dataclass
class Run:
    """One run of a job, as ``job_runs`` holds it."""

    run_id: str
    job: str
    trigger: str
    attempt: int
    started_at: datetime
    finished_at: datetime | None = None
    status: str = "running"
    rows: int | None = None
    seconds: float | None = None
    error: str | None = None
    summary: str | None = None

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["summary"] = json.loads(self.summary) if self.summary else None
        for key in ("started_at", "finished_at"):
            out[key] = out[key].isoformat() if out[key] is not None else None
        return out


def _table(runs: list[Run]) -> pa.Table:
    rows = [asdict(r) for r in runs]
    return pa.Table.from_pylist(rows, schema=schema.JOB_RUNS.schema.to_pyarrow())


def start(
    wh: Warehouse, job: str, trigger: str, attempt: int = 1, run_id: str | None = None, *, record: bool = True
) -> Run:
    """Record that ``job`` starts now (with ``record=False``, only the run in memory: :func:`finish` writes it)."""
    run = Run(run_id or uuid.uuid4().hex, job, trigger, attempt, now())
    if record:
        with wh.write(lane=LANE) as tx:
            tx.append(TABLE, _table([run]))
    return run


def finish(
    wh: Warehouse,
    run: Run,
    status: str,
    *,
    rows: int | None = None,
    error: str | None = None,
    summary: Any = None,
    started: bool = True,
) -> Run:
    """Record how ``run`` ended (``started=False``: its start was not written, the whole run is appended)."""
    if status not in STATUSES:
        raise ValueError(f"run status {status!r} is not one of {STATUSES}")
    run.finished_at = now()
    run.status = status
    run.rows = rows
    run.seconds = round((run.finished_at - run.started_at).total_seconds(), 3)
    run.error = error[:ERROR_CHARS] if error else None
    run.summary = json.dumps(summary, default=str) if summary is not None else None
    if not started:
        with wh.write(lane=LANE) as tx:
            tx.append(TABLE, _table([run]))
        return run
    values = {k: getattr(run, k) for k in ("finished_at", "status", "rows", "seconds", "error", "summary")}
    with wh.write(lane=LANE) as tx:
        tx.update(TABLE, values, key="run_id", value=run.run_id)
    return run


def mark_interrupted(wh: Warehouse) -> int:
    """Runs left ``running`` by a process that stopped without finishing them; returns how many."""
    t = wh.table(TABLE)
    ids = wh.to_arrow(t.filter(t.status == "running").select("run_id")).column("run_id").to_pylist()
    with wh.write(lane=LANE) as tx:
        for run_id in ids:
            tx.update(
                TABLE,
                {"status": "interrupted", "error": "the server stopped during the run", "finished_at": now()},
                key="run_id",
                value=run_id,
            )
    return len(ids)


def _runs(rows: list[dict[str, Any]]) -> list[Run]:
    return [Run(**row) for row in rows]


def history(wh: Warehouse, job: str, limit: int = 20) -> list[Run]:
    """The latest ``limit`` runs of ``job``, newest first."""
    t = wh.table(TABLE)
    q = t.filter(t.job == job).order_by([t.started_at.desc(), t.run_id.desc()]).limit(limit)
    return _runs(wh.to_arrow(q).to_pylist())


@dataclass
class JobHistory:
    """What the run log says about one job: its last run, last success, consecutive failures, totals."""

    last: Run | None = None
    last_success: Run | None = None
    failures: int = 0  # consecutive, ending with the last finished run
    runs: int = 0
    failed_total: int = 0


def _last(wh: Warehouse, status: str) -> ir.Table:
    """Each job's latest run (``status`` ``"any"``) or latest run of that status (a key: it shapes the query)."""
    import ibis

    t = wh.table(TABLE)
    t = t if status == "any" else t.filter(t.status == status)
    latest = ibis.row_number().over(group_by=t.job, order_by=[t.started_at.desc(), t.run_id.desc()])
    return t.mutate(_n=latest).filter(lambda r: r._n == 0).drop("_n")


def _counts(wh: Warehouse) -> ir.Table:
    """Per job: runs, failed runs, and failures since the last settled (neither failed nor running) run."""
    t = wh.table(TABLE)
    settled = (
        t.filter(~t.status.isin(["failed", "running"])).group_by("job").agg(settled_at=lambda r: r.started_at.max())
    )
    j = t.left_join(settled, "job")
    return j.group_by(j.job).agg(
        runs=j.count(),
        failed_total=(j.status == "failed").sum(),
        failures=((j.status == "failed") & (j.settled_at.isnull() | (j.started_at > j.settled_at))).sum(),
    )


def summaries(wh: Warehouse) -> dict[str, JobHistory]:
    """Per job: the last run, the last successful one, consecutive failures and totals (aggregated in the
    engine, by reads compiled once: :meth:`~touchpoint.warehouse.Warehouse.prepared`)."""
    out: dict[str, JobHistory] = {}
    for row in wh.prepared(_counts).to_pylist():
        out[row["job"]] = JobHistory(
            runs=int(row["runs"]), failed_total=int(row["failed_total"] or 0), failures=int(row["failures"] or 0)
        )
    for row in wh.prepared(_last, key="any").to_pylist():
        out[row["job"]].last = Run(**row)
    for row in wh.prepared(_last, key="succeeded").to_pylist():
        out[row["job"]].last_success = Run(**row)
    return out


def prune(wh: Warehouse, keep_days: float = 30.0) -> int:
    """Delete finished runs older than ``keep_days`` (the last run of each job is always kept)."""
    from datetime import timedelta

    t = wh.table(TABLE)
    cutoff = now() - timedelta(days=keep_days)
    latest = t.group_by("job").agg(last=t.started_at.max())
    old = t.join(latest, "job")
    old = old.filter((old.started_at < cutoff) & (old.started_at < old.last) & (old.status != "running"))
    ids = wh.to_arrow(old.select("run_id")).column("run_id").to_pylist()
    if ids:
        with wh.write(lane=LANE) as tx:
            for i in range(0, len(ids), 1000):
                tx.delete(TABLE, "run_id", ids[i : i + 1000])
    return len(ids)
