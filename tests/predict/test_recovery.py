"""Parameter recovery: fitting data simulated from known parameters gives them back, within the
reported standard errors, and the errors shrink like 1/sqrt(n)."""

from __future__ import annotations

import numpy as np
import pytest

from touchpoint.predict import BetaGeoModel, GammaGammaModel, ModifiedBetaGeoModel, ParetoNBDModel
from touchpoint.predict.simulate import simulate_bg_nbd, simulate_pareto_nbd, simulate_spend

BG = {"r": 0.25, "alpha": 4.0, "a": 0.8, "b": 2.5}
PN = {"r": 0.55, "alpha": 10.5, "s": 0.6, "beta": 11.7}
GG = {"p": 6.0, "q": 4.0, "gamma": 15.0}


def _within(report, truth, z=3.5):
    for name, value in truth.items():
        est, se = report.params[name], report.standard_errors[name]
        assert abs(est - value) < z * se, f"{name}: {est:.4f} vs {value} (se {se:.4f})"


@pytest.mark.parametrize("n", [3_000, 30_000])
def test_bg_nbd_recovery(n):
    sim = simulate_bg_nbd(n, BG, T=(10.0, 52.0), seed=n)
    report = BetaGeoModel().fit(sim.frequency, sim.recency, sim.T)
    assert report.converged
    _within(report, BG)


@pytest.mark.parametrize("n", [3_000, 30_000])
def test_pareto_nbd_recovery(n):
    sim = simulate_pareto_nbd(n, PN, T=(10.0, 52.0), seed=n)
    report = ParetoNBDModel().fit(sim.frequency, sim.recency, sim.T)
    assert report.converged
    _within(report, PN)


def test_mbg_nbd_recovery():
    truth = {"r": 0.5, "alpha": 6.0, "a": 0.9, "b": 1.6}
    sim = simulate_bg_nbd(20_000, truth, T=(10.0, 52.0), seed=7, modified=True)
    report = ModifiedBetaGeoModel().fit(sim.frequency, sim.recency, sim.T)
    assert report.converged
    _within(report, truth)


def test_gamma_gamma_recovery():
    sim = simulate_bg_nbd(40_000, {"r": 1.0, "alpha": 4.0, "a": 0.8, "b": 2.5}, T=52.0, seed=3)
    mean, _ = simulate_spend(sim.frequency, GG, seed=4)
    report = GammaGammaModel().fit(sim.frequency, mean)
    assert report.converged
    _within(report, GG)


def test_standard_errors_shrink_with_sample_size():
    ses = []
    for n in (2_000, 8_000, 32_000):
        sim = simulate_bg_nbd(n, BG, T=(10.0, 52.0), seed=11)
        ses.append(BetaGeoModel().fit(sim.frequency, sim.recency, sim.T).standard_errors["r"])
    ratios = np.array(ses[:-1]) / np.array(ses[1:])
    np.testing.assert_allclose(ratios, 2.0, rtol=0.25)  # 4x the customers, half the error


def test_simulator_counts_purchases_not_periods():
    # Daily-rounded summaries merge same-day purchases only; the continuous ones count every purchase.
    exact = simulate_bg_nbd(20_000, {"r": 4.0, "alpha": 2.0, "a": 0.5, "b": 20.0}, T=20.0, seed=5)
    daily = simulate_bg_nbd(20_000, {"r": 4.0, "alpha": 2.0, "a": 0.5, "b": 20.0}, T=20.0, seed=5, resolution=1.0)
    assert exact.frequency.mean() > daily.frequency.mean()
    # Mean repeat purchases match the model's expectation E[X(T)].
    model = BetaGeoModel(params={"r": 4.0, "alpha": 2.0, "a": 0.5, "b": 20.0})
    assert exact.frequency.mean() == pytest.approx(model.expected_purchases_new(20.0)[0], rel=0.02)


def test_holdout_predictions_match_simulated_future():
    sim = simulate_bg_nbd(30_000, BG, T=(20.0, 52.0), holdout=26.0, seed=21)
    model = BetaGeoModel(params=BG)
    predicted = model.expected_purchases(26.0, sim.frequency, sim.recency, sim.T)
    assert predicted.sum() == pytest.approx(sim.holdout_frequency.sum(), rel=0.05)
    # P(alive) is calibrated: customers the model thinks are alive mostly are.
    pa = model.p_alive(sim.frequency, sim.recency, sim.T)
    assert pa.mean() == pytest.approx(sim.alive.mean(), abs=0.02)


@pytest.mark.slow
@pytest.mark.parametrize("n", [300_000])
def test_recovery_large(n):
    sim = simulate_pareto_nbd(n, PN, T=(10.0, 52.0), seed=99, resolution=1 / 7)
    report = ParetoNBDModel().fit(sim.frequency, sim.recency, sim.T)
    _within(report, PN, z=4.0)  # day rounding merges a few same-day purchases
    sim = simulate_bg_nbd(n, BG, T=(10.0, 52.0), seed=98)
    _within(BetaGeoModel().fit(sim.frequency, sim.recency, sim.T), BG)
