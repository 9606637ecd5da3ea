"""Markov attribution: exact removal effects against closed forms and an independent solver."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from touchpoint.errors import InvalidInput
from touchpoint.journeys.attribution import attribute
from touchpoint.journeys.markov import markov
from touchpoint.journeys.pathdata import PathData


def test_order1_closed_form() -> None:
    # start->A 2/3, start->B 1/3; A->B 1/2, A->null 1/2; B->conv 1.  P = 2/3*1/2 + 1/3 = 2/3.
    data = PathData.from_lists([["A", "B"], ["A"], ["B"]], conversions=[1, 0, 1], nulls=[0, 1, 0])
    fit = markov(data)
    assert fit.p_conversion == pytest.approx(2 / 3, abs=1e-12)
    re = dict(zip(fit.channels, fit.removal_effects, strict=True))
    assert re["A"] == pytest.approx(0.5, abs=1e-12)  # without A: 1/3 -> 1 - (1/3)/(2/3)
    assert re["B"] == pytest.approx(1.0, abs=1e-12)
    credited = dict(zip(fit.channels, fit.conversions, strict=True))
    assert credited["A"] == pytest.approx(2 * 0.5 / 1.5)
    assert credited["B"] == pytest.approx(2 * 1.0 / 1.5)


def test_order1_with_a_loop() -> None:
    # A->B 1/2, A->conv 1/2, B->A 1/2, B->null 1/2; start 1/2 each. P_A = 2/3, P_B = 1/3, P = 1/2.
    data = PathData.from_lists([["A", "B", "A"], ["B"]], conversions=[1, 0], nulls=[0, 1])
    fit = markov(data)
    assert fit.p_conversion == pytest.approx(0.5, abs=1e-12)
    re = dict(zip(fit.channels, fit.removal_effects, strict=True))
    assert re["A"] == pytest.approx(1.0, abs=1e-12)
    assert re["B"] == pytest.approx(0.5, abs=1e-12)  # without B: P = 1/2 * 1/2 = 1/4


def test_order2_closed_form() -> None:
    # states (A) (A,B) (B) (B,C): A>B conv 3; B>C conv 1, null 1; A null 2.
    # start: A 5/7, B 2/7. (A): ->(A,B) 3/5, null 2/5. (A,B): conv. (B)->(B,C). (B,C): conv 1/2.
    # P = 5/7*3/5 + 2/7*1/2 = 4/7. Without A: 1/7. Without B: 0. Without C: 3/7.
    data = PathData.from_lists([["A", "B"], ["B", "C"], ["A"]], conversions=[3, 1, 0], nulls=[0, 1, 2])
    fit = markov(data, order=2)
    assert fit.p_conversion == pytest.approx(4 / 7)
    re = dict(zip(fit.channels, fit.removal_effects, strict=True))
    assert re["A"] == pytest.approx(1 - (1 / 7) / (4 / 7))
    assert re["B"] == pytest.approx(1.0)
    assert re["C"] == pytest.approx(1 - (3 / 7) / (4 / 7))
    assert fit.n_states == 4


def test_without_nulls_every_path_converts() -> None:
    data = PathData.from_lists([["A", "B"], ["B"]], conversions=[1, 1], nulls=[0, 5])
    fit = markov(data, use_nulls=False)
    assert fit.p_conversion == pytest.approx(1.0)
    re = dict(zip(fit.channels, fit.removal_effects, strict=True))
    assert re["A"] == pytest.approx(0.5)  # half the conversions can't bypass A
    assert re["B"] == pytest.approx(1.0)
    assert fit.conversions.sum() == pytest.approx(2.0)


def test_value_is_credited_by_value_weighted_removal() -> None:
    data = PathData.from_lists([["A"], ["B"]], conversions=[1, 1], value=[100, 10])
    fit = markov(data)
    credited = dict(zip(fit.channels, fit.value, strict=True))
    assert credited["A"] == pytest.approx(100.0)
    assert credited["B"] == pytest.approx(10.0)


def test_errors() -> None:
    data = PathData.from_lists([["A"]], conversions=[0], nulls=[1])
    with pytest.raises(InvalidInput, match="no conversions"):
        markov(data)
    with pytest.raises(InvalidInput, match="order 4"):
        markov(PathData.from_lists([["A"]]), order=4)


# -- an independent, dictionary-based implementation to check against ------------------------------
def reference(paths: list[list[str]], conv: list[float], nulls: list[float], order: int) -> dict[str, float]:
    counts: dict[tuple, dict[tuple, float]] = {}

    def add(a: tuple, b: tuple, w: float) -> None:
        counts.setdefault(a, {})
        counts[a][b] = counts[a].get(b, 0.0) + w

    for p, c, n in zip(paths, conv, nulls, strict=True):
        states = [tuple(p[max(0, i - order + 1) : i + 1]) for i in range(len(p))]
        w = c + n
        if w == 0:
            continue
        add(("<start>",), states[0], w)
        for a, b in itertools.pairwise(states):
            add(a, b, w)
        add(states[-1], ("<conv>",), c)
        add(states[-1], ("<null>",), n)

    def p_conv(removed: str | None) -> float:
        transient = [s for s in counts if s != ("<start>",) and (removed is None or removed not in s)]
        index = {s: i for i, s in enumerate(transient)}
        q = np.zeros((len(transient), len(transient)))
        r = np.zeros(len(transient))
        for s in transient:
            total = sum(counts[s].values())
            for t, w in counts[s].items():
                if t == ("<conv>",):
                    r[index[s]] += w / total
                elif t in index:
                    q[index[s], index[t]] += w / total
        x = np.linalg.solve(np.eye(len(transient)) - q, r) if transient else np.zeros(0)
        start_total = sum(counts[("<start>",)].values())
        return sum(w / start_total * x[index[t]] for t, w in counts[("<start>",)].items() if t in index)

    base = p_conv(None)
    channels = sorted({c for p in paths for c in p})
    return {c: 1 - p_conv(c) / base for c in channels}


paths_strategy = st.lists(
    st.tuples(
        st.lists(st.sampled_from("ABCD"), min_size=1, max_size=6),
        st.integers(0, 5),
        st.integers(0, 5),
    ),
    min_size=1,
    max_size=12,
).filter(lambda rows: sum(r[1] for r in rows) > 0)


@settings(max_examples=60, deadline=None)
@given(rows=paths_strategy, order=st.integers(1, 3))
def test_matches_independent_dense_solver(rows: list[tuple[list[str], int, int]], order: int) -> None:
    paths = [r[0] for r in rows]
    conv = [float(r[1]) for r in rows]
    nulls = [float(r[2]) for r in rows]
    fit = markov(PathData.from_lists(paths, conversions=conv, nulls=nulls), order=order)
    expected = reference(paths, conv, nulls, order)
    got = dict(zip(fit.channels, fit.removal_effects, strict=True))
    for ch, value in expected.items():
        assert got[ch] == pytest.approx(max(value, 0.0), abs=1e-9)
    assert fit.conversions.sum() == pytest.approx(sum(conv))


@settings(max_examples=30, deadline=None)
@given(rows=paths_strategy)
def test_row_order_and_splitting_do_not_matter(rows: list[tuple[list[str], int, int]]) -> None:
    rows = [r for r in rows if r[1] + r[2] > 0]
    paths = [r[0] for r in rows]
    conv = [float(r[1]) for r in rows]
    nulls = [float(r[2]) for r in rows]
    a = attribute(PathData.from_lists(paths, conversions=conv, nulls=nulls), "markov")
    # the same journeys, one row per journey and reversed
    split_paths, split_conv, split_null = [], [], []
    for p, c, n in reversed(list(zip(paths, conv, nulls, strict=True))):
        for _ in range(int(c)):
            split_paths.append(p), split_conv.append(1.0), split_null.append(0.0)
        for _ in range(int(n)):
            split_paths.append(p), split_conv.append(0.0), split_null.append(1.0)
    b = attribute(PathData.from_lists(split_paths, conversions=split_conv, nulls=split_null), "markov")
    assert a.channels == b.channels
    np.testing.assert_allclose(a.conversions, b.conversions, atol=1e-9)


def test_bootstrap_gives_intervals_around_the_estimate() -> None:
    rng = np.random.default_rng(1)
    paths = [list(rng.choice(list("ABC"), size=rng.integers(1, 4))) for _ in range(200)]
    conv = rng.integers(0, 3, size=200).astype(float)
    conv[0] = 1
    nulls = rng.integers(0, 3, size=200).astype(float)
    res = attribute(PathData.from_lists(paths, conversions=conv, nulls=nulls), "markov", bootstrap=50, seed=3)
    lo, hi = res.intervals["conversions"]
    assert np.all(lo <= res.conversions + 1e-9) and np.all(res.conversions <= hi + 1e-9)
    assert np.all(hi > lo)
    assert res.diagnostics["bootstrap"]["resamples"] == 50
