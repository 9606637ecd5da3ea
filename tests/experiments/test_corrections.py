"""Holm and Benjamini-Hochberg against statsmodels, per group and vectorised over many groups."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as hs
from statsmodels.stats.multitest import multipletests

from touchpoint.errors import InvalidInput
from touchpoint.experiments import corrections as C

p_lists = hs.lists(hs.floats(0.0, 1.0), min_size=1, max_size=25)


@settings(max_examples=40, deadline=None)
@given(p=p_lists, method=hs.sampled_from(["holm", "bh"]))
def test_single_family_matches_statsmodels(p: list[float], method: str) -> None:
    theirs = multipletests(p, method="holm" if method == "holm" else "fdr_bh")[1]
    assert np.allclose(C.adjust(p, method), theirs, rtol=0, atol=1e-12)


@settings(max_examples=50, deadline=None)
@given(families=hs.lists(p_lists, min_size=1, max_size=8), method=hs.sampled_from(["holm", "bh", "none"]))
def test_grouped_equals_one_family_at_a_time(families: list[list[float]], method: str) -> None:
    p = np.concatenate([np.asarray(f) for f in families])
    groups = np.concatenate([np.full(len(f), f"exp-{i}", dtype=object) for i, f in enumerate(families)])
    perm = np.random.default_rng(len(p)).permutation(p.size)  # order of rows must not matter
    got = C.adjust_grouped(p[perm], groups[perm], method)
    want = np.concatenate([C.adjust(f, method) for f in families])[perm]
    assert np.allclose(got, want, rtol=0, atol=1e-12)


def test_nan_p_values_are_left_out() -> None:
    got = C.adjust_grouped(np.array([0.01, np.nan, 0.02]), np.array(["a", "a", "a"], dtype=object), "holm")
    assert np.isnan(got[1]) and got[0] == pytest.approx(0.02) and got[2] == pytest.approx(0.02)


def test_unknown_correction_is_refused() -> None:
    with pytest.raises(InvalidInput, match="bonferonni"):
        C.adjust([0.1], "bonferonni")
