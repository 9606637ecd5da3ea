"""Markov-chain attribution of order k with exact removal effects.

The journeys become an absorbing Markov chain. A state is the last ``k`` channels seen (fewer at
the start of a path); every path runs ``(start) -> s1 -> ... -> sn`` and then to ``(conversion)``
(weight: its conversions) or ``(null)`` (weight: its non-converting journeys). Transition
probabilities are the observed transition counts normalised per state (maximum likelihood).

The probability of converting from ``(start)`` is ``P = pi' (I - Q)^-1 r``, where ``Q`` holds the
transient-to-transient probabilities, ``r`` the probability of converting next from each state
and ``pi`` the start distribution: one sparse linear solve. Removing a channel deletes every
state that contains it (their inflow goes to ``(null)``); its **removal effect** is
``1 - P_without / P``, again an exact solve, with no simulation (ChannelAttribution estimates the
same quantity by simulating journeys). Conversions are credited in proportion to removal effects.
Value is credited the same way with ``r`` replaced by the expected value on converting next.

Without non-converting paths (``nulls`` all zero, or ``use_nulls=False``) every journey converts,
``P = 1`` and the removal effect of a channel is the share of conversions it cannot be bypassed for.

>>> from touchpoint.journeys.pathdata import PathData
>>> data = PathData.from_lists([["a", "b"], ["b"]], conversions=[1, 0], nulls=[0, 1])
>>> fit = markov(data)
>>> round(fit.p_conversion, 4), [round(float(x), 4) for x in fit.removal_effects]
(0.5, [0.5, 1.0])
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from touchpoint.errors import InvalidInput
from touchpoint.journeys.pathdata import PathData

MAX_ORDER = 3


@dataclass
class MarkovFit:
    order: int
    channels: list[str]
    p_conversion: float
    removal_effects: np.ndarray  # per channel, on conversions
    removal_effects_value: np.ndarray  # per channel, on value
    conversions: np.ndarray  # credited
    value: np.ndarray  # credited
    n_states: int
    n_transitions: int


def _state_codes(data: PathData, order: int) -> tuple[np.ndarray, int]:
    """An int64 code per touch for the state (last ``order`` channels, shorter at path starts)."""
    base = len(data.channels) + 1
    if base**order >= 2**62:
        raise InvalidInput(
            f"{len(data.channels)} channels are too many for a Markov model of order {order}",
            hint="lower --order or group channels",
        )
    pos = data.position
    ch = data.touches.astype(np.int64) + 1
    code = ch.copy()
    mult = 1
    for j in range(1, order):
        mult *= base
        prev = np.zeros_like(ch)
        prev[j:] = ch[:-j]
        code = code + np.where(pos >= j, prev, 0) * mult
    return code, base


def _dense_codes(codes: np.ndarray, space: int) -> tuple[np.ndarray, np.ndarray]:
    """The distinct codes (sorted) and each code's index among them, in linear time when possible."""
    if space <= 50_000_000:
        present = np.zeros(space, dtype=bool)
        present[codes] = True
        states = np.flatnonzero(present)
        remap = np.full(space, -1, dtype=np.int64)
        remap[states] = np.arange(len(states))
        return states.astype(np.int64), remap[codes]
    states, dense = np.unique(codes, return_inverse=True)
    return states, dense


def _contains(codes: np.ndarray, base: int, order: int, channel: int) -> np.ndarray:
    hit = np.zeros(len(codes), dtype=bool)
    rest = codes.copy()
    for _ in range(order):
        hit |= (rest % base) == channel + 1
        rest //= base
    return hit


