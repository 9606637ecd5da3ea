"""The one place that imports JAX and NumPyro: the Bayesian model and its NUTS sampler.

Everything else in :mod:`touchpoint.mmm` works on the numpy arrays this module returns, so
``import touchpoint`` (and the planner, the investment case, the API) never loads JAX.

The model, on scaled data (target divided by its mean, spend by each channel's mean)::

    y_t ~ Normal(mu_t, sigma)                      (fitted weeks only; held-out weeks predicted)
    mu_t = intercept + Z_t . gamma + sum_c beta_c * sat_c(adstock_c(x_c)_t)
    beta_c = roi_c * spend_c / (y_scale * sum_t sat_c(...)_t)   (ROI is the sampled parameter)

Sampling ROI directly (as Google's Meridian does) keeps the well-identified quantity, the total
return of a channel, apart from the weakly identified shape of its curve, which shortens NUTS
trajectories, and lets lift experiments calibrate it with a prior on ROI.

Accepted lift tests (``MMMConfig.calibrations``) add one likelihood term each, on the test's weeks::

    roi_k ~ Normal(incr_k / spend_k, se_k)
    incr_k = y_scale * beta_c * sum_{t in test weeks} (sat_c(adstock_c(x_c))_t - sat_c(adstock_c(x_c without
             the channel's spend in the test weeks))_t)

The terms sit in ``CALIBRATION_SLOTS`` fixed slots (unused ones masked out), so fits with one to four
calibrations run the same compiled sampler; a fit without any has no term (and no extra cost).
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from touchpoint.errors import ConfigError
from touchpoint.mmm.config import MMMConfig
from touchpoint.mmm.transforms import ADSTOCK_KINDS, SATURATION_KINDS, adstock, adstock_weights, saturate

EXTRA = "touchpoint[mmm]"
HOST_DEVICES = 8
CALIBRATION_SLOTS = 4  # lift-test terms are padded to a multiple of this (one compiled program for 0-4)


def _load() -> tuple[Any, Any, Any, Any]:
    """Import jax and numpyro (64-bit, CPU) or say which extra to install."""
    import sys

    os.environ.setdefault("JAX_PLATFORMS", "cpu")
    if "jax" not in sys.modules and "xla_force_host_platform_device_count" not in os.environ.get("XLA_FLAGS", ""):
        # One host "device" per chain lets NUTS chains run in parallel threads on the CPU cores.
        flags = os.environ.get("XLA_FLAGS", "")
        os.environ["XLA_FLAGS"] = f"{flags} --xla_force_host_platform_device_count={HOST_DEVICES}".strip()
    try:
        import jax
        import jax.numpy as jnp
        import numpyro
        import numpyro.distributions as dist
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ConfigError(
            f"the marketing-mix model needs JAX and NumPyro, which are not installed ({exc.name})",
            hint=f"install the extra: pip install '{EXTRA}' (numpyro==0.22.0, jax==0.10.2)",
        ) from exc
    jax.config.update("jax_enable_x64", True)
    if not os.environ.get("JAX_COMPILATION_CACHE_DIR"):
        # Compiling the sampler costs more than sampling small models; cache it across processes.
        cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "touchpoint" / "jax"
        jax.config.update("jax_compilation_cache_dir", str(cache))
    return jax, jnp, numpyro, dist


@dataclass(frozen=True)
class EngineInputs:
    """Scaled arrays the sampler needs. ``lagged`` is ``(T, C, L)``; ``train`` marks fitted weeks."""

    lagged: np.ndarray
    y: np.ndarray
    train: np.ndarray
    baseline: np.ndarray
    spend_train: np.ndarray
    y_scale: float
    roi_mu: np.ndarray
    roi_sigma: np.ndarray
    calibration: CalibrationInputs | None = None


@dataclass(frozen=True)
class CalibrationInputs:
    """Lift tests as arrays, one per slot ``k``: the channel index, the lag matrix of that channel's
    scaled spend with the test weeks zeroed ``(T, K, L)``, the test weeks ``(T, K)``, the channel's spend
    in those weeks (money), the measured ROI and its standard error, and ``on`` (0 for a padding slot)."""

    channel: np.ndarray
    lagged: np.ndarray
    weeks: np.ndarray
    spend: np.ndarray
    roi: np.ndarray
    se: np.ndarray
    on: np.ndarray

    @classmethod
    def padded(cls, items: list[dict[str, Any]], lagged: np.ndarray) -> CalibrationInputs:
        """Fill ``CALIBRATION_SLOTS`` slots (or a multiple) from ``items`` (dicts of the fields above, the
        lag matrix and weeks of one channel); empty slots copy channel 0 and are switched off. No items,
        no slots."""
        t = lagged.shape[0]
        k = -(-len(items) // CALIBRATION_SLOTS) * CALIBRATION_SLOTS
        channel = np.zeros(k, dtype=np.int32)
        cf = np.repeat(lagged[:, :1, :], k, axis=1)
        weeks = np.zeros((t, k))
        spend, roi, se, on = np.ones(k), np.zeros(k), np.ones(k), np.zeros(k)
        for i, item in enumerate(items):
            channel[i] = item["channel"]
            cf[:, i, :] = item["lagged"]
            weeks[:, i] = item["weeks"]
            spend[i], roi[i], se[i], on[i] = item["spend"], item["roi"], item["se"], 1.0
        return cls(channel, cf, weeks, spend, roi, se, on)


@dataclass(frozen=True)
class EngineResult:
    """Posterior draws ``{name: (chains, draws, ...)}`` and per-draw sampler statistics."""

    samples: dict[str, np.ndarray]
    diverging: np.ndarray
    tree_depth: np.ndarray
    seconds: float


def channel_params(xp: Any, config: MMMConfig, draws: dict[str, Any]) -> tuple[Any, Any]:
    """Stack the adstock and saturation parameters of ``draws`` into ``(..., C, k)`` arrays."""
    ad = xp.stack([draws[name] for name in ADSTOCK_KINDS[config.adstock].params], axis=-1)
    sat = xp.stack([draws[name] for name in SATURATION_KINDS[config.saturation].params], axis=-1)
    return ad, sat


def _channel_priors(dist: Any) -> dict[str, Any]:
    """The prior of every adstock and saturation parameter, by its draw name."""
    return {
        "decay": dist.Beta(2.0, 3.0),
        "weibull_shape": dist.LogNormal(0.0, 0.5),
        "weibull_scale": dist.LogNormal(np.log(2.0), 0.75),
        "half": dist.LogNormal(0.0, 0.75),
        "shape": dist.LogNormal(np.log(1.5), 0.35),
        "lam": dist.LogNormal(np.log(2.0), 0.75),
    }


def _model_fn(config: MMMConfig, n_channels: int) -> Any:
    """The NumPyro model. Data arrive as arguments, so one compiled sampler serves every data set of
    the same shape (and JAX's persistent compilation cache can reuse it across processes)."""
    _, jnp, numpyro, dist = _load()

    def model(
        lagged: Any,
        z: Any,
        y: Any,
        train: Any,
        spend_train: Any,
        y_scale: Any,
        roi_mu: Any,
        roi_sigma: Any,
        cal: tuple[Any, ...],
    ) -> None:
        with numpyro.plate("channel", n_channels):
            roi = numpyro.sample("roi", dist.LogNormal(roi_mu, roi_sigma))
            draws: dict[str, Any] = {}
            priors = _channel_priors(dist)
            for name in ADSTOCK_KINDS[config.adstock].params + SATURATION_KINDS[config.saturation].params:
                draws[name] = numpyro.sample(name, priors[name])
        intercept = numpyro.sample("intercept", dist.Normal(0.5, 0.5))
        sigma = numpyro.sample("sigma", dist.HalfNormal(0.3))
        mu = intercept
        if z.shape[1]:
            gamma = numpyro.sample("gamma", dist.Normal(jnp.zeros(z.shape[1]), 0.5).to_event(1))
            mu = mu + z @ gamma
        ad, sat = channel_params(jnp, config, draws)
        w = adstock_weights(jnp, config.adstock, ad, config.max_lag)
        h = saturate(jnp, config.saturation, adstock(jnp, lagged, w), sat)
        beta = roi * spend_train / (y_scale * jnp.sum(h * train[:, None], axis=0) + 1e-12)
        mu = mu + h @ beta
        with numpyro.handlers.mask(mask=train > 0):
            numpyro.sample("y", dist.Normal(mu, sigma), obs=y)
        c, cf_lagged, weeks, spend, roi_obs, se, on = cal
        if on.shape[0]:  # a static shape: no calibrations, no term in the compiled program
            h_cf = saturate(jnp, config.saturation, adstock(jnp, cf_lagged, w[c]), sat[c])
            incr = jnp.sum((h[:, c] - h_cf) * weeks, axis=0) * beta[c] * y_scale
            with numpyro.handlers.mask(mask=on > 0):
                numpyro.sample("lift", dist.Normal(incr / spend, se), obs=roi_obs)

    return model


def sample(inputs: EngineInputs, config: MMMConfig) -> EngineResult:
    """Run NUTS (``config.chains`` chains, vectorised) and return the draws as numpy arrays."""
    mcmc, lock = _sampler(config, inputs.lagged.shape[1])
    with lock:  # one run at a time on a sampler (it keeps the run's state); chains already use every core
        return _run(mcmc, inputs, config)


#: One NumPyro sampler per model and sampler settings, kept for the process: a refit of the same shapes reuses
#: its traced and compiled parts, where a new sampler per fit built them again (or loaded them from the
#: persistent cache): a 130-week, 3-channel fit of 2 x 150 + 150 draws took 12-18 s each time, now 2.3-3.6 s
#: after the first, with the same draws. Still, each run of parallel chains loads the chains' program again
#: (NumPyro maps a new function over the chains every run) and XLA keeps its CPU code mapped: about 1,240
#: memory maps a fit, so a process fitting about 50 models reaches Linux's default 65,530 and LLVM aborts
#: ("Cannot allocate memory"). The job runner fits each model in a process of its own; bench/mmm_coverage.py
#: starts a new process every 40 fits.
_SAMPLERS: dict[tuple[Any, ...], tuple[Any, threading.Lock]] = {}
_SAMPLERS_GUARD = threading.Lock()


def _sampler(config: MMMConfig, n_channels: int) -> tuple[Any, threading.Lock]:
    """The process's sampler for ``config``'s model and sampler settings, and the lock of its runs."""
    model = (config.adstock, config.saturation, config.max_lag, n_channels)  # all the model reads of the config
    key = (*model, config.target_accept, config.max_tree_depth, config.warmup, config.draws, config.chains)
    with _SAMPLERS_GUARD:
        if key not in _SAMPLERS:
            _SAMPLERS[key] = (_new_sampler(config, n_channels), threading.Lock())
        return _SAMPLERS[key]


def _new_sampler(config: MMMConfig, n_channels: int) -> Any:
    jax, _, _, _ = _load()
    from numpyro.infer import MCMC, NUTS, init_to_median

    # the kept model sees only the keyed fields, so no other setting of this first config can stick to it
    model = MMMConfig(adstock=config.adstock, saturation=config.saturation, max_lag=config.max_lag)
    kernel = NUTS(
        _model_fn(model, n_channels),
        target_accept_prob=config.target_accept,
        max_tree_depth=config.max_tree_depth,
        init_strategy=init_to_median(num_samples=15),
    )
    return MCMC(
        kernel,
        num_warmup=config.warmup,
        num_samples=config.draws,
        num_chains=config.chains,
        chain_method="parallel" if jax.local_device_count() >= config.chains else "vectorized",
        progress_bar=False,
        jit_model_args=True,
    )


def _run(mcmc: Any, inputs: EngineInputs, config: MMMConfig) -> EngineResult:
    jax, _, _, _ = _load()
    start = time.perf_counter()
    args = (
        inputs.lagged,
        inputs.baseline,
        inputs.y,
        inputs.train.astype(float),
        inputs.spend_train,
        np.float64(inputs.y_scale),
        inputs.roi_mu,
        inputs.roi_sigma,
        tuple(
            getattr(inputs.calibration or CalibrationInputs.padded([], inputs.lagged), name)
            for name in ("channel", "lagged", "weeks", "spend", "roi", "se", "on")
        ),
    )
    mcmc.run(jax.random.PRNGKey(config.seed), *args, extra_fields=("diverging", "num_steps"))
    samples = {k: np.asarray(v) for k, v in mcmc.get_samples(group_by_chain=True).items()}
    extra = mcmc.get_extra_fields(group_by_chain=True)
    steps = np.asarray(extra["num_steps"])
    return EngineResult(
        samples=samples,
        diverging=np.asarray(extra["diverging"]).astype(bool),
        tree_depth=np.floor(np.log2(np.maximum(steps, 1))).astype(int) + 1,
        seconds=time.perf_counter() - start,
    )
