"""The statistics engines: frequentist, sequential (always valid) and Bayesian, all vectorised.

Each engine turns :class:`~touchpoint.experiments.statistics.PairMoments` (control ``a`` versus
treatment ``b``) into a lift with an interval. Inputs are numpy arrays, so one call analyses one
comparison, 10,000 comparisons, or every day of 2,000 simulated experiments.

* ``frequentist``: Welch's unequal-variance t-test. The absolute lift is ``mean_b - mean_a``; the
  relative lift ``(mean_b - mean_a) / mean_a`` has the delta-method variance
  ``var_b / (mean_a^2 n_b) + var_a mean_b^2 / (mean_a^4 n_a)``. Degrees of freedom by
  Welch-Satterthwaite. Valid for one look at a planned sample size only.
* ``sequential``: the asymptotic confidence sequence of Waudby-Smith et al. (2023, eq. 9; a normal
  mixture with tuning ``rho`` chosen for an expected total sample size, GrowthBook's default 5,000)
  and its always-valid p-value. Safe to look at every day: the chance that the interval ever excludes
  a true zero stays at or below ``alpha``.
* ``bayesian``: a Gaussian posterior on the lift (flat prior by default, or a proper Gaussian prior
  on the relative lift), with chance to beat control and expected loss ("risk") of each decision.

These reproduce gbstats 0.8.0 (GrowthBook's engine) to 1e-6; the tests prove it. Where gbstats
returns zeros for an analysis it cannot do, we return NaN and an ``error`` code instead, so a missing
result cannot be mistaken for "no effect".

>>> import numpy as np
>>> from touchpoint.experiments.statistics import ArmStats, pair_moments
>>> a = ArmStats("a", n=1000, sum=100, sum_squares=100).as_arrays()
>>> b = ArmStats("b", n=1000, sum=130, sum_squares=130).as_arrays()
>>> r = frequentist(pair_moments("binomial", a, b), relative=True)
>>> round(float(r.estimate), 3), round(float(r.p_value), 4)
(0.3, 0.0656)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Protocol

import numpy as np

from touchpoint.errors import InvalidInput
from touchpoint.experiments.statistics import PairMoments

Engine = Literal["frequentist", "sequential", "bayesian"]
DEFAULT_SEQUENTIAL_TUNING = 5000.0

# Error codes (the same cases in which gbstats returns its "default output").
BASELINE_ZERO = "baseline_zero"  # relative lift undefined: the control mean is 0
ZERO_VARIANCE = "zero_variance"  # an arm has no variance (or fewer than 2 units)
NO_UNITS = "no_units"  # an arm has no units

ERROR_TEXT = {
    BASELINE_ZERO: "the control mean is 0, so a relative lift is undefined",
    ZERO_VARIANCE: "an arm has no variance (all units equal, or fewer than 2 units)",
    NO_UNITS: "an arm has no units",
}


def check_engine(engine: str) -> None:
    if engine not in ENGINES:
        raise InvalidInput(f"engine {engine!r} is not known", hint=f"use one of: {', '.join(ENGINES)}")


def check_alpha(alpha: float) -> None:
    if not 0 < alpha < 1:
        raise InvalidInput(f"alpha {alpha!r} must be between 0 and 1", hint="use e.g. 0.05 for 95% intervals")


@dataclass
class Lift:
    """Engine output, one element per comparison. NaN where ``error`` is set."""

    engine: str
    relative: bool
    estimate: np.ndarray
    stderr: np.ndarray
    ci_low: np.ndarray
    ci_high: np.ndarray
    error: np.ndarray  # object array: None or an error code
    p_value: np.ndarray = field(default_factory=lambda: np.array(np.nan))
    dof: np.ndarray = field(default_factory=lambda: np.array(np.nan))
    chance_to_win: np.ndarray = field(default_factory=lambda: np.array(np.nan))
    risk_control: np.ndarray = field(default_factory=lambda: np.array(np.nan))
    risk_treatment: np.ndarray = field(default_factory=lambda: np.array(np.nan))


def difference(m: PairMoments, relative: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Point estimate, variance of the estimate, and an error code array for each comparison."""
    with np.errstate(divide="ignore", invalid="ignore"):
        if relative:
            est = (m.mean_b - m.mean_a) / m.raw_mean_a
            var = m.var_b / (m.raw_mean_a**2 * m.n_b) + m.var_a * m.raw_mean_b**2 / (m.raw_mean_a**4 * m.n_a)
        else:
            est = m.mean_b - m.mean_a
            var = m.var_b / m.n_b + m.var_a / m.n_a
    error = np.full(np.shape(est), None, dtype=object)
    error[(m.var_a <= 0) | (m.var_b <= 0)] = ZERO_VARIANCE
    if relative:
        error[(m.mean_a == 0) | (m.raw_mean_a == 0)] = BASELINE_ZERO
    error[(m.n_a <= 0) | (m.n_b <= 0)] = NO_UNITS
    return np.asarray(est, dtype=float), np.asarray(var, dtype=float), error


