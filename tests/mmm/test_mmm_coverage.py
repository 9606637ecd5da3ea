"""The coverage study's generator does what its scenarios claim, and a small version of the study itself
(issue 19, part 1; the full study is ``bench/mmm_coverage.py``, its table in docs/mmm.md).

The study test fits 10 data sets of one hard scenario at one small sampler setting, so every fit runs the
same compiled sampler (kept in JAX's persistent compilation cache across runs), and asserts that the share
of channels whose 90% interval covers the true ROMI lies in the target band, 85-95%.
"""

from __future__ import annotations

import numpy as np
import pytest

from touchpoint.mmm import MMMConfig, fit
from touchpoint.mmm.simulate import SCENARIOS, scenario, simulate, simulate_meridian, true_test_roi


def _independent_cv(x: np.ndarray) -> float:
    return float(np.std(x) / np.mean(x))


def test_the_default_data_set_is_unchanged_by_the_scenario_options() -> None:
    plain, truth = simulate(weeks=104, channels=3, seed=1)
    same, same_truth = simulate(weeks=104, channels=3, seed=1, demand_sd=0.0, confounded=(), always_on=(), bursty=())
    np.testing.assert_array_equal(plain.target, same.target)
    assert truth["roi"] == same_truth["roi"]
    assert truth["roi"]["ch1"] == pytest.approx(3.357234211218813)  # the value before the options existed


def test_scenarios_have_the_shapes_they_claim() -> None:
    for seed in range(5):
        data, _ = simulate(weeks=156, channels=5, seed=seed, always_on=(0,), bursty=(1,))
        always, burst = data.spend[:, 0], data.spend[:, 1]
        assert always.min() > 0 and _independent_cv(always) < 0.2  # never pauses, barely moves
        assert 0.5 < np.mean(burst == 0) < 0.9  # dark most weeks
        data, _ = simulate(weeks=104, channels=4, seed=seed, collinear=(0, 1))
        assert 0.5 < np.corrcoef(data.spend[:, 0], data.spend[:, 1])[0, 1] < 0.97
        data, _ = simulate(weeks=104, channels=4, seed=seed, confounded=(0,), demand_sd=0.1, demand_control=True)
        demand = data.controls[:, 0]
        assert data.control_names == ("demand",)
        on, other = data.spend[:, 0] > 0, data.spend[:, 2] > 0  # in the weeks a channel runs, log spend
        assert np.corrcoef(np.log(data.spend[on, 0]), demand[on])[0, 1] > 0.3  # follows demand
        assert abs(np.corrcoef(np.log(data.spend[other, 2]), demand[other])[0, 1]) < 0.3  # unconfounded
        hidden, _ = simulate(weeks=104, channels=4, seed=seed, confounded=(0,), demand_sd=0.1)
        assert hidden.control_names == () and np.array_equal(hidden.target, data.target)


def test_delayed_carryover_truth_matches_a_perfect_lift_test() -> None:
    data, truth = simulate(weeks=104, channels=3, seed=2, carryover="weibull")
    assert truth["carryover"] == "weibull" and min(truth["weibull_shape"].values()) >= 1.5
    # zeroing a channel over all weeks loses exactly its contribution: the lift test equals the true ROMI
    whole = true_test_roi(data, truth, "ch2", slice(0, 104))
    assert whole["roi"] == pytest.approx(truth["roi"]["ch2"], rel=1e-9)


def test_meridian_port_has_its_published_scale() -> None:
    data, truth = simulate_meridian(seed=0)
    assert data.spend.shape == (156, 4) and data.control_names == ("control1", "control2")
    # cost per impression about 0.0115 and about 1.8 impressions per capita over 5.5 million people on average
    assert 1e5 < data.spend.mean() < 1e6
    assert min(truth["roi"].values()) > 0.5 and max(truth["roi"].values()) < 10
    assert 0.1 < truth["media_share"] < 0.5
    again, _ = simulate_meridian(seed=0)
    np.testing.assert_array_equal(again.target, data.target)


def test_every_scenario_builds() -> None:
    for name in SCENARIOS:
        data, truth, settings = scenario(name, seed=0)
        assert set(truth["roi"]) == set(data.channels)
        MMMConfig(**settings)


CI_SCENARIO = "confounded-control"
CI_DATASETS = 10
CI_CONFIG = {"draws": 250, "warmup": 250, "chains": 2, "holdout_weeks": 8}


@pytest.mark.slow
@pytest.mark.timeout(900)  # 10 fits: about 230 s of CPU (two chains in parallel) when the sampler is cached
def test_small_coverage_study_is_in_the_target_band() -> None:
    covered, channels, gate_passed = 0, 0, 0
    for seed in range(CI_DATASETS):
        data, truth, settings = scenario(CI_SCENARIO, seed, holdout_weeks=CI_CONFIG["holdout_weeks"])
        result = fit(data, MMMConfig(seed=seed, **CI_CONFIG, **settings))
        gate_passed += result.status != "failed"
        for ch, est in result.romi().items():
            channels += 1
            covered += est["romi"]["low"] <= truth["roi"][ch] <= est["romi"]["high"]
    coverage = covered / channels
    assert 0.85 <= coverage <= 0.95, (covered, channels)
    assert gate_passed >= CI_DATASETS - 2  # the sampler converges at this setting on almost every data set
