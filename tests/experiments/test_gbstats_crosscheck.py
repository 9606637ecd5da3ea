"""Our engines against GrowthBook's gbstats 0.8.0 on identical sufficient statistics, to 1e-6.

gbstats is a test-only reference (``uv pip install --no-deps gbstats==0.8.0``). Where we deliberately
differ, a test below says why:

* when gbstats cannot analyse (control mean 0 for a relative lift, zero variance, no units) it returns
  zeros and p = 1; we return NaN with an error code, so "no answer" never reads as "no effect";
* gbstats' frequentist and sequential tests refuse an *absolute* lift when the control mean is
  exactly 0; the absolute difference is well defined there, so we compute it.
"""

from __future__ import annotations

import math
import os
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as hs

if os.environ.get("CI"):  # CI installs the reference (scripts/test); a missing peer must fail, not skip
    import gbstats.frequentist.tests as gb_freq
else:
    gb_freq = pytest.importorskip("gbstats.frequentist.tests", reason="gbstats==0.8.0 is the test-only reference")
from gbstats.bayesian.tests import EffectBayesianABTest, EffectBayesianConfig, GaussianPrior
from gbstats.models.statistics import (
    ProportionStatistic,
    RatioStatistic,
    RegressionAdjustedStatistic,
    SampleMeanStatistic,
)
from gbstats.utils import check_srm as gb_check_srm

from touchpoint.experiments import engines
from touchpoint.experiments.srm import check_srm
from touchpoint.experiments.statistics import ArmStats, pair_moments, stats_from_units

TOL = {"rtol": 1e-6, "atol": 1e-9}


def close(ours: float, theirs: float) -> bool:
    if math.isinf(theirs) and math.isinf(ours):
        return True
    return bool(np.isclose(ours, theirs, **TOL))


# -- translating our sums into gbstats' statistic objects --------------------------------------


def gb_base(kind: str, arm: ArmStats, part: str = "") -> ProportionStatistic | SampleMeanStatistic:
    s = getattr(arm, f"{part}sum")
    if kind == "binomial":
        return ProportionStatistic(n=int(arm.n), sum=s)
    return SampleMeanStatistic(n=int(arm.n), sum=s, sum_squares=getattr(arm, f"{part}sum_squares"))


def gb_stat(kind: str, arm: ArmStats, cuped: bool) -> object:
    if kind == "ratio":
        return RatioStatistic(
            n=int(arm.n),
            m_statistic=gb_base("mean", arm),
            d_statistic=SampleMeanStatistic(n=int(arm.n), sum=arm.den_sum, sum_squares=arm.den_sum_squares),
            m_d_sum_of_products=arm.num_den_sum_products,
        )
    if cuped:
        return RegressionAdjustedStatistic(
            n=int(arm.n),
            post_statistic=gb_base(kind, arm),
            pre_statistic=SampleMeanStatistic(n=int(arm.n), sum=arm.cov_sum, sum_squares=arm.cov_sum_squares),
            post_pre_sum_of_products=arm.num_cov_sum_products,
            theta=0,
        )
    return gb_base(kind, arm)


def gb_result(engine: str, kind: str, a: ArmStats, b: ArmStats, *, cuped: bool, relative: bool, prior=None):
    # The peer's own numerics (scipy moments inside gbstats) may warn on extreme random inputs; those
    # warnings are gbstats', not ours, and must not fail the comparison.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return _gb_result(engine, kind, a, b, cuped=cuped, relative=relative, prior=prior)


def _gb_result(engine: str, kind: str, a: ArmStats, b: ArmStats, *, cuped: bool, relative: bool, prior=None):
    sa, sb = gb_stat(kind, a, cuped), gb_stat(kind, b, cuped)
    diff = "relative" if relative else "absolute"
    if engine == "frequentist":
        return gb_freq.TwoSidedTTest(sa, sb, gb_freq.FrequentistConfig(difference_type=diff)).compute_result()
    if engine == "sequential":
        cfg = gb_freq.SequentialConfig(difference_type=diff, sequential_tuning_parameter=5000)
        # gbstats computes the e-value with exp() and overflows to inf (p = 0) on strong effects; we work
        # in logs instead, so only its warning is silenced here.
        with np.errstate(over="ignore"):
            return gb_freq.SequentialTwoSidedTTest(sa, sb, cfg).compute_result()
    gp = GaussianPrior() if prior is None else GaussianPrior(mean=prior.mean, variance=prior.sd**2, proper=prior.proper)
    cfg = EffectBayesianConfig(difference_type=diff, prior_effect=gp, prior_type="relative")
    return EffectBayesianABTest(sa, sb, cfg).compute_result()


