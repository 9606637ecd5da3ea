"""Carry-over (adstock) and diminishing returns (saturation), written once for numpy and JAX.

Every function takes the array module ``xp`` (``numpy`` or ``jax.numpy``) so the sampler and the
post-processing (contributions, response curves, plans, cash flows) share one definition.

Adstock weights are normalised to sum to one: a channel's carry-over spreads its effect over time
without changing its total, so the coefficient (and ROMI) keeps its meaning whatever the decay.

>>> import numpy as np
>>> w = adstock_weights(np, "geometric", np.array([[0.5]]), 4)
>>> [round(float(v), 3) for v in w[0]]
[0.533, 0.267, 0.133, 0.067]
>>> float(np.round(hill(np, np.array([1.0]), np.array(1.0), np.array(2.0))[0], 3))
0.5
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Adstock:
    """A carry-over shape: its parameters (the sampler's draw names, in the order they are stacked on
    the last axis) and its unnormalised weight over lags, ``raw(xp, params, lags)``."""

    params: tuple[str, ...]
    raw: Callable[[Any, Any, Any], Any]


@dataclass(frozen=True)
class Saturation:
    """A diminishing-returns curve: its parameters (as for :class:`Adstock`), ``apply(xp, a, params)``
    and its derivative in ``a`` (numpy), for marginal ROMI and the budget optimiser."""

    params: tuple[str, ...]
    apply: Callable[[Any, Any, Any], Any]
    derivative: Callable[[np.ndarray, np.ndarray], np.ndarray]


def _geometric(xp: Any, params: Any, lags: Any) -> Any:
    decay = params[..., 0:1]
    return decay**lags


def _weibull(xp: Any, params: Any, lags: Any) -> Any:
    shape = params[..., 0:1]
    scale = params[..., 1:2]
    z = (lags + 0.5) / scale
    return (shape / scale) * z ** (shape - 1.0) * xp.exp(-(z**shape))


def adstock_weights(xp: Any, kind: str, params: Any, max_lag: int) -> Any:
    """Weights over lags ``0..max_lag-1`` for each channel; ``params`` is ``(channels, 1 or 2)``.

    ``geometric``: ``w_l ∝ decay**l`` (params[:, 0] = decay in (0, 1)).
    ``weibull``: ``w_l ∝`` Weibull pdf at ``l + 0.5`` weeks (params[:, 0] = shape, params[:, 1] =
    scale in weeks); shape > 1 gives a delayed peak, as brand effects have (Robyn's form).
    """
    if kind not in ADSTOCK_KINDS:  # validated in MMMConfig; kept as a guard for direct callers
        raise ValueError(f"unknown adstock {kind!r}; use one of {ADSTOCKS}")
    lags = xp.arange(max_lag, dtype=params.dtype)
    raw = ADSTOCK_KINDS[kind].raw(xp, params, lags)
    return raw / xp.sum(raw, axis=-1, keepdims=True)


def lag_matrix(x: np.ndarray, max_lag: int) -> np.ndarray:
    """``(T, C, L)`` array with ``out[t, c, l] = x[t - l, c]`` (zero before the first week)."""
    t, c = x.shape
    out = np.zeros((t, c, max_lag), dtype=float)
    for lag in range(max_lag):
        out[lag:, :, lag] = x[: t - lag if lag else t, :]
    return out


def adstock(xp: Any, lagged: Any, weights: Any) -> Any:
    """Carried-over spend ``(T, C)`` from a lag matrix ``(T, C, L)`` and weights ``(C, L)``.

    With a leading draws axis on ``weights`` (``(D, C, L)``) the result is ``(D, T, C)``.
    """
    if weights.ndim == 3:
        return xp.einsum("tcl,dcl->dtc", lagged, weights)
    return (lagged * weights[None, :, :]).sum(axis=-1)


def hill(xp: Any, a: Any, half: Any, shape: Any) -> Any:
    """Hill saturation ``a**s / (a**s + k**s)``: 0 at no spend, 1/2 at ``a = k`` (half-saturation)."""
    safe = xp.maximum(a, 1e-12)
    return 1.0 / (1.0 + xp.exp(shape * (xp.log(half) - xp.log(safe))))


def logistic(xp: Any, a: Any, lam: Any) -> Any:
    """Logistic saturation ``(1 - e^(-λa)) / (1 + e^(-λa)) = tanh(λa/2)`` (PyMC-Marketing's form)."""
    return xp.tanh(lam * xp.maximum(a, 0.0) / 2.0)


def _hill_derivative(a: np.ndarray, params: np.ndarray) -> np.ndarray:
    half, shape = params[..., 0], params[..., 1]
    safe = np.maximum(a, 1e-12)
    h = hill(np, safe, half, shape)
    return shape * h * (1.0 - h) / safe


def _logistic_derivative(a: np.ndarray, params: np.ndarray) -> np.ndarray:
    lam = params[..., 0]
    t = np.tanh(lam * np.maximum(a, 0.0) / 2.0)
    return lam / 2.0 * (1.0 - t**2)


#: Carry-over shapes by name (``MMMConfig.adstock``).
ADSTOCK_KINDS: dict[str, Adstock] = {
    "geometric": Adstock(("decay",), _geometric),
    "weibull": Adstock(("weibull_shape", "weibull_scale"), _weibull),
}
#: Saturation curves by name (``MMMConfig.saturation``).
SATURATION_KINDS: dict[str, Saturation] = {
    "hill": Saturation(("half", "shape"), lambda xp, a, p: hill(xp, a, p[..., 0], p[..., 1]), _hill_derivative),
    "logistic": Saturation(("lam",), lambda xp, a, p: logistic(xp, a, p[..., 0]), _logistic_derivative),
}
ADSTOCKS = tuple(ADSTOCK_KINDS)
SATURATIONS = tuple(SATURATION_KINDS)


def _saturation(kind: str) -> Saturation:
    if kind not in SATURATION_KINDS:
        raise ValueError(f"unknown saturation {kind!r}; use one of {SATURATIONS}")
    return SATURATION_KINDS[kind]


def saturate(xp: Any, kind: str, a: Any, params: Any) -> Any:
    """Apply saturation ``kind`` to carried-over spend ``a``; ``params[..., 0]`` (and ``[..., 1]``)."""
    return _saturation(kind).apply(xp, a, params)


def saturate_derivative(kind: str, a: np.ndarray, params: np.ndarray) -> np.ndarray:
    """d saturate / d a (numpy only), for marginal ROMI and the budget optimiser's gradient."""
    return _saturation(kind).derivative(a, params)


def fourier_terms(t_index: np.ndarray, period: float, order: int) -> np.ndarray:
    """``(T, 2*order)`` sine/cosine columns of the given period (52.18 weeks for yearly seasonality)."""
    cols = []
    for k in range(1, order + 1):
        angle = 2.0 * np.pi * k * t_index / period
        cols.extend([np.sin(angle), np.cos(angle)])
    return np.column_stack(cols) if cols else np.zeros((len(t_index), 0))
