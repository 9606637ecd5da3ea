"""Liveness and readiness, degraded jobs, and the Prometheus metrics."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response

from touchpoint import __version__
from touchpoint.api.deps import ReadKey, state
from touchpoint.api.metrics import CONTENT_TYPE

router = APIRouter(tags=["health"])


def _degraded(request: Request) -> list[dict[str, Any]]:
    app = state(request)
    if app.runner is None:
        return []
    from touchpoint.jobs.status import overview

    degraded: list[dict[str, Any]] = overview(app.warehouse, app.settings, runner=app.runner, with_tables=False)[
        "degraded"
    ]
    if app.metrics is not None:
        app.metrics.set_degraded(degraded, [job.name for job in app.runner.jobs])
    return degraded


@router.get("/healthz", summary="Is the server up, the warehouse reachable, and is any job failing or overdue")
def healthz(request: Request) -> dict[str, Any]:
    """``status`` is ``ok``, or ``degraded`` with the jobs that fail or are overdue (still HTTP 200: the
    collector keeps accepting events; a job's trouble is for an operator, not for a load balancer)."""
    app = state(request)
    app.warehouse.ping()
    degraded = _degraded(request)
    return {
        "status": "degraded" if degraded else "ok",
        "version": __version__,
        "queued_events": app.committer.queued_events,
        "commits": app.committer.stats.commits,
        "degraded_jobs": degraded,
    }


@router.get("/metrics", summary="Prometheus metrics (text format; needs a read API key)")
def metrics(request: Request, _key: ReadKey) -> Response:
    app = state(request)
    _degraded(request)
    body = app.metrics.render() if app.metrics is not None else b""
    return Response(body, media_type=CONTENT_TYPE)
