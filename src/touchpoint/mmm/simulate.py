"""Weekly data with known carry-over, saturation and returns, for tests, the benchmark, the coverage study and docs.

>>> data, truth = simulate(weeks=104, channels=3, seed=1)
>>> data.spend.shape, sorted(truth["roi"])
((104, 3), ['ch1', 'ch2', 'ch3'])

The default data set is deliberately easy (every channel flights with pauses). The hard cases real media
plans have are options (docs/mmm.md, "Coverage study"): spend driven by the demand that drives sales
(``confounded``, with the demand given to the model as a control or not), an always-on channel whose spend
barely moves (``always_on``), a channel in short bursts (``bursty``), two channels planned together
(``collinear``), delayed carry-over (``carryover="weibull"``). :data:`SCENARIOS` names the study's mixes;
:func:`simulate_meridian` ports the data-generating process of Google Meridian's public simulation notebook.

>>> data, truth = simulate(weeks=104, channels=4, seed=1, confounded=(0, 1), demand_control=True)
>>> data.control_names, truth["roi"]["ch1"] > 0
(('demand',), True)
"""

from __future__ import annotations

from typing import Any

import numpy as np

from touchpoint.mmm.dataset import MMMData
from touchpoint.mmm.transforms import adstock, adstock_weights, fourier_terms, hill, lag_matrix

