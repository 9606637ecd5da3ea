"""Shapley attribution: exact against brute force, including 15 channels."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from touchpoint.errors import InvalidInput
from touchpoint.journeys.pathdata import PathData
from touchpoint.journeys.shapley import shapley, shapley_from_game


def brute_force(v: np.ndarray, k: int) -> np.ndarray:
    """phi_i = sum over S without i of |S|!(k-|S|-1)!/k! (v(S+i) - v(S))."""
    phi = np.zeros(k)
    fact = [math.factorial(i) for i in range(k + 1)]
    for mask in range(1 << k):
        size = bin(mask).count("1")
        for i in range(k):
            if mask >> i & 1:
                continue
            phi[i] += fact[size] * fact[k - size - 1] / fact[k] * (v[mask | 1 << i] - v[mask])
    return phi


def permutations_shapley(v: np.ndarray, k: int) -> np.ndarray:
    phi = np.zeros(k)
    perms = list(itertools.permutations(range(k)))
    for perm in perms:
        mask = 0
        for i in perm:
            phi[i] += v[mask | 1 << i] - v[mask]
            mask |= 1 << i
    return phi / len(perms)


@settings(max_examples=40, deadline=None)
@given(k=st.integers(1, 5), seed=st.integers(0, 10_000))
def test_moebius_shapley_equals_permutation_definition(k: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    v = rng.normal(size=1 << k)
    v[0] = 0.0
    np.testing.assert_allclose(shapley_from_game(v, k), permutations_shapley(v, k), atol=1e-10)


def test_fifteen_channels_rate_game_is_exact() -> None:
    rng = np.random.default_rng(7)
    k = 15
    names = [f"ch{i:02d}" for i in range(k)]
    paths = [list(rng.choice(names, size=rng.integers(1, 5), replace=False)) for _ in range(3000)]
    conv = rng.integers(0, 2, size=len(paths)).astype(float)
    nulls = 1 - conv
    data = PathData.from_lists(paths, conversions=conv, nulls=nulls)
    fit = shapley(data, value="rate")
    # the game as the module defines it, rebuilt independently
    masks = [sum(1 << data.channels.index(c) for c in set(p)) for p in paths]
    conv_s = np.zeros(1 << k)
    tot_s = np.zeros(1 << k)
    for m, c in zip(masks, conv, strict=True):
        conv_s[m] += c
        tot_s[m] += 1
    # subset sums by brute force over the observed channel sets only (few of the 2^15 are observed)
    observed = np.flatnonzero(tot_s)
    all_masks = np.arange(1 << k)
    sub_conv = np.zeros(1 << k)
    sub_tot = np.zeros(1 << k)
    for t in observed:
        inside = (all_masks & t) == t
        sub_conv[inside] += conv_s[t]
        sub_tot[inside] += tot_s[t]
    v = np.divide(sub_conv, sub_tot, out=np.zeros_like(sub_conv), where=sub_tot > 0)
    expected = brute_force(v, k)
    np.testing.assert_allclose(fit.raw, expected, atol=1e-10)
    assert fit.conversions.sum() == pytest.approx(conv.sum())


@settings(max_examples=40, deadline=None)
@given(
    rows=st.lists(
        st.tuples(st.lists(st.sampled_from("ABCDE"), min_size=1, max_size=5), st.integers(0, 4)),
        min_size=1,
        max_size=10,
    ).filter(lambda r: sum(x[1] for x in r) > 0)
)
def test_conversions_game_equals_brute_force(rows: list[tuple[list[str], int]]) -> None:
    paths = [r[0] for r in rows]
    conv = [float(r[1]) for r in rows]
    data = PathData.from_lists(paths, conversions=conv, value=[2.5 * c for c in conv])
    k = len(data.channels)
    v = np.zeros(1 << k)
    for mask in range(1 << k):
        chosen = {data.channels[i] for i in range(k) if mask >> i & 1}
        v[mask] = sum(c for p, c in zip(paths, conv, strict=True) if set(p) <= chosen)
    fit = shapley(data)
    np.testing.assert_allclose(fit.conversions, brute_force(v, k), atol=1e-9)
    np.testing.assert_allclose(fit.value, 2.5 * fit.conversions, atol=1e-9)
    assert fit.conversions.sum() == pytest.approx(sum(conv))


def test_conversions_game_handles_many_channels() -> None:
    names = [f"c{i}" for i in range(40)]
    data = PathData.from_lists([names, names[:2]], conversions=[40, 2])
    fit = shapley(data)
    assert fit.conversions.sum() == pytest.approx(42)
    assert fit.conversions[data.channels.index("c0")] == pytest.approx(1 + 1)


def test_errors() -> None:
    data = PathData.from_lists([["A"]], conversions=[1])
    with pytest.raises(InvalidInput, match="needs non-converting"):
        shapley(data, value="rate")
    with pytest.raises(InvalidInput, match="not known"):
        shapley(data, value="nope")
    many = PathData.from_lists([[f"c{i}" for i in range(23)]], conversions=[1], nulls=[1])
    with pytest.raises(InvalidInput, match="2\\^23"):
        shapley(many, value="rate")
