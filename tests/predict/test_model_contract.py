"""The model contract: inputs are checked with errors that name the field, fitted models save and load
with a config hash, and predictions keep their invariants for any customer history."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from touchpoint.errors import InvalidInput
from touchpoint.predict import (
    BetaGeoModel,
    GammaGammaModel,
    Model,
    ModelMismatch,
    ModelNotFitted,
    ModifiedBetaGeoModel,
    ParetoNBDModel,
)
from touchpoint.predict.simulate import simulate_bg_nbd

BG = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}
PN = {"r": 0.553, "alpha": 10.578, "s": 0.606, "beta": 11.669}
MODELS = [BetaGeoModel(params=BG), ModifiedBetaGeoModel(params=BG), ParetoNBDModel(params=PN)]


def test_bad_inputs_name_the_field():
    m = BetaGeoModel()
    with pytest.raises(InvalidInput, match=r"frequency\[1\] is -1.0"):
        m.fit([1, -1], [1, 1], [2, 2])
    with pytest.raises(InvalidInput, match=r"recency 5\.0 is later than T 2\.0"):
        m.fit([1, 1], [1, 5], [2, 2])
    with pytest.raises(InvalidInput, match="whole number"):
        m.fit([1.5], [1], [2])
    with pytest.raises(InvalidInput, match=r"recency 1\.0 with no repeat purchase"):
        m.fit([0], [1], [2])
    with pytest.raises(InvalidInput, match="not a finite number"):
        m.fit([1, 2], [1, float("nan")], [2, 3])
    with pytest.raises(InvalidInput, match="no customer made a repeat purchase"):
        m.fit([0, 0], [0, 0], [3, 4])
    with pytest.raises(ModelNotFitted):
        m.p_alive(1, 1, 2)
    with pytest.raises(InvalidInput, match="parameter b=-1"):
        BetaGeoModel(params={**BG, "b": -1})


def test_save_and_load_round_trip(tmp_path):
    sim = simulate_bg_nbd(3000, BG, T=(10.0, 40.0), seed=2)
    m = BetaGeoModel()
    m.fit(sim.frequency, sim.recency, sim.T)
    path = m.save(tmp_path / "bg.json")
    loaded = Model.load(path)
    assert isinstance(loaded, BetaGeoModel) and loaded.params_ == m.params_
    assert loaded.report_ is not None and loaded.report_.log_likelihood == m.report_.log_likelihood
    np.testing.assert_allclose(
        loaded.p_alive(sim.frequency, sim.recency, sim.T), m.p_alive(sim.frequency, sim.recency, sim.T)
    )
    # Loading into the wrong class, another format or a changed definition raises instead of scoring.
    with pytest.raises(ModelMismatch, match="not pareto_nbd"):
        ParetoNBDModel.load(path)
    data = json.loads(path.read_text())
    (tmp_path / "old.json").write_text(json.dumps({**data, "format": 0}))
    with pytest.raises(ModelMismatch, match="format 0"):
        Model.load(tmp_path / "old.json")
    (tmp_path / "hash.json").write_text(json.dumps({**data, "config_hash": "0" * 16}))
    with pytest.raises(ModelMismatch, match="config hash"):
        Model.load(tmp_path / "hash.json")


def test_fit_is_order_independent_and_weights_match_repeats():
    sim = simulate_bg_nbd(2000, BG, T=(5.0, 40.0), seed=4)
    a = BetaGeoModel().fit(sim.frequency, sim.recency, sim.T)
    perm = np.random.default_rng(0).permutation(2000)
    b = BetaGeoModel().fit(sim.frequency[perm], sim.recency[perm], sim.T[perm])
    assert a.log_likelihood == pytest.approx(b.log_likelihood, rel=1e-12)
    doubled = BetaGeoModel().fit(
        np.r_[sim.frequency, sim.frequency], np.r_[sim.recency, sim.recency], np.r_[sim.T, sim.T]
    )
    weighted = BetaGeoModel().fit(sim.frequency, sim.recency, sim.T, weights=np.full(2000, 2.0))
    assert weighted.log_likelihood == pytest.approx(doubled.log_likelihood, rel=1e-9)


def test_log_likelihood_rows_sum_to_the_fit():
    sim = simulate_bg_nbd(2000, BG, T=(5.0, 40.0), seed=6)
    for cls in (BetaGeoModel, ModifiedBetaGeoModel, ParetoNBDModel):
        m = cls()
        rep = m.fit(sim.frequency, sim.recency, sim.T)
        assert m.log_likelihood(sim.frequency, sim.recency, sim.T).sum() == pytest.approx(rep.log_likelihood)


def test_gamma_gamma_needs_repeat_buyers():
    with pytest.raises(InvalidInput, match="repeat purchases and positive spend"):
        GammaGammaModel().fit([0, 0, 1], [0, 0, 5.0])


histories = st.tuples(st.integers(0, 200), st.floats(0.0, 1.0), st.floats(0.01, 500.0)).map(
    lambda h: (float(h[0]), (h[1] * h[2]) if h[0] > 0 else 0.0, h[2])
)


@settings(max_examples=60, deadline=None)
@given(histories, st.floats(0.1, 200.0))
def test_prediction_invariants(history, t):
    x, tx, T = history
    for m in MODELS:
        pa = m.p_alive(x, tx, T)[0]
        assert 0.0 <= pa <= 1.0
        e1 = m.expected_purchases(t, x, tx, T)[0]
        e2 = m.expected_purchases(2 * t, x, tx, T)[0]
        assert np.isfinite(e1) and 0.0 <= e1 <= e2 + 1e-9
        w = m.next_purchase_wait(x, tx, T)[0]
        assert w > 0
        clv = m.clv(x, tx, T, 10.0, horizon=t, period=t / 4, discount_rate=0.01)[0]
        assert 0.0 <= clv <= 10.0 * e1 + 1e-9  # discounting only lowers value


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 50), st.floats(0.0, 1.0), st.floats(1.0, 100.0))
def test_p_alive_rises_with_recency(x, share, T):
    for m in MODELS:
        early, late = m.p_alive(x, [share * T * 0.5, share * T], T)
        assert late >= early - 1e-12
