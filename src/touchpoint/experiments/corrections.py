"""Corrections for testing many metrics and variants at once: Holm and Benjamini-Hochberg.

With ten metrics and two treatments an experiment makes twenty comparisons; at alpha 0.05 one of
them will look significant by chance most of the time. ``holm`` controls the family-wise error rate
(the chance of any false positive); ``bh`` controls the false discovery rate (the expected share of
false positives among the "significant" results) and is less conservative. Adjusted p-values are
compared with the unchanged alpha. Results match ``statsmodels.stats.multitest.multipletests``.

>>> [round(p, 3) for p in adjust([0.01, 0.04, 0.03], "holm")]
[0.03, 0.06, 0.06]
>>> [round(p, 3) for p in adjust([0.01, 0.04, 0.03], "bh")]
[0.03, 0.04, 0.04]
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from touchpoint.errors import InvalidInput

CORRECTIONS: tuple[str, ...] = ("none", "holm", "bh")


def holm(p: np.ndarray) -> np.ndarray:
    """Holm's step-down adjusted p-values (NaN entries are left out and stay NaN)."""
    return _apply(p, _holm)


def bh(p: np.ndarray) -> np.ndarray:
    """Benjamini-Hochberg step-up adjusted p-values (NaN entries are left out and stay NaN)."""
    return _apply(p, _bh)


def _holm(p: np.ndarray) -> np.ndarray:
    m = p.size
    order = np.argsort(p, kind="mergesort")
    stepped = np.maximum.accumulate((m - np.arange(m)) * p[order])
    out = np.empty(m)
    out[order] = np.minimum(stepped, 1.0)
    return out


def _bh(p: np.ndarray) -> np.ndarray:
    m = p.size
    order = np.argsort(p, kind="mergesort")[::-1]
    ranks = m - np.arange(m)  # rank of each p in ascending order, walking from the largest
    stepped = np.minimum.accumulate(p[order] * m / ranks)
    out = np.empty(m)
    out[order] = np.minimum(stepped, 1.0)
    return out


def _apply(p: np.ndarray, fn: object) -> np.ndarray:
    values = np.asarray(p, dtype=float)
    if ((values < 0) | (values > 1)).any():
        raise InvalidInput(f"p-values must lie in [0, 1]; got {values.tolist()}", hint="check the inputs")
    out = np.full(values.shape, np.nan)
    live = ~np.isnan(values)
    if live.any():
        out[live] = fn(values[live])  # type: ignore[operator]
    return out


def adjust(p_values: Sequence[float] | np.ndarray, method: str) -> list[float]:
    """Adjusted p-values by ``method``: "none", "holm" or "bh"."""
    if method not in CORRECTIONS:
        raise InvalidInput(f"correction {method!r} is not known", hint=f"use one of: {', '.join(CORRECTIONS)}")
    values = np.asarray(p_values, dtype=float)
    if method == "holm":
        return holm(values).tolist()
    if method == "bh":
        return bh(values).tolist()
    return values.tolist()


def adjust_grouped(p_values: np.ndarray, groups: np.ndarray, method: str) -> np.ndarray:
    """Adjust p-values within each group (e.g. per experiment), vectorised over all groups at once.

    Equal to calling :func:`adjust` on each group separately; NaN p-values are left out and stay NaN.

    >>> adjust_grouped(np.array([0.01, 0.04, 0.03, 0.5]), np.array([0, 0, 0, 1]), "holm").round(3).tolist()
    [0.03, 0.06, 0.06, 0.5]
    """
    if method not in CORRECTIONS:
        raise InvalidInput(f"correction {method!r} is not known", hint=f"use one of: {', '.join(CORRECTIONS)}")
    p = np.asarray(p_values, dtype=float)
    out = np.full(p.shape, np.nan)
    live = np.flatnonzero(~np.isnan(p))
    if method == "none" or live.size == 0:
        out[live] = p[live]
        return out
    _, g = np.unique(np.asarray(groups)[live], return_inverse=True)
    pv = p[live]
    m = np.bincount(g)[g].astype(float)  # comparisons in each value's group
    if method == "holm":
        order = np.lexsort((pv, g))  # by group, then ascending p
        gs, ps = g[order], pv[order]
        starts = np.r_[0, np.flatnonzero(np.diff(gs)) + 1]
        rank = np.arange(gs.size) - np.repeat(starts, np.diff(np.r_[starts, gs.size]))  # 0-based
        x = np.minimum((m[order] - rank) * ps, 1.0)
        adj = np.maximum.accumulate(x + 2.0 * gs) - 2.0 * gs  # cumulative max within each group
    else:
        order = np.lexsort((-pv, g))  # by group, then descending p
        gs, ps = g[order], pv[order]
        starts = np.r_[0, np.flatnonzero(np.diff(gs)) + 1]
        pos = np.arange(gs.size) - np.repeat(starts, np.diff(np.r_[starts, gs.size]))
        rank = m[order] - pos  # ascending rank (1-based) of each value in its group
        x = np.minimum(ps * m[order] / rank, 1.0)
        adj = 2.0 * gs - np.maximum.accumulate(2.0 * gs - x)  # cumulative min within each group
    res = np.empty(live.size)
    res[order] = adj
    out[live] = res
    return out