#: The coverage study's scenarios (``bench/mmm_coverage.py``): keyword arguments of :func:`simulate`, or
#: ``{"meridian": True, ...}`` for :func:`simulate_meridian`; ``fit`` holds model settings that differ
#: from the defaults (the delayed scenario is fitted with the Weibull carry-over it was generated with).
SCENARIOS: dict[str, dict[str, Any]] = {
    "easy": {"weeks": 104, "channels": 3, "noise": 0.04},
    "confounded-control": {
        "weeks": 104, "channels": 4, "noise": 0.05, "confounded": (0, 1), "demand_sd": 0.1, "demand_control": True,
    },
    "confounded-hidden": {
        "weeks": 104, "channels": 4, "noise": 0.05, "confounded": (0, 1), "demand_sd": 0.1, "demand_control": False,
    },
    "always-on-bursty": {"weeks": 156, "channels": 5, "noise": 0.06, "always_on": (0,), "bursty": (1,)},
    "collinear": {"weeks": 104, "channels": 4, "noise": 0.04, "collinear": (0, 1)},
    "delayed": {"weeks": 156, "channels": 6, "noise": 0.08, "carryover": "weibull", "fit": {"adstock": "weibull"}},
    "hard-10": {
        "weeks": 156, "channels": 10, "noise": 0.10, "always_on": (0,), "bursty": (1,), "collinear": (2, 3),
        "confounded": (4, 5), "demand_sd": 0.1, "demand_control": True,
    },
    "low-noise": {"weeks": 104, "channels": 3, "noise": 0.02, "always_on": (0,)},
    "meridian": {"meridian": True, "weeks": 156, "channels": 4},
}  # fmt: skip


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
    carryover: str = "geometric",
    always_on: tuple[int, ...] = (),
    bursty: tuple[int, ...] = (),
    collinear: tuple[int, int] | None = None,
    collinear_mix: float = 0.65,
    confounded: tuple[int, ...] = (),
    confounding: float = 0.5,
    demand_sd: float = 0.0,
    demand_control: bool = False,
) -> tuple[MMMData, dict[str, Any]]:
    """Simulate ``weeks`` of revenue driven by ``channels`` with adstock and Hill saturation.

    By default spend per channel follows a flighting pattern (bursts and pauses, seasonal level) so each
    channel's curve is identifiable, with geometric carry-over. ``identical=(i, j)`` copies channel ``i``'s
    spend into channel ``j`` (an unidentifiable data set). The truth's ``roi`` is each channel's revenue over
    its spend in the first ``weeks - holdout_weeks`` weeks, the same quantity the model estimates.

    The hard cases (channel indices from 0; each leaves the other channels' draws unchanged):

    * ``always_on``: spend never pauses and varies by about 10% (a small season and ±8% week to week).
    * ``bursty``: dark most weeks, flights of 2-4 weeks (one starts in a week with probability 1/8) at
      about three times the channel's average level.
    * ``collinear=(i, j)``: channel ``j``'s spend is ``collinear_mix`` parts channel ``i``'s pattern and the
      rest its own (a plan that books two channels together; correlation 0.6-0.95, median 0.87 over 20 seeds
      at 104 weeks).
    * ``demand_sd``: an unobserved demand, an AR(1) process (lag-1 autocorrelation 0.8) with this standard
      deviation as a share of the baseline, multiplies the baseline; ``confounded`` channels' spend is
      multiplied by ``exp(confounding · z)``, ``z`` the standardised demand (a media plan that follows
      demand). ``demand_control=True`` gives the model the demand as the control ``demand``; otherwise it is
      a confounder the model cannot see.
    * ``carryover="weibull"``: delayed carry-over, Weibull shape 1.5-3 and scale 2-5 weeks (peak after one
      to four weeks), instead of geometric decay.
    """
    rng = np.random.default_rng(seed)
    extra = np.random.default_rng([seed, 19])  # the hard cases' draws; the default data set stays as it was
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
    demand = np.zeros(weeks)
    if demand_sd > 0 or confounded:
        z = np.zeros(weeks)
        z[0] = extra.normal()
        for i in range(1, weeks):
            z[i] = 0.8 * z[i - 1] + np.sqrt(1 - 0.8**2) * extra.normal()
        z = (z - z.mean()) / z.std()
        demand = demand_sd * z
        for c in confounded:
            spend[:, c] *= np.exp(confounding * z)
    for c in always_on:
        level = spend[:, c].mean()
        season = 1 + 0.1 * np.sin(2 * np.pi * (t / 52.18 + extra.uniform()))
        spend[:, c] = level * season * extra.lognormal(0.0, 0.08, size=weeks)
    for c in bursty:
        level = spend[:, c].mean()
        on = np.zeros(weeks, dtype=bool)
        i = 0
        while i < weeks:
            if extra.uniform() < 1 / 8:
                length = int(extra.integers(2, 5))
                on[i : i + length] = True
                i += length + 1
            else:
                i += 1
        spend[:, c] = 3 * level * on * extra.lognormal(0.0, 0.3, size=weeks)
    if collinear is not None:
        i, j = collinear
        ratio = spend[:, j].mean() / max(spend[:, i].mean(), 1e-9)
        spend[:, j] = collinear_mix * spend[:, i] * ratio + (1 - collinear_mix) * spend[:, j]
    decay = rng.uniform(0.1, 0.7, channels)
    half = rng.uniform(0.6, 1.6, channels)
    shape = rng.uniform(1.0, 2.5, channels)
    roi_target = rng.uniform(0.8, 4.0, channels)
    weibull_shape = extra.uniform(1.5, 3.0, channels)
    weibull_scale = extra.uniform(2.0, 5.0, channels)

    scale = spend.mean(axis=0)
    if carryover == "weibull":
        w = adstock_weights(np, "weibull", np.column_stack([weibull_shape, weibull_scale]), max_lag)
    elif carryover == "geometric":
        w = adstock_weights(np, "geometric", decay[:, None], max_lag)
    else:
        raise ValueError(f"carryover {carryover!r}: use geometric or weibull")
    h = hill(np, adstock(np, lag_matrix(spend / scale, max_lag), w), half, shape)
    fit = slice(0, weeks - holdout_weeks)
    beta = roi_target * spend[fit].sum(axis=0) / h[fit].sum(axis=0)  # money per unit of h
    contributions = h * beta
    base_level = contributions.sum(axis=1).mean() * rng.uniform(1.0, 2.0)
    seasonal = fourier_terms(t.astype(float), 52.18, 2) @ rng.normal(0, 0.08, 4)
    trend = 0.15 * t / weeks
    baseline = base_level * (1 + trend + seasonal) * (1 + demand)
    mean = baseline + contributions.sum(axis=1)
    revenue = mean + rng.normal(0, noise * mean.mean(), weeks)
    dates = np.datetime64(start, "D") + 7 * t
    controls = {"demand": demand} if demand_control else None
    data = MMMData.from_columns(
        dates=dates, target=revenue, spend=dict(zip(names, spend.T, strict=True)), controls=controls
    )
    truth = {
        "roi": dict(zip(names, (contributions[fit].sum(axis=0) / spend[fit].sum(axis=0)).tolist(), strict=True)),
        "decay": dict(zip(names, decay.tolist(), strict=True)),
        "half_saturation": dict(zip(names, half.tolist(), strict=True)),
        "hill_shape": dict(zip(names, shape.tolist(), strict=True)),
        "beta": dict(zip(names, beta.tolist(), strict=True)),
        "spend_scale": dict(zip(names, scale.tolist(), strict=True)),
        "baseline_share": float(baseline.sum() / mean.sum()),
        "max_lag": max_lag,
        "carryover": carryover,
    }
    if carryover == "weibull":
        truth["weibull_shape"] = dict(zip(names, weibull_shape.tolist(), strict=True))
        truth["weibull_scale"] = dict(zip(names, weibull_scale.tolist(), strict=True))
    return data, truth


