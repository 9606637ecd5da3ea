"""Fit a marketing-mix model and read its answers: ROMI, marginal ROMI, contributions, curves.

>>> from touchpoint.mmm import MMMConfig, fit, simulate
>>> data, truth = simulate(weeks=104, channels=2, seed=3)
>>> result = fit(data, MMMConfig(draws=200, warmup=200, chains=2, holdout_weeks=4))  # doctest: +SKIP
>>> result.status in ("ok", "warning", "failed")  # doctest: +SKIP
True
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from touchpoint import __version__
from touchpoint.errors import InvalidInput, NotFound
from touchpoint.mmm import diagnostics as diag
from touchpoint.mmm.config import MMMConfig
from touchpoint.mmm.dataset import MMMData
from touchpoint.mmm.transforms import adstock, adstock_weights, fourier_terms, lag_matrix, saturate

FORMAT = "touchpoint.mmm/1"
MAX_POST_DRAWS = 1000
MIN_INDEPENDENT_VARIATION = 0.2  # spend sd not explained by baseline and other channels, in average spend
ALWAYS_ON_FLOOR = 0.5  # a channel whose weekly spend never falls below this share of its average never pauses
HOLDOUT_GATE_WEEKS = 4  # from this many held-out weeks, missing nearly all of them fails the model
SCALAR_PARAMS = (
    "roi",
    "decay",
    "weibull_shape",
    "weibull_scale",
    "half",
    "shape",
    "lam",
    "intercept",
    "sigma",
)


@dataclass
class Design:
    """What scaling and baseline columns a fit used, so a saved model can predict again."""

    y_scale: float
    x_scale: np.ndarray
    n_train: int
    control_mean: np.ndarray
    control_sd: np.ndarray
    baseline_names: list[str]

    def baseline(self, config: MMMConfig, data: MMMData, n_weeks: int | None = None) -> np.ndarray:
        n = n_weeks or data.n_weeks
        t = np.arange(n, dtype=float)
        cols: list[np.ndarray] = []
        if config.trend:
            cols.append((t / max(self.n_train - 1, 1)) - 0.5)
        if config.yearly_order:
            cols.append(fourier_terms(t, 52.18, config.yearly_order))
        if data.controls.size:
            cols.append((data.controls[:n] - self.control_mean) / self.control_sd)
        return np.column_stack(cols) if cols else np.zeros((n, 0))


def _design(data: MMMData, config: MMMConfig) -> Design:
    n_train = data.n_weeks - config.holdout_weeks
    y_scale = float(np.mean(data.target[:n_train]))
    if y_scale <= 0:
        raise InvalidInput(
            f"the target {data.target_name!r} averages {y_scale} in the fitted weeks",
            hint="the KPI must be positive on average (revenue or conversions)",
        )
    x_scale = data.spend[:n_train].mean(axis=0)
    c_mean = data.controls[:n_train].mean(axis=0) if data.controls.size else np.zeros(0)
    c_sd = data.controls[:n_train].std(axis=0) if data.controls.size else np.zeros(0)
    for name, sd in zip(data.control_names, c_sd, strict=True):
        if sd == 0:
            raise InvalidInput(f"control {name!r} never changes in the fitted weeks", hint="drop it")
    names = (
        (["trend"] if config.trend else [])
        + [f"{fn}{k}" for k in range(1, config.yearly_order + 1) for fn in ("sin", "cos")]
        + list(data.control_names)
    )
    return Design(y_scale, x_scale, n_train, c_mean, c_sd, names)


@dataclass
class MMMResult:
    """A fitted model: draws, diagnostics and the derived answers. ``status`` gates every output."""

    data: MMMData
    config: MMMConfig
    design: Design
    draws: dict[str, np.ndarray]  # flattened, (D, ...) — thinned to at most MAX_POST_DRAWS
    diagnostics: dict[str, Any]
    seconds: float
    extra: dict[str, Any] = field(default_factory=dict)

    # ---- status -----------------------------------------------------------------------------
    @property
    def status(self) -> str:
        return str(self.diagnostics["status"])

    @property
    def reliable(self) -> bool:
        return self.status != "failed"

    # ---- model algebra on draws -----------------------------------------------------------------
    def _params(self) -> tuple[np.ndarray, np.ndarray]:
        from touchpoint.mmm.engine import channel_params

        return channel_params(np, self.config, self.draws)

    def weights(self) -> np.ndarray:
        ad, _ = self._params()
        return adstock_weights(np, self.config.adstock, ad, self.config.max_lag)

    def saturation(self, a: np.ndarray) -> np.ndarray:
        """Saturation of carried-over scaled spend ``a`` (``(D, T, C)`` or ``(D, C)``) per draw."""
        _, sat = self._params()
        if a.ndim == 3:
            sat = sat[:, None, :, :]
        return saturate(np, self.config.saturation, a, sat)

    def beta(self) -> np.ndarray:
        """Money of revenue per unit of saturation, per draw and channel ``(D, C)``."""
        return np.asarray(self.extra["beta"])

    def channel_contributions(self, spend: np.ndarray) -> np.ndarray:
        """``(D, T, C)`` revenue from each channel for a spend path ``(T, C)`` in money."""
        lagged = lag_matrix(spend / self.design.x_scale, self.config.max_lag)
        h = self.saturation(adstock(np, lagged, self.weights()))
        return h * self.beta()[:, None, :]

    def baseline_draws(self) -> np.ndarray:
        z = self.design.baseline(self.config, self.data)
        base = (
            self.draws["intercept"][:, None] + (z @ self.draws["gamma"].T).T
            if z.shape[1]
            else (self.draws["intercept"][:, None] + np.zeros((1, self.data.n_weeks)))
        )
        return base * self.design.y_scale

    def weekly_response(self, weekly_spend: np.ndarray) -> np.ndarray:
        """Steady-state weekly revenue per draw and channel ``(D, C)`` at constant weekly spend ``(C,)``.

        Adstock weights sum to one, so constant spend carries over to the same level.
        """
        a = np.broadcast_to(weekly_spend / self.design.x_scale, (len(self.beta()), len(weekly_spend)))
        return self.saturation(a) * self.beta()

    # ---- answers -----------------------------------------------------------------------------
    def _interval(self, x: np.ndarray) -> dict[str, float]:
        q = (1 - self.config.interval) / 2
        lo, med, hi = np.quantile(x, [q, 0.5, 1 - q])
        return {"mean": float(np.mean(x)), "median": float(med), "low": float(lo), "high": float(hi)}

    def romi(self) -> dict[str, dict[str, Any]]:
        """ROMI (revenue / spend over the fitted weeks) and marginal ROMI (next 1% of spend) per channel."""
        n = self.design.n_train
        spend = self.data.spend
        base = self.channel_contributions(spend)[:, :n, :].sum(axis=1)
        up = self.channel_contributions(spend * 1.01)[:, :n, :].sum(axis=1)
        totals = spend[:n].sum(axis=0)
        roi = base / totals
        mroi = (up - base) / (0.01 * totals)
        ident = {c["channel"]: c for c in self.diagnostics["identification"]["channels"]}
        out = {}
        for j, ch in enumerate(self.data.channels):
            out[ch] = {
                "spend": float(totals[j]),
                "revenue": self._interval(base[:, j]),
                "romi": self._interval(roi[:, j]),
                "relative_sd": float(np.std(roi[:, j]) / max(float(np.mean(roi[:, j])), 1e-12)),
                "marginal_romi": self._interval(mroi[:, j]),
                "identified": ident[ch]["identified"],
                "note": ident[ch].get("note"),
                "calibrated_by": [c.source or c.calibration_id for c in self.config.calibrations if c.channel == ch],
            }
        return out

    def contributions_over_time(self) -> dict[str, Any]:
        """Mean weekly contribution of the baseline and each channel, with the fitted and actual KPI."""
        contrib = self.channel_contributions(self.data.spend)
        base = self.baseline_draws()
        return {
            "dates": [str(d) for d in self.data.dates],
            "actual": self.data.target.tolist(),
            "fitted": (base + contrib.sum(axis=2)).mean(axis=0).tolist(),
            "baseline": base.mean(axis=0).tolist(),
            "channels": {ch: contrib[:, :, j].mean(axis=0).tolist() for j, ch in enumerate(self.data.channels)},
            "holdout_from": str(self.data.dates[self.design.n_train]) if self.config.holdout_weeks else None,
        }

    def response_curves(self, points: int = 41, up_to: float = 3.0) -> dict[str, Any]:
        """Weekly revenue against constant weekly spend, 0 to ``up_to`` x the average, per channel."""
        out: dict[str, Any] = {}
        for j, ch in enumerate(self.data.channels):
            grid = np.linspace(0.0, up_to * self.design.x_scale[j], points)
            spend = np.zeros((points, len(self.data.channels)))
            spend[:, j] = grid
            resp = np.stack([self.weekly_response(s)[:, j] for s in spend], axis=1)
            q = (1 - self.config.interval) / 2
            out[ch] = {
                "weekly_spend": grid.tolist(),
                "mean": resp.mean(axis=0).tolist(),
                "low": np.quantile(resp, q, axis=0).tolist(),
                "high": np.quantile(resp, 1 - q, axis=0).tolist(),
                "current_weekly_spend": float(self.design.x_scale[j]),
            }
        return out

    def effect_timing(self) -> dict[str, Any]:
        """Share of each channel's effect arriving within ``short_term_weeks`` of the spend, and after."""
        w = self.weights()
        k = min(self.config.short_term_weeks, self.config.max_lag)
        out = {}
        for j, ch in enumerate(self.data.channels):
            short = w[:, j, :k].sum(axis=1)
            out[ch] = {
                "short_term_share": self._interval(short),
                "long_term_share": self._interval(1 - short),
            }
        return {"short_term_weeks": k, "max_lag_weeks": self.config.max_lag, "channels": out}

    def brand_share(self) -> dict[str, Any]:
        n = self.design.n_train
        totals = self.data.spend[:n].sum(axis=0)
        brand = [c for c in self.data.channels if c in self.config.brand_channels]
        share = float(sum(totals[self.data.channels.index(c)] for c in brand) / totals.sum())
        return {
            "brand_channels": brand,
            "performance_channels": [c for c in self.data.channels if c not in brand],
            "brand_share_of_spend": share,
            "guideline": self.config.brand_share_guideline,
            "meets_guideline": share >= self.config.brand_share_guideline,
            "note": "Binet & Field: brand building pays over more than six months; winners put about "
            "60% of budget into brand (configurable as brand_share_guideline)",
        }

    def summary(self) -> dict[str, Any]:
        """Everything a person or a program needs, JSON-able. ``reliable`` is False when the gate failed."""
        return {
            "status": self.status,
            "reliable": self.reliable,
            "problems": self.diagnostics["problems"],
            "warnings": self.diagnostics["warnings"],
            "target": self.data.target_name,
            "weeks": self.data.n_weeks,
            "fitted_weeks": self.design.n_train,
            "first_week": str(self.data.dates[0]),
            "last_week": str(self.data.dates[-1]),
            "channels": list(self.data.channels),
            "romi": self.romi(),
            "effect_timing": self.effect_timing(),
            "brand_share": self.brand_share(),
            "diagnostics": {k: v for k, v in self.diagnostics.items() if k not in ("problems", "warnings")},
            "method": "Bayesian MMM, NumPyro NUTS; see docs/mmm.md",
            "config": self.config.to_dict(),
            "config_hash": self.config.config_hash(),
            "data_hash": self.data_hash(),
            "fitted_at": self.diagnostics.get("fitted_at"),
            "fit_seconds": self.seconds,
        }

    def data_hash(self) -> str:
        """SHA-256 (first 16 hex digits) of the data the model was fitted on (dates, KPI, spend, controls)."""
        import hashlib

        blob = json.dumps(self.data.to_dict(), sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:16]

    # ---- persistence -------------------------------------------------------------------------
    def save(self, directory: str | Path) -> Path:
        """Write ``model.json`` (config, data, diagnostics) and ``draws.npz`` into ``directory``."""
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        arrays: dict[str, Any] = {**self.draws, "beta": self.beta()}
        np.savez_compressed(d / "draws.npz", **arrays)
        meta = {
            "format": FORMAT,
            "version": __version__,
            "config": self.config.to_dict(),
            "config_hash": self.config.config_hash(),
            "data": self.data.to_dict(),
            "diagnostics": self.diagnostics,
            "seconds": self.seconds,
        }
        (d / "model.json").write_text(json.dumps(meta))
        return d

    @classmethod
    def load(cls, directory: str | Path) -> MMMResult:
        """Load a saved fit; refuses files from another format or with a tampered config."""
        d = Path(directory)
        if not (d / "model.json").exists():
            raise NotFound(f"no fitted marketing-mix model in {str(d)!r}", hint="run `touchpoint mmm fit` first")
        meta = json.loads((d / "model.json").read_text())
        if meta.get("format") != FORMAT:
            raise InvalidInput(
                f"{d / 'model.json'} has format {meta.get('format')!r}, this code reads {FORMAT!r}",
                hint="fit the model again with `touchpoint mmm fit`",
            )
        config = MMMConfig.from_dict(meta["config"])
        if config.config_hash() != meta["config_hash"]:
            raise InvalidInput(f"{d / 'model.json'}: config hash does not match", hint="fit the model again")
        data = MMMData.from_dict(meta["data"])
        with np.load(d / "draws.npz") as npz:
            draws = {k: npz[k] for k in npz.files}
        beta = draws.pop("beta")
        return cls(data, config, _design(data, config), draws, meta["diagnostics"], meta["seconds"], {"beta": beta})


