"""The investment case: monthly cash flows of a budget plan, with carry-over and posterior risk.

The plan's weekly spend runs for its ``weeks``; the model's adstock carries each week's effect
forward, so revenue keeps arriving after the spend stops. Every posterior draw gives one cash-flow
path (``gross_margin * revenue - spend`` per month); NPV, payback and the probability of paying back
are read off those paths.

Usage, with ``result`` from :func:`touchpoint.mmm.fit` and ``plan`` from :func:`touchpoint.mmm.optimize.plan_budget`
(a fitted model is too slow for a docstring example; ``tests/mmm/test_mmm_fit.py`` runs this)::

    case = investment_case(result, plan, horizon_months=24, discount_rate=0.1)
"""

from __future__ import annotations

from typing import Any

import numpy as np

from touchpoint.errors import InvalidInput
from touchpoint.mmm.lifetime import NEW_CUSTOMER_KPIS, Lifetime, cohort_revenue
from touchpoint.mmm.model import MMMResult

WEEKS_PER_MONTH = 52.1775 / 12
LATE_MONTH = 6  # value after this month is what a short-term view misses (Binet and Field 2013)


def _interval(x: np.ndarray, level: float) -> dict[str, float]:
    q = (1 - level) / 2
    lo, med, hi = np.quantile(x, [q, 0.5, 1 - q])
    return {"mean": float(x.mean()), "median": float(med), "low": float(lo), "high": float(hi)}


