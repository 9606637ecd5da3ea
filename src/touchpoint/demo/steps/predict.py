"""The predict step of ``touchpoint demo``: fit the demo shop's purchase and spend models, check them on
the holdout and against the simulator's ground truth, write predictions, replenishment dates and
propensity scores to the warehouse, and return a JSON-able summary."""

from __future__ import annotations

import datetime as dt
import pathlib
from typing import Any

import numpy as np

from touchpoint.predict.clv import ClvOptions, run_clv, write_predictions
from touchpoint.predict.propensity import run_propensity, write_scores
from touchpoint.predict.replenish import replenishment, write_replenishment
from touchpoint.predict.summary import customer_key_source, orders_from_events
from touchpoint.warehouse import Warehouse


def _compare(est: dict[str, float], se: dict[str, float], truth: dict[str, float]) -> dict[str, Any]:
    out = {}
    for k, v in truth.items():
        z = (est[k] - v) / se[k] if se.get(k) and np.isfinite(se[k]) and se[k] > 0 else float("nan")
        out[k] = {"truth": v, "estimate": est[k], "se": se.get(k), "z": z, "within_95": bool(abs(z) <= 1.96)}
    return out


def _user_ids(wh: Warehouse, ids: list[str]) -> list[str]:
    """Map profile ids back to user ids when identities were resolved (the truth is keyed by user id)."""
    try:
        from touchpoint import identity

        pm = identity.profile_map(wh)
        pm = pm.filter(pm.identifier_type == "user_id")
        rows = wh.to_arrow(pm.select("identifier", "profile_id")).to_pylist()
    except Exception:
        return ids
    back = {r["profile_id"]: r["identifier"] for r in rows}
    return [back.get(i, i) for i in ids]


def _alive_check(wh: Warehouse, run: Any, out_dir: pathlib.Path) -> dict[str, Any] | None:
    path = out_dir / "customers.parquet"
    if not path.exists():
        return None
    import pyarrow.parquet as pq
    from sklearn.metrics import roc_auc_score

    truth = pq.read_table(path, columns=["user_id", "alive_at_end"]).to_pydict()
    alive = dict(zip(truth["user_id"], truth["alive_at_end"], strict=True))
    ids = _user_ids(wh, run.predictions.column("customer_id").to_pylist())
    p = run.predictions.column("p_alive").to_numpy()
    known = np.array([i in alive for i in ids])
    y = np.array([bool(alive.get(i, False)) for i in ids])[known]
    p = p[known]
    if y.size == 0 or y.all() or not y.any():
        return None
    return {
        "customers": int(y.size),
        "true_alive_share": float(y.mean()),
        "mean_p_alive": float(p.mean()),
        "auc_p_alive_vs_truth": float(roc_auc_score(y, p)),
        "note": "truth is alive at the end of the simulated period; P(alive) is as of the holdout end",
    }


def run_demo(wh: Warehouse, truth: dict[str, Any], out_dir: pathlib.Path) -> dict[str, Any]:
    clv_truth = truth["clv"]
    end = dt.date.fromisoformat(truth["period"]["end"]) - dt.timedelta(days=1)  # "end" is exclusive
    options = ClvOptions(
        model="bg_nbd",
        unit="days",
        calibration_end=clv_truth["calibration_end"],
        holdout_end=end,
        horizon_days=365,
        annual_discount_rate=0.10,
        margin=1.0,
    )
    run = run_clv(wh, orders_from_events(wh), options, out_dir=out_dir / "predict")
    written = write_predictions(wh, run)
    summary: dict[str, Any] = {
        "customer_key": customer_key_source(wh),
        "model": "bg_nbd",
        "calibration_end": run.calibration_end.isoformat(),
        "holdout_end": end.isoformat(),
        "purchase_model": _compare(run.fit.params, run.fit.standard_errors, clv_truth["bg_nbd"]),
        "log_likelihood": run.fit.log_likelihood,
        "holdout": {
            k: run.holdout[k] for k in ("mae", "predicted_total", "actual_total", "total_error_pct", "correlation")
        }
        if run.holdout
        else None,
        "customer_equity": run.equity,
        "predictions_written": written,
        "files": run.files,
        "warnings": run.warnings,
    }
    if run.spend_fit is not None:
        summary["spend_model"] = _compare(run.spend_fit.params, run.spend_fit.standard_errors, clv_truth["gamma_gamma"])
    summary["p_alive_vs_truth"] = _alive_check(wh, run, out_dir)
    rep = replenishment(wh, as_of=end)
    write_replenishment(wh, rep)
    rt = truth.get("replenishment", {})
    if rt:
        rows = [r for r in rep.to_pylist() if r["product"] == rt.get("product")]
        reliable = [r["days_per_unit"] for r in rows if r["intervals"] >= 2]
        summary["replenishment"] = {
            "product": rt.get("product"),
            "nominal_box_days": rt.get("box_days"),  # no true cycle is simulated (see demo/truth.py)
            "customers_with_estimate": len(rows),
            "median_days_per_unit": float(np.median(reliable)) if reliable else None,
            "due_in_next_14_days": sum(1 for r in rows if 0 <= r["days_until_due"] <= 14),
        }
    try:
        prop = run_propensity(wh, "Order Completed", 30, as_of=end + dt.timedelta(days=1))
        write_scores(wh, prop)
        summary["propensity"] = {
            "event": "Order Completed",
            "days": 30,
            "auc": prop.test["auc"],
            "brier": prop.test["brier"],
            "top_decile_lift": prop.test["lift_by_decile"][0]["lift"],
            "scored": prop.scores.num_rows,
        }
    except Exception as exc:
        summary["propensity"] = {"error": str(exc)}
    return summary


def headline(s: dict[str, Any]) -> str:
    """The line ``touchpoint demo`` prints for this step."""
    return f"{s['model']} fitted; {s['predictions_written']:,} customers' CLV and next purchase written"
