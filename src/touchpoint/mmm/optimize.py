"""The budget plan: split a total budget across channels to maximise expected revenue or profit.

The objective is the posterior mean of steady-state revenue (constant weekly spend carries over to
the same weekly level, adstock weights summing to one), maximised with SLSQP from several starts
(the current mix first), under per-channel bounds, an optional minimum brand share and the total.
The current mix at the same budget is always a candidate, so when it is feasible the plan is
never worse than it under the model.

Usage, with ``result`` from :func:`touchpoint.mmm.fit` (a fitted model is too slow for a docstring example;
``tests/mmm/test_mmm_fit.py`` runs this)::

    plan = plan_budget(result, 1_000_000, weeks=52)
"""

from __future__ import annotations

from typing import Any

import numpy as np

from touchpoint.errors import InvalidInput
from touchpoint.mmm.model import MMMResult

MAX_DRAWS = 500
DEFAULT_BOUNDS = (0.25, 2.0)  # times the current allocation, unless bounds are given


def current_allocation(result: MMMResult, weeks: int = 52) -> np.ndarray:
    """Each channel's share of spend over the last ``weeks`` fitted weeks (sums to 1)."""
    n = result.design.n_train
    recent = result.data.spend[max(0, n - weeks) : n].sum(axis=0)
    return recent / recent.sum()


def _interval(x: np.ndarray, level: float) -> dict[str, float]:
    q = (1 - level) / 2
    lo, med, hi = np.quantile(x, [q, 0.5, 1 - q])
    return {"mean": float(x.mean()), "median": float(med), "low": float(lo), "high": float(hi)}


def plan_budget(
    result: MMMResult,
    budget: float,
    *,
    weeks: int = 52,
    bounds: dict[str, tuple[float, float]] | None = None,
    min_brand_share: float | None = None,
    objective: str = "revenue",
    gross_margin: float = 1.0,
) -> dict[str, Any]:
    """Allocate ``budget`` (money over ``weeks`` weeks) across the model's channels.

    ``bounds`` maps channels to (min, max) money over the period (default: 0.25x to 2x the
    current mix). ``objective="profit"`` maximises ``gross_margin * revenue - spend`` and may
    leave budget unspent; ``"revenue"`` spends it all.
    """
    channels = result.data.channels
    if budget <= 0 or not np.isfinite(budget):
        raise InvalidInput(f"budget {budget} must be a positive amount", hint="e.g. --budget 1000000")
    if weeks < 1:
        raise InvalidInput(f"weeks={weeks} must be at least 1", hint="e.g. --weeks 52")
    if objective not in ("revenue", "profit"):
        raise InvalidInput(f"objective {objective!r} is not known", hint="use revenue or profit")
    if not 0 < gross_margin <= 1:
        raise InvalidInput(f"gross_margin={gross_margin} must be in (0, 1]", hint="e.g. 0.4 for 40%")
    share_now = current_allocation(result)
    current = share_now * budget
    lo = current * DEFAULT_BOUNDS[0]
    hi = current * DEFAULT_BOUNDS[1]
    for ch, (a, b) in (bounds or {}).items():
        if ch not in channels:
            raise InvalidInput(f"bound for unknown channel {ch!r}", hint=f"channels: {', '.join(channels)}")
        if not 0 <= a <= b:
            raise InvalidInput(f"bounds for {ch!r} are ({a}, {b})", hint="use 0 <= min <= max, e.g. tv=1000:50000")
        j = channels.index(ch)
        lo[j], hi[j] = a, b
    if lo.sum() > budget * (1 + 1e-9):
        raise InvalidInput(
            f"the channel minimums add up to {lo.sum():,.0f}, more than the budget {budget:,.0f}",
            hint="lower the minimums or raise the budget",
        )
    if objective == "revenue" and hi.sum() < budget * (1 - 1e-9):
        raise InvalidInput(
            f"the channel maximums add up to {hi.sum():,.0f}, less than the budget {budget:,.0f}",
            hint="raise the maximums (--bound CH=MIN:MAX) or lower the budget",
        )
    brand = np.array([c in result.config.brand_channels for c in channels], dtype=float)
    if min_brand_share is not None:
        if not 0 <= min_brand_share <= 1:
            raise InvalidInput(f"min_brand_share={min_brand_share} must be in [0, 1]", hint="e.g. 0.5")
        if min_brand_share > 0 and not brand.any():
            raise InvalidInput(
                "a minimum brand share needs brand channels",
                hint="name them with --brand CH (or brand_channels in the model settings)",
            )

    d = len(result.beta())
    pick = np.unique(np.linspace(0, d - 1, min(MAX_DRAWS, d)).round().astype(int))
    sub = _Subset(result, pick)
    margin = gross_margin if objective == "profit" else 1.0
    scale = max(budget, 1.0)

    def value(x: np.ndarray) -> float:
        total = weeks * sub.response(x * scale / weeks).sum(axis=1).mean()
        return float(margin * total - (x.sum() * scale if objective == "profit" else 0.0)) / scale

    def grad(x: np.ndarray) -> np.ndarray:
        g = sub.gradient(x * scale / weeks).mean(axis=0) * margin
        return g - (1.0 if objective == "profit" else 0.0)

    cons: list[dict[str, Any]] = []
    if objective == "revenue":
        cons.append({"type": "eq", "fun": lambda x: x.sum() - budget / scale, "jac": lambda x: np.ones_like(x)})
    else:
        cons.append({"type": "ineq", "fun": lambda x: budget / scale - x.sum(), "jac": lambda x: -np.ones_like(x)})
    if min_brand_share:
        cons.append(
            {
                "type": "ineq",
                "fun": lambda x: brand @ x - min_brand_share * x.sum(),
                "jac": lambda x: brand - min_brand_share,
            }
        )
    box = list(zip(lo / scale, hi / scale, strict=True))

    def feasible(x: np.ndarray) -> bool:
        ok = bool(np.all(x >= lo / scale - 1e-9) and np.all(x <= hi / scale + 1e-9))
        total = x.sum() * scale
        ok &= abs(total - budget) <= 1e-6 * budget if objective == "revenue" else total <= budget * (1 + 1e-9)
        if min_brand_share:
            ok &= brand @ x >= min_brand_share * x.sum() - 1e-9
        return ok

    rng = np.random.default_rng(result.config.seed)
    starts = [current / scale, np.clip(np.full(len(channels), budget / len(channels)), lo, hi) / scale]
    starts += [np.clip(rng.dirichlet(np.ones(len(channels))) * budget, lo, hi) / scale for _ in range(4)]
    from scipy import optimize  # at first use: it costs the server about 50 MB at start

    best, best_val = None, -np.inf
    for x0 in starts:
        res = optimize.minimize(
            lambda x: -value(x),
            x0,
            jac=lambda x: -grad(x),
            bounds=box,
            constraints=cons,
            method="SLSQP",
            options={"maxiter": 500, "ftol": 1e-10},
        )
        x = np.clip(res.x, lo / scale, hi / scale)
        if feasible(x) and value(x) > best_val:
            best, best_val = x, value(x)
    note = None
    if feasible(current / scale) and (best is None or value(current / scale) >= best_val):
        best, best_val, note = (
            current / scale,
            value(current / scale),
            "the current mix is already the best found",
        )
    if best is None:
        raise InvalidInput(
            "no allocation satisfies the bounds, the budget and the brand share together",
            hint="loosen the bounds or the minimum brand share",
        )
    alloc = best * scale
    return _describe(result, alloc, current, lo, hi, budget, weeks, objective, gross_margin, brand, note)


