"""Gamma-Gamma spend model (Fader, Hardie & Lee 2005, "RFM and CLV"; Fader & Hardie 2013 note).

Each transaction's value is Gamma(p, nu); nu varies across customers as Gamma(q, gamma). It is fitted
on customers with at least one repeat purchase, using x = number of repeat purchases and m = their mean
value; the density of the mean is

    f(m | p, q, gamma, x) = G(px+q) / (G(px) G(q)) * gamma^q m^(px-1) x^(px) / (gamma + m x)^(px+q)

The expected spend per future purchase is E[M | x, m] = p (gamma + m x) / (p x + q - 1): a weighted
mean of the population mean p gamma / (q - 1) and the customer's own mean.

>>> from touchpoint.predict import GammaGammaModel
>>> gg = GammaGammaModel(params={"p": 6.25, "q": 3.74, "gamma": 15.44})
>>> round(float(gg.expected_spend(2, 22.35)[0]), 2)
24.66
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.special import digamma, gammaln

from touchpoint.errors import InvalidInput
from touchpoint.predict.base import FitReport, Model, as_array, compress, wsum


@dataclass
class _Data:
    x: np.ndarray
    m: np.ndarray
    w: np.ndarray


def _check(frequency: Any, monetary_value: Any) -> tuple[np.ndarray, np.ndarray]:
    x = as_array(frequency, "frequency", integer=True)
    m = as_array(monetary_value, "monetary_value")
    try:
        x, m = np.broadcast_arrays(x, m)
    except ValueError as exc:
        raise InvalidInput(f"frequency and monetary_value have different lengths ({x.size}, {m.size})") from exc
    return x.astype(np.float64), m.astype(np.float64)


class GammaGammaModel(Model):
    """Gamma-Gamma spend model with parameters ``p, q, gamma``."""

    name = "gamma_gamma"
    param_names = ("p", "q", "gamma")
    default_start = (1.0, 1.0, 1.0)

    def fit(
        self,
        frequency: Any,
        monetary_value: Any,
        *,
        weights: Any = None,
        start: tuple[float, ...] | None = None,
        restarts: int = 0,
    ) -> FitReport:
        """Fit on repeat buyers (x > 0, m > 0); others are left out, as in the literature."""
        x, m = _check(frequency, monetary_value)
        keep = (x > 0) & (m > 0)
        if keep.sum() < 3:
            raise InvalidInput(
                f"the spend model needs customers with repeat purchases and positive spend; found {int(keep.sum())}",
                hint="use a longer calibration period, or check that orders carry revenue",
            )
        w = None if weights is None else as_array(weights, "weights")[keep]
        (ux, um), counts = compress(x[keep], m[keep], weights=w)
        data = _Data(x=ux, m=um, w=counts)
        report = self._fit_prepared(data, int(counts.sum()), len(ux), start, restarts)
        corr = float(np.corrcoef(x[keep], m[keep])[0, 1]) if keep.sum() > 2 else float("nan")
        self.frequency_spend_correlation_ = corr
        if abs(corr) > 0.3:
            report.warnings.append(
                f"frequency and mean spend are correlated (r = {corr:.2f}); the Gamma-Gamma model assumes "
                "they are independent, so expected spend may be biased"
            )
        return report

    def _nll(self, log_theta: np.ndarray, d: _Data) -> tuple[float, np.ndarray]:
        p, q, g = np.exp(log_theta)
        x, m, w = d.x, d.m, d.w
        px = p * x
        lgm = np.log(g + m * x)
        ll = (
            gammaln(px + q)
            - gammaln(px)
            - gammaln(q)
            + q * np.log(g)
            + (px - 1) * np.log(m)
            + px * np.log(x)
            - (px + q) * lgm
        )
        dp = x * (digamma(px + q) - digamma(px) + np.log(m) + np.log(x) - lgm)
        dq = digamma(px + q) - digamma(q) + np.log(g) - lgm
        dg = q / g - (px + q) / (g + m * x)
        grad = np.array([wsum(w, dp) * p, wsum(w, dq) * q, wsum(w, dg) * g])
        return -float(wsum(w, ll)), -grad

    def log_likelihood(self, frequency: Any, monetary_value: Any) -> np.ndarray:
        x, m = _check(frequency, monetary_value)
        data = _Data(x=x, m=m, w=np.ones_like(x))
        p, q, g = self.theta
        with np.errstate(all="ignore"):
            px = p * x
            return (
                gammaln(px + q)
                - gammaln(px)
                - gammaln(q)
                + q * np.log(g)
                + (px - 1) * np.log(data.m)
                + px * np.log(x)
                - (px + q) * np.log(g + data.m * x)
            )

    def expected_spend(self, frequency: Any, monetary_value: Any) -> np.ndarray:
        """E[value of a future purchase | x repeat purchases with mean m] (population mean when x = 0)."""
        x, m = _check(frequency, monetary_value)
        p, q, g = self.theta
        if q <= 1:
            raise InvalidInput(
                f"q = {q:.3f} <= 1: the population mean spend is infinite under these parameters",
                hint="check the spend data for extreme values",
            )
        m = np.where(x > 0, m, 0.0)
        return p * (g + m * x) / (p * x + q - 1)

    def population_mean_spend(self) -> float:
        p, q, g = self.theta
        return float(p * g / (q - 1)) if q > 1 else float("inf")
