"""The interval methods behind the plan's KPIs, on plain arrays (no warehouse).

Every function returns a dict with ``value``, ``low``, ``high``, ``n`` and ``method`` (the KPI shape),
so the KPI modules only choose the data. Answers from one customer are not independent: the mean
and the top-box share use standard errors clustered by customer (a customer who answers five times
counts as one cluster), and the ratio of means is computed over respondents.

>>> import numpy as np
>>> r = mean_interval(np.array([4.0, 5.0, 3.0, 4.0, 5.0]), level=0.9)
>>> round(r["value"], 2), r["n"]
(4.2, 5)
>>> r = fieller_ratio(np.array([7.0, 8.0, 6.0, 9.0]), np.array([6.0, 6.0, 5.0, 7.0]), level=0.9)
>>> round(r["value"], 3), r["low"] < r["value"] < r["high"]
(1.25, True)
"""

from __future__ import annotations

import math
from statistics import NormalDist
from typing import Any

import numpy as np

NAN = float("nan")


def _z(level: float) -> float:
    """The two-sided normal quantile of ``level``."""
    return NormalDist().inv_cdf(0.5 + level / 2)


def _t(level: float, df: int) -> float:
    """The two-sided Student t quantile of ``level`` with ``df`` degrees of freedom."""
    from scipy import stats  # at first use: scipy.stats costs the server about 50 MB at start

    return float(stats.t.ppf(0.5 + level / 2, df))


def _groups(clusters: np.ndarray | None, n: int) -> np.ndarray:
    if clusters is None:
        return np.arange(n)
    _, codes = np.unique(clusters.astype(str), return_inverse=True)
    return codes


def cluster_se(y: np.ndarray, clusters: np.ndarray | None = None) -> tuple[float, int]:
    """Standard error of the mean of ``y`` with answers clustered (the sandwich estimator with the
    small-sample factor G/(G-1)); returns (se, number of clusters)."""
    n = y.size
    codes = _groups(clusters, n)
    g = int(codes.max()) + 1 if n else 0
    if g < 2:
        return NAN, g
    resid = np.bincount(codes, weights=y - y.mean(), minlength=g)
    var = float((resid**2).sum()) / n**2 * g / (g - 1)
    return math.sqrt(var), g


def mean_interval(y: np.ndarray, clusters: np.ndarray | None = None, *, level: float = 0.9) -> dict[str, Any]:
    """The mean with a t interval (G-1 degrees of freedom) from the clustered standard error."""
    y = np.asarray(y, dtype=np.float64)
    if y.size == 0:
        return {"value": None, "low": None, "high": None, "n": 0, "method": "no answers"}
    se, g = cluster_se(y, clusters)
    m = float(y.mean())
    if not math.isfinite(se):
        return {"value": m, "low": None, "high": None, "n": int(y.size), "respondents": g, "method": "one respondent"}
    t = _t(level, g - 1)
    return {
        "value": m,
        "low": m - t * se,
        "high": m + t * se,
        "n": int(y.size),
        "respondents": g,
        "se": se,
        "method": f"mean; {level:.0%} t interval ({g - 1} df) with standard errors clustered by respondent",
    }


def wilson(successes: float, n: float, level: float = 0.9) -> tuple[float, float]:
    """Wilson's score interval for a proportion (Wilson 1927); ``n`` may be an effective size."""
    if n <= 0:
        return NAN, NAN
    z = _z(level)
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def share_interval(hit: np.ndarray, clusters: np.ndarray | None = None, *, level: float = 0.9) -> dict[str, Any]:
    """A share (e.g. top-box) with Wilson's interval on the effective sample size n / deff, where the
    design effect deff (Kish 1965) is the clustered variance over the independent one (at least 1)."""
    x = np.asarray(hit, dtype=np.float64)
    n = x.size
    if n == 0:
        return {"value": None, "low": None, "high": None, "n": 0, "method": "no answers"}
    p = float(x.mean())
    se, g = cluster_se(x, clusters)
    iid = p * (1 - p) / n
    deff = max(1.0, se**2 / iid) if iid > 0 and math.isfinite(se) else 1.0
    lo, hi = wilson(p * n / deff, n / deff, level)
    return {
        "value": p,
        "low": lo,
        "high": hi,
        "n": n,
        "respondents": g,
        "design_effect": deff,
        "method": f"share; {level:.0%} Wilson score interval on the effective sample size (n / design effect "
        "of answers clustered by respondent)",
    }


