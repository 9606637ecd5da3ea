"""The parts that need no sampler: transforms, settings, data loading, diagnostics."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from touchpoint.errors import InvalidInput, NotFound
from touchpoint.mmm import MMMConfig, MMMData, from_file
from touchpoint.mmm import diagnostics as diag
from touchpoint.mmm.transforms import (
    adstock,
    adstock_weights,
    hill,
    lag_matrix,
    logistic,
    saturate,
    saturate_derivative,
)


@given(st.floats(0.01, 0.95), st.integers(1, 30))
def test_geometric_weights_sum_to_one_and_decay(decay: float, lags: int) -> None:
    w = adstock_weights(np, "geometric", np.array([[decay]]), lags)[0]
    assert w.sum() == pytest.approx(1.0)
    assert np.all(np.diff(w) <= 0)


def test_weibull_weights_can_peak_later() -> None:
    w = adstock_weights(np, "weibull", np.array([[3.0, 4.0]]), 13)[0]
    assert w.sum() == pytest.approx(1.0)
    assert 1 <= int(np.argmax(w)) <= 5  # a delayed peak, not at lag 0


def test_adstock_matches_a_direct_convolution() -> None:
    rng = np.random.default_rng(0)
    x = rng.uniform(size=(30, 2))
    w = adstock_weights(np, "geometric", np.array([[0.5], [0.2]]), 5)
    got = adstock(np, lag_matrix(x, 5), w)
    for c in range(2):
        expected = np.convolve(x[:, c], w[c])[:30]
        np.testing.assert_allclose(got[:, c], expected)


def test_saturation_values_and_derivatives() -> None:
    assert hill(np, np.array(2.0), np.array(2.0), np.array(3.0)) == pytest.approx(0.5)
    assert hill(np, np.array(0.0), np.array(1.0), np.array(1.5)) == pytest.approx(0.0, abs=1e-9)
    assert logistic(np, np.array(1e6), np.array(1.0)) == pytest.approx(1.0)
    a = np.linspace(0.1, 3, 20)
    for kind, params in (("hill", np.array([1.2, 2.0])), ("logistic", np.array([1.5]))):
        eps = 1e-6
        numeric = (saturate(np, kind, a + eps, params) - saturate(np, kind, a - eps, params)) / (2 * eps)
        np.testing.assert_allclose(saturate_derivative(kind, a, params), numeric, rtol=1e-5)


def test_config_round_trip_hash_and_errors() -> None:
    cfg = MMMConfig(draws=300, roi_priors={"tv": (2.0, 0.5)}, brand_channels=("tv",))
    again = MMMConfig.from_dict(cfg.to_dict())
    assert again == cfg and again.config_hash() == cfg.config_hash()
    assert MMMConfig(seed=1).config_hash() != MMMConfig(seed=2).config_hash()
    mu, sigma = cfg.roi_prior_lognormal("tv")
    assert np.exp(mu + sigma**2 / 2) == pytest.approx(2.0)  # the calibration keeps the lift test's mean
    with pytest.raises(InvalidInput, match="adstock 'carry'"):
        MMMConfig(adstock="carry")
    with pytest.raises(InvalidInput, match="chains=0"):
        MMMConfig(chains=0)
    with pytest.raises(InvalidInput, match=r"roi_priors\['tv'\]"):
        MMMConfig(roi_priors={"tv": (-1.0, 0.5)})
    with pytest.raises(InvalidInput, match="unknown model setting"):
        MMMConfig.from_dict({"drawz": 10})


def _weeks(n: int) -> np.ndarray:
    return np.arange(n) * 7 + np.datetime64("2024-01-01", "D")


def test_data_validation_names_the_problem() -> None:
    spend = {"tv": np.ones(30)}
    with pytest.raises(InvalidInput, match="only 20 weeks"):
        MMMData.from_columns(dates=_weeks(20), target=np.ones(20), spend={"tv": np.ones(20)})
    bad = np.ones(30)
    bad[3] = -1
    with pytest.raises(InvalidInput, match="spend of channel 'tv' is missing or negative in the week of 2024-01-22"):
        MMMData.from_columns(dates=_weeks(30), target=np.ones(30), spend={"tv": bad})
    dates = _weeks(30)
    dates[10:] += 7
    with pytest.raises(InvalidInput, match="not consecutive weeks"):
        MMMData.from_columns(dates=dates, target=np.ones(30), spend=spend)
    data = MMMData.from_columns(dates=_weeks(30), target=np.ones(30), spend={"tv": np.r_[np.ones(25), np.zeros(5)]})
    with pytest.raises(InvalidInput, match="channel 'tv' has no spend in the fitted weeks"):
        MMMData.from_columns(
            dates=_weeks(40), target=np.ones(40), spend={"tv": np.r_[np.zeros(35), np.ones(5)]}
        ).validate(holdout_weeks=5)
    assert MMMData.from_dict(data.to_dict()).to_dict() == data.to_dict()


def test_from_file_sums_days_into_weeks(tmp_path: Path) -> None:
    days = np.arange("2024-01-01", "2024-07-03", dtype="datetime64[D]")  # Monday .. a partial last week
    lines = ["day,sales,tv,search,price"]
    lines += [f"{d},{10 + i % 7},{1.0},{i % 3},{5 + (i // 7) % 2}" for i, d in enumerate(days)]
    path = tmp_path / "daily.csv"
    path.write_text("\n".join(lines))
    data = from_file(path, date_column="day", target="sales", channels=["tv", "search"], controls=["price"])
    assert data.n_weeks == 26  # the partial last week is dropped
    assert str(data.dates[0]) == "2024-01-01"
    np.testing.assert_allclose(data.spend[:, 0], 7.0)
    np.testing.assert_allclose(data.target, sum(10 + k for k in range(7)))
    assert set(np.unique(data.controls[:, 0])) == {5.0, 6.0}  # controls are averaged, not summed
    with pytest.raises(InvalidInput, match=r"column\(s\) 'radio' not in daily.csv") as err:
        from_file(path, date_column="day", target="sales", channels=["radio"])
    assert "day, sales, tv, search, price" in str(err.value)
    with pytest.raises(NotFound, match="does not exist"):
        from_file(tmp_path / "nope.csv", date_column="d", target="t", channels=["c"])


def test_rhat_and_ess_behave_as_published() -> None:
    rng = np.random.default_rng(1)
    iid = rng.normal(size=(4, 1000))
    assert diag.rhat(iid) < 1.01
    assert 3000 < diag.ess_bulk(iid) < 5000
    shifted = iid.copy()
    shifted[0] += 1.0
    assert diag.rhat(shifted) > 1.05  # one chain elsewhere: flagged
    rho = 0.8
    ar = np.zeros((4, 4000))
    noise = rng.normal(size=ar.shape)
    for t in range(1, ar.shape[1]):
        ar[:, t] = rho * ar[:, t - 1] + noise[:, t]
    expected = ar.size * (1 - rho) / (1 + rho)  # the AR(1) effective sample size
    assert diag.ess_bulk(ar) == pytest.approx(expected, rel=0.2)


def test_collinear_channels_are_found() -> None:
    rng = np.random.default_rng(0)
    x = rng.uniform(size=(50, 3))
    x[:, 2] = x[:, 0] * 2
    pairs = diag.collinear_channels(x, ("a", "b", "c"))
    assert pairs == [{"channels": ["a", "c"], "correlation": pytest.approx(1.0)}]


@settings(deadline=None, max_examples=30)
@given(st.lists(st.floats(0, 100), min_size=20, max_size=20))
def test_interval_coverage_is_a_share(values: list[float]) -> None:
    obs = np.array(values)
    pred = np.random.default_rng(0).normal(obs, 1.0, size=(200, 20))
    assert 0.0 <= diag.interval_coverage(obs, pred, 0.9) <= 1.0


def test_importing_touchpoint_mmm_does_not_load_jax() -> None:
    code = "import sys, touchpoint.mmm, touchpoint.cli.mmm; print('jax' in sys.modules, 'numpyro' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False False"


def test_from_warehouse_builds_weekly_revenue_and_spend(tmp_path: Path) -> None:
    from touchpoint.collect.spend import import_spend
    from touchpoint.collect.store import write_messages
    from touchpoint.mmm import from_warehouse
    from touchpoint.warehouse import Warehouse

    wh = Warehouse.open(f"duckdb://{tmp_path / 'wh.duckdb'}")
    try:
        days = np.arange("2024-01-01", "2024-07-10", dtype="datetime64[D]")  # 27 full weeks and 3 days
        orders = [
            {
                "type": "track",
                "event": "Order Completed",
                "userId": f"u{i}",
                "timestamp": f"{d}T12:00:00Z",
                "properties": {"order_id": f"o{i}", "revenue": 10.0 + i % 7},
            }
            for i, d in enumerate(days)
        ]
        orders.append(
            {
                "type": "track",
                "event": "Product Viewed",
                "userId": "u0",
                "timestamp": "2024-01-02T10:00:00Z",
                "properties": {"revenue": 999.0},
            }
        )
        write_messages(wh, orders, source="test")
        weeks = np.arange("2024-01-01", "2024-07-10", 7, dtype="datetime64[D]")
        lines = ["date,channel,campaign,amount"]
        lines += [f"{w},search,,{100 + i}" for i, w in enumerate(weeks)]  # one row per week (Monday)
        lines += [f"{w},tv,a,{50}" for w in weeks[::2]] + [f"{w},tv,b,{25}" for w in weeks[::2]]
        (tmp_path / "spend.csv").write_text("\n".join(lines))
        import_spend(wh, tmp_path / "spend.csv")
        data = from_warehouse(wh)
        assert data.channels == ("search", "tv")
        assert data.n_weeks == 27 and str(data.dates[0]) == "2024-01-01"  # the partial last week is dropped
        np.testing.assert_allclose(data.target, sum(10 + k for k in range(7)))  # Product Viewed is not an order
        np.testing.assert_allclose(data.spend[:3, 0], [100, 101, 102])
        np.testing.assert_allclose(data.spend[:4, 1], [75, 0, 75, 0])
        conv = from_warehouse(wh, kpi="conversions", channels=["tv"])
        assert conv.channels == ("tv",) and conv.target[0] == 7
        with pytest.raises(NotFound, match=r"no spend for channel\(s\) \['radio'\]"):
            from_warehouse(wh, channels=["radio"])
    finally:
        wh.close()


def test_new_customer_kpis_count_each_customers_first_order_only(tmp_path: Path) -> None:
    from touchpoint.collect.spend import import_spend
    from touchpoint.collect.store import write_messages
    from touchpoint.mmm import from_warehouse
    from touchpoint.warehouse import Warehouse

    wh = Warehouse.open(f"duckdb://{tmp_path / 'wh.duckdb'}")
    try:
        days = np.arange("2024-01-01", "2024-07-15", dtype="datetime64[D]")  # 28 weeks of days
        order = {"type": "track", "event": "Order Completed"}
        orders = []
        for i in range(35):  # u1..u35 first order on day i (revenue 20), then weekly twice (5)
            for k, day in enumerate(days[i::7][:3]):
                props = {"order_id": f"o{i}-{k}", "revenue": 20.0 if k == 0 else 5.0}
                orders.append(order | {"userId": f"u{i + 1}", "timestamp": f"{day}T12:00:00Z", "properties": props})
        for w, day in enumerate(days[2::7]):  # u0 orders every Wednesday (revenue 1)
            props = {"order_id": f"w{w}", "revenue": 1.0}
            orders.append(order | {"userId": "u0", "timestamp": f"{day}T09:00:00Z", "properties": props})
        orders.append(order | {"anonymousId": "a1", "timestamp": "2024-01-01T09:00:00Z"})  # no revenue
        write_messages(wh, orders, source="test")
        lines = ["date,channel,campaign,amount"] + [f"{w},search,,100" for w in days[::7]]  # weekly rows
        (tmp_path / "spend.csv").write_text("\n".join(lines))
        import_spend(wh, tmp_path / "spend.csv")
        new = from_warehouse(wh, kpi="new_customers")
        assert new.target_name == "new_customers"
        # 27 weeks: the last one ends on a Wednesday, so it is partial and dropped
        np.testing.assert_allclose(new.target, [9, 7, 7, 7, 7] + [0] * 22)
        revenue = from_warehouse(wh, kpi="new_customer_revenue")
        np.testing.assert_allclose(revenue.target, [141, 140, 140, 140, 140] + [0] * 22)
        conv = from_warehouse(wh, kpi="conversions")
        np.testing.assert_allclose(conv.target, [9, 15, 22, 22, 22, 15, 8] + [1] * 20)
        with pytest.raises(InvalidInput, match="new_customer_revenue"):
            from_warehouse(wh, kpi="profit")
    finally:
        wh.close()


def test_spend_that_only_follows_the_season_has_no_independent_variation() -> None:
    from touchpoint.mmm.transforms import fourier_terms

    t = np.arange(156, dtype=float)
    season = fourier_terms(t, 52.18, 2)
    rng = np.random.default_rng(0)
    seasonal = 1000 * (1 + 0.3 * season[:, 0])  # search that follows demand
    bursts = 500 * rng.lognormal(0, 0.8, t.size) * (rng.random(t.size) < 0.7)  # flighted video
    rows = diag.spend_variation(np.column_stack([seasonal, bursts]), season, ("search", "video"))
    search, video = rows
    assert search["variation"] == pytest.approx(0.3 / np.sqrt(2), rel=0.05)
    assert search["independent_variation"] < 1e-9 and search["explained_share"] == pytest.approx(1.0)
    assert video["independent_variation"] > 0.8 and video["explained_share"] < 0.2
