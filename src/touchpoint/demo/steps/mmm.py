"""The mmm step of ``touchpoint demo``: fit the demo shop's weekly new-customer revenue and spend, plan
next year's budget, build its investment case, and check the ROMI estimates against the simulator's truth.

Paid media in the simulator acquire customers; a channel's true ROMI is the revenue of the first
orders it caused over its spend, in the weeks the model fitted. The KPI is therefore new-customer
revenue (``--kpi new_customer_revenue``): the later orders of the growing customer base
(``repeat_revenue`` in the truth) would otherwise sit in the baseline and trend. At the demo's 10,000
customers the weekly noise is large next to most channels' effects; the model says which ones it
could not pin down (``tests/mmm/test_mmm_demo_shop.py`` runs the same shop with a million customers).

The investment case values the plan's new customers at their lifetime value, from the predict step's
CLV models, and is compared with the simulator's true expected revenue of those customers (first and
repeat orders within the horizon: :func:`touchpoint.demo.truth.plan_lifetime_revenue`).
"""

from __future__ import annotations

import pathlib
from typing import Any

import numpy as np

from touchpoint.demo.truth import plan_lifetime_revenue
from touchpoint.mmm import workflow
from touchpoint.mmm.case import WEEKS_PER_MONTH
from touchpoint.mmm.config import MMMConfig
from touchpoint.mmm.dataset import from_warehouse
from touchpoint.warehouse import Warehouse


def run_demo(wh: Warehouse, truth: dict, out_dir: pathlib.Path) -> dict[str, Any]:
    """Fit, plan and case on the demo warehouse; returns a JSON-able summary with recovery figures."""
    channels_truth: dict[str, Any] = truth.get("channels", {})
    data = from_warehouse(wh, kpi="new_customer_revenue")
    brand = tuple(c for c in data.channels if channels_truth.get(c, {}).get("kind") == "brand")
    config = MMMConfig(brand_channels=brand, seed=0)
    # The model goes where `touchpoint mmm plan|case` and /v1/mmm/* read it: <data>/mmm (out_dir is <data>/demo).
    folder = workflow.model_dir(pathlib.Path(out_dir).parent)
    fitted = workflow.fit_and_save(data, config, folder)
    result = workflow.load(folder)
    budget = float(data.spend[-52:].sum())
    plan = workflow.make_plan(result, folder, budget=budget, weeks=52, objective="revenue")
    currency = "€" if truth.get("config", {}).get("currency") == "EUR" else ""
    lifetime = workflow.lifetime_for(result, wh)  # the predict step's CLV run values the new customers
    case = workflow.make_case(
        result,
        plan,
        folder,
        horizon_months=24,
        discount_rate=0.10,
        gross_margin=0.4,
        currency=currency,
        lifetime=lifetime,
    )
    true_value = None
    if "clv" in truth and all(c in truth.get("channels", {}) for c in plan["channels"]):
        horizon_weeks = int(np.ceil(24 * WEEKS_PER_MONTH))
        weekly = {c: float(v["weekly"]) for c, v in plan["channels"].items()}
        true_value = plan_lifetime_revenue(truth, weekly, int(plan["weeks"]), horizon_weeks)
    recovery: dict[str, Any] = {}
    for ch, est in fitted["romi"].items():
        t = channels_truth.get(ch)
        if not t:
            continue
        r = est["romi"]
        true_romi = _true_romi(truth, data.dates[: fitted["fitted_weeks"]], ch)
        recovery[ch] = {
            "kind": t.get("kind"),
            "true_romi": true_romi,
            "true_romi_with_repeat_orders": (float(t["revenue"]) + float(t.get("repeat_revenue", 0.0)))
            / float(t["spend"]),
            "estimate": r["mean"],
            "interval": [r["low"], r["high"]],
            "relative_sd": est["relative_sd"],
            "covers_truth": r["low"] <= true_romi <= r["high"],
            "relative_error": r["mean"] / true_romi - 1 if true_romi else None,
            "true_decay": t.get("adstock", {}).get("decay"),
        }
    covered = [v["covers_truth"] for v in recovery.values()]
    return {
        "model_status": fitted["status"],
        "reliable": fitted["reliable"],
        "problems": fitted["problems"],
        "warnings": fitted["warnings"],
        "fit_seconds": fitted["fit_seconds"],
        "weeks": fitted["weeks"],
        "kpi": data.target_name,
        "romi": {ch: v["romi"] for ch, v in fitted["romi"].items()},
        "recovery": recovery,
        "intervals_covering_truth": f"{sum(covered)}/{len(covered)}",
        "brand_share": fitted["brand_share"]["brand_share_of_spend"],
        "plan": {
            "budget": plan["budget"],
            "allocation": {ch: v["total"] for ch, v in plan["channels"].items()},
            "expected_revenue": plan["expected"]["revenue"],
            "current_mix_revenue": plan["current"]["revenue"],
            "probability_better": plan["uplift"]["probability_better"],
        },
        "investment_case": {
            "summary": case["summary"],
            "npv": case["npv"],
            "payback_month": case["payback_month"],
            "probability_pays_back": case["probability_pays_back"],
            "expected_revenue": case["expected_revenue"],
            "lifetime_value": case["lifetime_value"],
            "value_after_month_6": case["value_after_month_6"],
            "true_revenue_of_new_customers": true_value,
            "covers_truth": None
            if true_value is None
            else case["expected_revenue"]["low"] <= true_value["revenue"] <= case["expected_revenue"]["high"],
        },
        "files": {**fitted["files"], "plan": plan["file"], **{f"case_{k}": v for k, v in case["files"].items()}},
    }


