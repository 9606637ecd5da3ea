"""The demo shop with a million customers and its fitted MMM, built once for the tests/mmm files that use it.

``touchpoint.demo.simulator`` runs the shop as arrays (seconds); the MMM fit on its weekly new-customer
revenue is the costly part (about half a minute of CPU), so the ROMI recovery and the investment case share
it. ``brand_channels`` only labels channels in reports; it does not enter the model.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from touchpoint.demo.simulator import ORGANIC_CHANNELS, DemoConfig, Simulation, simulate, weekly_first_order_revenue
from touchpoint.mmm import MMMConfig, MMMData, MMMResult, fit

HOLDOUT = 8
BRAND = ("display", "video")


@dataclass(frozen=True)
class MillionShop:
    sim: Simulation
    by_channel: dict[str, np.ndarray]  # each paid channel's weekly first-order revenue (the truth)
    result: MMMResult  # fitted on the first weeks - HOLDOUT weeks


@pytest.fixture(scope="session")
def million_shop() -> MillionShop:
    sim = simulate(DemoConfig(customers=1_000_000, weeks=104, seed=42))
    by_channel = weekly_first_order_revenue(sim.orders, sim.customers["channel"], sim.config.weeks, list(sim.spend))
    organic = weekly_first_order_revenue(sim.orders, sim.customers["channel"], sim.config.weeks, list(ORGANIC_CHANNELS))
    total = sum(by_channel.values()) + sum(organic.values())
    dates = np.datetime64(sim.config.start.isoformat(), "D") + 7 * np.arange(sim.config.weeks)
    data = MMMData.from_columns(dates=dates, target=total, spend=sim.spend, target_name="new_customer_revenue")
    config = MMMConfig(draws=400, warmup=400, chains=2, holdout_weeks=HOLDOUT, seed=0, brand_channels=BRAND)
    return MillionShop(sim, by_channel, fit(data, config))
