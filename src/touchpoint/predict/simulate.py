"""Simulators that draw customers from each model with known parameters, for parameter-recovery tests
and benchmarks.

Each customer's repeat purchases are generated one by one in continuous time (vectorised over the
customers still buying), so ``frequency`` counts purchases, as the models assume. (lifetimes' BG/NBD
simulator counts distinct periods instead, which biases recovery.) With ``resolution`` set, purchase
times are floored to that grid and same-period purchases merged, as a summary made from dates is.

>>> from touchpoint.predict.simulate import simulate_bg_nbd
>>> sim = simulate_bg_nbd(1000, {"r": 0.25, "alpha": 4.0, "a": 0.8, "b": 2.5}, T=39.0, seed=1)
>>> sim.frequency.shape, bool((sim.recency <= sim.T).all())
((1000,), True)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from touchpoint.errors import InvalidInput


@dataclass
class Simulated:
    """Per-customer summaries (and the latent truth) drawn from a model."""

    frequency: np.ndarray
    recency: np.ndarray
    T: np.ndarray
    alive: np.ndarray  # still active at T (latent truth)
    rate: np.ndarray  # purchase rate lambda (latent truth)
    holdout_frequency: np.ndarray | None = None  # repeat purchases in (T, T + holdout]


def _ages(n: int, T: float | tuple[float, float], rng: np.random.Generator, resolution: float | None) -> np.ndarray:
    ages = rng.uniform(T[0], T[1], n) if isinstance(T, tuple) else np.full(n, float(T))
    if resolution:
        ages = np.floor(ages / resolution) * resolution
    return ages


def _run(
    lam: np.ndarray,
    death: np.ndarray,
    p_drop: np.ndarray,
    drop_at_zero: bool,
    T: np.ndarray,
    holdout: float,
    rng: np.random.Generator,
    resolution: float | None,
) -> Simulated:
    n = len(lam)
    x = np.zeros(n)
    tx = np.zeros(n)
    hold = np.zeros(n)
    last_cell = np.zeros(n)
    dead_at = death.copy()
    if drop_at_zero:
        dead_at = np.where(rng.random(n) < p_drop, 0.0, dead_at)
    t = np.zeros(n)
    end = T + holdout
    active = np.flatnonzero(dead_at > 0)
    while active.size:
        t[active] += rng.exponential(1.0, active.size) / lam[active]
        ta = t[active]
        done = (ta >= end[active]) | (ta >= dead_at[active])
        buying = active[~done]
        tb = t[buying]
        in_cal = tb < T[buying]
        cal_idx, hold_idx = buying[in_cal], buying[~in_cal]
        if resolution:
            cell = np.floor(t[cal_idx] / resolution)
            new = cell != last_cell[cal_idx]
            ci = cal_idx[new]
            x[ci] += 1
            last_cell[ci] = cell[new]
            tx[ci] = cell[new] * resolution
        else:
            x[cal_idx] += 1
            tx[cal_idx] = t[cal_idx]
        hold[hold_idx] += 1
        # Drop-out after a purchase (BG/NBD family); Pareto/NBD has p_drop = 0.
        drops = rng.random(buying.size) < p_drop[buying]
        dead_at[buying[drops]] = t[buying[drops]]
        active = buying[~drops]
    alive = dead_at > T
    return Simulated(frequency=x, recency=tx, T=T, alive=alive, rate=lam, holdout_frequency=hold if holdout else None)


def _check(params: dict[str, float], names: tuple[str, ...]) -> None:
    for k in names:
        if k not in params or not params[k] > 0:
            raise InvalidInput(f"simulation parameter {k}={params.get(k)!r} must be given and positive")


def simulate_bg_nbd(
    n: int,
    params: dict[str, float],
    *,
    T: float | tuple[float, float] = 39.0,
    holdout: float = 0.0,
    seed: int = 0,
    resolution: float | None = None,
    modified: bool = False,
) -> Simulated:
    """Customers from BG/NBD (or MBG/NBD with ``modified=True``); ``T`` fixed or uniform in a range."""
    _check(params, ("r", "alpha", "a", "b"))
    rng = np.random.default_rng(seed)
    lam = rng.gamma(params["r"], 1.0 / params["alpha"], n)
    p = rng.beta(params["a"], params["b"], n)
    ages = _ages(n, T, rng, resolution)
    return _run(lam, np.full(n, np.inf), p, modified, ages, holdout, rng, resolution)


def simulate_pareto_nbd(
    n: int,
    params: dict[str, float],
    *,
    T: float | tuple[float, float] = 39.0,
    holdout: float = 0.0,
    seed: int = 0,
    resolution: float | None = None,
) -> Simulated:
    """Customers from Pareto/NBD: exponential lifetimes with Gamma(s, beta) rates."""
    _check(params, ("r", "alpha", "s", "beta"))
    rng = np.random.default_rng(seed)
    lam = rng.gamma(params["r"], 1.0 / params["alpha"], n)
    mu = rng.gamma(params["s"], 1.0 / params["beta"], n)
    death = rng.exponential(1.0, n) / mu
    ages = _ages(n, T, rng, resolution)
    return _run(lam, death, np.zeros(n), False, ages, holdout, rng, resolution)


def simulate_spend(frequency: np.ndarray, params: dict[str, float], *, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Mean spend of each customer's ``frequency`` purchases under Gamma-Gamma; returns (mean, nu)."""
    _check(params, ("p", "q", "gamma"))
    rng = np.random.default_rng(seed)
    x = np.asarray(frequency, dtype=np.float64)
    nu = rng.gamma(params["q"], 1.0 / params["gamma"], x.size)
    # The sum of x Gamma(p, nu) values is Gamma(p x, nu).
    total = np.where(x > 0, rng.gamma(np.maximum(params["p"] * x, 1e-12), 1.0 / nu), 0.0)
    return np.where(x > 0, total / np.maximum(x, 1), 0.0), nu
