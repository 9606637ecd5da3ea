"""Shapley-value attribution, computed exactly.

Channels are players; a coalition ``S`` is a set of channels. Two characteristic functions:

``value="conversions"`` (Zhao et al. 2018, "Shapley value methods for attribution modeling in
    online advertising"): ``v(S)`` = the conversions (or value) of journeys whose channels all lie
    in ``S``. This game is a sum of unanimity games, one per observed channel set ``T`` with
    dividend ``w(T)`` = conversions of journeys with exactly the channels ``T``, so the Shapley
    value is exactly ``phi_i = sum over T containing i of w(T) / |T|``: no enumeration of
    coalitions is needed and any number of channels works. Credits add up to the conversions.
``value="rate"`` (after Shao and Li 2011): ``v(S)`` = the conversion rate of the journeys whose
    channels all lie in ``S`` (0 where there are none), so ``v(all channels)`` is the overall rate.
    Unlike the first game it uses non-converting journeys: a channel whose journeys convert less
    often than others earns less, or even negative, credit. Computed exactly over all ``2^n``
    coalitions (subset sums by the zeta transform, then the Moebius transform, ``O(n 2^n)``, up
    to :data:`MAX_EXACT_CHANNELS` channels). Shapley values are efficient, so they add up to the
    overall rate; multiplied by the number of journeys they add up to the conversions.

>>> from touchpoint.journeys.pathdata import PathData
>>> data = PathData.from_lists([["a", "b"], ["a"]], conversions=[2, 1])
>>> [round(float(x), 6) for x in shapley(data).conversions]
[2.0, 1.0]
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from touchpoint.errors import InvalidInput
from touchpoint.journeys.pathdata import PathData

MAX_EXACT_CHANNELS = 22
MAX_SET_CHANNELS = 62


@dataclass
class ShapleyFit:
    channels: list[str]
    value_function: str
    conversions: np.ndarray
    value: np.ndarray
    raw: np.ndarray  # Shapley values of the game before any rescaling
    coalitions: int


def channel_sets(data: PathData) -> np.ndarray:
    """The set of channels of every path as an int64 bit mask."""
    k = len(data.channels)
    if k > MAX_SET_CHANNELS:
        raise InvalidInput(
            f"{k} channels are too many for Shapley attribution (at most {MAX_SET_CHANNELS})",
            hint="group channels, e.g. with channel rules",
        )
    bits = np.left_shift(np.int64(1), data.touches.astype(np.int64))
    if len(bits) == 0:
        return np.zeros(data.n_paths, dtype=np.int64)
    return np.bitwise_or.reduceat(bits, data.offsets[:-1])


def _popcount(x: np.ndarray) -> np.ndarray:
    x = x.astype(np.uint64)
    count = np.zeros(len(x), dtype=np.int64)
    while np.any(x):
        count += (x & np.uint64(1)).astype(np.int64)
        x >>= np.uint64(1)
    return count


def _dividend_shapley(masks: np.ndarray, weight: np.ndarray, k: int) -> np.ndarray:
    uniq, inv = np.unique(masks, return_inverse=True)
    w = np.bincount(inv, weights=weight)
    size = _popcount(uniq)
    share = w / size
    phi = np.zeros(k)
    for c in range(k):
        member = (uniq >> np.int64(c)) & 1
        phi[c] = float(np.sum(share[member.astype(bool)]))
    return phi


def subset_sums(f: np.ndarray, k: int) -> np.ndarray:
    """The zeta transform: ``g[S] = sum of f[T] over T subset of S`` for all ``2^k`` masks.

    >>> [float(x) for x in subset_sums(np.array([1.0, 2.0, 3.0, 4.0]), 2)]
    [1.0, 3.0, 4.0, 10.0]
    """
    g = np.asarray(f, dtype=np.float64).copy()
    idx = np.arange(1 << k)
    for i in range(k):
        with_bit = idx[(idx >> i) & 1 == 1]
        g[with_bit] += g[with_bit ^ (1 << i)]
    return g


def shapley_from_game(v: np.ndarray, k: int) -> np.ndarray:
    """Exact Shapley values of a game given as ``v[mask]`` for all ``2^k`` coalitions (``v[0]`` = 0).

    Uses the Moebius transform (Harsanyi dividends) and splits each dividend equally.

    >>> [float(x) for x in shapley_from_game(np.array([0.0, 1.0, 1.0, 3.0]), 2)]
    [1.5, 1.5]
    """
    d = np.asarray(v, dtype=np.float64).copy()
    n = 1 << k
    if len(d) != n:
        raise InvalidInput(f"the game has {len(d)} values for {k} players", hint=f"give 2**{k} = {n} values")
    for i in range(k):
        bit = 1 << i
        idx = np.arange(n)
        with_bit = idx[(idx & bit) != 0]
        d[with_bit] -= d[with_bit ^ bit]
    size = _popcount(np.arange(n, dtype=np.int64))
    size[0] = 1
    share = d / size
    share[0] = 0.0
    idx = np.arange(n)
    return np.array([share[(idx >> i) & 1 == 1].sum() for i in range(k)])


def shapley(data: PathData, *, value: str = "conversions") -> ShapleyFit:
    """Exact Shapley attribution of conversions and value (see the module for the two games)."""
    k = len(data.channels)
    masks = channel_sets(data)
    total_conv = float(data.conversions.sum())
    if total_conv <= 0:
        raise InvalidInput(
            "the paths have no conversions, so there is nothing to attribute",
            hint="check the conversions column or the conversion event",
        )
    if value == "conversions":
        conv = _dividend_shapley(masks, data.conversions, k)
        val = _dividend_shapley(masks, data.value, k)
        return ShapleyFit(list(data.channels), value, conv, val, conv.copy(), len(np.unique(masks)))
    if value == "rate":
        if k > MAX_EXACT_CHANNELS:
            raise InvalidInput(
                f"exact Shapley with value='rate' enumerates 2^{k} coalitions, too many",
                hint=f"use at most {MAX_EXACT_CHANNELS} channels (group them) or value='conversions'",
            )
        if float(data.nulls.sum()) <= 0:
            raise InvalidInput(
                "value='rate' needs non-converting journeys (nulls), and there are none",
                hint="include non-converting paths or use value='conversions'",
            )
        n = 1 << k
        journeys = data.conversions + data.nulls
        conv_s = subset_sums(np.bincount(masks, weights=data.conversions, minlength=n), k)
        total_s = subset_sums(np.bincount(masks, weights=journeys, minlength=n), k)
        val_s = subset_sums(np.bincount(masks, weights=data.value, minlength=n), k)
        with np.errstate(divide="ignore", invalid="ignore"):
            rate = np.where(total_s > 0, conv_s / np.where(total_s > 0, total_s, 1.0), 0.0)
            vrate = np.where(total_s > 0, val_s / np.where(total_s > 0, total_s, 1.0), 0.0)
        phi = shapley_from_game(rate, k)
        phi_v = shapley_from_game(vrate, k)
        n_journeys = float(journeys.sum())
        return ShapleyFit(list(data.channels), value, phi * n_journeys, phi_v * n_journeys, phi, n)
    raise InvalidInput(f"Shapley value function {value!r} is not known", hint="use 'conversions' or 'rate'")
