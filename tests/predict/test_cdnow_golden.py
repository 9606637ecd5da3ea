"""Golden tests: our estimators reproduce the published CDNOW results.

Sources of the reference numbers (see docs/predict.md):
- BG/NBD: Fader, Hardie & Lee (2005a), "Counting your customers the easy way", r=0.243, alpha=4.414,
  a=0.793, b=2.426, LL=-9582.4; unconditional expectations and E[Y(39) | x=2, t_x=30.43, T=38.86] = 1.226
  from Hardie's spreadsheet for that paper (as also tested by lifetimes).
- Pareto/NBD: Fader, Hardie & Lee (2005b), r=0.553, alpha=10.578, s=0.606, beta=11.669, LL=-9595.0;
  standard errors as computed by CLVTools' correctness tests (0.0476, 0.8427, 0.1873, 6.2105).
- MBG/NBD: BTYDplus on CDNOW, r=0.525, alpha=6.183, a=0.891, b=1.614.
- Gamma-Gamma: Fader, Hardie & Lee (2005b) / Fader & Hardie (2013), p=6.25, q=3.74, gamma=15.44.
- BTYD walkthrough, Pareto/NBD, customer 1516 (x=26, t_x=30.86, T=31): 52-week conditional expectation
  25.46 and P(alive) 0.998.
"""

from __future__ import annotations

import numpy as np
import pytest

from touchpoint.predict import BetaGeoModel, GammaGammaModel, ModifiedBetaGeoModel, ParetoNBDModel

BGNBD = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}
PNBD = {"r": 0.553, "alpha": 10.578, "s": 0.606, "beta": 11.669}


def _fit(cls, d):
    model = cls()
    report = model.fit(d["x"], d["t_x"], d["T"])
    return model, report


def test_bg_nbd_reproduces_fader_hardie_lee_2005(cdnow_published):
    _, report = _fit(BetaGeoModel, cdnow_published)
    assert report.converged and report.hessian_positive_definite
    for name, value in BGNBD.items():
        assert report.params[name] == pytest.approx(value, abs=1.5e-3), name
    assert report.log_likelihood == pytest.approx(-9582.4, abs=0.05)
    assert report.n_customers == 2357
    # Standard errors are finite and small relative to the estimates.
    assert all(0 < report.standard_errors[p] < report.params[p] for p in BGNBD)


def test_bg_nbd_hardie_spreadsheet_expectations(cdnow_published):
    model, _ = _fit(BetaGeoModel, cdnow_published)
    assert model.expected_purchases(39, 2, 30.43, 38.86)[0] == pytest.approx(1.226, abs=1e-3)
    times = np.array([0.1429, 1.0, 3.00, 31.8571, 32.00, 78.00])
    expected = np.array([0.0078, 0.0532, 0.1506, 1.0405, 1.0437, 1.8576])
    np.testing.assert_allclose(model.expected_purchases_new(times), expected, atol=5e-4)
    # With the paper's rounded parameters, the conditional expectation is still 1.226.
    paper = BetaGeoModel(params=BGNBD)
    assert paper.expected_purchases(39, 2, 30.43, 38.86)[0] == pytest.approx(1.226, abs=1e-3)


def test_pareto_nbd_reproduces_fader_hardie_lee_2005(cdnow_published):
    _, report = _fit(ParetoNBDModel, cdnow_published)
    assert report.converged and report.hessian_positive_definite
    for name, value in PNBD.items():
        assert report.params[name] == pytest.approx(value, rel=2e-3), name
    assert report.log_likelihood == pytest.approx(-9595.0, abs=0.05)
    ses = {"r": 0.0476264, "alpha": 0.8427222, "s": 0.1872594, "beta": 6.2105448}
    for name, value in ses.items():
        assert report.standard_errors[name] == pytest.approx(value, rel=0.01), name


def test_pareto_nbd_btyd_walkthrough_customer_1516():
    model = ParetoNBDModel(params=PNBD)
    assert model.expected_purchases(52, 26, 30.86, 31)[0] == pytest.approx(25.46, abs=0.01)
    assert model.p_alive(26, 30.86, 31)[0] == pytest.approx(0.998, abs=1e-3)


def test_mbg_nbd_reproduces_btydplus(cdnow_published):
    _, report = _fit(ModifiedBetaGeoModel, cdnow_published)
    expected = {"r": 0.525, "alpha": 6.183, "a": 0.891, "b": 1.614}
    assert report.converged
    for name, value in expected.items():
        assert report.params[name] == pytest.approx(value, abs=2e-3), name


def test_gamma_gamma_reproduces_fader_hardie_lee_2005(cdnow_published):
    model = GammaGammaModel()
    report = model.fit(cdnow_published["x"], cdnow_published["zbar"])
    assert report.converged
    assert report.n_customers == 946  # repeat buyers in the calibration period
    for name, value in {"p": 6.25, "q": 3.74, "gamma": 15.44}.items():
        assert report.params[name] == pytest.approx(value, abs=0.011), name
    # The published summary rounds zbar to cents; CLVTools reports LL -4055.92 on unrounded data.
    assert report.log_likelihood == pytest.approx(-4055.92, abs=0.05)


def test_probability_of_n_purchases_is_a_distribution_with_the_right_mean():
    for model in (
        BetaGeoModel(params=BGNBD),
        ParetoNBDModel(params=PNBD),
        ModifiedBetaGeoModel(params={"r": 0.525, "alpha": 6.183, "a": 0.891, "b": 1.614}),
    ):
        n = np.arange(0, 300)
        pmf = model.prob_purchases(n, 39.0)
        assert pmf.min() >= 0
        assert pmf.sum() == pytest.approx(1.0, abs=1e-8)
        assert (n * pmf).sum() == pytest.approx(model.expected_purchases_new(39.0)[0], rel=1e-6)


def test_probability_alive_bounds_and_monotone_in_recency():
    model = BetaGeoModel(params=BGNBD)
    assert model.p_alive(0, 0, 30)[0] == 1.0  # BG/NBD: no repeat purchase, no chance to drop out
    pa = model.p_alive(5, np.array([5.0, 15.0, 25.0, 35.0]), 38.0)
    assert np.all(np.diff(pa) > 0) and np.all((pa > 0) & (pa < 1))
    mbg = ModifiedBetaGeoModel(params={"r": 0.525, "alpha": 6.183, "a": 0.891, "b": 1.614})
    assert mbg.p_alive(0, 0, 30)[0] < 1.0


def test_calibration_period_fit_histogram(cdnow_published):
    from touchpoint.predict.validation import calibration_fit

    model, _ = _fit(BetaGeoModel, cdnow_published)
    fit = calibration_fit(model, cdnow_published["x"], cdnow_published["T"])
    # The actual counts of the BG/NBD paper's calibration-fit figure (0, 1, ..., 6, 7+ repeat purchases).
    assert fit["actual"] == [1411, 439, 214, 100, 62, 38, 29, 64]
    assert sum(fit["expected"]) == pytest.approx(2357, abs=1e-6)
    np.testing.assert_allclose(fit["expected"], fit["actual"], rtol=0.15)
