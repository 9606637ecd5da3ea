"""Why the sequential engine exists: 2,000 A/A tests looked at every day for four weeks.

With no true difference, a fixed-horizon t-test checked daily "finds" an effect far more often
than its nominal 5%: every look is another chance for noise to cross the line. The sequential
engine's confidence sequence is valid at every look, so the share of A/A tests it ever declares
significant stays at or below 5%. Everything is vectorised: all 2,000 x 28 analyses are one call.
"""

from __future__ import annotations

import numpy as np
import pytest

from touchpoint.experiments.analysis import DEFAULT_MIN_UNITS
from touchpoint.experiments.engines import frequentist, sequential
from touchpoint.experiments.statistics import pair_moments

N_SIM, DAYS, PER_ARM_PER_DAY = 2000, 28, 100


def daily_cumulative_binomial(rng: np.random.Generator, p: float) -> dict[str, np.ndarray]:
    conversions = rng.binomial(PER_ARM_PER_DAY, p, size=(N_SIM, DAYS)).astype(float)
    n = np.broadcast_to(np.arange(1, DAYS + 1) * PER_ARM_PER_DAY, (N_SIM, DAYS)).astype(float)
    s = conversions.cumsum(axis=1)
    zeros = np.zeros_like(s)
    return {
        "n": n,
        "sum": s,
        "sum_squares": s,
        "den_sum": zeros,
        "den_sum_squares": zeros,
        "num_den_sum_products": zeros,
        "cov_sum": zeros,
        "cov_sum_squares": zeros,
        "num_cov_sum_products": zeros,
    }


def daily_cumulative_revenue(rng: np.random.Generator) -> dict[str, np.ndarray]:
    # 8% of units buy; order value lognormal (heavy right tail, like real revenue)
    buys = rng.random((N_SIM, DAYS, PER_ARM_PER_DAY)) < 0.08
    value = np.where(buys, rng.lognormal(3.5, 0.8, (N_SIM, DAYS, PER_ARM_PER_DAY)), 0.0)
    s, ss = value.sum(axis=2).cumsum(axis=1), (value**2).sum(axis=2).cumsum(axis=1)
    n = np.broadcast_to(np.arange(1, DAYS + 1) * PER_ARM_PER_DAY, (N_SIM, DAYS)).astype(float)
    zeros = np.zeros_like(s)
    return {
        "n": n,
        "sum": s,
        "sum_squares": ss,
        "den_sum": zeros,
        "den_sum_squares": zeros,
        "num_den_sum_products": zeros,
        "cov_sum": zeros,
        "cov_sum_squares": zeros,
        "num_cov_sum_products": zeros,
    }


def ever_significant(p_values: np.ndarray, alpha: float = 0.05) -> float:
    """Share of simulated experiments significant at any daily look (NaN looks never count)."""
    return float((np.nan_to_num(p_values, nan=1.0) < alpha).any(axis=1).mean())


@pytest.fixture(scope="module")
def aa_binomial():
    rng = np.random.default_rng(20261123)
    return pair_moments("binomial", daily_cumulative_binomial(rng, 0.1), daily_cumulative_binomial(rng, 0.1))


def test_sequential_keeps_false_positives_at_or_below_5_percent_when_peeking_daily(aa_binomial) -> None:
    fpr = ever_significant(sequential(aa_binomial, relative=True).p_value)
    assert fpr <= 0.05, f"sequential engine peeked daily: {fpr:.1%} false positives"


def test_fixed_horizon_test_peeked_daily_exceeds_5_percent(aa_binomial) -> None:
    peeked = ever_significant(frequentist(aa_binomial, relative=True).p_value)
    once = float((frequentist(aa_binomial, relative=True).p_value[:, -1] < 0.05).mean())
    # one look at the end is fine (binomial sd of the estimate over 2,000 runs: 0.5 points) ...
    assert 0.035 <= once <= 0.065
    # ... but looking every day inflates false positives several-fold
    assert peeked > 0.12, f"fixed-horizon test peeked daily: only {peeked:.1%} false positives"


def test_sequential_interval_covers_zero_at_every_look(aa_binomial) -> None:
    lift = sequential(aa_binomial, relative=True)
    ok = np.isnan(lift.ci_low) | ((lift.ci_low <= 0) & (lift.ci_high >= 0))
    assert ok.all(axis=1).mean() >= 0.95


def test_sequential_holds_for_heavy_tailed_revenue_once_arms_have_min_units() -> None:
    # 8% buyers with lognormal order values: with 100 units per arm (8 buyers) the normal approximation
    # behind every engine is poor, so no verdict is given below DEFAULT_MIN_UNITS per arm. From there on,
    # daily looks with the sequential engine stay within 5%; the fixed-horizon test does not.
    rng = np.random.default_rng(7)
    m = pair_moments("mean", daily_cumulative_revenue(rng), daily_cumulative_revenue(rng))
    first_look = int(np.ceil(DEFAULT_MIN_UNITS / PER_ARM_PER_DAY)) - 1
    assert ever_significant(sequential(m, relative=True).p_value[:, first_look:]) <= 0.05
    assert ever_significant(frequentist(m, relative=True).p_value[:, first_look:]) > 0.12
