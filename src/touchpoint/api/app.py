"""The FastAPI application: ``create_app(settings)`` wires the library to HTTP, nothing more."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from touchpoint import __version__, keys, web
from touchpoint.api import errors, security
from touchpoint.api.deps import ACKNOWLEDGED_WAIT_S, AppState
from touchpoint.api.direct import App
from touchpoint.api.limits import BodyLimit, Rates
from touchpoint.api.memory import MemoryCeiling, ceiling_bytes
from touchpoint.api.metrics import Metrics
from touchpoint.api.routes import (
    audiences,
    audit,
    automations,
    collect,
    consent,
    experiments,
    health,
    journeys,
    kpis,
    mmm,
    plans,
    predict,
    privacy,
    profiles,
    quarantine,
    query,
    scores,
)
from touchpoint.api.routes import datamap as datamap_routes
from touchpoint.api.routes import jobs as job_routes
from touchpoint.api.routes import keys as key_routes
from touchpoint.automations import channels
from touchpoint.collect.body import Limits
from touchpoint.collect.collector_log import CollectorLog
from touchpoint.collect.committer import Collector, GroupCommitter
from touchpoint.config import Settings, get_settings
from touchpoint.jobs import Job, JobRunner, configured
from touchpoint.privacy import retention
from touchpoint.warehouse import Warehouse, open_warehouse
from touchpoint.warehouse.urls import redact

DESCRIPTION = """
touchpoint's HTTP API. The collector endpoints (`/v1/track`, `/v1/batch`, ...) follow the
Segment HTTP tracking API so existing client libraries work unchanged; they take a source's
write key. Every other endpoint takes an API key (`Authorization: Bearer <key>`) made with
`touchpoint keys create NAME --scope read|admin`.