def simulate_meridian(
    *, seed: int = 0, weeks: int = 156, channels: int = 4, geos: int = 20, controls: int = 2, holdout_weeks: int = 0
) -> tuple[MMMData, dict[str, Any]]:
    """National weekly data from the data-generating process of Google Meridian's public simulation notebook.

    A port of the process and its published parameters (github.com/google/meridian,
    ``demo/RF_Data_Simulation_for_Meridian.ipynb``, Apache-2.0), written for numpy; the notebook's
    reach-and-frequency channel is simulated as one more impression channel (the model here has none):

    * geo populations ``p_g ~ U(1e5, 1e6)``; controls ``N(0, 3)`` per geo and week, standardised;
    * impressions per capita ``max(u_m + u_tm + u_gtm, 0)``, ``u_m ~ N(1, 0.5)``, ``u_tm ~ N(0.8, 0.5)``,
      ``u_gtm ~ N(0, 0.5)``; impressions = per capita x population (rounded); cost per impression
      ``U(0.011, 0.012)`` per channel, value per conversion ``U(0.0345, 0.0355)`` per geo and week;
    * media scaled as Meridian does (per capita, over the channel's median of positive values), geometric
      adstock over 9 lags (0..8, weights ``alpha^l`` normalised) then Hill, with Meridian's default priors as
      the true parameters: ``alpha ~ U(0, 1)``, ``ec ~ TruncatedNormal(0.8, 0.8, 0.1, 10)``, slope 1;
    * media coefficients ``beta_gm = exp(N(0.9, 0.1) + HalfNormal(0.18) · N(0, 1))``, control coefficients
      ``N(3.5, 0.5) + HalfNormal(0.3) · N(0, 1)``; geo intercepts ``N(15, 1.2)``, a weekly intercept
      ``N(0, 2)`` (full knots), noise ``N(0, 0.5)``;
    * conversions per capita = ``max(tau_g + controls + noise + mu_t, 0) + media``; revenue = conversions x
      population x value per conversion.

    The model here is national: revenue and spend are summed over geos and controls averaged (the
    notebook's national aggregation). The true ROI is the notebook's: incremental revenue (population x value
    x media term x coefficient, summed) over cost, here over the fitted weeks (``roi``) and over all weeks
    (``roi_all_weeks``, the notebook's figure).
    """
    rng = np.random.default_rng([seed, 2024])
    g, t, m = geos, weeks, channels
    p = rng.uniform(1e5, 1e6, g)
    control = rng.normal(0.0, 3.0, (g, t, controls))
    z = (control - control.mean(axis=(0, 1))) / control.std(axis=(0, 1))
    ipc = np.maximum(rng.normal(1.0, 0.5, m) + rng.normal(0.8, 0.5, (t, m)) + rng.normal(0.0, 0.5, (g, t, m)), 0.0)
    impressions = np.round(ipc * p[:, None, None])
    per_capita = impressions / p[:, None, None]
    median = np.array([np.median(per_capita[..., k][per_capita[..., k] > 0]) for k in range(m)])
    scaled = per_capita / median
    tau = rng.normal(15.0, 1.2, g)
    mu_t = rng.normal(0.0, 2.0, t)
    cpm = rng.uniform(0.011, 0.012, m)
    cost = impressions * cpm
    unit_value = rng.uniform(0.0345, 0.0355, (g, t))
    beta = np.exp(rng.normal(0.9, 0.1, m) + np.abs(rng.normal(0.0, 0.18, m)) * rng.normal(0.0, 1.0, (g, m)))
    gamma_c = rng.normal(3.5, 0.5, controls)  # drawn in the order of the expression it replaced
    gamma = gamma_c + np.abs(rng.normal(0.0, 0.3, controls)) * rng.normal(0.0, 1.0, (g, controls))
    eps = rng.normal(0.0, 0.5, (g, t))
    alpha = rng.uniform(0.0, 1.0, m)
    ec = _truncated_normal(rng, 0.8, 0.8, 0.1, 10.0, m)
    weights = adstock_weights(np, "geometric", alpha[:, None], 9)
    media = np.stack([hill(np, adstock(np, lag_matrix(scaled[i], 9), weights), ec, 1.0) for i in range(g)])
    base = np.maximum(tau[:, None] + np.einsum("gtc,gc->gt", z, gamma) + eps + mu_t[None, :], 0.0)
    kpi = (base + np.einsum("gtm,gm->gt", media, beta)) * p[:, None]
    revenue = (kpi * unit_value).sum(axis=0)
    incremental = np.einsum("g,gt,gtm,gm->tm", p, unit_value, media, beta)  # per week and channel
    spend = cost.sum(axis=0)
    fit = slice(0, t - holdout_weeks)
    names = [f"ch{k + 1}" for k in range(m)]
    dates = np.datetime64("2021-01-25", "D") + 7 * np.arange(t)
    data = MMMData.from_columns(
        dates=dates,
        target=revenue,
        spend=dict(zip(names, spend.T, strict=True)),
        controls={f"control{c + 1}": control[..., c].mean(axis=0) for c in range(controls)},
    )
    truth = {
        "roi": dict(zip(names, (incremental[fit].sum(axis=0) / spend[fit].sum(axis=0)).tolist(), strict=True)),
        "roi_all_weeks": dict(zip(names, (incremental.sum(axis=0) / spend.sum(axis=0)).tolist(), strict=True)),
        "alpha": dict(zip(names, alpha.tolist(), strict=True)),
        "ec": dict(zip(names, ec.tolist(), strict=True)),
        "media_share": float(incremental.sum() / revenue.sum()),
        "source": "google/meridian demo/RF_Data_Simulation_for_Meridian.ipynb (Apache-2.0), ported",
    }
    return data, truth


