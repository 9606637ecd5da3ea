"""What the CLI, the HTTP API, jobs and the demo share: define, assign, analyse and plan experiments.

>>> from touchpoint.warehouse import Warehouse
>>> wh = Warehouse.open("duckdb://:memory:")
>>> create(wh, "cta", variants=["a", "b"]).weight_map
{'a': 0.5, 'b': 0.5}
>>> sample_size(0.1, 0.1)[0], round(sample_size(0.1, 0.1)[1])
('binomial', 14748)
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from touchpoint.errors import InvalidInput
from touchpoint.experiments import assignment, planner
from touchpoint.experiments.analysis import AnalysisOptions, ExperimentResult
from touchpoint.experiments.definitions import Experiment, create_experiment
from touchpoint.experiments.metrics import Metric
from touchpoint.warehouse import Warehouse


def create(
    wh: Warehouse,
    key: str,
    *,
    holdout: float | None = None,
    variants: Sequence[str] | None = None,
    weights: Sequence[float] | None = None,
    control: str | None = None,
    metrics: Sequence[Metric] = (),
    unit: str = "customer",
    start_at: datetime | None = None,
    end_at: datetime | None = None,
    name: str | None = None,
    description: str | None = None,
) -> Experiment:
    """Define an experiment, or with ``holdout`` (a share such as 0.05) a persistent holdout group."""
    if holdout is not None:
        return assignment.create_holdout(wh, key, holdout, description=description, metrics=list(metrics))
    exp = Experiment(
        key,
        variants=list(variants or ["control", "treatment"]),
        weights=list(weights) if weights is not None else None,
        control=control,
        metrics=list(metrics),
        name=name,
        description=description,
        unit=unit,
        start_at=start_at,
        end_at=end_at,
    )
    return create_experiment(wh, exp)


def assign(wh: Warehouse, key: str, units: str | Iterable[str], *, expose: bool = False) -> dict[str, str]:
    """Each unit's arm (sticky); with ``expose``, also record the exposures."""
    if expose:
        return assignment.assign_and_expose(wh, key, units)
    return assignment.assign(wh, key, units)


def analyze(
    wh: Warehouse,
    key: str,
    options: AnalysisOptions | None = None,
    *,
    metrics: list[Metric] | None = None,
    end: datetime | None = None,
    dimension: str | None = None,
    plot: str | Path | None = None,
) -> tuple[ExperimentResult, dict[str, Any]]:
    """Analyse experiment ``key`` from the event log; with ``plot``, also draw the lift intervals there.

    Returns the result and its dictionary (with ``plot``: the chart's path)."""
    from touchpoint.experiments.results import analyze_experiment

    result = analyze_experiment(wh, key, options=options, metrics=metrics, end=end, dimension=dimension)
    return result, _with_plot(result, plot)


def analyze_file(
    path: str | Path,
    *,
    arm_column: str | None,
    control: str | None,
    metrics: Sequence[str] | None,
    covariate: str | None = None,
    options: AnalysisOptions | None = None,
    plot: str | Path | None = None,
) -> tuple[ExperimentResult, dict[str, Any]]:
    """Analyse a per-unit file (one row per unit: arm, metric columns, optional covariate)."""
    from touchpoint.experiments.units import analyze_file as run

    if not arm_column or not control or not metrics:
        missing = [n for n, v in (("--arm-column", arm_column), ("--control", control), ("--metric", metrics)) if not v]
        raise InvalidInput(
            f"--file needs {', '.join(missing)}", hint="e.g. --arm-column arm --control A --metric ordered"
        )
    result = run(
        path, arm_column=arm_column, control=control, metrics=list(metrics), covariate=covariate, options=options
    )
    return result, _with_plot(result, plot)


def _with_plot(result: ExperimentResult, plot: str | Path | None) -> dict[str, Any]:
    out = result.to_dict()
    if plot is not None:
        from touchpoint.experiments.plot import plot_lifts

        out["plot"] = str(plot_lifts(result, plot))
    return out


def sample_size(
    baseline: float,
    mde: float,
    *,
    sd: float | None = None,
    alpha: float = 0.05,
    power: float = 0.8,
    ratio: float = 1.0,
) -> tuple[str, float]:
    """``(kind, units in the control arm)`` to detect a relative lift ``mde``: a mean metric when its
    per-unit ``sd`` is given, else a conversion rate."""
    if sd is not None:
        return "mean", planner.sample_size_mean(baseline, sd, mde, alpha=alpha, power=power, ratio=ratio)
    return "binomial", planner.sample_size_binomial(baseline, mde, alpha=alpha, power=power, ratio=ratio)


def detectable_effect(
    baseline: float,
    units: float,
    *,
    sd: float | None = None,
    alpha: float = 0.05,
    power: float = 0.8,
    ratio: float = 1.0,
) -> tuple[str, float]:
    """``(kind, relative lift)`` detectable with ``units`` in the control arm (see :func:`sample_size`)."""
    if sd is not None:
        return "mean", planner.mde_mean(baseline, sd, units, alpha=alpha, power=power, ratio=ratio)
    return "binomial", planner.mde_binomial(baseline, units, alpha=alpha, power=power, ratio=ratio)


def plan(
    wh: Warehouse,
    baseline: float,
    *,
    mde: float | None = None,
    units: float | None = None,
    sd: float | None = None,
    alpha: float = 0.05,
    power: float = 0.8,
    ratio: float = 1.0,
    event: str | None = None,
    share: float = 1.0,
    traffic: list[int] | None = None,
) -> tuple[dict[str, Any], planner.DurationEstimate]:
    """Units per arm for ``mde`` (or the lift detectable with ``units``), and how long the warehouse's
    traffic takes to bring them. Returns the plan and the duration estimate. ``traffic``: the audience's
    curve already counted (``DurationEstimate.cumulative_units`` of ``event``), to skip counting it again."""
    kind = "mean" if sd is not None else "binomial"
    out: dict[str, Any] = {"kind": kind, "baseline": baseline, "alpha": alpha, "power": power, "ratio": ratio}
    if mde is not None and units is None:
        _, n = sample_size(baseline, mde, sd=sd, alpha=alpha, power=power, ratio=ratio)
        out |= {"mde": mde, "units_control": math.ceil(n), "units_treatment": math.ceil(n * ratio)}
    elif units is not None and mde is None:
        _, m = detectable_effect(baseline, units, sd=sd, alpha=alpha, power=power, ratio=ratio)
        out |= {"mde": m, "units_control": int(units), "units_treatment": int(units * ratio)}
    else:
        raise InvalidInput(
            "give exactly one of --mde (for a sample size) or --units (for the MDE)", hint="e.g. --mde 0.05"
        )
    total = out["units_control"] + out["units_treatment"]
    out["units_total"] = total
    if traffic is not None:
        duration = planner.duration_from(traffic, total, share=share)
    else:
        duration = planner.expected_duration(wh, total, event=event, share=share)
    out["duration"] = duration.to_dict() | {"summary": duration.describe()}
    return out, duration