def _ok(error: np.ndarray) -> np.ndarray:
    """True where a comparison has no error code (``error`` is an object array of None or str)."""
    return np.array([e is None for e in error.ravel()], dtype=bool).reshape(error.shape)


def _blank(arr: np.ndarray, error: np.ndarray) -> np.ndarray:
    out = np.array(arr, dtype=float, copy=True)
    out[~_ok(error)] = np.nan
    return out


def welch_dof(m: PairMoments) -> np.ndarray:
    """Welch-Satterthwaite degrees of freedom."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return (m.var_b / m.n_b + m.var_a / m.n_a) ** 2 / (
            m.var_b**2 / (m.n_b**2 * (m.n_b - 1)) + m.var_a**2 / (m.n_a**2 * (m.n_a - 1))
        )


def frequentist(m: PairMoments, *, relative: bool = True, alpha: float = 0.05) -> Lift:
    """Two-sided Welch t-test on the absolute or relative lift."""
    from scipy import stats as st  # at first use: scipy.stats takes about 0.7 s to import

    check_alpha(alpha)
    est, var, error = difference(m, relative)
    dof = welch_dof(m)
    ok = _ok(error)
    safe_var = np.where(ok, var, 1.0)
    safe_dof = np.where(ok & np.isfinite(dof), dof, 1.0)
    se = np.sqrt(safe_var)
    t_stat = np.where(ok, est, 0.0) / se
    p = 2 * st.t.sf(np.abs(t_stat), safe_dof)
    width = st.t.ppf(1 - alpha / 2, safe_dof) * se
    return Lift(
        engine="frequentist",
        relative=relative,
        estimate=_blank(est, error),
        stderr=_blank(se, error),
        ci_low=_blank(est - width, error),
        ci_high=_blank(est + width, error),
        p_value=_blank(p, error),
        dof=_blank(dof, error),
        error=error,
    )


def sequential_rho(alpha: float, tuning: float) -> float:
    """The mixture parameter for an expected sample size ``tuning`` (Waudby-Smith et al., eq. 161)."""
    return float(np.sqrt((-2 * np.log(alpha) + np.log(-2 * np.log(alpha) + 1)) / tuning))


def sequential(
    m: PairMoments, *, relative: bool = True, alpha: float = 0.05, tuning: float = DEFAULT_SEQUENTIAL_TUNING
) -> Lift:
    """Asymptotic confidence sequence (always valid) and its p-value."""
    check_alpha(alpha)
    if not tuning > 0:
        raise InvalidInput(
            f"sequential tuning {tuning!r} must be positive",
            hint="use the expected total number of units in the experiment, e.g. 5000",
        )
    est, var, error = difference(m, relative)
    ok = _ok(error)
    n_total = np.asarray(m.n_a + m.n_b, dtype=float)
    rho = sequential_rho(alpha, tuning)
    safe_var = np.where(ok, var, 1.0)
    safe_n = np.where(ok, n_total, 1.0)
    s2 = safe_var * safe_n
    nr2p1 = safe_n * rho**2 + 1
    width = np.sqrt(s2) * np.sqrt(2 * nr2p1 * np.log(np.sqrt(nr2p1) / alpha) / (safe_n * rho) ** 2)
    st2 = np.where(ok, est, 0.0) ** 2 * safe_n / safe_var
    log_e = rho**2 * st2 / (2 * nr2p1) - 0.5 * np.log(nr2p1)
    p = np.exp(np.minimum(-log_e, 0.0))  # min(1 / e-value, 1) without overflow
    return Lift(
        engine="sequential",
        relative=relative,
        estimate=_blank(est, error),
        stderr=_blank(np.sqrt(safe_var), error),
        ci_low=_blank(est - width, error),
        ci_high=_blank(est + width, error),
        p_value=_blank(p, error),
        error=error,
    )


@dataclass(frozen=True)
class Prior:
    """A Gaussian prior on the lift. ``proper=False`` (the default) is the flat prior.

    ``scale`` is "relative" (mean and sd of the relative lift, e.g. sd 0.1 = 10%) or "absolute".
    """

    mean: float = 0.0
    sd: float = 0.3
    proper: bool = False
    scale: Literal["relative", "absolute"] = "relative"


def expected_loss(mu: np.ndarray, sigma: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Expected loss of keeping control, ``E[max(X, 0)]``, and of shipping, ``E[max(-X, 0)]``.

    Closed form for ``X ~ N(mu, sigma^2)``: ``mu Phi(mu/sigma) + sigma phi(mu/sigma)`` and
    ``sigma phi(mu/sigma) - mu Phi(-mu/sigma)``.
    """
    from scipy import stats as st  # at first use: scipy.stats takes about 0.7 s to import

    z = mu / sigma
    pdf = st.norm.pdf(z)
    return mu * st.norm.cdf(z) + sigma * pdf, sigma * pdf - mu * st.norm.cdf(-z)


