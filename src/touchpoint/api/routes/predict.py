"""Predictions over HTTP (read key): a customer's CLV, P(alive), next purchase, propensity and
replenishment; the top customers; the latest run with customer equity."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query

from touchpoint.api.deps import Audit, ReadKey, State, audited
from touchpoint.errors import NotFound
from touchpoint.predict import store

router = APIRouter(tags=["predictions"])


@router.get("/v1/predictions/summary", summary="The latest CLV run: model, fit, holdout check, customer equity")
def prediction_summary(app: State, _key: ReadKey) -> dict[str, Any]:
    run = store.latest_run(app.warehouse)
    if run is None:
        raise NotFound("no CLV run yet", hint="run `touchpoint predict clv` first")
    return run


@router.get("/v1/predictions", summary="Customers of the latest CLV run, highest first", **audited("predictions.list"))
def list_predictions(
    app: State,
    _key: ReadKey,
    note: Audit,
    by: str = Query("clv", pattern="^(clv|p_alive|expected_purchases|prob_purchase_window)$"),
    limit: int = Query(50, ge=1, le=1000),
    offset: int = Query(0, ge=0),
) -> dict[str, Any]:
    top = store.top_customers(app.warehouse, by=by, limit=limit, offset=offset)
    note.rows = len(top["rows"])
    return top


@router.get(
    "/v1/predictions/{customer_id}",
    summary="Everything predicted for one customer (user or profile id)",
    **audited("predictions.read"),
)
def customer_predictions(customer_id: str, app: State, _key: ReadKey) -> dict[str, Any]:
    return store.customer_predictions(app.warehouse, customer_id)
