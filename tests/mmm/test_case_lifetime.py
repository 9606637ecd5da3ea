"""The investment case values new customers at their lifetime value, and matches the simulator's truth.

The demo shop's simulator (``touchpoint.demo.simulator``) is run with a million customers, as arrays (as
``test_mmm_demo_shop.py`` does): the MMM is fitted on weekly new-customer revenue, the CLV models
(BG/NBD + Gamma-Gamma) on a random 20,000 of its customers, and the case of a plan that keeps the last
year's mix is compared with the simulator's true expected revenue of the new customers that plan brings
(first orders and their repeat orders within the horizon, from the true media response and the true
purchase process: :func:`touchpoint.demo.truth.plan_lifetime_revenue`).
"""

from __future__ import annotations

import copy
import dataclasses

import numpy as np
import pytest
from tests.mmm.conftest import BRAND, MillionShop

from touchpoint.demo.truth import plan_lifetime_revenue
from touchpoint.errors import InvalidInput
from touchpoint.mmm import MMMResult
from touchpoint.mmm.case import WEEKS_PER_MONTH, investment_case
from touchpoint.mmm.lifetime import Lifetime
from touchpoint.predict import BetaGeoModel, GammaGammaModel

pytestmark = pytest.mark.slow  # a million simulated customers and an MMM fit: about a minute of CPU

HORIZON = 24


def _truth(sim: object) -> dict:
    cfg = sim.config  # type: ignore[attr-defined]
    return {
        "clv": {"bg_nbd": cfg.bg_nbd, "gamma_gamma": cfg.gamma_gamma},
        "channels": sim.media,  # type: ignore[attr-defined]
    }


def _clv_models(sim: object, n: int = 20_000, seed: int = 5) -> tuple[BetaGeoModel, GammaGammaModel, float]:
    """Fit BG/NBD and Gamma-Gamma on ``n`` random customers' orders (times in days) at the period's end."""
    orders, customers = sim.orders, sim.customers  # type: ignore[attr-defined]
    end = sim.config.weeks * 7.0  # type: ignore[attr-defined]
    pick = np.random.default_rng(seed).choice(len(customers["user_id"]), n, replace=False)
    keep = np.isin(orders["customer"], pick) & (orders["kind"] != 2)  # campaign orders are outside BG/NBD
    cust, t, v, kind = orders["customer"][keep], orders["time"][keep], orders["value"][keep], orders["kind"][keep]
    idx = np.searchsorted(np.sort(pick), cust)
    first = np.full(n, np.inf)
    np.minimum.at(first, idx, t)
    last = np.zeros(n)
    np.maximum.at(last, idx, t)
    repeat = kind == 1
    freq = np.bincount(idx[repeat], minlength=n).astype(float)
    spend = np.bincount(idx[repeat], weights=v[repeat], minlength=n)
    monetary = np.where(freq > 0, spend / np.maximum(freq, 1), 0.0)
    bg, gg = BetaGeoModel(), GammaGammaModel()
    assert bg.fit(freq, last - first, end - first).converged
    assert gg.fit(freq, monetary).converged
    first_value = float(orders["value"][orders["kind"] == 0].mean())
    return bg, gg, first_value


@pytest.fixture(scope="module")
def shop(million_shop: MillionShop) -> tuple[MMMResult, Lifetime, dict, dict]:
    sim = million_shop.sim
    bg, gg, first_value = _clv_models(sim)
    plan = {"weeks": 52, "channels": {c: {"weekly": float(s[-52:].mean())} for c, s in sim.spend.items()}}
    return million_shop.result, Lifetime(bg, gg, unit_days=1.0, first_order_value=first_value), plan, _truth(sim)


def test_the_case_matches_the_true_lifetime_revenue_of_the_plans_new_customers(shop: tuple) -> None:
    result, lifetime, plan, truth = shop
    case = investment_case(result, plan, horizon_months=HORIZON, gross_margin=0.4, lifetime=lifetime)
    horizon_weeks = int(np.ceil(HORIZON * WEEKS_PER_MONTH))
    weekly = {c: v["weekly"] for c, v in plan["channels"].items()}
    true = plan_lifetime_revenue(truth, weekly, plan["weeks"], horizon_weeks)
    rev = case["expected_revenue"]
    assert rev["low"] <= true["revenue"] <= rev["high"], (true, rev)
    lt = case["lifetime_value"]
    assert lt["included"] is True
    assert lt["repeat_revenue"]["low"] <= true["repeat_revenue"] <= lt["repeat_revenue"]["high"], (true, lt)
    # repeat orders matter: the "another 0.8-1.5x within two years" in this shop's truth
    assert 0.5 < true["repeat_revenue"] / true["first_order_revenue"] < 2.0
    assert lt["repeat_to_first_order_revenue"]["mean"] == pytest.approx(
        true["repeat_revenue"] / true["first_order_revenue"], rel=0.25
    )
    first_only = investment_case(result, plan, horizon_months=HORIZON, gross_margin=0.4)
    assert first_only["lifetime_value"]["included"] is False and "first orders only" in first_only["summary"]
    assert first_only["expected_revenue"]["high"] < true["revenue"]  # first orders alone undervalue the plan
    assert case["npv"]["mean"] > first_only["npv"]["mean"]
    late = case["value_after_month_6"]
    assert 0 < late["share"]["low"] <= late["share"]["mean"] <= late["share"]["high"] < 1
    assert late["brand_channels"] == list(BRAND) and late["brand_channels_share"]["mean"] > 0
    assert "after month six" in case["summary"] and "lifetime value" in case["summary"]


def test_the_clv_uncertainty_widens_the_interval(shop: tuple) -> None:
    result, lifetime, plan, _ = shop
    exact = Lifetime(lifetime.purchase, lifetime.spend, lifetime.unit_days, lifetime.first_order_value)
    exact.purchase = BetaGeoModel(params=lifetime.purchase.params_)  # no covariance: no parameter draws
    exact.spend = GammaGammaModel(params=lifetime.spend.params_)  # type: ignore[union-attr]
    wide = investment_case(result, plan, horizon_months=HORIZON, lifetime=lifetime)["lifetime_value"]
    narrow = investment_case(result, plan, horizon_months=HORIZON, lifetime=exact)["lifetime_value"]
    width = lambda d: d["high"] - d["low"]  # noqa: E731
    assert width(wide["value_per_new_customer"]) > width(narrow["value_per_new_customer"])


def test_lifetime_value_needs_a_new_customer_model(shop: tuple) -> None:
    result, lifetime, plan, _ = shop
    other = copy.copy(result)
    other.data = dataclasses.replace(result.data, target_name="revenue")
    with pytest.raises(InvalidInput, match="new customers"):
        investment_case(other, plan, lifetime=lifetime)
