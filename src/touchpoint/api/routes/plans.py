"""Marketing plans over HTTP: list and read (read key), create a version and store a review (admin key).
The same workflow as ``touchpoint plan``."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body, Query
from fastapi.responses import Response

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


@router.get(
    "/v1/plans/{plan_id}/export",
    summary="The quarter's review as a one-pager (HTML or PDF)",
    response_class=Response,
    responses={200: {"content": {"text/html": {}, "application/pdf": {}}}},
)
def export(
    plan_id: str,
    app: State,
    _key: ReadKey,
    quarter: str = QUARTER,
    format: str = Query("html", pattern="^(html|pdf)$", description="html or pdf"),
) -> Response:
    from touchpoint.plan.export import render

    content, _ = render(app.warehouse, plan_id, quarter, format)
    media = "application/pdf" if format == "pdf" else "text/html; charset=utf-8"
    name = f"{plan_id}-{quarter}.{format}"
    return Response(content, media_type=media, headers={"Content-Disposition": f'inline; filename="{name}"'})


@router.post("/v1/plans/{plan_id}/reviews", summary="Review the plan for a quarter and store the review")
def review(
    plan_id: str, app: State, _key: AdminKey, quarter: str = QUARTER, version: int | None = Query(None, ge=1)
) -> dict[str, Any]:
    return workflow.review(app.warehouse, plan_id, quarter=quarter, version=version, write=True)