Errors always have the shape `{"success": false, "error": {"code", "message", "hint"}}`.
"""


def warm_up() -> None:
    """Pay one-time costs (pyarrow's first conversions take seconds) before the first request, not in it."""
    from touchpoint.collect.normalize import EventRows, utcnow

    rows = EventRows()
    rows.add_raw(b'{"type":"track","userId":"warm-up","event":"Warm Up"}', received_at=utcnow(), source=None)
    rows.add_raw(b"{}", received_at=utcnow(), source=None)
    rows.to_arrow()
    rows.quarantine_arrow()


log = logging.getLogger("touchpoint.server")


def collector(warehouse: Warehouse, settings: Settings) -> Collector:
    """The collector's write path, started: the group committer (a 200 after the warehouse commit) or, with
    ``collector_log``, the collector log (a 200 after an fsync'd append; its start replays what is left)."""
    if settings.uses_collector_log():
        return CollectorLog(
            warehouse,
            settings.resolved_collector_log_dir(),
            max_events=settings.commit_max_events,
            load_ms=settings.collector_log_load_ms,
            queue_max_events=settings.queue_max_events,
            segment_bytes=settings.collector_log_segment_mb * 1024 * 1024,
        ).start()
    return GroupCommitter(
        warehouse,
        max_events=settings.commit_max_events,
        max_wait_ms=settings.commit_max_wait_ms,
        queue_max_events=settings.queue_max_events,
    ).start()


JOB_STOP_SECONDS = 10.0  # how long a shutdown waits for running jobs (long ones stop at their next step)


def _barrier(committer: Collector) -> Callable[[], bool]:
    """The jobs' wait for the consent the collector acknowledged (:attr:`JobContext.acknowledged`): the
    collector log's flush of the events that may carry consent, at most :data:`ACKNOWLEDGED_WAIT_S`; nothing
    to wait for with the group commit."""
    return lambda: committer.flush(ACKNOWLEDGED_WAIT_S, consent=True)


def create_app(
    settings: Settings | None = None, *, jobs: Iterable[Job] | None = None, run_jobs: bool | None = None
) -> FastAPI:
    """The app; its lifespan opens the warehouse, starts the group committer and the job runner
    (``jobs``: default the registry, with ``[jobs.NAME]`` applied; ``run_jobs=False``: none; by default
    the jobs given, else the setting ``run_jobs``)."""
    settings = settings or get_settings()
    if run_jobs is None:
        run_jobs = jobs is not None or settings.run_jobs
    configured(settings, jobs)  # a [jobs.NAME] naming no job stops the server before it opens anything
    retention.rules(settings)  # so does a retention rule for a table that has none (no such table, no time)
    if settings.uses_collector_log():  # so does a collector log with nowhere to live
        settings.resolved_collector_log_dir()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        warehouse = open_warehouse(settings)
        warm_up()
        committer = collector(warehouse, settings)
        usage = keys.UsageRecorder(warehouse).start()
        runner = JobRunner(warehouse, settings, jobs, acknowledged=_barrier(committer)).start() if run_jobs else None
        if runner is not None:  # the automations' fast lane runs as soon as events are committed
            committer.listeners.append(runner.events_committed)
        metrics = Metrics()
        metrics.attach(committer, runner)
        metrics.watch_analytics(warehouse, settings)
        memory = MemoryCeiling(ceiling_bytes(settings.memory_ceiling_mb))
        metrics.watch_memory(memory)
        app.state.touchpoint = AppState(
            settings=settings,
            warehouse=warehouse,
            committer=committer,
            limits=Limits(settings.max_event_bytes, settings.max_batch_bytes, settings.max_batch_events),
            usage=usage,
            runner=runner,
            metrics=metrics,
            rates=Rates(settings.rate_limit_per_key, settings.rate_limit_per_address),
            memory=memory,
        )
        log.info(
            "serving", extra={"fields": {"warehouse": redact(settings.resolved_warehouse_url()), "jobs": run_jobs}}
        )
        try:
            yield
        finally:
            # uvicorn has stopped accepting and answered what was in flight; now: jobs are told to stop
            # (long ones end at their next step), every queued event is committed, then the jobs are waited for.
            if runner is not None:
                runner.stopping.set()
            usage.stop()
            committer.stop()
            log.info("committed every queued event", extra={"fields": {"events": committer.stats.events}})
            if runner is not None:
                runner.stop(JOB_STOP_SECONDS)
            channels.close_idle()  # the SMTP connections delivery runs kept open for the next one
            warehouse.close()
            log.info("stopped")

    app = App(
        title="touchpoint",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url="/docs",
        redoc_url=None,
    )
    # Browsers send events cross-origin (analytics.js); the write key, not the origin, authenticates.
    app.add_middleware(
        CORSMiddleware,
        allow_origins=["*"],
        allow_methods=["GET", "POST", "OPTIONS"],
        allow_headers=["*"],
        max_age=86400,
    )
    errors.install(app)
    app.add_middleware(BodyLimit, max_bytes=settings.max_request_bytes, exempt=collect.PATHS)
    security.install(app, settings)  # production: HSTS
    app.include_router(collect.router)
    app.route_directly(collect.KINDS, collect.ingest)  # the same handler, without FastAPI's routing (api.direct)
    app.include_router(health.router)
    app.include_router(quarantine.router)
    app.include_router(key_routes.router)
    app.include_router(experiments.router)
    app.include_router(journeys.router)
    app.include_router(profiles.router)
    app.include_router(privacy.router)
    app.include_router(predict.router)
    app.include_router(mmm.router)
    app.include_router(job_routes.router)
    app.include_router(query.router)
    app.include_router(kpis.router)
    app.include_router(plans.router)
    app.include_router(audiences.router)
    app.include_router(scores.router)
    app.include_router(automations.router)
    app.include_router(audit.router)
    app.include_router(consent.router)
    app.include_router(datamap_routes.router)
    app.include_router(web.router)  # the dashboard at /, last: the API's paths win
    return app
