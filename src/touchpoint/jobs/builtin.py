"""The built-in jobs: each calls one workflow of the library and writes what it derives.

============  ===============================  ==========================================================
job           default cadence                  what it refreshes
============  ===============================  ==========================================================
profiles      after new events, at most 0.25s  identities (incremental) and profiles with their computed
                                               traits (RFM, orders, channels: part of ``profiles.build``)
sessions      after new events, at most 10m    the ``sessions`` table
attribution   hourly                           ``attribution_results``: every model, CPA and ROAS
experiments   every 15m                        ``experiment_results``: each running experiment analysed
predictions   daily                            ``predictions`` (CLV, P(alive), next purchase), ``replenishment``
mmm           weekly                           the marketing-mix model in ``<data_dir>/mmm`` (fit in a
                                               separate process: the API never waits for the sampler)
audiences     after new events or a profiles   ``audience_memberships`` (incremental: touched profiles and
              or predictions run, at most 5s   expiring windows), entries and exits as facts
scores        after new events or a profiles   ``score_results`` with band entries and stage changes
              or predictions run, at most 5s   (incremental: the profiles touched since the last run)
scores_full   every 15m                        every profile rescored: points decayed by the half-life and
                                               bands left or entered with no new event
automations   after a profiles, audiences or   ``automation_entries`` and ``automation_outbox`` (who entered,
              scores run or a commit of        in which arm; what to send); a run that decided something
              events, at most 0.25s            wakes ``deliveries``
flows         every 1m                         the clock's decisions: date and schedule triggers, flows whose
                                               wait or timeout ended (``automation_flows``)
deliveries    every 15s, and 0.05s after an    sends the outbox rows that are due: just decided, retries,
              automations or flows run that    steps after a wait
              decided something
============  ===============================  ==========================================================
"""

from __future__ import annotations

import json
import logging
import multiprocessing
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa

from touchpoint.errors import InvalidInput, NotFound, TouchpointError
from touchpoint.jobs.definitions import Job, JobContext, Skip, register
from touchpoint.warehouse.clock import utcnow

_now = utcnow  # the warehouse's clock (touchpoint.warehouse.clock)


def _orders(ctx: JobContext) -> int:
    from touchpoint.collect.ecommerce import ORDER_COMPLETED

    events = ctx.warehouse.table("events")
    return int(ctx.warehouse.to_arrow(events.filter(events.event == ORDER_COMPLETED).count()).as_py())


# -- profiles ------------------------------------------------------------------------------------------
def refresh_profiles(ctx: JobContext) -> dict[str, Any]:
    """Resolve the events stored since the last run, then refresh the profiles they changed."""
    from touchpoint.profiles.workflow import update

    if ctx.warehouse.count("events") == 0:
        raise Skip("no events yet")
    out = update(ctx.warehouse)
    return {"rows": out["profiles"]["recomputed"], **out}


def refresh_sessions(ctx: JobContext) -> dict[str, Any]:
    from touchpoint.collect.channels import rules_from
    from touchpoint.journeys.sessions import build_sessions_table

    if ctx.warehouse.count("events") == 0:
        raise Skip("no events yet")
    rules = ctx.settings.journeys_channel_rules
    stored = build_sessions_table(
        ctx.warehouse,
        timeout_minutes=ctx.settings.journeys_session_timeout_minutes,
        rules=rules_from(rules) if rules else None,
    )
    return {"rows": stored}


# -- measuring -------------------------------------------------------------------------------------------
def refresh_attribution(ctx: JobContext) -> dict[str, Any]:
    """Every attribution model on the journeys of the event log, with CPA and ROAS; the latest run is kept."""
    from touchpoint.collect.channels import rules_from
    from touchpoint.journeys.workflow import attribute_warehouse

    if _orders(ctx) == 0:
        raise Skip("no 'Order Completed' events yet")
    rules = ctx.settings.journeys_channel_rules
    try:
        out = attribute_warehouse(
            ctx.warehouse,
            timeout_minutes=ctx.settings.journeys_session_timeout_minutes,
            rules=rules_from(rules) if rules else None,
        )
    except (NotFound, InvalidInput) as exc:  # no journey ends in a conversion yet
        raise Skip(exc.message) from exc
    row = pa.table(
        {
            "run_at": [_now()],
            "models": [",".join(out.get("models", []))],
            "paths": [int(out.get("input", {}).get("paths", 0))],
            "result": [json.dumps(out, default=str)],
        }
    )
    ctx.warehouse.replace("attribution_results", row)
    return {"rows": 1, "models": out.get("models"), "paths": out.get("input", {}).get("paths")}


