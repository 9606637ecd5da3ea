"""Weekly data with known carry-over, saturation and returns, for tests, the benchmark and docs.

>>> data, truth = simulate(weeks=104, channels=3, seed=1)
>>> data.spend.shape, sorted(truth["roi"])
((104, 3), ['ch1', 'ch2', 'ch3'])
"""

from __future__ import annotations

from typing import Any

import numpy as np

from touchpoint.mmm.dataset import MMMData
from touchpoint.mmm.transforms import adstock, adstock_weights, fourier_terms, hill, lag_matrix


def simulate(
    *,
    weeks: int = 156,
    channels: int = 4,
    seed: int = 0,
    noise: float = 0.04,
    max_lag: int = 13,
    start: str = "2022-01-03",
    holdout_weeks: int = 0,
    identical: tuple[int, int] | None = None,
) -> tuple[MMMData, dict[str, Any]]:
    """Simulate ``weeks`` of revenue driven by ``channels`` with geometric adstock and Hill saturation.

    Spend per channel follows a flighting pattern (bursts and pauses, seasonal level) so each
    channel's curve is identifiable. ``identical=(i, j)`` copies channel ``i``'s spend into channel
    ``j`` (an unidentifiable data set). The truth's ``roi`` is each channel's revenue over its spend
    in the first ``weeks - holdout_weeks`` weeks, the same quantity the model estimates.
    """
    rng = np.random.default_rng(seed)
    names = [f"ch{i + 1}" for i in range(channels)]
    t = np.arange(weeks)
    spend = np.zeros((weeks, channels))
    for c in range(channels):
        level = rng.uniform(2_000, 20_000)
        season = 1 + 0.3 * np.sin(2 * np.pi * (t / 52.18 + rng.uniform()))
        on = rng.uniform(size=weeks) < rng.uniform(0.55, 0.9)
        burst = rng.lognormal(0.0, 0.5, size=weeks)
        spend[:, c] = level * season * burst * on
    if identical is not None:
        spend[:, identical[1]] = spend[:, identical[0]]
    decay = rng.uniform(0.1, 0.7, channels)
    half = rng.uniform(0.6, 1.6, channels)
    shape = rng.uniform(1.0, 2.5, channels)
    roi_target = rng.uniform(0.8, 4.0, channels)

    scale = spend.mean(axis=0)
    w = adstock_weights(np, "geometric", decay[:, None], max_lag)
    h = hill(np, adstock(np, lag_matrix(spend / scale, max_lag), w), half, shape)
    fit = slice(0, weeks - holdout_weeks)
    beta = roi_target * spend[fit].sum(axis=0) / h[fit].sum(axis=0)  # money per unit of h
    contributions = h * beta
    base_level = contributions.sum(axis=1).mean() * rng.uniform(1.0, 2.0)
    seasonal = fourier_terms(t.astype(float), 52.18, 2) @ rng.normal(0, 0.08, 4)
    trend = 0.15 * t / weeks
    baseline = base_level * (1 + trend + seasonal)
    mean = baseline + contributions.sum(axis=1)
    revenue = mean + rng.normal(0, noise * mean.mean(), weeks)
    dates = np.datetime64(start, "D") + 7 * t
    data = MMMData.from_columns(dates=dates, target=revenue, spend=dict(zip(names, spend.T, strict=True)))
    truth = {
        "roi": dict(zip(names, (contributions[fit].sum(axis=0) / spend[fit].sum(axis=0)).tolist(), strict=True)),
        "decay": dict(zip(names, decay.tolist(), strict=True)),
        "half_saturation": dict(zip(names, half.tolist(), strict=True)),
        "hill_shape": dict(zip(names, shape.tolist(), strict=True)),
        "beta": dict(zip(names, beta.tolist(), strict=True)),
        "spend_scale": dict(zip(names, scale.tolist(), strict=True)),
        "baseline_share": float(baseline.sum() / mean.sum()),
        "max_lag": max_lag,
    }
    return data, truth


def true_test_roi(data: MMMData, truth: dict[str, Any], channel: str, weeks: slice) -> dict[str, float]:
    """What a perfect lift test of ``channel`` over ``weeks`` measures in the simulated world: the revenue
    lost in those weeks had the channel's spend in them been zero, over that spend (the quantity a lift
    calibration compares with, :func:`touchpoint.mmm.model.calibration_weeks`).

    >>> data, truth = simulate(weeks=60, channels=2, seed=1)
    >>> t = true_test_roi(data, truth, "ch1", slice(20, 28))
    >>> t["spend"] > 0 and 0 < t["roi"] < 10
    True
    """
    j = data.channels.index(channel)
    scale = truth["spend_scale"][channel]
    w = adstock_weights(np, "geometric", np.array([[truth["decay"][channel]]]), truth["max_lag"])

    def revenue(x: np.ndarray) -> np.ndarray:
        a = adstock(np, lag_matrix(x[:, None] / scale, truth["max_lag"]), w)[:, 0]
        return hill(np, a, truth["half_saturation"][channel], truth["hill_shape"][channel]) * truth["beta"][channel]

    spend = data.spend[:, j]
    without = spend.copy()
    without[weeks] = 0.0
    lost = float((revenue(spend) - revenue(without))[weeks].sum())
    paid = float(spend[weeks].sum())
    return {"incremental": lost, "spend": paid, "roi": lost / paid if paid else float("nan")}