class _Subset:
    """The model's response restricted to a subset of draws (for a fast objective)."""

    def __init__(self, result: MMMResult, pick: np.ndarray) -> None:
        from touchpoint.mmm.engine import channel_params
        from touchpoint.mmm.transforms import saturate, saturate_derivative

        draws = {k: v[pick] for k, v in result.draws.items()}
        _, self.sat = channel_params(np, result.config, draws)
        self.beta = result.beta()[pick]
        self.x_scale = result.design.x_scale
        self.kind = result.config.saturation
        self._sat, self._dsat = saturate, saturate_derivative

    def response(self, weekly: np.ndarray) -> np.ndarray:
        a = np.broadcast_to(weekly / self.x_scale, self.beta.shape)
        return self._sat(np, self.kind, a, self.sat) * self.beta

    def gradient(self, weekly: np.ndarray) -> np.ndarray:
        a = np.broadcast_to(weekly / self.x_scale, self.beta.shape)
        return self._dsat(self.kind, a, self.sat) * self.beta / self.x_scale


def _describe(
    result: MMMResult,
    alloc: np.ndarray,
    current: np.ndarray,
    lo: np.ndarray,
    hi: np.ndarray,
    budget: float,
    weeks: int,
    objective: str,
    margin: float,
    brand: np.ndarray,
    note: str | None,
) -> dict[str, Any]:
    level = result.config.interval
    plan_rev = weeks * result.weekly_response(alloc / weeks).sum(axis=1)
    cur_rev = weeks * result.weekly_response(current / weeks).sum(axis=1)
    hist_max = result.data.spend[: result.design.n_train].max(axis=0)
    extrapolated = [c for j, c in enumerate(result.data.channels) if alloc[j] / weeks > 1.5 * hist_max[j]]
    channels = {}
    for j, ch in enumerate(result.data.channels):
        channels[ch] = {
            "total": float(alloc[j]),
            "weekly": float(alloc[j] / weeks),
            "share": float(alloc[j] / max(alloc.sum(), 1e-12)),
            "current_total": float(current[j]),
            "bounds": [float(lo[j]), float(hi[j])],
            "brand": bool(brand[j]),
        }
    spent = float(alloc.sum())
    return {
        "budget": float(budget),
        "spent": spent,
        "weeks": weeks,
        "objective": objective,
        "gross_margin": margin,
        "channels": channels,
        "expected": {
            "revenue": _interval(plan_rev, level),
            "profit": _interval(margin * plan_rev - spent, level),
            "romi": _interval(plan_rev / spent, level),
        },
        "current": {"revenue": _interval(cur_rev, level), "romi": _interval(cur_rev / current.sum(), level)},
        "uplift": {
            "revenue": _interval(plan_rev - cur_rev, level),
            "probability_better": float(np.mean(plan_rev > cur_rev)),
        },
        "brand_share": float(brand @ alloc / max(spent, 1e-12)),
        "brand_share_guideline": result.config.brand_share_guideline,
        "extrapolated_channels": extrapolated,
        "note": note,
        "model_status": result.status,
        "reliable": result.reliable,
        "model_problems": result.diagnostics["problems"],
        "method": "posterior-mean steady-state response, SLSQP with multiple starts; intervals over the posterior",
    }