def refresh_experiments(ctx: JobContext) -> dict[str, Any]:
    """Analyse every running experiment; one that cannot be analysed yet keeps its reason in the row."""
    from touchpoint.experiments.definitions import list_experiments
    from touchpoint.experiments.results import analyze_experiment

    running = [e for e in list_experiments(ctx.warehouse) if e.status == "running"]
    if not running:
        raise Skip("no running experiment")
    rows: list[dict[str, Any]] = []
    for exp in running:
        ctx.check_stop()
        try:
            result: dict[str, Any] = analyze_experiment(ctx.warehouse, exp.key).to_dict()
            status = "ok"
        except TouchpointError as exc:  # e.g. no exposures yet: a state of the data, not a failed job
            result, status = {"error": {"code": exc.code, "message": exc.message, "hint": exc.hint}}, exc.code
        rows.append(
            {"key": exp.key, "analyzed_at": _now(), "status": status, "result": json.dumps(result, default=str)}
        )
    ctx.warehouse.upsert("experiment_results", pa.Table.from_pylist(rows), key=["key"])
    return {"rows": len(rows), "analyzed": sum(r["status"] == "ok" for r in rows)}


def refresh_predictions(ctx: JobContext) -> dict[str, Any]:
    """Refit the CLV models on the orders, score every customer, and the replenishment due dates."""
    from touchpoint.predict.workflow import clv_from_warehouse, replenishment

    if _orders(ctx) == 0:
        raise Skip("no 'Order Completed' events yet")
    runs = ctx.warehouse.table("prediction_runs")
    ctx.fresh_enough(ctx.warehouse.to_arrow(runs.run_at.max()).as_py(), "the latest prediction run")
    try:
        out = clv_from_warehouse(ctx.warehouse, write=True)
    except (NotFound, InvalidInput) as exc:  # too few customers to fit
        raise Skip(exc.message) from exc
    ctx.check_stop()
    due = len(replenishment(ctx.warehouse, write=True))
    written = out.get("written", {}).get("predictions", 0)
    return {"rows": written, "customers": out.get("customers"), "replenishment": due}


# -- the marketing-mix model ---------------------------------------------------------------------------
def _saved_setup(target: Path) -> tuple[str, list[str] | None, dict[str, Any]]:
    """The KPI, channels and configuration of the saved model (a refit keeps what was chosen), else defaults."""
    if not (target / "model.json").exists():
        return "revenue", None, {}
    from touchpoint.mmm.workflow import load

    try:
        saved = load(target)
    except Exception as exc:  # unreadable or from another version: refit with the defaults
        logging.getLogger("touchpoint.jobs").warning("the saved marketing-mix model cannot be read (%s)", exc)
        return "revenue", None, {}
    return saved.data.target_name, list(saved.data.channels), saved.config.to_dict()


def _fit_child(
    data: dict[str, Any], config: dict[str, Any], out_dir: str, reply: Any, previous: str | None = None
) -> None:  # pragma: no cover
    """In the worker process: fit and save (compared with the model in ``previous``), send back the
    summary's headline and the channels whose ROMI drifted (or the error)."""
    try:
        from touchpoint.mmm.config import MMMConfig
        from touchpoint.mmm.dataset import MMMData
        from touchpoint.mmm.workflow import drift_report, fit_and_save

        summary = fit_and_save(MMMData.from_dict(data), MMMConfig.from_dict(config), out_dir, previous=previous)
        reply.send(
            {"ok": True, "status": summary.get("status"), "weeks": summary.get("weeks"), **drift_report(summary)}
        )
    except BaseException as exc:
        reply.send({"ok": False, "error": f"{type(exc).__name__}: {exc}"})


