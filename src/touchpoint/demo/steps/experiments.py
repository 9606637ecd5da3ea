"""The demo step: analyse the demo shop's randomized email campaign and compare with its true lift.

The simulator split customers 50/50 into an email and a no-email group, recorded an "Experiment
Viewed" exposure for each, and saved the true effect (from both potential outcomes of the same
people) in ``truth.json``. We define the experiment, analyse "ordered within the window" with every
engine, with and without CUPED, draw the intervals, and report whether each interval covers the truth.
"""

from __future__ import annotations

import pathlib
from datetime import UTC, datetime, timedelta
from typing import Any

from touchpoint.experiments.analysis import AnalysisOptions, ExperimentResult
from touchpoint.experiments.definitions import Experiment, create_experiment
from touchpoint.experiments.metrics import Metric
from touchpoint.experiments.plot import plot_lifts
from touchpoint.experiments.results import analyze_experiment
from touchpoint.warehouse import Warehouse


def _naive(iso: str) -> datetime:
    parsed = datetime.fromisoformat(iso.replace("Z", "+00:00"))
    return parsed.astimezone(UTC).replace(tzinfo=None) if parsed.tzinfo else parsed


def define(wh: Warehouse, truth: dict[str, Any]) -> Experiment:
    """The campaign as an experiment definition (replacing an earlier run's)."""
    t = truth["experiment"]
    start = _naive(t["start"])
    window = float(t["window_days"])
    metrics = [
        Metric("ordered", "binomial", "Order Completed", window_days=window, covariate_days=90),
        Metric(
            "revenue",
            "mean",
            "Order Completed",
            "revenue",
            window_days=window,
            cap_quantile=0.99,
            covariate_days=90,
        ),
    ]
    exp = Experiment(
        t["key"],
        variants=list(t["variants"]),
        control="control",
        metrics=metrics,
        name="Win-back email campaign",
        description="Does the win-back email make customers order?",
        start_at=start,
        end_at=start + timedelta(days=window),
    )
    return create_experiment(wh, exp, replace=True)


def _primary(result: ExperimentResult) -> dict[str, Any]:
    c = result.metrics[0].comparisons[0]
    return {
        "estimate": c.estimate,
        "ci_low": c.ci_low,
        "ci_high": c.ci_high,
        "p_value": c.p_adjusted or c.p_value,
        "chance_to_win": c.chance_to_win,
        "status": result.status,
        "verdict": result.verdict,
    }


def _covers(row: dict[str, Any], true: float | None) -> bool | None:
    if true is None or row["ci_low"] is None:
        return None
    return bool(row["ci_low"] <= true <= row["ci_high"])


def run_demo(wh: Warehouse, truth: dict[str, Any], out_dir: pathlib.Path) -> dict[str, Any]:
    """Analyse the demo campaign; return estimates next to the truth (JSON-able)."""
    t = truth["experiment"]
    exp = define(wh, truth)
    true_abs, true_rel = t["true_lift_absolute"], t.get("true_lift_relative")
    runs: dict[str, dict[str, Any]] = {}
    results: dict[str, ExperimentResult] = {}
    for name, opts in {
        "frequentist_absolute": AnalysisOptions(engine="frequentist", relative=False),
        "frequentist_absolute_cuped": AnalysisOptions(engine="frequentist", relative=False, cuped=True),
        "sequential_relative": AnalysisOptions(engine="sequential"),
        "sequential_relative_cuped": AnalysisOptions(engine="sequential", cuped=True),
        "bayesian_relative": AnalysisOptions(engine="bayesian"),
    }.items():
        result = analyze_experiment(wh, exp.key, options=opts)
        results[name] = result
        row = _primary(result)
        row["true_lift"] = true_abs if not opts.relative else true_rel
        row["covers_truth"] = _covers(row, row["true_lift"])
        row["interval_width"] = None if row["ci_low"] is None else row["ci_high"] - row["ci_low"]
        runs[name] = row
    out_dir.mkdir(parents=True, exist_ok=True)
    chart = plot_lifts(
        results["sequential_relative_cuped"],
        out_dir / "experiment_lift.png",
        title=f"{exp.key}: relative lift, sequential engine with CUPED",
    )
    main = results["frequentist_absolute"]
    plain, cuped = runs["frequentist_absolute"], runs["frequentist_absolute_cuped"]
    shrink = (
        (1 - cuped["interval_width"] / plain["interval_width"])
        if plain["interval_width"] and cuped["interval_width"]
        else None
    )
    return {
        "experiment": exp.key,
        "units": main.to_dict()["exposures"]["units"],
        "srm_p_value": main.srm.p_value,
        "true_lift_absolute": true_abs,
        "true_lift_relative": true_rel,
        "runs": runs,
        "all_intervals_cover_truth": all(r["covers_truth"] is not False for r in runs.values()),
        "cuped_interval_reduction": shrink,
        "verdict": results["sequential_relative_cuped"].verdict,
        "chart": str(chart),
    }


def headline(s: dict[str, Any]) -> str:
    """The line ``touchpoint demo`` prints for this step."""
    return f"{s['verdict']} (true lift {s['true_lift_absolute'] * 100:+.2f} pp)"