def investment_case(
    result: MMMResult,
    plan: dict[str, Any],
    *,
    horizon_months: int = 24,
    discount_rate: float = 0.10,
    gross_margin: float | None = None,
    currency: str = "",
    lifetime: Lifetime | None = None,
) -> dict[str, Any]:
    """Cash flows by month over ``horizon_months`` for ``plan`` (from :func:`plan_budget`).

    ``discount_rate`` is annual; ``gross_margin`` (default: the plan's) turns revenue into the cash
    the business keeps. With ``lifetime`` (a model on a new-customer KPI), the new customers the plan
    brings are valued at their lifetime value: their repeat orders within the horizon, by month, with
    the CLV models' uncertainty (see :mod:`touchpoint.mmm.lifetime`). Returns expected return, NPV,
    payback month, the probability the plan pays back (NPV > 0), the share of value after month six
    and a plain-language summary.
    """
    channels = result.data.channels
    if "channels" not in plan or "weeks" not in plan:
        raise InvalidInput("the plan has no 'channels'/'weeks'", hint="make one with `touchpoint mmm plan --json`")
    unknown = sorted(set(plan["channels"]) - set(channels))
    if unknown:
        raise InvalidInput(f"plan channel(s) {unknown} are not in the model", hint=f"channels: {list(channels)}")
    if not 0 <= discount_rate < 1:
        raise InvalidInput(f"discount_rate={discount_rate} must be in [0, 1)", hint="e.g. 0.1 for 10% a year")
    margin = float(plan.get("gross_margin", 1.0) if gross_margin is None else gross_margin)
    if not 0 < margin <= 1:
        raise InvalidInput(f"gross_margin={margin} must be in (0, 1]", hint="e.g. 0.4 for a 40% margin")
    weeks = int(plan["weeks"])
    level = result.config.interval
    horizon_weeks = int(np.ceil(horizon_months * WEEKS_PER_MONTH))
    if horizon_weeks < weeks:
        raise InvalidInput(
            f"the horizon ({horizon_months} months) is shorter than the plan ({weeks} weeks)",
            hint="use a horizon at least as long as the plan",
        )
    weekly = np.array([float(plan["channels"].get(c, {}).get("weekly", 0.0)) for c in channels])
    path = np.zeros((horizon_weeks, len(channels)))
    path[:weeks] = weekly
    contributions = result.channel_contributions(path)  # (D, weeks, channels)
    brand = np.array([c in result.config.brand_channels for c in channels])
    lifetime_out: dict[str, Any] = {"included": False}
    if lifetime is not None:
        first_w, repeat_w, brand_w, lifetime_out = _lifetime(result, contributions, brand, lifetime, level)
        revenue_w = first_w + repeat_w
    else:
        revenue_w = contributions.sum(axis=2)  # (D, weeks)
        brand_w = contributions[:, :, brand].sum(axis=2)
        if result.data.target_name in NEW_CUSTOMER_KPIS:
            lifetime_out["reason"] = (
                "first orders only: no CLV model was given, so the new customers' repeat orders are not counted"
            )
    month = np.minimum((np.arange(horizon_weeks) / WEEKS_PER_MONTH).astype(int), horizon_months - 1)
    spend_m = np.bincount(month, weights=path.sum(axis=1), minlength=horizon_months)
    revenue_m = np.stack([np.bincount(month, weights=r, minlength=horizon_months) for r in revenue_w])
    cash = margin * revenue_m - spend_m
    factor = (1 + discount_rate) ** (-(np.arange(horizon_months) + 1) / 12)
    npv = cash @ factor
    cum = np.cumsum(cash, axis=1)
    paid = cum >= 0
    payback_draw = np.where(paid.any(axis=1), np.argmax(paid, axis=1) + 1, -1)
    mean_cum = cum.mean(axis=0)
    mean_payback = int(np.argmax(mean_cum >= 0) + 1) if (mean_cum >= 0).any() else None
    total_spend = float(spend_m.sum())
    total_rev = revenue_m.sum(axis=1)
    after = revenue_m[:, int(np.ceil(weeks / WEEKS_PER_MONTH)) :].sum(axis=1)
    p_pay = float(np.mean(npv > 0))
    late = revenue_m[:, LATE_MONTH:].sum(axis=1)
    brand_m = np.stack([np.bincount(month, weights=r, minlength=horizon_months) for r in brand_w])
    after_six = {
        "share": _interval(late / np.maximum(total_rev, 1e-12), level),
        "value": _interval(margin * late, level),
        "brand_channels_share": _interval(brand_m[:, LATE_MONTH:].sum(axis=1) / np.maximum(total_rev, 1e-12), level)
        if brand.any()
        else None,
        "brand_channels": [c for c, b in zip(channels, brand, strict=True) if b],
        "note": "brand effects build slowly (Binet and Field 2013): the horizon must reach past month six",
    }
    out = {
        "horizon_months": horizon_months,
        "interval": level,
        "discount_rate": discount_rate,
        "gross_margin": margin,
        "plan_weeks": weeks,
        "total_spend": total_spend,
        "expected_revenue": _interval(total_rev, level),
        "expected_return": _interval(margin * total_rev, level),
        "romi": _interval(total_rev / max(total_spend, 1e-12), level),
        "npv": _interval(npv, level),
        "payback_month": mean_payback,
        "probability_pays_back": p_pay,
        "probability_payback_within_horizon": float(np.mean(payback_draw > 0)),
        "carry_over_share": _interval(after / np.maximum(total_rev, 1e-12), level),
        "value_after_month_6": after_six,
        "lifetime_value": lifetime_out,
        "months": [
            {
                "month": m + 1,
                "spend": float(spend_m[m]),
                "revenue": _interval(revenue_m[:, m], level),
                "cash_flow": _interval(cash[:, m], level),
                "cumulative_cash_flow": _interval(cum[:, m], level),
            }
            for m in range(horizon_months)
        ],
        "model_status": result.status,
        "reliable": result.reliable,
        "model_problems": result.diagnostics["problems"],
        "calibration": calibration_note(result),
        "extrapolated_channels": plan.get("extrapolated_channels", []),
        "method": "posterior draws of the fitted MMM, plan spend convolved with each draw's adstock; "
        + (
            "each draw's new customers valued at their lifetime value (repeat orders by week from the CLV "
            "model, one parameter draw per MMM draw); "
            if lifetime is not None
            else ""
        )
        + "NPV with monthly discounting at the annual rate",
    }
    if horizon_months <= LATE_MONTH:
        out["warnings"] = [f"the horizon ({horizon_months} months) ends before brand effects after month six arrive"]
    out["summary"] = summary_text(out, currency)
    return out


