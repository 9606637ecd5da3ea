"""Liveness and readiness."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from touchpoint import __version__
from touchpoint.api.deps import state

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="Is the server up and the warehouse reachable")
def healthz(request: Request) -> dict[str, Any]:
    app = state(request)
    app.warehouse.ping()
    return {
        "status": "ok",
        "version": __version__,
        "queued_events": app.committer.queued_events,
        "commits": app.committer.stats.commits,
    }
