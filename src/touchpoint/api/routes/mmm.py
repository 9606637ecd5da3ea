"""Marketing-mix model over HTTP: fit (admin), read the fit, plan a budget, build an investment case;
calibrate it with lift tests (admin), list and withdraw calibrations.

Every answer carries ``status`` / ``reliable`` (or ``model_status``): a model that failed its
diagnostics is served with its problems, never as a confident number.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any, Literal

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, Response
from pydantic import BaseModel, Field

from touchpoint.api.deps import AdminKey, ReadKey, State
from touchpoint.errors import NotFound
from touchpoint.mmm import calibration, workflow
from touchpoint.mmm.config import MMMConfig
from touchpoint.mmm.dataset import from_warehouse

router = APIRouter(tags=["mmm"])
CHARTS = ("romi", "contributions", "response_curves", "case")


class FitRequest(BaseModel):
    kpi: Literal["revenue", "conversions", "new_customer_revenue", "new_customers"] = "revenue"
    channels: list[str] | None = Field(None, description="channels to model (default: all with spend)")
    config: dict[str, Any] = Field(default_factory=dict, description="MMMConfig settings, e.g. {'draws': 500}")


class PlanRequest(BaseModel):
    budget: float = Field(..., gt=0)
    weeks: int = Field(52, ge=1, le=520)
    bounds: dict[str, tuple[float, float]] | None = None
    min_brand_share: float | None = Field(None, ge=0, le=1)
    objective: Literal["revenue", "profit"] = "revenue"
    gross_margin: float = Field(1.0, gt=0, le=1)


class CaseRequest(BaseModel):
    plan: dict[str, Any]
    horizon_months: int = Field(24, ge=1, le=240)
    discount_rate: float = Field(0.10, ge=0, lt=1)
    gross_margin: float | None = Field(None, gt=0, le=1)
    currency: str = Field("", max_length=8, description="symbol or code printed before amounts, e.g. €")
    lifetime_value: bool = Field(
        True, description="value new customers at their lifetime value (needs a new-customer KPI and a CLV run)"
    )


def _dir(app: Any) -> Any:
    return workflow.model_dir(app.settings.data_dir)


class CalibrateRequest(BaseModel):
    key: str = Field(..., description="experiment:KEY (or KEY), or automation:NAME (its holdout lift)")
    channel: str | None = Field(None, description="the channel the test varied (one of the model's)")
    metric: str | None = Field(None, description="the experiment's revenue metric, when it has several")
    arm: str | None = Field(None, description="the experiment's arm that ran the channel, when several")
    value_per_conversion: float | None = Field(None, gt=0, description="revenue of one goal conversion (automations)")
    spend: float | None = Field(None, gt=0, description="the channel's spend in the test (default: the spend table)")
    level: float = Field(0.95, gt=0, lt=1)
    accept: bool = Field(False, description="store it as a calibration (and refit, unless refit is false)")
    refit: bool = True


class WithdrawRequest(BaseModel):
    refit: bool = True


@router.post("/v1/mmm/fit", summary="Fit the marketing-mix model on the warehouse (slow: minutes)")
def fit_mmm(body: FitRequest, app: State, _key: AdminKey) -> dict[str, Any]:
    data = from_warehouse(app.warehouse, kpi=body.kpi, channels=body.channels)
    config = workflow.with_calibrations(app.warehouse, MMMConfig.from_dict(body.config))
    return workflow.fit_and_save(data, config, _dir(app))


def _actor(request: Request) -> str:
    return str(getattr(request.state, "audit_actor", None) or "api")


@router.post(
    "/v1/mmm/calibrate",
    summary="A measured lift as calibration: shown, or with accept stored and the model refitted (slow: minutes)",
)
def calibrate(body: CalibrateRequest, request: Request, app: State, _key: AdminKey) -> dict[str, Any]:
    from touchpoint.automations.calibration import SOURCES

    options = calibration.LiftOptions(
        metric=body.metric, arm=body.arm, value_per_conversion=body.value_per_conversion, level=body.level
    )
    return workflow.calibrate(
        app.warehouse,
        body.key,
        _dir(app),
        channel=body.channel,
        spend=body.spend,
        options=options,
        accept=body.accept,
        by=_actor(request),
        refit=body.refit,
        sources=SOURCES,
    )


@router.get("/v1/mmm/calibrations", summary="Lift tests accepted as calibration of the model")
def calibrations(app: State, _key: ReadKey, withdrawn: bool = False) -> dict[str, Any]:
    return {"calibrations": calibration.list_calibrations(app.warehouse, withdrawn=withdrawn)}


@router.post(
    "/v1/mmm/calibrations/{calibration_id}/withdraw",
    summary="Stop using a calibration (kept, marked withdrawn); the model is refitted without it",
)
def withdraw(
    calibration_id: str, request: Request, app: State, _key: AdminKey, body: WithdrawRequest | None = None
) -> dict[str, Any]:
    refit = True if body is None else body.refit
    return workflow.withdraw(app.warehouse, calibration_id, _dir(app), by=_actor(request), refit=refit)


@router.get("/v1/mmm/model", summary="The saved fit: ROMI per channel with intervals, diagnostics")
def get_model(app: State, _key: ReadKey) -> dict[str, Any]:
    path = _dir(app) / "fit.json"
    if not path.exists():
        raise NotFound("no fitted marketing-mix model", hint="POST /v1/mmm/fit or run `touchpoint mmm fit`")
    summary: dict[str, Any] = json.loads(path.read_text())
    return summary


@router.post("/v1/mmm/plan", summary="Allocate a budget across channels against the current mix")
def plan(body: PlanRequest, app: State, _key: ReadKey) -> dict[str, Any]:
    result = workflow.load(_dir(app))
    return workflow.make_plan(result, None, **body.model_dump())


def _case(app: Any, body: CaseRequest, out_dir: Path | None) -> dict[str, Any]:
    result = workflow.load(_dir(app))
    return workflow.make_case(
        result,
        body.plan,
        out_dir,
        horizon_months=body.horizon_months,
        discount_rate=body.discount_rate,
        gross_margin=body.gross_margin,
        currency=body.currency,
        lifetime=workflow.lifetime_for(result, app.warehouse) if body.lifetime_value else None,
    )


@router.post("/v1/mmm/case", summary="Investment case of a plan: monthly cash flows, NPV, payback, risk")
def case(body: CaseRequest, app: State, _key: ReadKey) -> dict[str, Any]:
    return _case(app, body, None)


@router.post(
    "/v1/mmm/case.pdf",
    summary="The investment case as a one-page PDF report",
    response_class=Response,
    responses={200: {"content": {"application/pdf": {}}}},
)
def case_pdf(body: CaseRequest, app: State, _key: ReadKey) -> Response:
    with tempfile.TemporaryDirectory(prefix="touchpoint-case-") as tmp:
        files = _case(app, body, Path(tmp))["files"]
        content = Path(files["pdf"]).read_bytes()
    return Response(content, media_type="application/pdf", headers={"Content-Disposition": "inline; filename=case.pdf"})


@router.get("/v1/mmm/charts/{name}.png", summary="A chart of the saved fit (romi, contributions, response_curves)")
def chart(name: str, app: State, _key: ReadKey) -> FileResponse:
    path = _dir(app) / f"{name}.png"
    if name not in CHARTS or not path.exists():
        raise NotFound(f"no chart {name!r}", hint=f"charts: {', '.join(CHARTS)} (after a fit)")
    return FileResponse(path, media_type="image/png")
