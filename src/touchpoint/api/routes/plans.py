"""Marketing plans over HTTP: list and read (read key), create a version and store a review (admin key).
The same workflow as ``touchpoint plan``."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body, Query

from touchpoint.api.deps import AdminKey, ReadKey, State
from touchpoint.plan import workflow

router = APIRouter(tags=["plans"])
QUARTER = Query(..., max_length=16, description="the quarter reviewed, e.g. 2026Q3")


@router.get("/v1/plans", summary="Every plan's latest version")
def list_plans(app: State, _key: ReadKey) -> list[dict[str, Any]]:
    return workflow.plans(app.warehouse)


@router.post("/v1/plans", summary="Store a plan (or, with new_version, its next version)", status_code=201)
def create_plan(
    app: State,
    _key: AdminKey,
    document: dict[str, Any] = Body(..., description="the plan document (docs/plan.md)"),
    new_version: bool = Query(False),
    note: str = Query("", max_length=1000),
) -> dict[str, Any]:
    return workflow.create(app.warehouse, document, new_version=new_version, note=note)


@router.get("/v1/plans/{plan_id}", summary="A plan with its arithmetic, roll-up and reviews")
def get_plan(plan_id: str, app: State, _key: ReadKey, version: int | None = Query(None, ge=1)) -> dict[str, Any]:
    return workflow.show(app.warehouse, plan_id, version=version)


@router.get("/v1/plans/{plan_id}/review", summary="The quarterly review, computed now and not stored")
def preview(
    plan_id: str, app: State, _key: ReadKey, quarter: str = QUARTER, version: int | None = Query(None, ge=1)
) -> dict[str, Any]:
    return workflow.review(app.warehouse, plan_id, quarter=quarter, version=version, write=False)


@router.post("/v1/plans/{plan_id}/reviews", summary="Review the plan for a quarter and store the review")
def review(
    plan_id: str, app: State, _key: AdminKey, quarter: str = QUARTER, version: int | None = Query(None, ge=1)
) -> dict[str, Any]:
    return workflow.review(app.warehouse, plan_id, quarter=quarter, version=version, write=True)