def ours(engine: str, kind: str, a: ArmStats, b: ArmStats, *, cuped: bool, relative: bool, prior=None):
    m = pair_moments(kind, a.as_arrays(), b.as_arrays(), cuped=cuped)
    return engines.run_engine(engine, m, relative=relative, prior=prior)


def assert_same(engine: str, mine: engines.Lift, theirs) -> None:
    if theirs.error_message is not None:
        assert mine.error.item() is not None, f"gbstats refused ({theirs.error_message}) but we did not"
        assert math.isnan(float(mine.estimate))
        return
    assert mine.error.item() is None, f"we refused ({mine.error.item()}) but gbstats answered {theirs}"
    assert close(float(mine.estimate), theirs.expected)
    assert close(float(mine.ci_low), theirs.ci[0])
    assert close(float(mine.ci_high), theirs.ci[1])
    assert close(float(mine.stderr), theirs.uplift.stddev)
    if engine == "bayesian":
        assert close(float(mine.chance_to_win), theirs.chance_to_win)
        assert close(float(mine.risk_control), theirs.risk[0])
        assert close(float(mine.risk_treatment), theirs.risk[1])
    else:
        assert close(float(mine.p_value), theirs.p_value)


# -- random inputs ------------------------------------------------------------------------------


def simulate_arm(rng: np.random.Generator, kind: str, n: int, name: str, level: float, cuped: bool) -> ArmStats:
    x = rng.gamma(2.0, 5.0, n)  # pre-period covariate
    if kind == "binomial":
        y = (rng.random(n) < np.clip(level * (0.5 + x / 20), 0, 1)).astype(float)
        return stats_from_units(name, y, covariate=x if cuped else None)
    if kind == "mean":
        y = np.maximum(0, level * 10 * (x / 10) + rng.normal(0, 8, n)) * (rng.random(n) < 0.6)
        return stats_from_units(name, y, covariate=x if cuped else None)
    orders = rng.poisson(level * 3, n).astype(float)
    revenue = orders * rng.gamma(3.0, 12.0, n)
    return stats_from_units(name, revenue, denominator=orders)


cases = hs.fixed_dictionaries(
    {
        "seed": hs.integers(0, 2**32 - 1),
        "kind": hs.sampled_from(["binomial", "mean", "ratio"]),
        "engine": hs.sampled_from(["frequentist", "sequential", "bayesian"]),
        "n_a": hs.integers(2, 4000),
        "n_b": hs.integers(2, 4000),
        "level_a": hs.floats(0.02, 0.9),
        "lift": hs.floats(-0.5, 0.5),
        "cuped": hs.booleans(),
        "relative": hs.booleans(),
        "proper": hs.booleans(),
    }
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cases)
def test_random_inputs_match_gbstats(case: dict) -> None:
    rng = np.random.default_rng(case["seed"])
    kind, engine = case["kind"], case["engine"]
    cuped = case["cuped"] and kind != "ratio"
    level_b = min(0.95, case["level_a"] * (1 + case["lift"]))
    a = simulate_arm(rng, kind, case["n_a"], "a", case["level_a"], cuped)
    b = simulate_arm(rng, kind, case["n_b"], "b", level_b, cuped)
    prior = engines.Prior(mean=0.01, sd=0.2, proper=case["proper"]) if engine == "bayesian" else None
    if engine == "bayesian" and not case["relative"] and a.sum == 0:
        return  # gbstats divides 0/0 rescaling a relative prior onto a zero control mean (ZeroDivisionError)
    if engine != "bayesian" and not case["relative"] and a.sum == 0:
        return  # deliberate difference, tested below
    theirs = gb_result(engine, kind, a, b, cuped=cuped, relative=case["relative"], prior=prior)
    mine = ours(engine, kind, a, b, cuped=cuped, relative=case["relative"], prior=prior)
    assert_same(engine, mine, theirs)


@settings(max_examples=100, deadline=None)
@given(hs.lists(hs.integers(0, 100_000), min_size=2, max_size=5), hs.data())
def test_srm_matches_gbstats(units: list[int], data: hs.DataObject) -> None:
    weights = data.draw(hs.lists(hs.floats(0.05, 1.0), min_size=len(units), max_size=len(units)))
    assert close(check_srm(units, weights).p_value, float(gb_check_srm(units, weights)))


# -- gbstats' own test cases (inputs from growthbook/packages/stats/tests) ----------------------

