"""Convergence and fit diagnostics that refuse silent failure.

R-hat and effective sample size follow Vehtari, Gelman, Simpson, Carpenter and Bürkner (2021),
"Rank-normalization, folding, and localization: an improved R-hat" (the method ArviZ and Stan use):
rank-normalised split R-hat (the larger of bulk and folded), bulk ESS on rank-normalised draws and
tail ESS from the 5% and 95% quantile indicators, with Geyer's initial monotone sequence.

>>> import numpy as np
>>> draws = np.random.default_rng(0).normal(size=(4, 500))
>>> round(rhat(draws), 2), ess_bulk(draws) > 1500
(1.0, True)
"""

from __future__ import annotations

from typing import Any

import numpy as np


def _split(x: np.ndarray) -> np.ndarray:
    draws = x.shape[1]
    half = draws // 2
    return np.concatenate([x[:, :half], x[:, draws - half :]], axis=0)


def _rank_normalize(x: np.ndarray) -> np.ndarray:
    from scipy import stats  # at first use: it costs the server about 50 MB at start

    ranks = stats.rankdata(x, method="average").reshape(x.shape)
    return stats.norm.ppf((ranks - 0.375) / (x.size + 0.25))


def _rhat_basic(x: np.ndarray) -> float:
    s = _split(x)
    n = s.shape[1]
    within = s.var(axis=1, ddof=1).mean()
    between = n * s.mean(axis=1).var(ddof=1)
    if within <= 0:
        return float("nan") if between > 0 else 1.0
    var_plus = (n - 1) / n * within + between / n
    return float(np.sqrt(var_plus / within))


def rhat(x: np.ndarray) -> float:
    """Rank-normalised split R-hat of ``(chains, draws)`` draws; near 1.00 means the chains agree."""
    x = np.asarray(x, float)
    if np.ptp(x) == 0:
        return 1.0
    bulk = _rhat_basic(_rank_normalize(x))
    folded = np.abs(x - np.median(x))
    tail = _rhat_basic(_rank_normalize(folded)) if np.ptp(folded) > 0 else 1.0
    return max(bulk, tail)


