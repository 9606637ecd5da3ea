"""BG/NBD (Fader, Hardie & Lee 2005, "Counting your customers the easy way") and its modified form
MBG/NBD (Batislam, Denizel & Filiztekin 2007), which also lets a customer drop out right after the
first purchase.

While active, a customer buys at Poisson rate lambda ~ Gamma(r, alpha); after each repeat purchase
(and, for MBG/NBD, also after the first) she drops out with probability p ~ Beta(a, b).
Likelihood, gradient and predictions are in log space; with ``k = 0`` (BG) or ``k = 1`` (MBG):

    LL = ln G(r+x) - ln G(r) + ln B(a, b+x+k) - ln B(a, b) + r ln alpha - (r+x) ln(alpha+T)
         + ln(1 + [x+k>0] a/(b+x+k-1) ((alpha+T)/(alpha+t_x))^(r+x))

>>> from touchpoint.predict import BetaGeoModel
>>> m = BetaGeoModel(params={"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426})
>>> [round(float(v), 4) for v in m.expected_purchases_new([1.0, 78.0])]
[0.0533, 1.8605]
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.special import betaln, digamma, expit, gammaln, hyp2f1

from touchpoint.predict.base import as_array, check_rfm, factorize, row_codes, wsum
from touchpoint.predict.purchase import PurchaseModel


@dataclass
class _Data:
    x: np.ndarray
    w: np.ndarray
    ux: np.ndarray
    ix: np.ndarray
    uT: np.ndarray
    iT: np.ndarray
    utx: np.ndarray
    itx: np.ndarray


class BetaGeoModel(PurchaseModel):
    """BG/NBD: parameters ``r, alpha`` (purchase rate) and ``a, b`` (drop-out after a purchase)."""

    name = "bg_nbd"
    param_names = ("r", "alpha", "a", "b")
    default_start = (1.0, 1.0, 1.0, 1.0)
    k = 0  # 1 for MBG/NBD: drop-out is also possible right after the first purchase

    def _prepare(self, x: np.ndarray, tx: np.ndarray, T: np.ndarray, *, weights: np.ndarray) -> _Data:
        ux, ix = factorize(x)
        uT, iT = factorize(T)
        utx, itx = factorize(tx)
        return _Data(x=x, w=weights, ux=ux, ix=ix, uT=uT, iT=iT, utx=utx, itx=itx)

    def _nll(self, log_theta: np.ndarray, d: _Data) -> tuple[float, np.ndarray]:
        r, alpha, a, b = np.exp(log_theta)
        k = self.k
        ux = d.ux
        # Terms that depend on x only: computed once per distinct x.
        A = gammaln(r + ux) - gammaln(r) + betaln(a, b + ux + k) - betaln(a, b)
        dA_r = digamma(r + ux) - digamma(r)
        dA_a = digamma(a + b) - digamma(a + b + ux + k)
        dA_b = digamma(b + ux + k) - digamma(a + b + ux + k) - digamma(b) + digamma(a + b)
        has = ux + k > 0
        c = np.where(has, np.log(a) - np.log(np.where(has, b + ux + k - 1, 1.0)), -np.inf)
        inv_bx = np.where(has, 1.0 / np.where(has, b + ux + k - 1, 1.0), 0.0)
        # Terms that depend on T or t_x only.
        LT_u = np.log(alpha + d.uT)
        Ltx_u = np.log(alpha + d.utx)
        LT, Ltx = LT_u[d.iT], Ltx_u[d.itx]
        iT_u = 1.0 / (alpha + d.uT)
        itx_u = 1.0 / (alpha + d.utx)
        x = d.x
        rx = r + x
        D = c[d.ix] + rx * (LT - Ltx)
        ll = A[d.ix] + r * np.log(alpha) - rx * LT + np.logaddexp(0.0, D)
        s = expit(D)
        w = d.w
        g_r = dA_r[d.ix] + np.log(alpha) - LT + s * (LT - Ltx)
        g_alpha = r / alpha - rx * iT_u[d.iT] + s * rx * (iT_u[d.iT] - itx_u[d.itx])
        g_a = dA_a[d.ix] + s / a
        g_b = dA_b[d.ix] - s * inv_bx[d.ix]
        grad = np.array([wsum(w, g_r) * r, wsum(w, g_alpha) * alpha, wsum(w, g_a) * a, wsum(w, g_b) * b])
        return -float(wsum(w, ll)), -grad

    def _loglik_rows(self, theta: np.ndarray, x: np.ndarray, tx: np.ndarray, T: np.ndarray) -> np.ndarray:
        r, alpha, a, b = theta
        k = self.k
        A = gammaln(r + x) - gammaln(r) + betaln(a, b + x + k) - betaln(a, b)
        with np.errstate(divide="ignore", invalid="ignore"):
            D = self._log_odds_dead(x, tx, T)
        return A + r * np.log(alpha) - (r + x) * np.log(alpha + T) + np.logaddexp(0.0, D)

    def _log_odds_dead(self, x: np.ndarray, tx: np.ndarray, T: np.ndarray) -> np.ndarray:
        """ln[P(dead)/P(alive)] = ln(a/(b+x+k-1)) + (r+x) ln((alpha+T)/(alpha+t_x)), -inf if x+k = 0."""
        r, alpha, a, b = self.theta
        k = self.k
        has = x + k > 0
        safe = np.where(has, b + x + k - 1, 1.0)
        return np.where(has, np.log(a) - np.log(safe) + (r + x) * (np.log(alpha + T) - np.log(alpha + tx)), -np.inf)

    def p_alive(self, frequency: Any, recency: Any, T: Any) -> np.ndarray:
        x, tx, t_cal = check_rfm(frequency, recency, T)
        return expit(-self._log_odds_dead(x, tx, t_cal))

    def _expected_if_alive(self, t: Any, x: np.ndarray, T: np.ndarray) -> np.ndarray:
        if np.ndim(t) == 0:
            return self._expected_if_alive_fn(x, T)(float(t))
        r, alpha, a, b = self.theta
        k = self.k
        z = t / (alpha + T + t)
        # Euler's transformation keeps the hypergeometric parameters from growing with x:
        # ratio^(r+x) 2F1(r+x, b+x+k; c; z) = ratio^(a-1) 2F1(a+b+k-1-r, a-1; c; z), ratio = 1 - z.
        log_ratio = (a - 1) * (np.log(alpha + T) - np.log(alpha + T + t))
        core = 1.0 - np.exp(log_ratio) * hyp2f1(a + b + k - 1 - r, a - 1, a + b + x + k - 1, z)
        return (a + b + x + k - 1) / (a - 1) * core

    def _expected_if_alive_fn(self, x: np.ndarray, T: np.ndarray) -> Callable[[float], np.ndarray]:
        # The whole expression depends on (x, T) only: evaluate it once per distinct pair.
        r, alpha, a, b = self.theta
        k = self.k
        (ux, uT), inv = _pairs(x, T)
        lead = (a + b + ux + k - 1) / (a - 1)

        def expected(t: float) -> np.ndarray:
            z = t / (alpha + uT + t)
            log_ratio = (a - 1) * (np.log(alpha + uT) - np.log(alpha + uT + t))  # see _expected_if_alive
            return (lead * (1.0 - np.exp(log_ratio) * hyp2f1(a + b + k - 1 - r, a - 1, a + b + ux + k - 1, z)))[inv]

        return expected

    def expected_purchases_new(self, t: Any) -> np.ndarray:
        t = as_array(t, "t")
        r, alpha, a, b = self.theta
        z = t / (alpha + t)
        ratio = (alpha / (alpha + t)) ** r
        if self.k == 0:
            return (a + b - 1) / (a - 1) * (1.0 - ratio * hyp2f1(r, b, a + b - 1, z))
        return b / (a - 1) * (1.0 - ratio * hyp2f1(r, b + 1, a + b, z))

    def prob_purchases(self, n: Any, t: float) -> np.ndarray:
        n_arr = as_array(n, "n", integer=True)
        r, alpha, a, b = self.theta
        k = self.k
        out = np.empty_like(n_arr)
        lp0 = r * np.log(alpha / (alpha + t))
        lq = np.log(t / (alpha + t)) if t > 0 else -np.inf
        for i, ni in enumerate(n_arr.astype(np.int64)):
            j = np.arange(ni + 1)
            with np.errstate(divide="ignore", invalid="ignore"):
                log_nbd = gammaln(r + j) - gammaln(r) - gammaln(j + 1) + lp0 + np.where(j > 0, j * lq, 0.0)
            nbd = np.exp(log_nbd)
            first = np.exp(betaln(a, b + ni + k) - betaln(a, b)) * nbd[ni]
            second = 0.0
            if ni + k > 0:
                second = np.exp(betaln(a + 1, b + ni + k - 1) - betaln(a, b)) * (1.0 - nbd[:ni].sum())
            out[i] = first + second
        return out


class ModifiedBetaGeoModel(BetaGeoModel):
    """MBG/NBD: as BG/NBD, but a customer may also drop out right after the first purchase."""

    name = "mbg_nbd"
    k = 1


def _pairs(x: np.ndarray, T: np.ndarray) -> tuple[list[np.ndarray], np.ndarray]:
    inv, first = row_codes(x, T)
    return [x[first], T[first]], inv