MEAN_A = ArmStats("a", n=3407, sum=1396.87, sum_squares=52377.9767)
MEAN_B = ArmStats("b", n=3461, sum=2422.7, sum_squares=134698.29)
MEAN_A3000 = ArmStats("a", n=3000, sum=1396.87, sum_squares=52377.9767)
RA_A = ArmStats("a", 3000, 1396.87, 52377.9767, cov_sum=16.87, cov_sum_squares=527.9767, num_cov_sum_products=12525)
RA_B = ArmStats("b", 3461, 2422.7, 134698.29, cov_sum=22.7, cov_sum_squares=1348.29, num_cov_sum_products=3333)

GBSTATS_CASES = [
    # (engine, kind, a, b, cuped, relative, gbstats' published expectation (rounded to 5 decimals) or None)
    ("frequentist", "mean", MEAN_A, MEAN_B, False, True, {"ci": [-0.03526, 1.44989], "p": 0.06191}),
    ("frequentist", "mean", MEAN_A, MEAN_B, False, False, {"ci": [0.04538, 0.53462], "p": 0.02016}),
    (
        "frequentist",
        "binomial",
        ArmStats("a", 28, 14, 14),
        ArmStats("b", 30, 16, 16),
        False,
        True,
        {"ci": [-0.47767, 0.61101], "p": 0.80707},
    ),
    (
        "sequential",
        "binomial",
        ArmStats("a", 3000, 1396, 1396),
        ArmStats("b", 3461, 2422, 2422),
        False,
        True,
        {"ci": [0.40098, 0.60675], "p": 0.0},
    ),
    ("sequential", "mean", RA_A, RA_B, True, True, None),
    ("sequential", "mean", MEAN_A3000, MEAN_B, False, True, None),
    ("bayesian", "binomial", ArmStats("a", 100, 49, 49), ArmStats("b", 100, 51, 51), False, True, None),
    ("bayesian", "mean", ArmStats("a", 10, 100, 1002.25), ArmStats("b", 10, 105, 1111.5), False, True, None),
    (
        "bayesian",
        "mean",
        ArmStats("a", 381, 99.06, 9987.2276),
        ArmStats("b", 381, 20281.8, 3646063.4064),
        False,
        True,
        None,
    ),
    ("frequentist", "mean", RA_A, RA_B, True, True, None),
    ("bayesian", "mean", RA_A, RA_B, True, False, None),
]


@pytest.mark.parametrize("case", GBSTATS_CASES, ids=lambda c: f"{c[0]}-{c[1]}-{'cuped' if c[4] else 'plain'}")
def test_gbstats_published_cases(case) -> None:
    engine, kind, a, b, cuped, relative, published = case
    theirs = gb_result(engine, kind, a, b, cuped=cuped, relative=relative)
    mine = ours(engine, kind, a, b, cuped=cuped, relative=relative)
    assert_same(engine, mine, theirs)
    if published:
        assert np.round(float(mine.ci_low), 5) == published["ci"][0]
        assert np.round(float(mine.ci_high), 5) == published["ci"][1]
        assert np.round(float(mine.p_value), 5) == published["p"]


def test_refusals_match_gbstats_but_say_why() -> None:
    # Zero variance (every unit converted) and a zero control mean: gbstats returns zeros,
    # we return NaN and an error code.
    full = ArmStats("a", 50, 50, 50)
    zero = ArmStats("a", 50, 0, 0)
    some = ArmStats("b", 50, 10, 10)
    for a, code in ((full, engines.ZERO_VARIANCE), (zero, engines.BASELINE_ZERO)):
        theirs = gb_result("frequentist", "binomial", a, some, cuped=False, relative=True)
        assert theirs.expected == 0 and theirs.p_value == 1 and theirs.error_message is not None
        mine = ours("frequentist", "binomial", a, some, cuped=False, relative=True)
        assert mine.error.item() == code and math.isnan(float(mine.p_value))


def test_absolute_lift_with_zero_control_mean_is_computed_deliberately() -> None:
    # A mean metric whose control units net to exactly 0 (refunds cancel purchases): gbstats' frequentist
    # test refuses even the absolute difference; the absolute difference and its variance are well defined.
    a = stats_from_units("a", np.array([-5.0, 5.0, -2.0, 2.0] * 50))
    b = stats_from_units("b", np.array([-4.0, 6.0, -1.0, 3.0] * 50))
    theirs = gb_result("frequentist", "mean", a, b, cuped=False, relative=False)
    assert theirs.error_message is not None
    mine = ours("frequentist", "mean", a, b, cuped=False, relative=False)
    assert mine.error.item() is None
    assert float(mine.estimate) == pytest.approx(1.0)
    assert float(mine.p_value) < 0.05