def _lifetime(
    result: MMMResult, contributions: np.ndarray, brand: np.ndarray, lifetime: Lifetime, level: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
    """First-order revenue, repeat revenue and the brand channels' revenue (both) by week ``(D, W)``."""
    kpi = result.data.target_name
    if kpi not in NEW_CUSTOMER_KPIS:
        raise InvalidInput(
            f"the model's KPI is {kpi!r}: lifetime value needs a model of new customers",
            hint="fit with `touchpoint mmm fit --kpi new_customer_revenue` (or new_customers), or leave out "
            "the lifetime value",
        )
    d, w, _ = contributions.shape
    customers = contributions if kpi == "new_customers" else contributions / lifetime.first_order_value
    first = customers.sum(axis=2) * lifetime.first_order_value
    per_customer = lifetime.repeat_revenue_per_customer(w, draws=d)
    repeat = cohort_revenue(customers.sum(axis=2), per_customer)
    brand_customers = customers[:, :, brand].sum(axis=2)
    brand_revenue = brand_customers * lifetime.first_order_value + (
        cohort_revenue(brand_customers, per_customer) if brand.any() else 0.0
    )
    n_new = customers.sum(axis=(1, 2))
    info = {
        "included": True,
        **lifetime.describe(),
        "new_customers": _interval(n_new, level),
        "first_order_revenue": _interval(first.sum(axis=1), level),
        "repeat_revenue": _interval(repeat.sum(axis=1), level),
        "repeat_to_first_order_revenue": _interval(repeat.sum(axis=1) / np.maximum(first.sum(axis=1), 1e-12), level),
        "value_per_new_customer": _interval((first.sum(axis=1) + repeat.sum(axis=1)) / np.maximum(n_new, 1e-12), level),
        "assumption": "customers the media bring buy again like the customers the CLV model was fitted on",
    }
    return first, repeat, brand_revenue, info


def _money(x: float, currency: str) -> str:
    sign = "-" if x < 0 else ""
    x = abs(x)
    for size, suffix in ((1e9, " billion"), (1e6, " million"), (1e3, " thousand")):
        if x >= size:
            return f"{sign}{currency}{x / size:,.1f}{suffix}"
    return f"{sign}{currency}{x:,.0f}"


def summary_text(case: dict[str, Any], currency: str = "") -> str:
    """One paragraph a CFO can read: spend, expected return with its range, NPV, payback, risk."""
    pct = round(100 * case.get("interval", 0.9))
    rev, npv = case["expected_revenue"], case["npv"]
    payback = (
        f"pays back in month {case['payback_month']} on average"
        if case["payback_month"]
        else f"does not pay back within {case['horizon_months']} months on average"
    )
    text = (
        f"We plan to spend {_money(case['total_spend'], currency)} over {case['plan_weeks']} weeks. "
        f"The model expects it to bring {_money(rev['mean'], currency)} of revenue over "
        f"{case['horizon_months']} "
        f"months ({pct}% range {_money(rev['low'], currency)} to {_money(rev['high'], currency)}), "
        f"{case['carry_over_share']['mean']:.0%} of it after the spending stops. "
        f"At a {case['gross_margin']:.0%} gross margin and a {case['discount_rate']:.0%} discount rate, "
        f"the net present "
        f"value is {_money(npv['mean'], currency)} (range {_money(npv['low'], currency)} to "
        f"{_money(npv['high'], currency)}); the plan {payback}, and the probability that it pays back is "
        f"{case['probability_pays_back']:.0%}."
    )
    lt = case.get("lifetime_value") or {}
    if lt.get("included"):
        text += (
            f" Revenue counts the new customers' lifetime value: about {lt['new_customers']['mean']:,.0f} new "
            f"customers, each worth {_money(lt['value_per_new_customer']['mean'], currency)} within the horizon "
            f"(repeat orders add {lt['repeat_to_first_order_revenue']['mean']:.1f}x their first orders' revenue)."
        )
    elif lt.get("reason"):
        text += f" Note: {lt['reason']}."
    late = case.get("value_after_month_6")
    if late:
        text += f" {late['share']['mean']:.0%} of the value arrives after month six."
    if not case["reliable"]:
        text += (
            " WARNING: the model behind these numbers failed its diagnostics ("
            + "; ".join(case["model_problems"])
            + "); do not use them for decisions."
        )
    if case["extrapolated_channels"]:
        text += (
            f" Spend on {', '.join(case['extrapolated_channels'])} goes well beyond anything observed, "
            "so those returns are extrapolated."
        )
    return text


def calibration_note(result: MMMResult) -> list[dict[str, Any]]:
    """The lift tests the model was calibrated with, and each channel's ROMI interval width before and after
    the refit that added them (when the refit replaced a saved model)."""
    refit = (result.diagnostics.get("refit") or {}).get("channels", {})
    out = []
    for cal in result.config.calibrations:
        change = refit.get(cal.channel, {})
        out.append(
            {
                "channel": cal.channel,
                "source": cal.source,
                "period": [cal.start, cal.end],
                "roi": cal.roi,
                "roi_se": cal.roi_se,
                "width_before": change.get("width_before"),
                "width_after": change.get("width_after"),
            }
        )
    return out