def _flatten(samples: dict[str, np.ndarray], keep: int) -> dict[str, np.ndarray]:
    chains, draws = next(iter(samples.values())).shape[:2]
    total = chains * draws
    idx = np.unique(np.linspace(0, total - 1, min(keep, total)).round().astype(int))
    return {k: v.reshape(total, *v.shape[2:])[idx] for k, v in samples.items()}


def fit(data: MMMData, config: MMMConfig | None = None) -> MMMResult:
    """Fit the model with NUTS and run every diagnostic; the result's ``status`` says if it can be used."""
    from touchpoint.mmm import engine

    config = config or MMMConfig()
    data.validate(config.holdout_weeks)
    unknown = [c for c in list(config.roi_priors) + list(config.brand_channels) if c not in data.channels]
    if unknown:
        raise InvalidInput(
            f"channel(s) {unknown} in the settings are not in the data",
            hint=f"channels in the data: {list(data.channels)}",
        )
    design = _design(data, config)
    n = design.n_train
    train = np.arange(data.n_weeks) < n
    mus, sigmas = zip(*(config.roi_prior_lognormal(c) for c in data.channels), strict=True)
    inputs = engine.EngineInputs(
        lagged=lag_matrix(data.spend / design.x_scale, config.max_lag),
        y=data.target / design.y_scale,
        train=train,
        baseline=design.baseline(config, data),
        spend_train=data.spend[:n].sum(axis=0),
        y_scale=design.y_scale,
        roi_mu=np.array(mus),
        roi_sigma=np.array(sigmas),
    )
    used, unused = calibration_weeks(data, design, config)
    if used:
        items = [
            {
                "channel": u["index"],
                "lagged": u["lagged"],
                "weeks": u["mask"],
                "spend": u["spend"],
                "roi": u["calibration"].roi,
                "se": u["calibration"].roi_se,
            }
            for u in used
        ]
        inputs = replace(inputs, calibration=engine.CalibrationInputs.padded(items, inputs.lagged))
    out = engine.sample(inputs, config)
    draws = _flatten(out.samples, MAX_POST_DRAWS)
    if "gamma" not in draws:
        draws["gamma"] = np.zeros((len(draws["roi"]), 0))
    result = MMMResult(data, config, design, draws, {}, out.seconds)
    # beta from the ROI parameterisation, per draw
    lagged = inputs.lagged
    h = result.saturation(adstock(np, lagged, result.weights()))
    result.extra["beta"] = draws["roi"] * inputs.spend_train / np.maximum(h[:, :n, :].sum(axis=1), 1e-12)
    result.diagnostics = _diagnose(result, out, np.array(mus), np.array(sigmas))
    result.diagnostics["calibration"] = _calibration_check(result, used, unused)
    result.diagnostics["versions"] = versions()
    result.diagnostics["fitted_at"] = datetime.now(UTC).replace(microsecond=0).isoformat()
    return result