def _truncated_normal(rng: np.random.Generator, mean: float, sd: float, low: float, high: float, n: int) -> np.ndarray:
    out = np.empty(n)
    for i in range(n):
        x = rng.normal(mean, sd)
        while not low <= x <= high:
            x = rng.normal(mean, sd)
        out[i] = x
    return out


def scenario(name: str, seed: int, holdout_weeks: int = 8) -> tuple[MMMData, dict[str, Any], dict[str, Any]]:
    """One data set of the coverage study's scenario ``name`` (:data:`SCENARIOS`): data, truth and the
    model settings the scenario is fitted with (beyond the study's sampler settings).

    >>> data, truth, fit = scenario("collinear", seed=3)
    >>> data.spend.shape, fit
    ((104, 4), {})
    """
    spec = dict(SCENARIOS[name])
    fit_settings = spec.pop("fit", {})
    if spec.pop("meridian", False):
        data, truth = simulate_meridian(seed=seed, holdout_weeks=holdout_weeks, **spec)
    else:
        data, truth = simulate(seed=seed, holdout_weeks=holdout_weeks, **spec)
    return data, truth, dict(fit_settings)


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
    if truth.get("carryover", "geometric") == "weibull":
        params = np.array([[truth["weibull_shape"][channel], truth["weibull_scale"][channel]]])
        w = adstock_weights(np, "weibull", params, truth["max_lag"])
    else:
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