def _ess_basic(x: np.ndarray) -> float:
    chains, n = x.shape
    if n < 4:
        return float(chains * n)
    size = 1 << int(np.ceil(np.log2(2 * n)))
    centred = x - x.mean(axis=1, keepdims=True)
    spectrum = np.fft.rfft(centred, n=size, axis=1)
    acov = np.fft.irfft(spectrum * np.conj(spectrum), n=size, axis=1)[:, :n] / n
    chain_var = acov[:, 0] * n / (n - 1)
    mean_var = chain_var.mean()
    var_plus = mean_var * (n - 1) / n + (x.mean(axis=1).var(ddof=1) if chains > 1 else 0.0)
    if var_plus <= 0:
        return float(chains * n)
    rho = 1.0 - (mean_var - acov.mean(axis=0)) / var_plus
    rho[0] = 1.0
    # Geyer: sum pairs while positive, made monotone.
    pairs = rho[0 : n - 1 : 2][: (n - 1) // 2] + rho[1:n:2][: (n - 1) // 2]
    positive = np.flatnonzero(pairs <= 0)
    last = positive[0] if positive.size else len(pairs)
    pairs = np.minimum.accumulate(pairs[:last]) if last else pairs[:0]
    tau = -1.0 + 2.0 * pairs.sum()
    tau = max(tau, 1.0 / np.log10(chains * n))
    return float(chains * n / tau)


def ess_bulk(x: np.ndarray) -> float:
    """Bulk effective sample size: how many independent draws the chains are worth for the centre."""
    x = np.asarray(x, float)
    if np.ptp(x) == 0:
        return float(x.size)
    return _ess_basic(_split(_rank_normalize(x)))


def ess_tail(x: np.ndarray) -> float:
    """Tail ESS: the smaller ESS of the 5% and 95% quantile indicators (for interval ends)."""
    x = np.asarray(x, float)
    out = []
    for q in (0.05, 0.95):
        ind = (x <= np.quantile(x, q)).astype(float)
        out.append(float(ind.size) if np.ptp(ind) == 0 else _ess_basic(_split(ind)))
    return min(out)


def convergence(samples: dict[str, np.ndarray], names: dict[str, list[str]]) -> list[dict[str, Any]]:
    """R-hat and ESS for every scalar in ``samples`` (``(chains, draws, ...)``); ``names`` labels axes."""
    rows = []
    for key, arr in samples.items():
        flat = arr.reshape(arr.shape[0], arr.shape[1], -1)
        labels = names.get(key) or [str(i) for i in range(flat.shape[2])]
        for i in range(flat.shape[2]):
            x = flat[:, :, i]
            label = key if flat.shape[2] == 1 else f"{key}[{labels[i]}]"
            rows.append(
                {
                    "parameter": label,
                    "mean": float(x.mean()),
                    "sd": float(x.std()),
                    "rhat": rhat(x),
                    "ess_bulk": ess_bulk(x),
                    "ess_tail": ess_tail(x),
                }
            )
    return rows


def interval_coverage(observed: np.ndarray, predictive: np.ndarray, level: float) -> float:
    """Share of ``observed`` inside the central ``level`` interval of ``predictive`` (draws first)."""
    lo, hi = np.quantile(predictive, [(1 - level) / 2, (1 + level) / 2], axis=0)
    return float(np.mean((observed >= lo) & (observed <= hi)))


def posterior_predictive(observed: np.ndarray, predictive: np.ndarray, level: float) -> dict[str, Any]:
    """Posterior predictive checks on fitted weeks: coverage, R², error, Bayesian p-values, residual ACF."""
    mean = predictive.mean(axis=0)
    resid = observed - mean
    ss_tot = float(((observed - observed.mean()) ** 2).sum())
    r2 = 1.0 - float((resid**2).sum()) / ss_tot if ss_tot > 0 else float("nan")
    acf1 = float(np.corrcoef(resid[:-1], resid[1:])[0, 1]) if len(resid) > 2 and resid.std() > 0 else 0.0
    return {
        "weeks": len(observed),
        "interval": level,
        "coverage": interval_coverage(observed, predictive, level),
        "r2": r2,
        "mape": float(np.mean(np.abs(resid) / np.maximum(np.abs(observed), 1e-12))),
        "nrmse": float(np.sqrt(np.mean(resid**2)) / max(np.ptp(observed), 1e-12)),
        "p_value_mean": float(np.mean(predictive.mean(axis=1) >= observed.mean())),
        "p_value_sd": float(np.mean(predictive.std(axis=1) >= observed.std())),
        "residual_autocorrelation": acf1,
    }


def holdout(observed: np.ndarray, predictive: np.ndarray, level: float) -> dict[str, Any]:
    """Out-of-sample error on held-out weeks (predicted from the fitted weeks only)."""
    if len(observed) == 0:
        return {"weeks": 0}
    mean = predictive.mean(axis=0)
    return {
        "weeks": len(observed),
        "mape": float(np.mean(np.abs(observed - mean) / np.maximum(np.abs(observed), 1e-12))),
        "nrmse": float(np.sqrt(np.mean((observed - mean) ** 2)) / max(float(np.abs(observed).mean()), 1e-12)),
        "coverage": interval_coverage(observed, predictive, level),
        "interval": level,
    }


def collinear_channels(spend: np.ndarray, channels: tuple[str, ...], threshold: float = 0.95) -> list[dict]:
    """Pairs of channels whose weekly spend moves together (|r| >= threshold): not separable."""
    out = []
    std = spend.std(axis=0)
    for i in range(len(channels)):
        for j in range(i + 1, len(channels)):
            if std[i] == 0 or std[j] == 0:
                r = 1.0 if std[i] == std[j] == 0 else 0.0
            else:
                r = float(np.corrcoef(spend[:, i], spend[:, j])[0, 1])
            if abs(r) >= threshold:
                out.append({"channels": [channels[i], channels[j]], "correlation": r})
    return out


def spend_variation(spend: np.ndarray, baseline: np.ndarray, channels: tuple[str, ...]) -> list[dict[str, Any]]:
    """How much of each channel's weekly spend moves on its own, which is what identifies its effect.

    Each channel's spend (in units of its average) is regressed on the intercept, the baseline
    columns (trend, seasonality, controls) and the other channels' spend. ``independent_variation``
    is the standard deviation of what is left; ``explained_share`` (R²) is how much of its movement
    the others already account for. Spend that only follows the season cannot be told apart from
    seasonal demand, however many weeks there are. Data only: computed before any sampling.
    """
    n, k = spend.shape
    mean = spend.mean(axis=0)
    scaled = spend / np.where(mean > 0, mean, 1.0)
    out = []
    for j in range(k):
        x = scaled[:, j]
        others = np.column_stack([np.ones(n), baseline, np.delete(scaled, j, axis=1)])
        coef, *_ = np.linalg.lstsq(others, x, rcond=None)
        resid = x - others @ coef
        var = float(x.var())
        out.append(
            {
                "channel": channels[j],
                "variation": float(x.std()),
                "independent_variation": float(resid.std()),
                "explained_share": 1.0 - float(resid.var()) / var if var > 0 else 1.0,
            }
        )
    return out
