"""Experiments stored in the warehouse: definitions, assignment, exposures and sums computed with Ibis."""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import pytest

from touchpoint.collect.store import write_messages
from touchpoint.errors import AlreadyExists, InvalidInput, NotFound
from touchpoint.experiments import assignment as asg
from touchpoint.experiments.analysis import AnalysisOptions
from touchpoint.experiments.definitions import (
    Experiment,
    create_experiment,
    get_experiment,
    list_experiments,
    update_weights,
)
from touchpoint.experiments.metrics import Metric, compute_stats
from touchpoint.experiments.results import analyze_experiment
from touchpoint.warehouse import Warehouse

T0 = datetime(2026, 3, 1)


@pytest.fixture()
def wh():
    w = Warehouse.open("duckdb://:memory:")
    yield w
    w.close()


def order(user: str, when: datetime, revenue: float) -> dict:
    return {
        "type": "track",
        "userId": user,
        "event": "Order Completed",
        "timestamp": when.isoformat(),
        "properties": {"order_id": f"{user}-{when.isoformat()}", "revenue": revenue},
    }


def test_definitions_round_trip_and_errors(wh: Warehouse) -> None:
    exp = Experiment(
        "promo",
        variants=["control", "a", "b"],
        weights=[2, 1, 1],
        metrics=[Metric.parse("rev:mean:Order Completed:revenue:cap=300:window=7")],
    )
    create_experiment(wh, exp)
    back = get_experiment(wh, "promo")
    assert back.weights == pytest.approx([0.5, 0.25, 0.25])
    assert back.metrics[0].cap == 300 and back.metrics[0].window_days == 7
    assert [e.key for e in list_experiments(wh)] == ["promo"]
    with pytest.raises(AlreadyExists):
        create_experiment(wh, Experiment("promo"))
    with pytest.raises(NotFound):
        get_experiment(wh, "nope")
    with pytest.raises(InvalidInput, match="weights"):
        Experiment("x", weights=[1, 2, 3])
    with pytest.raises(InvalidInput, match="control"):
        Experiment("x", control="missing")
    with pytest.raises(InvalidInput, match="key"):
        Experiment("bad key!")
    with pytest.raises(InvalidInput, match="NAME:KIND:EVENT"):
        Metric.parse("only-a-name")
    with pytest.raises(InvalidInput, match="denominator"):
        Metric.parse("aov:ratio:Order Completed:revenue")


def test_buckets_are_uniform_and_weights_are_respected() -> None:
    ids = [f"user-{i}" for i in range(40_000)]
    b = asg.buckets("exp", ids)
    assert b.min() >= 0 and b.max() < 1
    # uniform: each tenth holds ~10% (binomial sd 0.15%)
    counts = np.histogram(b, bins=10, range=(0, 1))[0] / b.size
    assert np.abs(counts - 0.1).max() < 0.008
    arms = asg.choose_variants(b, ["a", "b", "c"], [0.5, 0.3, 0.2])
    shares = [arms.count(v) / len(arms) for v in "abc"]
    assert shares == pytest.approx([0.5, 0.3, 0.2], abs=0.01)
    # independent across experiments: the correlation of buckets is ~0
    assert abs(np.corrcoef(b, asg.buckets("other", ids))[0, 1]) < 0.02
    assert asg.bucket("exp", "user-7") == b[7]


def test_sticky_assignment_survives_a_weight_change(wh: Warehouse) -> None:
    create_experiment(wh, Experiment("ramp", weights=[0.9, 0.1], start_at=T0))
    early = [f"u{i}" for i in range(2000)]
    arms = asg.assign_and_expose(wh, "ramp", early, when=T0 + timedelta(hours=1))
    assert 0.07 < list(arms.values()).count("treatment") / len(arms) < 0.13
    update_weights(wh, "ramp", [0.5, 0.5])
    again = asg.assign(wh, "ramp", early)
    assert again == arms  # nobody moved
    unsticky = asg.assign(wh, "ramp", early, sticky=False)
    assert unsticky != arms  # the hash alone would have moved some
    late = asg.assign(wh, "ramp", [f"new{i}" for i in range(2000)])
    assert 0.45 < list(late.values()).count("treatment") / 2000 < 0.55
    assert len(get_experiment(wh, "ramp").weights_history) == 2
    with pytest.raises(InvalidInput, match="not an arm"):
        asg.record_exposures(wh, "ramp", [("u1", "blue", T0)])


