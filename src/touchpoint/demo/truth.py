"""The ground truth the demo simulator saves next to its data (``<data_dir>/demo/truth.json``).

Estimators are tested against it. Keys of ``truth.json``:

- ``config``: the :class:`~touchpoint.demo.simulator.DemoConfig` used (seed, customers, start, weeks, ...).
- ``period``: ``start`` and ``end`` (ISO dates; ``end`` exclusive), ``weeks``.
- ``clv``: the purchase process. Time unit **days**. ``bg_nbd`` = {r, alpha, a, b} (each customer's
  purchase rate lambda ~ Gamma(r, rate=alpha) per day, dropout after each purchase with p ~ Beta(a, b));
  ``gamma_gamma`` = {p, q, gamma} for order values; ``calibration_end`` (ISO date) suggested for a
  calibration/holdout split. Per-customer latent values are in ``customers.parquet`` (see below).
  Note: extra orders caused by the email campaign and first orders are outside the BG/NBD process
  (first orders start the clock, as in the model).
- ``acquisition``: how customers were acquired. ``organic_share`` of first orders, and for each paid
  channel in ``channels`` below the first orders it caused.
- ``channels``: for each paid channel (paid_search, paid_social, display, video, affiliate):
  ``kind`` (performance or brand), ``adstock`` {type: geometric, decay}, ``saturation`` {type: hill,
  half_saturation (in spend per week), shape}, ``beta`` (expected new customers per week at full
  saturation), ``spend`` (total), ``orders`` (first orders it caused), ``revenue`` (revenue of those
  first orders: the channel's short-term causal contribution), ``romi`` (revenue / spend),
  ``expected_romi`` (the same in expectation), ``repeat_revenue`` (later orders of the customers it
  acquired, inside the period: the long-term effect), ``weekly_revenue`` (list, one per week).
- ``mmm``: ``kpi`` = "revenue", ``weekly_revenue`` (total revenue per week from orders),
  ``weekly_baseline`` (revenue not caused by paid media in that week).
- ``identity``: ``customers`` (number of real people with a userId), ``anonymous_visitors`` (visitors
  who never identified), ``anonymous_then_identified`` (customers whose first sessions were anonymous),
  ``junk_anonymous_ids`` (shared junk ids used by several people; they must never merge them),
  ``shared_device_id`` (one shop tablet used by several customers). The exact mapping of every
  anonymousId to its person is in ``identities.parquet`` (anonymous_id, user_id; user_id null for
  never-identified visitors; junk ids are not listed).
- ``experiment``: the randomized email campaign: ``key``, ``variants`` (control, treatment),
  ``start`` (ISO datetime), ``window_days``, ``metric`` ("ordered within window_days"),
  ``units`` per variant, ``true_conversion`` per variant (from potential outcomes of the same people),
  ``true_lift_absolute`` (treatment minus control, percentage points / 100), ``true_lift_relative``,
  ``extra_revenue`` caused.
- ``replenishment``: ``product`` (sku of the contact lenses), ``box_days`` (the supply one box is meant to
  last), ``customers`` who buy it. The lens lines ride on ordinary orders (BG/NBD timing); no purchase cycle
  is simulated, so there is no true cycle to recover.

``customers.parquet``: user_id, email, acquired_at, acquisition_channel, lam (per day), p, alive_at_end,
orders (count inside the period), revenue, arm (experiment variant or null).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

TRUTH_FILE = "truth.json"
CUSTOMERS_FILE = "customers.parquet"
IDENTITIES_FILE = "identities.parquet"


def demo_dir(data_dir: Path) -> Path:
    return Path(data_dir) / "demo"


def load_truth(data_dir: Path) -> dict[str, Any]:
    """Read ``truth.json`` of a demo data directory."""
    from touchpoint.errors import NotFound

    path = demo_dir(data_dir) / TRUTH_FILE
    if not path.exists():
        raise NotFound(f"no demo ground truth at {path}", hint="run `touchpoint demo --no-serve` first")
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def plan_lifetime_revenue(
    truth: dict[str, Any], weekly: dict[str, float], weeks: int, horizon_weeks: int
) -> dict[str, float]:
    """The simulator's true expected revenue of the new customers a spend plan brings: ``weekly`` spend
    per paid channel for ``weeks`` weeks, counted over ``horizon_weeks`` from the plan's start.

    New customers per week follow each channel's true adstock, Hill saturation and ``beta`` (starting
    from no carry-over, as the investment case does); each buys a first order worth the true
    Gamma-Gamma mean p*gamma/(q-1) and then repeat orders by the true BG/NBD process. Returns the
    first-order revenue, the repeat revenue within the horizon, their total and the new customers.
    """
    import numpy as np

    from touchpoint.demo.simulator import adstock, hill
    from touchpoint.mmm.lifetime import Lifetime
    from touchpoint.predict import BetaGeoModel, GammaGammaModel

    gg = truth["clv"]["gamma_gamma"]
    aov = gg["p"] * gg["gamma"] / (gg["q"] - 1.0)
    customers = np.zeros(horizon_weeks)
    for channel, spend in weekly.items():
        spec = truth["channels"][channel]
        path = np.zeros(horizon_weeks)
        path[:weeks] = spend
        sat = spec["saturation"]
        customers += spec["beta"] * hill(adstock(path, spec["adstock"]["decay"]), sat["half_saturation"], sat["shape"])
    curve = Lifetime(
        BetaGeoModel(params=truth["clv"]["bg_nbd"]), GammaGammaModel(params=gg), unit_days=1.0, first_order_value=aov
    ).repeat_revenue_per_customer(horizon_weeks, draws=0)[0]
    first = float(customers.sum() * aov)
    repeat = float(np.convolve(customers, curve)[:horizon_weeks].sum())
    return {
        "new_customers": float(customers.sum()),
        "first_order_revenue": first,
        "repeat_revenue": repeat,
        "revenue": first + repeat,
    }