def refit_mmm(ctx: JobContext) -> dict[str, Any]:
    """Pull the weekly summary from the engine, fit in a worker process, swap the saved model in.

    A saved model keeps its KPI, channels and configuration (the demo fits new-customer revenue)."""
    from touchpoint.mmm.config import MMMConfig
    from touchpoint.mmm.dataset import from_warehouse
    from touchpoint.mmm.workflow import model_dir, with_calibrations

    target = model_dir(ctx.settings.data_dir)
    kpi, channels, config = _saved_setup(target)
    config = with_calibrations(ctx.warehouse, MMMConfig.from_dict(config)).to_dict()  # the accepted lift tests
    if (target / "fit.json").exists():
        saved = datetime.fromtimestamp((target / "fit.json").stat().st_mtime, UTC).replace(tzinfo=None)
        ctx.fresh_enough(saved, "the saved marketing-mix model")
    try:
        data = from_warehouse(ctx.warehouse, kpi=kpi, channels=channels)
    except (NotFound, InvalidInput) as exc:  # no orders, no spend, or no overlap
        raise Skip(exc.message) from exc
    work = target.with_name(target.name + ".next")
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    spawn = multiprocessing.get_context("spawn")  # a fresh interpreter: no lock or thread of ours in it
    receive, send = spawn.Pipe(duplex=False)
    child = spawn.Process(
        target=_fit_child, args=(data.to_dict(), config, str(work), send, str(target)), name="touchpoint-mmm-fit"
    )
    child.start()
    send.close()
    reply: dict[str, Any] = {"ok": False}
    try:
        while not receive.poll(0.5):
            if ctx.stopping.is_set():
                child.terminate()
                ctx.check_stop()
            if not child.is_alive() and not receive.poll(0.1):
                raise RuntimeError(f"the marketing-mix fit process died (exit code {child.exitcode})")
        reply = receive.recv()
    finally:
        child.join(10)
        if child.is_alive():
            child.kill()
        if not reply["ok"]:  # interrupted or failed: the saved model stays as it was
            shutil.rmtree(work, ignore_errors=True)
    if not reply["ok"]:
        raise RuntimeError(f"the marketing-mix fit failed: {reply['error']}")
    _swap(work, target)
    if reply.get("drift"):  # a refit that moved a channel's ROMI outside its previous interval
        logging.getLogger("touchpoint.jobs").warning("mmm: %s", "; ".join(reply["drift_warnings"]))
    return {
        "rows": len(data.dates),
        "status": reply.get("status"),
        "model_dir": str(target),
        "drift": reply.get("drift", []),
        "drift_warnings": reply.get("drift_warnings", []),
        "calibrations": len(config.get("calibrations", [])),
    }


# -- audiences and scores ------------------------------------------------------------------------------
def refresh_audiences(ctx: JobContext) -> dict[str, Any]:
    """Bring every saved audience up to date (each incrementally when it can)."""
    from touchpoint.audiences import store, workflow

    if not store.list_all(ctx.warehouse):
        raise Skip("no audiences are defined (`touchpoint audiences create`)")
    if ctx.warehouse.count("profiles") == 0:
        raise Skip("no profiles yet: the profiles job builds them")
    results = workflow.refresh_audiences(ctx.warehouse)
    changed = sum(r["entered"] + r["exited"] for r in results)
    return {"rows": changed, "audiences": len(results), "entered": sum(r["entered"] for r in results)}


def _scores(ctx: JobContext, *, full: bool) -> dict[str, Any]:
    from touchpoint.audiences import scores

    names = [s["name"] for s in scores.list_all(ctx.warehouse)]
    if not names:
        raise Skip("no scores are defined (`touchpoint scores create`)")
    if ctx.warehouse.count("profiles") == 0:
        raise Skip("no profiles yet: the profiles job builds them")
    done = []
    for name in names:
        ctx.check_stop()
        done.append(scores.refresh(ctx.warehouse, name, full=full))
    return {
        "rows": sum(r["profiles"] for r in done),
        "scores": names,
        "modes": [r["mode"] for r in done],
        "band_entries": sum(r["band_entries"] for r in done),
        "promotions": sum(r["promotions"] for r in done),
    }


def refresh_scores(ctx: JobContext) -> dict[str, Any]:
    """Rescore the profiles touched since each lead score's last run (a full run when it must)."""
    return _scores(ctx, full=False)


def refresh_scores_full(ctx: JobContext) -> dict[str, Any]:
    """Rescore every profile with every lead score: decay and bands crossed with no new event."""
    return _scores(ctx, full=True)


