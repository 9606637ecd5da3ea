"""``/v1/jobs``: the server's jobs, how stale each derived table is, and running a job now."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse

from touchpoint.api.deps import AdminKey, AppState, ReadKey, State
from touchpoint.errors import WarehouseError
from touchpoint.jobs import runlog
from touchpoint.jobs.status import one, overview

router = APIRouter(tags=["jobs"])


def _runner(app: AppState) -> Any:
    if app.runner is None:
        raise WarehouseError("this server runs no jobs", hint="start it with `touchpoint serve`")
    return app.runner


@router.get("/v1/jobs", summary="Every job (cadence, last run, status, next due, failures) and table staleness")
def list_jobs(app: State, _key: ReadKey) -> dict[str, Any]:
    return overview(app.warehouse, app.settings, runner=_runner(app))


@router.get("/v1/jobs/{name}", summary="One job with its latest runs")
def show_job(name: str, app: State, _key: ReadKey, history: int = Query(20, ge=1, le=500)) -> dict[str, Any]:
    return one(app.warehouse, app.settings, name, runner=_runner(app), history=history)


@router.post(
    "/v1/jobs/{name}/run",
    summary="Run a job now (202; with wait=N, wait up to N seconds and return the run)",
    status_code=202,
    responses={409: {"description": "the job is running already"}},
)
def run_job(
    name: str,
    app: State,
    _key: AdminKey,
    wait: float = Query(0, ge=0, le=3600, description="seconds to wait for the run to finish"),
) -> Any:
    runner = _runner(app)
    run_id = runner.run_now(name)
    finished = runner.wait(name, run_id, wait) if wait else None
    if finished is not None:
        return JSONResponse({"job": name, "run": finished.to_dict()}, status_code=200)
    runs = [r for r in runlog.history(app.warehouse, name, 5) if r.run_id == run_id]
    return {"job": name, "run_id": run_id, "run": runs[0].to_dict() if runs else None, "status": "requested"}