def bayesian(
    m: PairMoments,
    *,
    relative: bool = True,
    alpha: float = 0.05,
    prior: Prior | None = None,
    inverse: bool = False,
) -> Lift:
    """Gaussian posterior on the lift: credible interval, chance to win and risk."""
    from scipy import stats as st  # at first use: scipy.stats takes about 0.7 s to import

    check_alpha(alpha)
    prior = prior or Prior()
    if prior.proper and not prior.sd > 0:
        raise InvalidInput(f"prior sd {prior.sd!r} must be positive", hint="use e.g. 0.3 (a 30% lift is rare)")
    est, var, error = difference(m, relative)
    ok = _ok(error)
    safe_var = np.where(ok, var, 1.0)
    prior_mean = np.asarray(prior.mean, dtype=float)
    prior_var = np.asarray(prior.sd**2, dtype=float)
    control = np.where(m.raw_mean_a != 0, m.raw_mean_a, 1.0)
    if relative and prior.scale == "absolute":
        prior_mean, prior_var = prior_mean / np.abs(control), prior_var / control**2
    elif not relative and prior.scale == "relative":
        prior_mean, prior_var = prior_mean * np.abs(control), prior_var * control**2
    if prior.proper:
        post_prec = 1 / safe_var + 1 / prior_var
        mean = (np.where(ok, est, 0.0) / safe_var + prior_mean / prior_var) / post_prec
    else:
        post_prec = 1 / safe_var
        mean = np.where(ok, est, 0.0)
    sd = np.sqrt(1 / post_prec)
    ctw = st.norm.sf(0, mean, sd)
    if inverse:
        ctw = 1 - ctw
    risk_c, risk_t = expected_loss(mean, sd)
    if inverse:
        risk_c, risk_t = risk_t, risk_c
    z = st.norm.ppf(1 - alpha / 2)
    return Lift(
        engine="bayesian",
        relative=relative,
        estimate=_blank(mean, error),
        stderr=_blank(sd, error),
        ci_low=_blank(mean - z * sd, error),
        ci_high=_blank(mean + z * sd, error),
        chance_to_win=_blank(ctw, error),
        risk_control=_blank(risk_c, error),
        risk_treatment=_blank(risk_t, error),
        error=error,
    )


def run_engine(
    engine: str,
    m: PairMoments,
    *,
    relative: bool = True,
    alpha: float = 0.05,
    tuning: float = DEFAULT_SEQUENTIAL_TUNING,
    prior: Prior | None = None,
    inverse: bool = False,
) -> Lift:
    """Run the engine registered as ``engine`` (:data:`REGISTRY`)."""
    check_engine(engine)
    return REGISTRY[engine](m, relative=relative, alpha=alpha, tuning=tuning, prior=prior, inverse=inverse)


class EngineFn(Protocol):
    def __call__(
        self, m: PairMoments, *, relative: bool, alpha: float, tuning: float, prior: Prior | None, inverse: bool
    ) -> Lift: ...


#: Engines by name; each takes every option and reads the ones it uses.
REGISTRY: dict[str, EngineFn] = {
    "frequentist": lambda m, *, relative, alpha, tuning, prior, inverse: frequentist(m, relative=relative, alpha=alpha),
    "sequential": lambda m, *, relative, alpha, tuning, prior, inverse: sequential(
        m, relative=relative, alpha=alpha, tuning=tuning
    ),
    "bayesian": lambda m, *, relative, alpha, tuning, prior, inverse: bayesian(
        m, relative=relative, alpha=alpha, prior=prior, inverse=inverse
    ),
}
ENGINES: tuple[str, ...] = tuple(REGISTRY)