def _truth_weeks(truth: dict, dates: np.ndarray) -> np.ndarray:
    """The simulator's week index of each of ``dates`` (week starts)."""
    start = np.datetime64(truth.get("period", {}).get("start", str(dates[0])), "D")
    return ((dates.astype("datetime64[D]") - start).astype(int) // 7).astype(int)


def _true_romi(truth: dict, fitted_dates: np.ndarray, channel: str) -> float:
    """The channel's true first-order ROMI over the fitted weeks (what the model estimates)."""
    t = truth["channels"][channel]
    weeks = _truth_weeks(truth, fitted_dates)
    weeks = weeks[(weeks >= 0) & (weeks < len(t["weekly_spend"]))]
    return float(np.take(t["weekly_revenue"], weeks).sum() / np.take(t["weekly_spend"], weeks).sum())


def headline(s: dict[str, Any]) -> str:
    """The line ``touchpoint demo`` prints for this step."""
    line = f"model {s['model_status']}; ROMI intervals covering the truth: {s['intervals_covering_truth']}"
    case = s.get("investment_case", {})
    if case.get("lifetime_value", {}).get("included"):
        line += (
            f"; case at lifetime value: revenue {case['expected_revenue']['mean']:,.0f} "
            f"(truth {case['true_revenue_of_new_customers']['revenue']:,.0f})"
            if case.get("true_revenue_of_new_customers")
            else ""
        )
    return line


# -- the calibration step: a geo test on the weakest-identified channel feeds the model ----------------------
TEST_WEEKS = 13  # the last quarter of the fitted weeks
GEO_HOLDOUT = 0.5  # the share of regions where the channel goes dark


def run_calibration_demo(wh: Warehouse, truth: dict, out_dir: pathlib.Path) -> dict[str, Any]:
    """A geo test on the mmm step's weakest-identified channel, accepted as a calibration; the refit's
    interval against the one before and the truth (one more fit; the first calibrated fit of a data shape
    compiles its sampler once, then JAX's persistent cache keeps it).

    The simulator runs the test ideally: in half of the regions the channel goes dark for the last 13 fitted
    weeks; the lift is the first-order revenue the channel brought in those weeks (the simulator knows who
    came through which channel) plus the noise of comparing two halves of the market, whose standard
    error is ``sqrt(sum of squared first-order values in those weeks / (h (1 - h)))`` with h = 0.5 (first
    orders arrive as a compound Poisson process; ideal regions, no regional differences)."""
    import ibis

    from touchpoint.mmm import calibration
    from touchpoint.mmm.calibration import MeasuredLift
    from touchpoint.predict.summary import orders_from_events

    folder = workflow.model_dir(pathlib.Path(out_dir).parent)
    saved = workflow.previous_summary(folder)
    if saved is None:
        raise RuntimeError("the calibration step needs the mmm step's model: run the mmm step first")
    known = {ch: v for ch, v in saved["romi"].items() if ch in truth.get("channels", {})}
    identified = {ch: v for ch, v in known.items() if v["identified"]} or known
    channel = max(identified, key=lambda ch: identified[ch]["relative_sd"])
    result = workflow.load(folder)
    dates = result.data.dates[: result.design.n_train]
    j = result.data.channels.index(channel)
    spent = np.flatnonzero(result.data.spend[: len(dates), j] > 0)
    last = int(spent[-1]) + 1
    window = slice(max(last - TEST_WEEKS, 0), last)
    first_day, end_day = dates[window.start], dates[window.stop - 1] + np.timedelta64(6, "D")
    t = truth["channels"][channel]
    weeks = _truth_weeks(truth, dates[window])
    true_lift = float(np.take(t["weekly_revenue"], weeks).sum())
    o = orders_from_events(wh)
    o = o.mutate(tp_rank=ibis.row_number().over(group_by=o.customer_id, order_by=[o.ts, o.revenue]))
    f = o.filter(o.tp_rank == 0)
    lo = ibis.literal(np.datetime64(first_day).astype(object), "date").cast("timestamp")
    hi = ibis.literal((np.datetime64(end_day) + np.timedelta64(1, "D")).astype(object), "date").cast("timestamp")
    f = f.filter((f.ts >= lo) & (f.ts < hi))
    row = wh.to_arrow(f.aggregate(orders=f.count(), squares=(f.revenue * f.revenue).sum())).to_pylist()[0]
    se = float(np.sqrt((row["squares"] or 0.0) / (GEO_HOLDOUT * (1 - GEO_HOLDOUT))))
    seed = int(truth.get("config", {}).get("seed", 0))
    measured = true_lift + float(np.random.default_rng(seed + 19).normal(0.0, se))
    spend = float(result.data.spend[window, j].sum())
    lift = MeasuredLift(
        source=f"demo:geo-test:{channel}",
        start=str(first_day),
        end=str(end_day),
        incremental=measured,
        low=measured - 1.959963984540054 * se,
        high=measured + 1.959963984540054 * se,
        se=se,
        metric="first-order revenue",
        details={"geo_holdout_share": GEO_HOLDOUT, "first_orders_in_weeks": row["orders"], "simulated": True},
    )
    for stale in calibration.list_calibrations(wh):  # a rerun replaces the demo's own test
        if stale["source"] == lift.source:
            calibration.withdraw(wh, stale["calibration_id"], by="demo")
    out = workflow.accept_lift(wh, lift, folder, channel=channel, spend=spend, by="demo")
    n, refit = out["narrowing"], out["refit"]
    true_romi = _true_romi(truth, dates, channel)
    before, after = n["before"], n["after"]
    return {
        "channel": channel,
        "why": "the largest posterior relative sd among the identified channels "
        f"({identified[channel]['relative_sd']:.2f})",
        "test": {
            "kind": "geo",
            "period": [str(first_day), str(end_day)],
            "holdout_share": GEO_HOLDOUT,
            "spend": spend,
            "true_lift": true_lift,
            "measured_lift": measured,
            "se": se,
            "true_test_roi": true_lift / spend,
            "measured_roi": out["proposal"]["roi"],
            "roi_se": out["proposal"]["roi_se"],
        },
        "calibration_id": out["accepted"]["calibration_id"],
        "true_romi": true_romi,
        "before": before,
        "after": after,
        "width_before": n["width_before"],
        "width_after": n["width_after"],
        "narrowed_by": n["narrowed_by"],
        "covers_truth_before": before["low"] <= true_romi <= before["high"],
        "covers_truth_after": after["low"] <= true_romi <= after["high"],
        "model_status": refit["status"],
        "fit_seconds": refit["fit_seconds"],
        "files": {"romi": refit["files"]["romi"]},
    }


def calibration_headline(s: dict[str, Any]) -> str:
    """The line ``touchpoint demo`` prints for the calibration step."""
    b, a = s["before"], s["after"]
    return (
        f"geo test on {s['channel']}: ROMI {b['mean']:.2f} [{b['low']:.2f}, {b['high']:.2f}] -> {a['mean']:.2f} "
        f"[{a['low']:.2f}, {a['high']:.2f}] ({s['narrowed_by']:.0%} narrower; truth {s['true_romi']:.2f}, "
        f"covered {'yes' if s['covers_truth_after'] else 'NO'})"
    )