def markov(data: PathData, *, order: int = 1, use_nulls: bool = True) -> MarkovFit:
    """Fit the order-``order`` chain and compute every channel's exact removal effect."""
    if not isinstance(order, int) or not 1 <= order <= MAX_ORDER:
        raise InvalidInput(f"Markov order {order!r} is not supported", hint=f"use 1 to {MAX_ORDER}")
    nulls = data.nulls if use_nulls else np.zeros_like(data.nulls)
    total_w = data.conversions + nulls
    k = len(data.channels)
    total_conv = float(data.conversions.sum())
    total_value = float(data.value.sum())
    if total_conv <= 0:
        raise InvalidInput(
            "the paths have no conversions, so there is nothing to attribute",
            hint="check the conversions column or the conversion event and lookback window",
        )
    codes, base = _state_codes(data, order)
    states, dense = _dense_codes(codes, base**order)
    n = len(states)
    row = data.row_of_touch
    pos = data.position
    length = data.lengths[row]
    w_touch = total_w[row]
    # transient -> transient transitions (touch i to touch i+1 inside a path)
    inner = np.flatnonzero(pos < length - 1)
    key = dense[inner].astype(np.int64) * n + dense[inner + 1]
    if n * n <= 20_000_000:  # few states: count every (from, to) pair directly, no sort
        full = np.bincount(key, weights=w_touch[inner], minlength=n * n)
        uniq = np.flatnonzero(full)
        counts = full[uniq]
    else:
        uniq, inv = np.unique(key, return_inverse=True)
        counts = np.bincount(inv, weights=w_touch[inner])
    q_from, q_to = uniq // n, uniq % n
    # absorption and start
    ends = data.offsets[1:] - 1
    starts = data.offsets[:-1]
    conv_in = np.bincount(dense[ends], weights=data.conversions, minlength=n)
    value_in = np.bincount(dense[ends], weights=data.value, minlength=n)
    null_in = np.bincount(dense[ends], weights=nulls, minlength=n)
    start_w = np.bincount(dense[starts], weights=total_w, minlength=n)
    out = np.bincount(q_from, weights=counts, minlength=n) + conv_in + null_in
    live = out > 0
    safe = np.where(live, out, 1.0)
    q_prob = counts / safe[q_from]
    r_conv = conv_in / safe
    r_value = value_in / safe
    pi = start_w / start_w.sum()

    def solve(keep: np.ndarray) -> tuple[float, float]:
        idx = np.flatnonzero(keep)
        if len(idx) == 0:
            return 0.0, 0.0
        remap = -np.ones(n, dtype=np.int64)
        remap[idx] = np.arange(len(idx))
        m = keep[q_from] & keep[q_to]
        q = sp.csc_matrix((q_prob[m], (remap[q_from[m]], remap[q_to[m]])), shape=(len(idx), len(idx)))
        a = sp.identity(len(idx), format="csc") - q
        rhs = np.column_stack([r_conv[idx], r_value[idx]])
        x = spla.spsolve(a, rhs)
        x = np.asarray(x).reshape(len(idx), 2)
        p = pi[idx] @ x
        return float(p[0]), float(p[1])

    everything = live.copy()
    p_all, v_all = solve(everything)
    re_conv = np.zeros(k)
    re_val = np.zeros(k)
    for c in range(k):
        keep = everything & ~_contains(states, base, order, c)
        p_c, v_c = solve(keep)
        re_conv[c] = 1.0 - p_c / p_all if p_all > 0 else 0.0
        re_val[c] = 1.0 - v_c / v_all if v_all > 0 else 0.0
    re_conv = np.clip(re_conv, 0.0, None)
    re_val = np.clip(re_val, 0.0, None)
    credited = total_conv * re_conv / re_conv.sum() if re_conv.sum() > 0 else np.zeros(k)
    credited_v = total_value * re_val / re_val.sum() if re_val.sum() > 0 else np.zeros(k)
    return MarkovFit(
        order=order,
        channels=list(data.channels),
        p_conversion=p_all,
        removal_effects=re_conv,
        removal_effects_value=re_val,
        conversions=credited,
        value=credited_v,
        n_states=int(n),
        n_transitions=len(uniq),
    )