def versions() -> dict[str, str | None]:
    """The versions of the libraries that shape the draws (recorded with every fit), read without importing them."""
    import platform
    from importlib import metadata

    out: dict[str, str | None] = {"touchpoint": __version__, "python": platform.python_version()}
    for name in ("numpyro", "jax", "jaxlib", "numpy", "scipy"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    out["machine"] = platform.machine()
    return out


def calibration_weeks(
    data: MMMData, design: Design, config: MMMConfig
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Where each of ``config.calibrations`` falls in the fitted weeks: ``(used, unused)``.

    A week counts when any of its seven days lies in the test's period; held-out weeks never count (the
    held-out check stays out of sample). Each used entry has the channel's index, the fitted weeks of the
    test (``mask``), the channel's spend in them and the lag matrix of its scaled spend with those weeks
    zeroed (the test's counterfactual). A test outside the fitted weeks, on a channel not in the data or
    with no spend in its weeks is unused, with the reason."""
    used: list[dict[str, Any]] = []
    unused: list[dict[str, Any]] = []
    n = design.n_train
    first = data.dates.astype("datetime64[D]")
    for cal in config.calibrations:
        start, end = np.datetime64(cal.start, "D"), np.datetime64(cal.end, "D")
        mask = ((first + 6) >= start) & (first <= end) & (np.arange(data.n_weeks) < n)
        reason = None
        if cal.channel not in data.channels:
            reason = f"channel {cal.channel!r} is not in the data"
        elif not mask.any():
            reason = f"its period {cal.start}..{cal.end} lies outside the fitted weeks {first[0]}..{first[n - 1] + 6}"
        else:
            j = data.channels.index(cal.channel)
            spend = float(data.spend[mask, j].sum())
            if spend <= 0:
                reason = f"{cal.channel} had no spend in the fitted weeks of {cal.start}..{cal.end}"
        if reason:
            unused.append({"calibration": cal, "reason": reason})
            continue
        scaled = data.spend[:, j] / design.x_scale[j]
        scaled = np.where(mask, 0.0, scaled)
        used.append(
            {
                "calibration": cal,
                "index": j,
                "mask": mask.astype(float),
                "spend": spend,
                "lagged": lag_matrix(scaled[:, None], config.max_lag)[:, 0, :],
            }
        )
    return used, unused


def _calibration_check(
    result: MMMResult, used: list[dict[str, Any]], unused: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Per lift test: the model's ROI of the tested spend in the test's weeks (posterior) against the
    measured ROI; a test more than 3 combined standard errors away is warned about (the test or the
    model is wrong, and the posterior is a compromise between them)."""
    out: list[dict[str, Any]] = []
    spend = result.data.spend
    full = result.channel_contributions(spend)
    for u in used:
        cal, j, mask = u["calibration"], u["index"], u["mask"] > 0
        cf_spend = spend.copy()
        cf_spend[mask, j] = 0.0
        lost = (full[:, :, j] - result.channel_contributions(cf_spend)[:, :, j])[:, mask].sum(axis=1)
        model_roi = lost / u["spend"]
        z = (cal.roi - float(model_roi.mean())) / float(np.sqrt(cal.roi_se**2 + model_roi.var()))
        entry = {
            **asdict(cal),
            "used": True,
            "weeks": int(mask.sum()),
            "spend_in_weeks": u["spend"],
            "model_roi": result._interval(model_roi),
            "z": z,
        }
        if abs(z) > 3:
            result.diagnostics["warnings"].append(
                f"lift test {cal.source or cal.channel} (ROI {cal.roi:.2f} ± {cal.roi_se:.2f}) disagrees with the "
                f"model's ROI of {cal.channel} in its weeks ({model_roi.mean():.2f}); check the test's spend and "
                "period, or a missing control"
            )
        out.append(entry)
    for u in unused:
        cal = u["calibration"]
        out.append({**asdict(cal), "used": False, "reason": u["reason"]})
        result.diagnostics["warnings"].append(f"lift test {cal.source or cal.channel} was not used: {u['reason']}")
    if result.diagnostics["warnings"] and result.diagnostics["status"] == "ok":
        result.diagnostics["status"] = "warning"
    return out


def _diagnose(result: MMMResult, out: Any, roi_mu: np.ndarray, roi_sigma: np.ndarray) -> dict[str, Any]:
    config, data, n = result.config, result.data, result.design.n_train
    problems: list[str] = []
    warnings: list[str] = []
    names = {k: list(data.channels) for k in SCALAR_PARAMS if k not in ("intercept", "sigma")}
    names["gamma"] = result.design.baseline_names
    rows = diag.convergence(out.samples, names)
    max_rhat = max(r["rhat"] for r in rows)
    min_ess = min(min(r["ess_bulk"], r["ess_tail"]) for r in rows)
    worst = max(rows, key=lambda r: r["rhat"])["parameter"]
    if not max_rhat <= config.rhat_max:
        problems.append(f"chains disagree: R-hat {max_rhat:.3f} for {worst} (limit {config.rhat_max})")
    elif max_rhat > 1.01:
        warnings.append(f"R-hat {max_rhat:.3f} for {worst} is above 1.01; more draws would help")
    if min_ess < config.ess_min:
        problems.append(f"too few effective draws: ESS {min_ess:.0f} (need {config.ess_min:.0f})")
    elif min_ess < 100 * config.chains:
        warnings.append(f"ESS {min_ess:.0f} is below {100 * config.chains}; intervals are rough")
    n_div = int(out.diverging.sum())
    share = n_div / out.diverging.size
    if share > config.divergence_max_share:
        problems.append(f"{n_div} divergent transitions ({share:.1%}); the posterior was not explored")
    elif n_div:
        warnings.append(f"{n_div} divergent transition(s)")
    depth_hits = int((out.tree_depth >= config.max_tree_depth).sum())
    if depth_hits > 0.05 * out.tree_depth.size:
        warnings.append(f"{depth_hits} draws hit the maximum tree depth {config.max_tree_depth}")

    # posterior predictive
    rng = np.random.default_rng(config.seed)
    mu = result.baseline_draws() + result.channel_contributions(data.spend).sum(axis=2)
    sigma = result.draws["sigma"][:, None] * result.design.y_scale
    pred = mu + rng.normal(size=mu.shape) * sigma
    ppc = diag.posterior_predictive(data.target[:n], pred[:, :n], config.interval)
    if ppc["coverage"] < config.interval - 0.2:
        problems.append(
            f"posterior predictive {config.interval:.0%} intervals cover only {ppc['coverage']:.0%} "
            "of fitted weeks: the model misfits"
        )
    if ppc["residual_autocorrelation"] > 0.5:
        warnings.append(
            f"residuals are autocorrelated (lag-1 r={ppc['residual_autocorrelation']:.2f}); "
            "a control or seasonality may be missing"
        )
    hold = diag.holdout(data.target[n:], pred[:, n:], config.interval)
    if hold["weeks"] >= HOLDOUT_GATE_WEEKS and hold["coverage"] < 0.25:
        problems.append(
            f"the model does not predict the {hold['weeks']} held-out weeks: only {hold['coverage']:.0%} inside "
            f"the {config.interval:.0%} interval (error {hold['mape']:.0%}); a trend, season or control is missing"
        )
    elif hold["weeks"] and hold["coverage"] < 0.5:
        warnings.append(f"held-out weeks: only {hold['coverage']:.0%} inside the {config.interval:.0%} interval")

    # identification
    collinear = diag.collinear_channels(data.spend[:n], data.channels)
    variation = diag.spend_variation(data.spend[:n], result.design.baseline(config, data)[:n], data.channels)
    log_roi = np.log(result.draws["roi"])
    corr = np.corrcoef(log_roi.T) if len(data.channels) > 1 else np.ones((1, 1))
    channels, weak, always_on = [], [], []
    average = data.spend[:n].mean(axis=0)
    floor = np.divide(data.spend[:n].min(axis=0), average, out=np.zeros_like(average), where=average > 0)
    for j, ch in enumerate(data.channels):
        contraction = 1.0 - float(log_roi[:, j].var() / roi_sigma[j] ** 2)
        entry: dict[str, Any] = {
            "channel": ch,
            "prior_contraction": contraction,
            "independent_spend_variation": variation[j]["independent_variation"],
            "spend_explained_by_others": variation[j]["explained_share"],
            "lowest_spend_share": float(floor[j]),
            "identified": True,
        }
        partners = [p["channels"] for p in collinear if ch in p["channels"]]
        tangled = [data.channels[k] for k in range(len(data.channels)) if k != j and corr[j, k] < -0.75]
        if partners or tangled:
            others = sorted({c for pair in partners for c in pair if c != ch} | set(tangled))
            entry["identified"] = False
            entry["note"] = (
                f"not identifiable apart from {', '.join(others)}: their spend moves together, "
                "so only their combined effect is measured"
            )
        elif variation[j]["independent_variation"] < MIN_INDEPENDENT_VARIATION:
            weak.append(ch)
            entry["note"] = (
                f"weakly identified: its spend barely moves apart from the trend, season, controls and other "
                f"channels (independent variation {variation[j]['independent_variation']:.0%} of its average, "
                f"{variation[j]['explained_share']:.0%} explained by them); a lift test would pin it down "
                "(`touchpoint mmm calibrate`)"
            )
        elif contraction < 0.1:
            weak.append(ch)
            entry["note"] = "weakly identified: the data barely moved the ROI prior"
        if floor[j] >= ALWAYS_ON_FLOOR:  # said beside any other note: it is about what the ROMI means
            always_on.append(ch)
            extrapolated = (
                f"always on: its weekly spend never fell below {floor[j]:.0%} of its average, so its ROMI "
                "extrapolates the response curve below that, to no spend at all; its marginal ROMI (the next "
                "euro at today's spend) is what the data measure"
            )
            entry["note"] = f"{entry['note']}; also {extrapolated}" if entry.get("note") else extrapolated
        channels.append(entry)
    unident = [c["channel"] for c in channels if not c["identified"]]
    if unident:
        problems.append(
            f"channels {', '.join(unident)} are not identifiable: their separate ROMI is not an "
            "answer; vary their spend independently (or combine them) and fit again"
        )
    if weak:
        warnings.append(f"ROMI of {', '.join(weak)} is weakly identified and leans on the prior")
    if always_on:
        warnings.append(
            f"{', '.join(always_on)} never paused: total ROMI extrapolates below the lowest spend seen; "
            "trust marginal ROMI there, or pause the channel in a test region (`touchpoint mmm calibrate`)"
        )
    status = "failed" if problems else ("warning" if warnings else "ok")
    return {
        "status": status,
        "problems": problems,
        "warnings": warnings,
        "sampler": {
            "chains": config.chains,
            "draws": config.draws,
            "warmup": config.warmup,
            "divergences": n_div,
            "max_rhat": max_rhat,
            "min_ess": min_ess,
            "max_tree_depth_hits": depth_hits,
            "seed": config.seed,
        },
        "parameters": rows,
        "posterior_predictive": ppc,
        "holdout": hold,
        "identification": {"collinear_spend": collinear, "channels": channels},
    }