# -- automations ---------------------------------------------------------------------------------------
def run_automations(ctx: JobContext) -> dict[str, Any]:
    """Evaluate every automation's trigger since its watermark: entries and outbox rows. Sending is the
    ``deliveries`` job's, which a run that decided something wakes (a decision never waits for the SMTP
    outcomes of an earlier batch)."""
    import time

    from touchpoint.automations import store, workflow

    if not store.list_all(ctx.warehouse):
        raise Skip("no automations are defined (`touchpoint automations create`)")
    wall, cpu = time.perf_counter(), time.thread_time()
    # woken by a commit alone: only event triggers can have anything new (the fast lane)
    decided = workflow.evaluate(ctx.warehouse, settings=ctx.settings, events_only=ctx.trigger == "events")
    entered = sum(d["entered"] for d in decided)
    fast = sum(d.get("fast", 0) for d in decided)
    moved = sum(n for d in decided for k, n in (d.get("flows") or {}).items() if k in ("active", "waiting", "done"))
    return {
        "rows": entered + moved,  # 0: nothing new to send, the deliveries job is not woken
        "entered": entered,
        "fast": fast,
        "outbox": sum(d.get("outbox", 0) for d in decided),
        "decide_s": round(time.perf_counter() - wall, 3),
        "decide_cpu_s": round(time.thread_time() - cpu, 3),
    }


def run_flows(ctx: JobContext) -> dict[str, Any]:
    """The clock's decisions: date and schedule triggers that came due, and flows whose wait ended."""
    from touchpoint.automations import store, workflow

    if not store.list_all(ctx.warehouse, status="active"):
        raise Skip("no active automations")
    decided = workflow.evaluate(ctx.warehouse, settings=ctx.settings, clock=True)
    entered = sum(d["entered"] for d in decided)
    moved = sum(n for d in decided for k, n in (d.get("flows") or {}).items() if k in ("active", "waiting", "done"))
    return {"rows": entered + moved, "entered": entered, "advanced": moved}


def run_deliveries(ctx: JobContext) -> dict[str, Any]:
    """Send the outbox rows that are due: just decided (woken by an ``automations`` or ``flows`` run that
    decided something), retries after their backoff, steps after a wait. ``send_s`` and ``send_cpu_s``: the
    run's wall seconds and this thread's CPU seconds."""
    import time

    from touchpoint.automations import store, workflow

    if not store.list_all(ctx.warehouse, status="active"):
        raise Skip("no active automations")
    wall, cpu = time.perf_counter(), time.thread_time()
    delivered = workflow.deliver(ctx.warehouse, ctx.settings, acknowledged=ctx.acknowledged)
    return {
        "rows": sum(delivered.values()),
        "delivered": delivered,
        "send_s": round(time.perf_counter() - wall, 3),
        "send_cpu_s": round(time.thread_time() - cpu, 3),
    }


def enforce_retention(ctx: JobContext) -> dict[str, Any]:
    """Delete the rows older than their table's retention rule; each deletion is logged in the audit log."""
    from touchpoint.privacy import retention

    return retention.enforce(ctx.warehouse, ctx.settings)


def _swap(new: Path, target: Path) -> None:
    """Put the directory ``new`` where ``target`` is; readers see the old model or the new one."""
    old = target.with_name(target.name + ".old")
    shutil.rmtree(old, ignore_errors=True)
    if target.exists():
        target.rename(old)
    new.rename(target)
    shutil.rmtree(old, ignore_errors=True)


#: What the automations and flows jobs write (automation_flows: flows with state; audience_memberships: the
#: manual audiences' steps).
AUTOMATION_WRITES = (
    "automation_entries",
    "automation_outbox",
    "automation_state",
    "automation_flows",
    "audience_memberships",
)

#: what both lead-score jobs write and read (the incremental one also reads its state and the merges)
SCORE_TABLES = ("score_results", "score_band_entries", "score_stages", "score_state")
SCORE_READS = (
    "scores",
    "score_results",
    "audiences",
    "profiles",
    "profile_traits",
    "predictions",
    "propensity_scores",
    "replenishment",
    "events",
)