def test_holdout_is_persistent_and_sized(wh: Warehouse) -> None:
    h = asg.create_holdout(wh, "winback-holdout", 0.1)
    ids = [f"p{i}" for i in range(20_000)]
    treated, held = asg.split_holdout(h, ids)
    assert len(treated) + len(held) == len(ids)
    assert 0.09 < len(held) / len(ids) < 0.11
    assert all(asg.in_holdout(get_experiment(wh, "winback-holdout"), u) for u in held[:50])
    with pytest.raises(InvalidInput, match="holdout"):
        update_weights(wh, "winback-holdout", [0.5, 0.5])


def simulate(wh: Warehouse, n: int = 600, seed: int = 3) -> dict:
    """Exposures and orders before and after exposure (one unit sees both arms); the truth per unit."""
    rng = np.random.default_rng(seed)
    create_experiment(
        wh,
        Experiment(
            "cta",
            start_at=T0,
            metrics=[
                Metric("purchase", "binomial", "Order Completed", window_days=7),
                Metric("revenue", "mean", "Order Completed", "revenue", window_days=7, cap=150),
                Metric(
                    "aov",
                    "ratio",
                    "Order Completed",
                    "revenue",
                    window_days=7,
                    denominator_event="Order Completed",
                ),
            ],
        ),
    )
    msgs, truth = [], {}
    for i in range(n):
        user, arm = f"u{i}", ("control", "treatment")[i % 2]
        seen = T0 + timedelta(hours=int(rng.integers(0, 72)))
        msgs.append(asg.exposure_message("cta", user, arm, seen))
        msgs.append(asg.exposure_message("cta", user, arm, seen + timedelta(days=1)))  # repeat exposure
        y, d, x = 0.0, 0.0, 0.0
        for _ in range(int(rng.poisson(0.8 if arm == "treatment" else 0.6))):
            when = seen + timedelta(hours=float(rng.uniform(0, 24 * 10)))
            rev = float(np.round(rng.gamma(2, 40), 2))
            msgs.append(order(user, when, rev))
            if when < seen + timedelta(days=7):
                y, d = y + rev, d + 1
        for _ in range(int(rng.poisson(0.5))):
            when = seen - timedelta(hours=float(rng.uniform(1, 24 * 20)))
            rev = float(np.round(rng.gamma(2, 40), 2))
            msgs.append(order(user, when, rev))
            if when >= seen - timedelta(days=14):
                x += rev
        truth[user] = (arm, y, d, x)
    msgs.append(asg.exposure_message("cta", "u0", "treatment", T0 + timedelta(days=2)))  # u0 saw both arms
    truth.pop("u0")
    write_messages(wh, msgs, source="test")
    return truth


def test_sums_computed_in_the_warehouse_equal_numpy(wh: Warehouse) -> None:
    truth = simulate(wh)
    exp = get_experiment(wh, "cta")
    stats, summary = compute_stats(wh, "cta", exp.metrics, start=exp.start_at, covariates=True)
    assert summary["multiple_exposures"] == 1
    by = {(s.metric, a.variant): a for s in stats for a in s.arms}
    for arm in ("control", "treatment"):
        rows = np.array([(y, d, x) for a, y, d, x in truth.values() if a == arm])
        y, d, x = rows[:, 0], rows[:, 1], rows[:, 2]
        assert summary["units"][arm] == len(rows)
        p = by[("purchase", arm)]
        assert p.n == len(rows) and p.sum == (d > 0).sum() and p.sum_squares == (d > 0).sum()
        assert p.cov_sum == (x > 0).sum()
        r = by[("revenue", arm)]
        yc, xc = np.minimum(y, 150), np.minimum(x, 150)
        assert r.sum == pytest.approx(yc.sum()) and r.sum_squares == pytest.approx((yc**2).sum())
        assert r.cov_sum == pytest.approx(xc.sum()) and r.num_cov_sum_products == pytest.approx((yc * xc).sum())
        q = by[("aov", arm)]
        assert q.sum == pytest.approx(y.sum()) and q.den_sum == pytest.approx(d.sum())
        assert q.num_den_sum_products == pytest.approx((y * d).sum())


