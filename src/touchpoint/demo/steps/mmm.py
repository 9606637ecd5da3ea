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
    start = np.datetime64(truth.get("period", {}).get("start", str(data.dates[0])), "D")
    fitted_weeks = ((data.dates[: fitted["fitted_weeks"]] - start).astype(int) // 7).astype(int)
    recovery: dict[str, Any] = {}
    for ch, est in fitted["romi"].items():
        t = channels_truth.get(ch)
        if not t:
            continue
        r = est["romi"]
        weeks = fitted_weeks[(fitted_weeks >= 0) & (fitted_weeks < len(t["weekly_spend"]))]
        true_romi = float(np.take(t["weekly_revenue"], weeks).sum() / np.take(t["weekly_spend"], weeks).sum())
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
