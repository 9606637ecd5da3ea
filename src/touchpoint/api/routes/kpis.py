"""The KPIs over HTTP (read key): customer equity, satisfaction and relative attractiveness, each with
``value``, ``low``, ``high``, ``n`` and ``method``; the same workflow as ``touchpoint kpis``."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query

from touchpoint.api.deps import ReadKey, State
from touchpoint.plan.kpis import kpis

router = APIRouter(tags=["kpis"])


@router.get("/v1/kpis", summary="Customer equity, satisfaction, relative attractiveness (and NPS if asked)")
def get_kpis(
    app: State,
    _key: ReadKey,
    quarter: str | None = Query(None, max_length=16, description="e.g. 2026Q3"),
    brand: str | None = Query(None, max_length=200, description="our brand (default: the brand_name setting)"),
    by: str = Query("segment", max_length=100, description="survey answer property for the by-segment split"),
    nps: bool = Query(False, description="also compute NPS, with why it is not a headline KPI"),
) -> dict[str, Any]:
    return kpis(app.warehouse, quarter=quarter, brand=brand or app.settings.brand_name, by=by, nps=nps)
