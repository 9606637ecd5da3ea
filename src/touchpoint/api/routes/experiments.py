"""Experiments over HTTP: definitions and analyses (read key), creating and changing them (admin key)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from touchpoint.api.deps import AdminKey, Audit, ReadKey, State, audited
from touchpoint.experiments import definitions, workflow
from touchpoint.experiments.analysis import AnalysisOptions, analyze
from touchpoint.experiments.engines import Prior
from touchpoint.experiments.metrics import Metric
from touchpoint.experiments.statistics import MetricStats
from touchpoint.warehouse.clock import naive_utc

router = APIRouter(tags=["experiments"])

EngineName = Literal["frequentist", "bayesian", "sequential"]


class ExperimentIn(BaseModel):
    key: str
    variants: list[str] = Field(default_factory=lambda: ["control", "treatment"])
    weights: list[float] | None = None
    control: str | None = None
    metrics: list[Metric] = Field(default_factory=list)  # the library's dataclass, validated by pydantic
    name: str | None = None
    description: str | None = None
    unit: Literal["customer", "user_id", "anonymous_id", "any"] = "customer"
    start_at: datetime | None = None
    end_at: datetime | None = None


class HoldoutIn(BaseModel):
    key: str
    share: float = Field(..., gt=0, lt=1, description="share of units held out, e.g. 0.05")
    description: str | None = None
    metrics: list[Metric] = Field(default_factory=list)


class OptionsIn(BaseModel):
    engine: EngineName = "sequential"
    relative: bool = True
    alpha: float = Field(default=0.05, gt=0, lt=1)
    cuped: bool = False
    correction: Literal["holm", "bh", "none"] = "holm"
    min_units: int = Field(default=300, ge=2)
    prior_mean: float = 0.0
    prior_sd: float = Field(default=0.3, gt=0)
    prior_proper: bool = False

    def to_options(self) -> AnalysisOptions:
        return AnalysisOptions(
            engine=self.engine,
            relative=self.relative,
            alpha=self.alpha,
            cuped=self.cuped,
            correction=self.correction,
            min_units=self.min_units,
            prior=Prior(self.prior_mean, self.prior_sd, self.prior_proper),
        )


class StatsIn(BaseModel):
    """Analyse sufficient statistics computed elsewhere (e.g. in another warehouse)."""

    control: str
    metrics: list[dict[str, Any]] = Field(..., description="[{metric, kind, arms: [{variant, n, sum, ...}]}]")
    weights: dict[str, float] | None = None
    options: OptionsIn = Field(default_factory=lambda: OptionsIn())


class WeightsIn(BaseModel):
    weights: list[float]


class AssignIn(BaseModel):
    units: list[str] = Field(..., min_length=1, max_length=10_000)
    expose: bool = False


@router.get("/v1/experiments", summary="Experiments and holdouts, newest first")
def list_experiments(
    app: State, _key: ReadKey, kind: str | None = Query(None, pattern="^(experiment|holdout)$")
) -> dict[str, Any]:
    return {"experiments": [e.to_dict() for e in definitions.list_experiments(app.warehouse, kind=kind)]}


@router.post("/v1/experiments", status_code=201, summary="Define an experiment")
def create_experiment(body: ExperimentIn, app: State, _key: AdminKey) -> dict[str, Any]:
    return workflow.create(
        app.warehouse,
        body.key,
        variants=body.variants,
        weights=body.weights,
        control=body.control,
        metrics=body.metrics,
        name=body.name,
        description=body.description,
        unit=body.unit,
        start_at=naive_utc(body.start_at, "start_at"),
        end_at=naive_utc(body.end_at, "end_at"),
    ).to_dict()


@router.post("/v1/holdouts", status_code=201, summary="Create a persistent holdout group")
def create_holdout(body: HoldoutIn, app: State, _key: AdminKey) -> dict[str, Any]:
    return workflow.create(
        app.warehouse, body.key, holdout=body.share, description=body.description, metrics=body.metrics
    ).to_dict()


@router.get("/v1/experiments/{key}", summary="One experiment's definition")
def get_experiment(key: str, app: State, _key: ReadKey) -> dict[str, Any]:
    return definitions.get_experiment(app.warehouse, key).to_dict()


@router.put("/v1/experiments/{key}/weights", summary="Change the split for new units")
def put_weights(key: str, body: WeightsIn, app: State, _key: AdminKey) -> dict[str, Any]:
    return definitions.update_weights(app.warehouse, key, body.weights).to_dict()


@router.post(
    "/v1/experiments/{key}/assign",
    summary="Arms of units (sticky), optionally recording exposure",
    **audited("experiments.assign"),
)
def post_assign(key: str, body: AssignIn, app: State, _key: AdminKey, note: Audit) -> dict[str, Any]:
    arms = workflow.assign(app.warehouse, key, body.units, expose=body.expose)
    note.rows = len(body.units)
    return {"experiment": key, "assignments": arms}


@router.post("/v1/experiments/{key}/analysis", summary="Analyse an experiment from the event log")
def post_analysis(
    key: str,
    app: State,
    _key: ReadKey,
    body: OptionsIn | None = None,
    dimension: str | None = Query(None),
    end: datetime | None = Query(None),
) -> dict[str, Any]:
    opts = (body or OptionsIn()).to_options()
    _, out = workflow.analyze(app.warehouse, key, opts, dimension=dimension, end=naive_utc(end, "end"))
    return out


@router.post("/v1/experiments/analysis", summary="Analyse sufficient statistics sent in the request")
def post_stats_analysis(body: StatsIn, _key: ReadKey) -> dict[str, Any]:
    stats = [MetricStats.from_dict(m) for m in body.metrics]
    return analyze(stats, control=body.control, weights=body.weights, options=body.options.to_options()).to_dict()


@router.get("/v1/experiments/plan/sample-size", summary="Units per arm for a binomial or mean metric")
def get_sample_size(
    _key: ReadKey,
    baseline: float = Query(..., description="control rate (binomial) or mean"),
    mde: float = Query(..., description="relative lift to detect, e.g. 0.05"),
    sd: float | None = Query(None, description="per-unit sd (mean metrics)"),
    alpha: float = Query(0.05, gt=0, lt=1),
    power: float = Query(0.8, gt=0, lt=1),
    ratio: float = Query(1.0, gt=0),
) -> dict[str, Any]:
    kind, n = workflow.sample_size(baseline, mde, sd=sd, alpha=alpha, power=power, ratio=ratio)
    return {
        "kind": kind,
        "units_control": n,
        "units_treatment": n * ratio,
        "alpha": alpha,
        "power": power,
        "mde": mde,
    }