def test_analyze_experiment_end_to_end(wh: Warehouse) -> None:
    simulate(wh, n=2000)
    result = analyze_experiment(wh, "cta", options=AnalysisOptions(engine="sequential", cuped=True))
    assert result.srm.ok
    assert [m.metric for m in result.metrics] == ["purchase", "revenue", "aov"]
    assert result.metrics[0].cuped and not result.metrics[2].cuped
    purchase = result.metrics[0].comparisons[0]
    assert purchase.estimate is not None and purchase.estimate > 0
    assert any("more than one arm" in n for n in result.notes)
    assert result.status in {"win", "inconclusive"}
    as_dict = result.to_dict()
    assert as_dict["exposures"]["units"]["control"] > 900


def test_srm_refuses_a_verdict_on_a_broken_split(wh: Warehouse) -> None:
    create_experiment(wh, Experiment("broken", start_at=T0, metrics=[Metric("purchase", event="Order Completed")]))
    rng = np.random.default_rng(5)
    msgs = []
    for i in range(10_000):
        arm = "control" if rng.random() < 0.55 else "treatment"  # designed 50/50, delivered 55/45
        msgs.append(asg.exposure_message("broken", f"b{i}", arm, T0 + timedelta(minutes=i)))
        if rng.random() < 0.2:
            msgs.append(order(f"b{i}", T0 + timedelta(minutes=i + 5), 10.0))
    write_messages(wh, msgs, source="test")
    result = analyze_experiment(wh, "broken")
    assert not result.srm.ok and result.srm.p_value < 1e-6
    assert result.status == "srm_failed"
    assert "No verdict" in result.verdict and "traffic split" in result.verdict


def test_analysis_with_no_exposures_says_what_to_do(wh: Warehouse) -> None:
    create_experiment(wh, Experiment("empty", metrics=[Metric("purchase")]))
    with pytest.raises(InvalidInput, match="no exposures"):
        analyze_experiment(wh, "empty")


def test_numeric_variation_ids_and_a_dimension_breakdown(wh: Warehouse) -> None:
    # GrowthBook's SDKs send variation_id as a number; the arms are then named "0" and "1".
    create_experiment(
        wh,
        Experiment("gb", variants=["0", "1"], start_at=T0, metrics=[Metric("purchase", event="Order Completed")]),
    )
    msgs = []
    for i in range(1200):
        device = "mobile" if i % 3 else "desktop"
        msgs.append(
            {
                "type": "track",
                "event": "Experiment Viewed",
                "userId": f"g{i}",
                "timestamp": (T0 + timedelta(minutes=i)).isoformat(),
                "properties": {"experiment_id": "gb", "variation_id": i % 2, "device": device},
            }
        )
        if i % 5 == 0:
            msgs.append(order(f"g{i}", T0 + timedelta(minutes=i + 1), 30.0))
    write_messages(wh, msgs, source="test")
    result = analyze_experiment(wh, "gb", dimension="properties.device")
    assert result.srm.ok and result.variants == ["0", "1"]
    dims = {m.dimension: m for m in result.metrics}
    assert set(dims) == {None, "desktop", "mobile"}
    assert sum(a.n for a in dims["desktop"].arms) == 400 and sum(a.n for a in dims[None].arms) == 1200
    overall = {a.variant: a for a in dims[None].arms}
    assert overall["0"].mean == pytest.approx(0.2) and overall["1"].mean == pytest.approx(0.2)