def fieller_ratio(num: np.ndarray, den: np.ndarray, *, level: float = 0.9) -> dict[str, Any]:
    """mean(num) / mean(den) over paired observations (one pair per respondent) with Fieller's interval.

    Fieller's theorem (Fieller 1954) inverts the t test of mean(num) - R * mean(den) = 0: it needs no
    normal approximation of the ratio itself, so it stays honest in small samples and becomes wide or
    unbounded (``low``/``high`` None) when the denominator is not clearly above zero, where the delta
    method would print a falsely narrow interval.
    """
    x = np.asarray(num, dtype=np.float64)
    y = np.asarray(den, dtype=np.float64)
    n = x.size
    if n == 0 or y.mean() == 0:
        return {"value": None, "low": None, "high": None, "n": int(n), "method": "no respondents rated both"}
    mx, my = float(x.mean()), float(y.mean())
    r = mx / my
    out: dict[str, Any] = {"value": r, "low": None, "high": None, "n": int(n)}
    if n < 2:
        out["method"] = "one respondent: no interval"
        return out
    cov = np.cov(x, y, ddof=1) / n  # covariance matrix of the two means
    vxx, vyy, vxy = float(cov[0, 0]), float(cov[1, 1]), float(cov[0, 1])
    t = _t(level, n - 1)
    a = my * my - t * t * vyy
    b = -2 * (mx * my - t * t * vxy)
    c = mx * mx - t * t * vxx
    disc = b * b - 4 * a * c
    out["method"] = (
        f"ratio of means over respondents who rated both; {level:.0%} Fieller interval (t, {n - 1} df) "
        "from the paired ratings' covariance"
    )
    if a <= 0 or disc < 0:  # the denominator is not distinguishable from zero: the interval is unbounded
        out["method"] += "; unbounded: the alternatives' mean rating is too uncertain"
        return out
    root = math.sqrt(disc)
    out["low"], out["high"] = (-b - root) / (2 * a), (-b + root) / (2 * a)
    return out


def nps_interval(scores: np.ndarray, *, level: float = 0.9) -> dict[str, Any]:
    """Net Promoter Score (share of 9-10 minus share of 0-6, x100) on a 0-10 scale, with a normal
    interval from the trinomial variance (p_P + p_D - (p_P - p_D)^2) / n."""
    s = np.asarray(scores, dtype=np.float64)
    n = s.size
    if n == 0:
        return {"value": None, "low": None, "high": None, "n": 0, "method": "no answers"}
    pp, pd = float((s >= 9).mean()), float((s <= 6).mean())
    nps = pp - pd
    se = math.sqrt(max(pp + pd - nps * nps, 0.0) / n)
    z = _z(level)
    return {
        "value": 100 * nps,
        "low": 100 * max(-1.0, nps - z * se),
        "high": 100 * min(1.0, nps + z * se),
        "n": int(n),
        "promoters": pp,
        "detractors": pd,
        "method": f"% promoters (9-10) - % detractors (0-6); {level:.0%} normal interval, trinomial variance",
    }


def rank_correlation(x: np.ndarray, y: np.ndarray, *, level: float = 0.9) -> dict[str, Any]:
    """Spearman's rank correlation with a Fisher-z interval using the variance 1.06 / (n - 3)
    (Fieller, Hartley and Pearson 1957); ``verdict`` says in words what the data can and cannot say."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    keep = np.isfinite(x) & np.isfinite(y)
    x, y = x[keep], y[keep]
    n = int(x.size)
    if n < 5 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return {"value": None, "low": None, "high": None, "n": n, "verdict": "too few varied answers to tell"}
    from scipy import stats  # at first use, as in _t

    rho = float(stats.spearmanr(x, y).statistic)
    z = math.atanh(max(min(rho, 0.999999), -0.999999))
    half = _z(level) * math.sqrt(1.06 / (n - 3)) if n > 3 else math.inf
    lo, hi = math.tanh(z - half), math.tanh(z + half)
    if lo <= 0 <= hi:
        verdict = f"no evidence of a relation: the {level:.0%} interval includes zero"
    elif abs(rho) < 0.1:
        verdict = "a relation, but a very weak one"
    elif abs(rho) < 0.3:
        verdict = "a weak " + ("positive" if rho > 0 else "negative") + " relation"
    else:
        verdict = "a " + ("positive" if rho > 0 else "negative") + " relation of moderate strength or more"
    if n < 30:
        verdict += f" (only {n} respondents: indicative at best)"
    return {
        "value": rho,
        "low": lo,
        "high": hi,
        "n": n,
        "method": f"Spearman rank correlation; {level:.0%} Fisher-z interval, variance 1.06/(n-3)",
        "verdict": verdict,
    }
