"""Ground-truth recovery on the demo shop: its spend plans, adstock, saturation and first-order revenue.

The demo's simulator (``touchpoint.demo.simulator``) acquires customers through paid media with known
carry-over and diminishing returns; each channel's true ROMI is the revenue of the first orders it
caused over its spend. At the demo's default 10,000 customers the weekly noise drowns most channels
(the demo says so); here the same shop runs with a million customers, which takes seconds because
only arrays are simulated, not events. The KPI is new-customer revenue, as ``--kpi
new_customer_revenue`` reads it from the warehouse.
"""

from __future__ import annotations

import pytest
from tests.mmm.conftest import HOLDOUT, MillionShop

from touchpoint.mmm import MMMResult

PRECISE = 0.10  # posterior sd / mean of ROMI: the channel's spend varied enough to measure its return


@pytest.fixture(scope="module")
def shop(million_shop: MillionShop) -> tuple[MMMResult, dict[str, float]]:
    """The shared fit (tests/mmm/conftest.py) and each channel's true ROMI over the fitted weeks."""
    sim, fitted = million_shop.sim, slice(0, million_shop.sim.config.weeks - HOLDOUT)
    truth = {c: float(million_shop.by_channel[c][fitted].sum() / sim.spend[c][fitted].sum()) for c in sim.spend}
    return million_shop.result, truth


def test_every_interval_covers_the_demo_shops_true_romi(shop: tuple[MMMResult, dict[str, float]]) -> None:
    result, truth = shop
    assert result.status != "failed", result.diagnostics["problems"]
    romi = result.romi()
    for channel, true_romi in truth.items():
        est = romi[channel]["romi"]
        assert est["low"] <= true_romi <= est["high"], (channel, true_romi, est)


def test_channels_whose_spend_variation_pins_the_romi_are_within_15_percent(
    shop: tuple[MMMResult, dict[str, float]],
) -> None:
    """ "Enough spend variation" is judged by what it buys: a posterior relative sd of at most 10%.

    Video runs in bursts with pauses between them, so its return is measured from zero spend up. Paid
    social alternates high and low flights but never pauses: its total return extrapolates the curve
    below the lowest spend seen (relative sd about 0.25, an honest +10-25% here). Search and
    affiliate follow the season.
    """
    result, truth = shop
    romi = result.romi()
    ident = {c["channel"]: c for c in result.diagnostics["identification"]["channels"]}
    precise = [c for c in truth if romi[c]["relative_sd"] <= PRECISE]
    assert precise == ["video"], {c: romi[c]["relative_sd"] for c in truth}
    for channel in precise:
        assert ident[channel]["independent_spend_variation"] >= 1.0  # precision comes from independent spend
        assert romi[channel]["romi"]["mean"] == pytest.approx(truth[channel], rel=0.15), (channel, truth[channel])


def test_spend_that_follows_the_season_is_flagged_not_trusted(shop: tuple[MMMResult, dict[str, float]]) -> None:
    result, _ = shop
    ident = {c["channel"]: c for c in result.diagnostics["identification"]["channels"]}
    for channel in ("paid_search", "affiliate"):  # spend = season x small noise in the simulator
        assert ident[channel]["spend_explained_by_others"] > 0.6
        assert "barely moves apart from the trend, season" in ident[channel]["note"]
    assert result.status == "warning"
    assert any("paid_search" in w and "affiliate" in w for w in result.diagnostics["warnings"])
