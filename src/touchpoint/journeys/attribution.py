"""Attribute conversions and revenue to channels with one model or compare them all.

Models: ``first``, ``last``, ``last_non_direct``, ``linear``, ``time_decay``, ``position``
(:mod:`~touchpoint.journeys.heuristics`), ``markov`` (order 1-3, exact removal effects,
:mod:`~touchpoint.journeys.markov`) and ``shapley`` (exact, :mod:`~touchpoint.journeys.shapley`).

Uncertainty: with ``bootstrap=B`` every model is refitted on ``B`` Poisson-bootstrap resamples
of the journeys (each path's conversion and null counts redrawn as Poisson variates, value per
conversion kept) and the 2.5%/97.5% percentiles are reported. This measures sampling noise only:
attribution is correlational, and no interval here says what a channel *caused*.

>>> from touchpoint.journeys.pathdata import PathData
>>> data = PathData.from_lists([["email", "direct"], ["search"]], conversions=[1, 1], value=[10, 30])
>>> result = attribute(data, "last")
>>> [(r["channel"], r["conversions"]) for r in result.rows]
[('direct', 1.0), ('email', 0.0), ('search', 1.0)]
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from touchpoint.errors import InvalidInput
from touchpoint.journeys import heuristics
from touchpoint.journeys.markov import markov
from touchpoint.journeys.pathdata import PathData
from touchpoint.journeys.shapley import shapley

CAVEAT = (
    "Attribution divides observed conversions among the channels people touched; it is correlational. "
    "A channel that reaches people who would have bought anyway gets credit it did not earn. "
    "Use experiments (holdouts) or the marketing-mix model to measure what a channel causes."
)

Fit = tuple[np.ndarray, np.ndarray, dict[str, Any]]


@dataclass(frozen=True)
class Model:
    """One registered attribution model: what it does in words, the options it reads (``params``:
    from the caller's options and the journeys, what is reported and passed to ``fit``) and its fit
    (credited conversions, credited value, diagnostics)."""

    method: str
    fit: Callable[[PathData, dict[str, Any]], Fit]
    params: Callable[[PathData, dict[str, Any]], dict[str, Any]] = lambda data, options: {}


def _heuristic(name: str) -> Callable[[PathData, dict[str, Any]], Fit]:
    def fit(data: PathData, params: dict[str, Any]) -> Fit:
        w = heuristics.weights(
            data, name, half_life=params.get("half_life"), direct=params.get("direct", heuristics.DIRECT)
        )
        conv, val = heuristics.credit(data, w)
        return conv, val, {}

    return fit


def _markov(data: PathData, params: dict[str, Any]) -> Fit:
    fit = markov(data, order=params.get("order", 1), use_nulls=params.get("use_nulls", True))
    diag = {
        "p_conversion": fit.p_conversion,
        "states": fit.n_states,
        "transitions": fit.n_transitions,
        "removal_effects": {c: float(x) for c, x in zip(fit.channels, fit.removal_effects, strict=True)},
        "removal_effects_value": {c: float(x) for c, x in zip(fit.channels, fit.removal_effects_value, strict=True)},
    }
    return fit.conversions, fit.value, diag


def _shapley(data: PathData, params: dict[str, Any]) -> Fit:
    sfit = shapley(data, value=params.get("value_function", "conversions"))
    return sfit.conversions, sfit.value, {"coalitions": sfit.coalitions, "value_function": sfit.value_function}


REGISTRY: dict[str, Model] = {
    "first": Model("all credit to the first touch", _heuristic("first")),
    "last": Model("all credit to the last touch", _heuristic("last")),
    "last_non_direct": Model(
        "all credit to the last touch that is not 'direct' (the last touch if all are)",
        _heuristic("last_non_direct"),
        lambda data, o: {"direct": o["direct"]},
    ),
    "linear": Model("equal credit to every touch", _heuristic("linear")),
    "time_decay": Model(
        "credit halves every half-life before the conversion (days, or steps without timestamps)",
        _heuristic("time_decay"),
        lambda data, o: {"half_life": o["half_life"], "half_life_unit": "days" if data.ages is not None else "steps"},
    ),
    "position": Model("40% first touch, 40% last touch, 20% shared by the touches between", _heuristic("position")),
    "markov": Model(
        "absorbing Markov chain of order k; credit proportional to exact removal effects",
        _markov,
        lambda data, o: {"order": o["order"], "use_nulls": o["use_nulls"]},
    ),
    "shapley": Model(
        "exact Shapley values of the channel-coalition game",
        _shapley,
        lambda data, o: {"value_function": o["value_function"]},
    ),
}
MODELS = tuple(REGISTRY)
METHODS = {name: m.method for name, m in REGISTRY.items()}


@dataclass
class AttributionResult:
    """Credited conversions and value per channel under one model, with intervals when bootstrapped."""

    model: str
    params: dict[str, Any]
    channels: list[str]
    conversions: np.ndarray
    value: np.ndarray
    total_conversions: float
    total_value: float
    intervals: dict[str, np.ndarray] = field(default_factory=dict)
    diagnostics: dict[str, Any] = field(default_factory=dict)

    @property
    def rows(self) -> list[dict[str, Any]]:
        out = []
        for i, ch in enumerate(self.channels):
            row: dict[str, Any] = {
                "channel": ch,
                "conversions": float(self.conversions[i]),
                "value": float(self.value[i]),
                "share": float(self.conversions[i] / self.total_conversions) if self.total_conversions else None,
            }
            for name, arr in self.intervals.items():
                row[f"{name}_ci"] = [float(arr[0, i]), float(arr[1, i])]
            if "removal_effects" in self.diagnostics:
                row["removal_effect"] = self.diagnostics["removal_effects"][ch]
            out.append(row)
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "params": self.params,
            "method": METHODS[self.model],
            "total_conversions": self.total_conversions,
            "total_value": self.total_value,
            "channels": self.rows,
            "diagnostics": self.diagnostics,
            "caveat": CAVEAT,
        }


def _fit(data: PathData, model: str, params: dict[str, Any]) -> Fit:
    if model not in REGISTRY:
        raise InvalidInput(f"attribution model {model!r} is not known", hint=f"use one of: {', '.join(MODELS)}")
    return REGISTRY[model].fit(data, params)


def attribute(
    data: PathData,
    model: str = "markov",
    *,
    order: int = 1,
    use_nulls: bool = True,
    half_life: float | None = None,
    value_function: str = "conversions",
    direct: str = heuristics.DIRECT,
    bootstrap: int = 0,
    seed: int = 0,
) -> AttributionResult:
    """Attribute ``data``'s conversions and value to its channels with ``model``."""
    if model not in MODELS:
        raise InvalidInput(f"attribution model {model!r} is not known", hint=f"use one of: {', '.join(MODELS)}")
    if not isinstance(bootstrap, int) or bootstrap < 0 or bootstrap > 10_000:
        raise InvalidInput(f"bootstrap={bootstrap!r} is out of range", hint="give 0 (off) to 10000 resamples")
    if data.n_paths == 0:
        raise InvalidInput("there are no journeys to attribute", hint="widen the period or the lookback window")
    options = {
        "order": order,
        "use_nulls": use_nulls,
        "half_life": half_life,
        "value_function": value_function,
        "direct": direct,
    }
    params = REGISTRY[model].params(data, options)
    conv, val, diag = _fit(data, model, params | {"direct": direct})
    result = AttributionResult(
        model=model,
        params=params,
        channels=list(data.channels),
        conversions=conv,
        value=val,
        total_conversions=float(data.conversions.sum()),
        total_value=float(data.value.sum()),
        diagnostics=diag | {"paths": data.n_paths, "source": data.source},
    )
    if bootstrap:
        rng = np.random.default_rng(seed)
        convs, vals = [], []
        for _ in range(bootstrap):
            resampled = data.reweighted(
                rng.poisson(data.conversions).astype(np.float64), rng.poisson(data.nulls).astype(np.float64)
            )
            if resampled.conversions.sum() <= 0:
                continue
            c, v, _ = _fit(resampled, model, params | {"direct": direct})
            convs.append(c)
            vals.append(v)
        if convs:
            result.intervals = {
                "conversions": np.percentile(np.array(convs), [2.5, 97.5], axis=0),
                "value": np.percentile(np.array(vals), [2.5, 97.5], axis=0),
            }
            result.diagnostics["bootstrap"] = {"resamples": len(convs), "seed": seed, "kind": "poisson"}
    return result


def fit_all(
    data: PathData,
    models: Sequence[str] = MODELS,
    *,
    order: int = 1,
    bootstrap: int = 0,
    seed: int = 0,
    **options: Any,
) -> dict[str, AttributionResult]:
    """:func:`attribute` with each of ``models`` on the same journeys."""
    return {m: attribute(data, m, order=order, bootstrap=bootstrap, seed=seed, **options) for m in models}


def comparison(results: dict[str, AttributionResult]) -> dict[str, Any]:
    """One row per channel with one column per model (conversions, and ``<model>_value``)."""
    first = next(iter(results.values()))
    table = []
    for i, ch in enumerate(first.channels):
        row: dict[str, Any] = {"channel": ch}
        for m, r in results.items():
            row[m] = float(r.conversions[i])
            row[f"{m}_value"] = float(r.value[i])
        table.append(row)
    return {
        "models": list(results),
        "channels": table,
        "results": {m: r.to_dict() for m, r in results.items()},
        "total_conversions": first.total_conversions,
        "total_value": first.total_value,
        "caveat": CAVEAT,
    }


def compare(
    data: PathData,
    models: Sequence[str] = MODELS,
    *,
    order: int = 1,
    bootstrap: int = 0,
    seed: int = 0,
    **options: Any,
) -> dict[str, Any]:
    """Run several models on the same journeys; rows per channel with one column per model."""
    return comparison(fit_all(data, models, order=order, bootstrap=bootstrap, seed=seed, **options))
