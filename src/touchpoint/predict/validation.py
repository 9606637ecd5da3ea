"""Holdout validation of a purchase model: predicted against actual purchases per customer, per
calibration-frequency bucket, and over time (the tracking plot), with charts as PNG and SVG and the
numbers as JSON.

>>> import numpy as np
>>> from touchpoint.predict import BetaGeoModel
>>> m = BetaGeoModel(params={"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426})
>>> x, tx, T = np.array([0.0, 2.0]), np.array([0.0, 30.0]), np.array([38.0, 38.0])
>>> v = holdout_metrics(m, x, tx, T, np.array([0.0, 1.0]), 39.0)
>>> sorted(v)[:3]
['actual_total', 'by_frequency', 'correlation']
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from touchpoint.predict.base import wsum
from touchpoint.predict.purchase import PurchaseModel

CENSOR = 7  # calibration frequencies >= CENSOR share one bucket, as in the literature's charts


def holdout_metrics(
    model: PurchaseModel,
    frequency: np.ndarray,
    recency: np.ndarray,
    T: np.ndarray,
    actual: np.ndarray,
    duration: float,
) -> dict[str, Any]:
    """Per-customer predicted holdout purchases (conditional expectation over ``duration``) against the
    actual ones: MAE, RMSE, totals, correlation, and means per calibration-frequency bucket."""
    predicted = model.expected_purchases(duration, frequency, recency, T)
    err = predicted - actual
    buckets = []
    for k in range(CENSOR + 1):
        mask = frequency >= k if k == CENSOR else frequency == k
        if not mask.any():
            continue
        buckets.append(
            {
                "frequency": f"{k}+" if k == CENSOR else str(k),
                "customers": int(mask.sum()),
                "actual_mean": float(actual[mask].mean()),
                "predicted_mean": float(predicted[mask].mean()),
            }
        )
    corr = float(np.corrcoef(predicted, actual)[0, 1]) if len(actual) > 2 and actual.std() > 0 else float("nan")
    return {
        "duration": float(duration),
        "customers": len(actual),
        "mae": float(np.abs(err).mean()),
        "rmse": float(np.sqrt((err**2).mean())),
        "predicted_total": float(predicted.sum()),
        "actual_total": float(actual.sum()),
        "total_error_pct": float(100 * (predicted.sum() - actual.sum()) / max(actual.sum(), 1e-12)),
        "correlation": corr,
        "by_frequency": buckets,
        "method": "conditional expectation E[X(T, T+t) | x, t_x, T] per customer, compared with the "
        "purchase days each customer actually made in the holdout period",
    }


def calibration_fit(model: PurchaseModel, frequency: np.ndarray, T: np.ndarray) -> dict[str, Any]:
    """Customers with 0, 1, ..., 7+ repeat purchases in the calibration period: actual against expected,
    the expected count being sum_i P(X(T_i) = n) (the model's calibration-period fit)."""
    uT, inv = np.unique(T, return_inverse=True)
    counts = np.bincount(inv.ravel())
    expected = np.zeros(CENSOR + 1)
    n = np.arange(CENSOR)
    for t, c in zip(uT, counts, strict=True):
        if t <= 0:
            expected[0] += c
            continue
        p = model.prob_purchases(n, float(t))
        expected[:CENSOR] += c * p
        expected[CENSOR] += c * max(0.0, 1.0 - float(p.sum()))
    actual = [int((frequency == k).sum()) for k in range(CENSOR)] + [int((frequency >= CENSOR).sum())]
    labels = [str(k) for k in range(CENSOR)] + [f"{CENSOR}+"]
    return {"frequency": labels, "actual": actual, "expected": expected.tolist()}


def tracking(
    model: PurchaseModel, birth: np.ndarray, periods: int, actual_by_period: dict[int, float]
) -> dict[str, Any]:
    """Expected against actual repeat purchases per period for the whole cohort.

    ``birth`` is each customer's first purchase, in periods since the cohort's first day; the expected
    count up to time t is sum_i E[X(t - birth_i)] (the unconditional expectation), so the curve is
    predicted from the parameters alone, as in Fader, Hardie & Lee's tracking plots.
    """
    births, counts = np.unique(birth, return_counts=True)
    edges = np.arange(0, periods + 1, dtype=np.float64)
    cum = np.zeros_like(edges)
    for i, t in enumerate(edges):
        age = t - births
        alive = age > 0
        if alive.any():
            cum[i] = wsum(counts[alive].astype(np.float64), model.expected_purchases_new(age[alive]))
    expected_inc = np.diff(cum)
    actual_inc = np.array([float(actual_by_period.get(k, 0.0)) for k in range(periods)])
    return {
        "period": list(range(1, periods + 1)),
        "expected": expected_inc.tolist(),
        "actual": actual_inc.tolist(),
        "expected_cumulative": cum[1:].tolist(),
        "actual_cumulative": np.cumsum(actual_inc).tolist(),
    }


def write_report(
    out_dir: str | Path,
    *,
    model_name: str,
    holdout: dict[str, Any] | None,
    track: dict[str, Any] | None,
    calibration_periods: float | None,
    unit: str,
    calibration: dict[str, Any] | None = None,
    extra: dict[str, Any] | None = None,
) -> dict[str, str]:
    """Write ``validation.json`` and the charts (PNG and SVG); returns the paths written."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    files: dict[str, str] = {}
    if holdout is not None:
        b = holdout["by_frequency"]
        fig, ax = plt.subplots(figsize=(6.4, 4.2))
        xs = np.arange(len(b))
        ax.plot(xs, [r["actual_mean"] for r in b], "o-", label="actual", color="#1f4e79")
        ax.plot(xs, [r["predicted_mean"] for r in b], "s--", label=f"{model_name} predicted", color="#d9822b")
        ax.set_xticks(xs, [r["frequency"] for r in b])
        ax.set_xlabel("repeat purchases in the calibration period")
        ax.set_ylabel(f"mean purchases in the holdout ({holdout['duration']:.0f} {unit})")
        ax.set_title(f"Holdout check: MAE {holdout['mae']:.3f} per customer")
        ax.legend()
        fig.tight_layout()
        for ext in ("png", "svg"):
            path = out / f"holdout_by_frequency.{ext}"
            fig.savefig(path, dpi=110)
            files[f"holdout_by_frequency_{ext}"] = str(path)
        plt.close(fig)
    if calibration is not None:
        fig, ax = plt.subplots(figsize=(6.4, 4.2))
        xs = np.arange(len(calibration["frequency"]))
        ax.bar(xs - 0.2, calibration["actual"], width=0.4, label="actual", color="#1f4e79")
        ax.bar(xs + 0.2, calibration["expected"], width=0.4, label=f"{model_name} expected", color="#d9822b")
        ax.set_xticks(xs, calibration["frequency"])
        ax.set_xlabel("repeat purchases in the calibration period")
        ax.set_ylabel("customers")
        ax.set_title("Calibration-period fit")
        ax.legend()
        fig.tight_layout()
        for ext in ("png", "svg"):
            path = out / f"calibration_fit.{ext}"
            fig.savefig(path, dpi=110)
            files[f"calibration_fit_{ext}"] = str(path)
        plt.close(fig)
    if track is not None:
        fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
        p = track["period"]
        axes[0].plot(p, track["actual_cumulative"], label="actual", color="#1f4e79")
        axes[0].plot(p, track["expected_cumulative"], "--", label=f"{model_name} expected", color="#d9822b")
        axes[0].set_title("Cumulative repeat purchases")
        axes[1].plot(p, track["actual"], label="actual", color="#1f4e79")
        axes[1].plot(p, track["expected"], "--", label=f"{model_name} expected", color="#d9822b")
        axes[1].set_title(f"Repeat purchases per {unit[:-1]}")
        for ax in axes:
            if calibration_periods is not None:
                ax.axvline(calibration_periods, color="grey", lw=0.8, ls=":")
            ax.set_xlabel(f"{unit} since the cohort's first purchase")
            ax.legend()
        fig.tight_layout()
        for ext in ("png", "svg"):
            path = out / f"tracking.{ext}"
            fig.savefig(path, dpi=110)
            files[f"tracking_{ext}"] = str(path)
        plt.close(fig)
    payload = {
        "model": model_name,
        "unit": unit,
        "calibration_fit": calibration,
        "holdout": holdout,
        "tracking": track,
        **(extra or {}),
    }
    path = out / "validation.json"
    path.write_text(json.dumps(payload, indent=2, default=float))
    files["json"] = str(path)
    return files
