"""Sufficient statistics of one metric in one arm, and the moments the engines need from them.

An experiment is analysed from a handful of sums per arm, never from unit-level rows: ``n`` units,
the ``sum`` and ``sum_squares`` of the metric, and for ratio metrics the denominator's sums and the
cross-product, for CUPED the pre-exposure covariate's sums and cross-product. Sums add across days,
shards and engines, so they are computed where the data is (see :mod:`touchpoint.experiments.metrics`).

The formulas follow GrowthBook's stats engine (gbstats 0.8.0) so that results agree with it:
sample variance with ``n - 1``, the delta method for ratios, and a CUPED ``theta`` pooled over the
two arms being compared.

>>> arm = ArmStats("control", n=4, sum=2, sum_squares=2)
>>> [float(x) for x in mean_and_variance("binomial", arm.as_arrays())]
[0.5, 0.25]
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np

from touchpoint.errors import InvalidInput

MetricKind = Literal["binomial", "mean", "ratio"]
METRIC_KINDS: tuple[str, ...] = ("binomial", "mean", "ratio")

#: Column names of the sums, in the order used by arrays and tables.
SUM_FIELDS: tuple[str, ...] = (
    "n",
    "sum",
    "sum_squares",
    "den_sum",
    "den_sum_squares",
    "num_den_sum_products",
    "cov_sum",
    "cov_sum_squares",
    "num_cov_sum_products",
)


@dataclass
class ArmStats:
    """The sums for one metric in one arm (variant), optionally for one dimension value.

    ``den_*`` are used by ratio metrics (e.g. revenue per order: numerator revenue, denominator
    orders); ``cov_*`` hold the pre-exposure covariate for CUPED. Missing parts are 0.
    """

    variant: str
    n: float
    sum: float
    sum_squares: float = 0.0
    den_sum: float = 0.0
    den_sum_squares: float = 0.0
    num_den_sum_products: float = 0.0
    cov_sum: float = 0.0
    cov_sum_squares: float = 0.0
    num_cov_sum_products: float = 0.0

    def as_arrays(self) -> dict[str, np.ndarray]:
        return {name: np.asarray(float(getattr(self, name))) for name in SUM_FIELDS}

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class MetricStats:
    """One metric's sums for every arm (control first is not required; name it in the analysis)."""

    metric: str
    kind: MetricKind
    arms: list[ArmStats]
    dimension: str | None = None
    has_covariate: bool = False
    inverse: bool = False  # True when lower is better (e.g. refunds, unsubscribes)
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        check_kind(self.kind)
        seen = [a.variant for a in self.arms]
        if len(set(seen)) != len(seen):
            raise InvalidInput(
                f"metric {self.metric!r}: variant names repeat ({seen})",
                hint="give each arm its sums once",
            )

    def arm(self, variant: str) -> ArmStats:
        for a in self.arms:
            if a.variant == variant:
                return a
        raise InvalidInput(
            f"metric {self.metric!r} has no arm {variant!r}",
            hint=f"arms present: {', '.join(a.variant for a in self.arms) or 'none'}",
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "metric": self.metric,
            "kind": self.kind,
            "dimension": self.dimension,
            "has_covariate": self.has_covariate,
            "inverse": self.inverse,
            "arms": [a.to_dict() for a in self.arms],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MetricStats:
        try:
            arms = [ArmStats(**a) for a in data["arms"]]
            return cls(
                metric=str(data["metric"]),
                kind=data["kind"],
                arms=arms,
                dimension=data.get("dimension"),
                has_covariate=bool(data.get("has_covariate", False)),
                inverse=bool(data.get("inverse", False)),
            )
        except (KeyError, TypeError) as exc:
            raise InvalidInput(
                f"metric statistics are malformed: {exc}",
                hint="send {'metric', 'kind', 'arms': [{'variant', 'n', 'sum', 'sum_squares', ...}]}",
            ) from None


def check_kind(kind: str) -> None:
    if kind not in METRIC_KINDS:
        raise InvalidInput(f"metric kind {kind!r} is not known", hint=f"use one of: {', '.join(METRIC_KINDS)}")


# -- vectorised moments ------------------------------------------------------------------------
# Every function below takes numpy arrays (any shape, broadcast together) so that thousands of
# comparisons, or one comparison on every day of 2,000 simulated experiments, run in one call.


def _safe_div(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den != 0, num / np.where(den != 0, den, 1.0), 0.0)


def sample_variance(n: np.ndarray, s: np.ndarray, ss: np.ndarray) -> np.ndarray:
    """Unbiased variance from n, sum and sum of squares (0 when n <= 1)."""
    n = np.asarray(n, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        var = (ss - _safe_div(s * s, n)) / np.where(n > 1, n - 1, 1.0)
    return np.where(n > 1, var, 0.0)


def proportion_variance(n: np.ndarray, s: np.ndarray) -> np.ndarray:
    p = _safe_div(np.asarray(s, dtype=float), np.asarray(n, dtype=float))
    return p * (1 - p)


def base_moments(kind: str, n: np.ndarray, s: np.ndarray, ss: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and per-unit variance of a binomial or mean metric."""
    mean = _safe_div(np.asarray(s, dtype=float), np.asarray(n, dtype=float))
    if kind == "binomial":
        return mean, proportion_variance(n, s)
    return mean, sample_variance(n, s, ss)


def covariance(n: np.ndarray, sx: np.ndarray, sy: np.ndarray, sxy: np.ndarray) -> np.ndarray:
    """Sample covariance from n, the two sums and the sum of products (0 when n <= 1)."""
    n = np.asarray(n, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        cov = (sxy - _safe_div(sx * sy, n)) / np.where(n > 1, n - 1, 1.0)
    return np.where(n > 1, cov, 0.0)


def ratio_moments(a: dict[str, np.ndarray], num_kind: str = "mean") -> tuple[np.ndarray, np.ndarray]:
    """Mean (sum of numerator / sum of denominator) and delta-method variance of a ratio metric.

    The numerator is a mean-type metric (``num_kind`` "binomial" treats it as 0/1); the
    denominator is a mean-type metric (e.g. orders per unit).
    """
    n = a["n"]
    m_mean, m_var = base_moments(num_kind, n, a["sum"], a["sum_squares"])
    d_mean, d_var = base_moments("mean", n, a["den_sum"], a["den_sum_squares"])
    cov = covariance(n, a["sum"], a["den_sum"], a["num_den_sum_products"])
    mean = _safe_div(a["sum"], a["den_sum"])
    with np.errstate(divide="ignore", invalid="ignore"):
        var = (
            _safe_div(m_var, d_mean**2)
            - 2 * _safe_div(cov * m_mean, d_mean**3)
            + _safe_div(m_mean**2 * d_var, d_mean**4)
        )
    var = np.where((d_mean == 0) | (n <= 1), 0.0, var)
    return mean, var


def mean_and_variance(kind: str, a: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Mean and per-unit variance of one arm's metric (no CUPED)."""
    if kind == "ratio":
        return ratio_moments(a)
    return base_moments(kind, a["n"], a["sum"], a["sum_squares"])


@dataclass
class PairMoments:
    """What a two-arm comparison needs: per arm n, (adjusted) mean, unadjusted mean, variance."""

    n_a: np.ndarray
    mean_a: np.ndarray
    raw_mean_a: np.ndarray
    var_a: np.ndarray
    n_b: np.ndarray
    mean_b: np.ndarray
    raw_mean_b: np.ndarray
    var_b: np.ndarray
    theta: np.ndarray


def pair_moments(kind: str, a: dict[str, np.ndarray], b: dict[str, np.ndarray], *, cuped: bool = False) -> PairMoments:
    """Moments of control ``a`` and treatment ``b``; with ``cuped`` the means are regression-adjusted.

    CUPED (Deng et al. 2013) uses ``theta = cov(Y, X) / var(X)`` computed on the two arms pooled,
    the adjusted mean ``mean(Y) - theta * mean(X)`` and variance ``var(Y) + theta^2 var(X) -
    2 theta cov(Y, X)`` per arm. When the pooled covariate or outcome has no variance, theta is 0
    and the analysis is the unadjusted one (as gbstats does).
    """
    mean_a, var_a = mean_and_variance(kind, a)
    mean_b, var_b = mean_and_variance(kind, b)
    zero = np.zeros_like(mean_a)
    if not cuped or kind == "ratio":
        return PairMoments(a["n"], mean_a, mean_a, var_a, b["n"], mean_b, mean_b, var_b, zero)
    post_kind = kind
    n = a["n"] + b["n"]
    _, joint_post_var = base_moments(post_kind, n, a["sum"] + b["sum"], a["sum_squares"] + b["sum_squares"])
    joint_pre_var = sample_variance(n, a["cov_sum"] + b["cov_sum"], a["cov_sum_squares"] + b["cov_sum_squares"])
    joint_cov = covariance(
        n,
        a["sum"] + b["sum"],
        a["cov_sum"] + b["cov_sum"],
        a["num_cov_sum_products"] + b["num_cov_sum_products"],
    )
    ok = (joint_pre_var != 0) & (joint_post_var != 0)
    theta = np.where(ok, _safe_div(joint_cov, joint_pre_var), 0.0)

    def adjust(arm: dict[str, np.ndarray], mean: np.ndarray, var: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        n_arm = arm["n"]
        pre_mean, pre_var = base_moments("mean", n_arm, arm["cov_sum"], arm["cov_sum_squares"])
        cov = covariance(n_arm, arm["sum"], arm["cov_sum"], arm["num_cov_sum_products"])
        adj_mean = mean - theta * pre_mean
        adj_var = np.where(n_arm > 1, var + theta**2 * pre_var - 2 * theta * cov, 0.0)
        return np.where(theta != 0, adj_mean, mean), np.where(theta != 0, adj_var, var)

    adj_mean_a, adj_var_a = adjust(a, mean_a, var_a)
    adj_mean_b, adj_var_b = adjust(b, mean_b, var_b)
    return PairMoments(a["n"], adj_mean_a, mean_a, adj_var_a, b["n"], adj_mean_b, mean_b, adj_var_b, theta)


def stats_from_units(
    variant: str,
    values: np.ndarray,
    *,
    denominator: np.ndarray | None = None,
    covariate: np.ndarray | None = None,
) -> ArmStats:
    """Sums for one arm from unit-level arrays (one element per unit).

    >>> stats_from_units("a", np.array([0.0, 1.0, 1.0])).sum
    2.0
    """
    y = np.asarray(values, dtype=float)
    out = ArmStats(variant, n=float(y.size), sum=float(y.sum()), sum_squares=float((y * y).sum()))
    if denominator is not None:
        d = np.asarray(denominator, dtype=float)
        out.den_sum = float(d.sum())
        out.den_sum_squares = float((d * d).sum())
        out.num_den_sum_products = float((y * d).sum())
    if covariate is not None:
        x = np.asarray(covariate, dtype=float)
        out.cov_sum = float(x.sum())
        out.cov_sum_squares = float((x * x).sum())
        out.num_cov_sum_products = float((y * x).sum())
    return out
