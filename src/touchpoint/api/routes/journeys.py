"""Journeys and attribution over HTTP (read key): funnels, paths, retention, attribution with ROMI."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from touchpoint.api.deps import ReadKey, State
from touchpoint.collect.ecommerce import ORDER_COMPLETED
from touchpoint.warehouse.clock import naive_utc

router = APIRouter(tags=["journeys"])


def _rules(app: Any) -> Any:
    from touchpoint.collect.channels import rules_from

    configured = app.settings.journeys_channel_rules
    return rules_from(configured) if configured else None


def _timeout(app: Any, value: float | None) -> float:
    if value is not None:
        return value
    return app.settings.journeys_session_timeout_minutes


@router.get("/v1/journeys/funnel", summary="People through ordered steps within a conversion window")
def funnel(
    app: State,
    _key: ReadKey,
    steps: list[str] = Query(..., description="Steps in order: 'Event Name', 'page', 'page:/path%'"),
    window_hours: float = Query(168.0, gt=0, le=8784),
    breakdown: str | None = Query(None, description="'channel', an event column or 'properties.<key>'"),
    since: datetime | None = None,
    until: datetime | None = None,
    timeout_minutes: float | None = Query(None, gt=0, le=10080),
) -> dict[str, Any]:
    from touchpoint.journeys.funnels import funnel as run

    return run(
        app.warehouse,
        steps,
        window_hours=window_hours,
        breakdown=breakdown,
        start=naive_utc(since, "since"),
        end=naive_utc(until, "until"),
        timeout_minutes=_timeout(app, timeout_minutes),
        rules=_rules(app),
    )


@router.get("/v1/journeys/paths", summary="Most frequent paths from or to an event, with Sankey nodes and links")
def paths(
    app: State,
    _key: ReadKey,
    anchor: str = Query(..., description="'Event Name', 'page' or 'page:/path'"),
    direction: Literal["from", "to"] = "from",
    depth: int = Query(4, ge=1, le=20),
    top: int = Query(20, ge=1, le=1000),
    since: datetime | None = None,
    until: datetime | None = None,
) -> dict[str, Any]:
    from touchpoint.journeys.paths import paths as run

    return run(
        app.warehouse,
        anchor,
        direction=direction,
        depth=depth,
        top=top,
        start=naive_utc(since, "since"),
        end=naive_utc(until, "until"),
        timeout_minutes=_timeout(app, None),
    )


@router.get("/v1/journeys/retention", summary="Cohort retention by first-seen or first-order week or month")
def retention(
    app: State,
    _key: ReadKey,
    period: Literal["week", "month"] = "week",
    cohort: Literal["first_seen", "first_order"] = "first_seen",
    returning: Literal["any", "order"] = "any",
    periods: int = Query(12, ge=0, le=120),
    since: datetime | None = None,
    until: datetime | None = None,
) -> dict[str, Any]:
    from touchpoint.journeys.retention import retention as run

    return run(
        app.warehouse,
        period=period,
        cohort=cohort,
        returning=returning,
        max_periods=periods,
        start=naive_utc(since, "since"),
        end=naive_utc(until, "until"),
    )


Model = Literal["all", "markov", "shapley", "first", "last", "last_non_direct", "linear", "time_decay", "position"]


@router.get("/v1/attribution", summary="Conversions and revenue per channel by model, with CPA and ROAS")
def attribution(
    app: State,
    _key: ReadKey,
    model: list[Model] = Query(["all"]),
    order: int = Query(1, ge=1, le=3),
    lookback_days: float = Query(30.0, gt=0, le=3650),
    conversion_event: str = ORDER_COMPLETED,
    use_nulls: bool = True,
    half_life: float | None = Query(None, gt=0),
    shapley_value: Literal["conversions", "rate"] = "conversions",
    bootstrap: int = Query(0, ge=0, le=1000),
    since: datetime | None = None,
    until: datetime | None = None,
) -> dict[str, Any]:
    from touchpoint.journeys import workflow

    options = workflow.AttributionOptions(
        order=order, bootstrap=bootstrap, use_nulls=use_nulls, half_life=half_life, value_function=shapley_value
    )
    return workflow.attribute_warehouse(
        app.warehouse,
        workflow.choose_models(model),
        options,
        lookback_days=lookback_days,
        conversion_event=conversion_event,
        timeout_minutes=_timeout(app, None),
        rules=_rules(app),
        start=naive_utc(since, "since"),
        end=naive_utc(until, "until"),
    )


class PathRow(BaseModel):
    path: str = Field(..., description="Channels joined by the separator, e.g. 'email > paid_search'")
    conversions: float = Field(0.0, ge=0)
    value: float = Field(0.0, ge=0)
    nulls: float = Field(0.0, ge=0)


class PathsBody(BaseModel):
    rows: list[PathRow] = Field(..., min_length=1, max_length=1_000_000)
    sep: str = Field(">", min_length=1)
    model: list[Model] = ["all"]
    order: int = Field(1, ge=1, le=3)
    use_nulls: bool = True
    half_life: float | None = Field(None, gt=0)
    shapley_value: Literal["conversions", "rate"] = "conversions"
    bootstrap: int = Field(0, ge=0, le=1000)


@router.post("/v1/attribution/paths", summary="Attribute an aggregated path table sent in the request")
def attribution_paths(body: PathsBody, _key: ReadKey) -> dict[str, Any]:
    import pyarrow as pa

    from touchpoint.journeys import workflow
    from touchpoint.journeys.pathdata import from_table

    table = pa.table(
        {
            "path": [r.path for r in body.rows],
            "conversions": [r.conversions for r in body.rows],
            "value": [r.value for r in body.rows],
            "nulls": [r.nulls for r in body.rows],
        }
    )
    options = workflow.AttributionOptions(
        order=body.order,
        bootstrap=body.bootstrap,
        use_nulls=body.use_nulls,
        half_life=body.half_life,
        value_function=body.shapley_value,
    )
    return workflow.attribute_paths(
        from_table(table, sep=body.sep, source="request"), workflow.choose_models(body.model), options
    )