BUILTIN: tuple[Job, ...] = (
    Job(
        "profiles",
        refresh_profiles,
        every=0.25,
        trigger="events",
        tables=(
            "identity_nodes",
            "identity_links",
            "identity_recent",
            "identity_merge_log",
            "identity_state",
            "event_identities",
            "profiles",
            "profile_traits",
        ),
        reads=("events", "identity_overrides", "identity_state"),
        doc="Resolve new events' identities and rebuild profiles with their computed traits.",
    ),
    Job(
        "sessions",
        refresh_sessions,
        every=600.0,
        trigger="events",
        tables=("sessions",),
        reads=("events",),
        doc="Rebuild the sessions table (journeys).",
    ),
    Job(
        "attribution",
        refresh_attribution,
        every=3600.0,
        tables=("attribution_results",),
        reads=("events", "spend"),
        models=("attribution",),
        doc="Fit every attribution model on the journeys, with CPA and ROAS.",
    ),
    Job(
        "experiments",
        refresh_experiments,
        every=900.0,
        tables=("experiment_results",),
        reads=("experiments", "events"),
        doc="Analyse every running experiment.",
    ),
    Job(
        "predictions",
        refresh_predictions,
        every=86400.0,
        tables=("predictions", "prediction_runs", "replenishment"),
        reads=("events", "prediction_runs"),
        models=("clv", "replenishment"),
        doc="Refit the CLV models and score every customer; replenishment due dates.",
    ),
    Job(
        "mmm",
        refit_mmm,
        every=7 * 86400.0,
        tables=(),
        reads=("events", "spend", "mmm_calibrations"),
        models=("mmm",),
        doc="Refit the marketing-mix model on the weekly summary (in a worker process).",
        retry_base=60.0,
    ),
    Job(
        "audiences",
        refresh_audiences,
        every=5.0,
        trigger="events",
        tables=("audience_memberships", "audience_state"),
        reads=(
            "audiences",
            "audience_versions",
            "audience_state",
            "profiles",
            "profile_traits",
            "predictions",
            "propensity_scores",
            "replenishment",
            "events",
        ),
        after=("profiles", "predictions"),
        doc="Bring every audience up to date: entries and exits of touched profiles and expiring windows.",
    ),
    Job(
        "scores",
        refresh_scores,
        every=5.0,
        trigger="events",
        tables=SCORE_TABLES,
        reads=(*SCORE_READS, "score_state", "identity_merge_log"),
        after=("profiles", "predictions"),
        doc="Rescore the profiles touched since the last run with every lead score; band entries and stage changes.",
    ),
    Job(
        "scores_full",
        refresh_scores_full,
        every=900.0,
        tables=SCORE_TABLES,
        reads=SCORE_READS,
        doc="Rescore every profile with every lead score: points decay and cross band thresholds with no event.",
    ),
    Job(
        "automations",
        run_automations,
        every=0.25,
        trigger="after",
        tables=AUTOMATION_WRITES,
        reads=(
            "automations",
            "automation_state",
            "automation_entries",
            "automation_flows",
            "events",
            "audience_memberships",
            "profiles",
            "profile_traits",
            "predictions",
            "replenishment",
            "score_band_entries",
            "unsubscribes",
        ),
        # triggers wait for their profiles; audience and score triggers for the refresh; event triggers of
        # known people also go at once, through the fast lane (docs/decisions.md, "the fast lane")
        after=("profiles", "audiences", "scores", "scores_full"),
        on_commit=True,
        wakes_when_empty=False,
        doc="Enter the contacts each automation's trigger selects (holdout decided); `deliveries` sends.",
    ),
    Job(
        "flows",
        run_flows,
        every=60.0,
        tables=AUTOMATION_WRITES,
        reads=(
            "automations",
            "automation_state",
            "automation_flows",
            "events",
            "audience_memberships",
            "profiles",
            "profile_traits",
            "predictions",
            "replenishment",
            "score_results",
        ),
        wakes_when_empty=False,
        doc="Decide what the clock brings: date and schedule triggers, and flows whose wait or timeout ended.",
    ),
    Job(
        "deliveries",
        run_deliveries,
        every=15.0,
        tables=("automation_outbox",),
        reads=(
            "automations",
            "automation_outbox",
            "events",
            "profiles",
            "profile_traits",
            "predictions",
            "unsubscribes",
        ),
        # woken by a run that decided something, so a decision never waits for an earlier batch's sends
        after=("automations", "flows"),
        after_every=0.05,
        doc="Send the outbox rows that are due: just decided, retries with backoff, steps after a wait.",
    ),
    Job(
        "retention",
        enforce_retention,
        every=86400.0,
        tables=("events", "quarantine", "audit_log"),
        doc="Delete rows older than their table's retention rule (setting `retention`); log each deletion.",
    ),
)

for _job in BUILTIN:
    register(_job)
