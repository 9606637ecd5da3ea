"""Pareto/NBD (Schmittlein, Morrison & Colombo 1987; estimation as in Fader, Hardie & Lee 2005).

While active a customer buys at rate lambda ~ Gamma(r, alpha); her lifetime is exponential with
rate mu ~ Gamma(s, beta). The likelihood is written with

    J(x, y) = integral_y^inf (alpha+u)^-(r+x) (beta+u)^-(s+1) du
            = (m+y)^-(r+s+x) / (r+s+x) * 2F1(r+s+x, b'; r+s+x+1; |alpha-beta| / (m+y))

(m = max(alpha, beta), b' = s+1 if alpha >= beta else r+x), so that

    L = G(r+x) alpha^r beta^s / G(r) * [ (alpha+T)^-(r+x) (beta+T)^-s + s (J(x, t_x) - J(x, T)) ]

evaluated in log space. J depends on (x, t_x) or (x, T) only, so the hypergeometric function is
evaluated once per distinct pair; its parameter derivatives come from central differences on those
pairs, everything else from analytic derivatives.

>>> from touchpoint.predict import ParetoNBDModel
>>> m = ParetoNBDModel(params={"r": 0.553, "alpha": 10.578, "s": 0.606, "beta": 11.669})
>>> round(float(m.expected_purchases_new(39.0)[0]), 3)
1.213
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.special import digamma, gammaln, hyp2f1

from touchpoint.predict.base import as_array, check_rfm, row_codes, wsum
from touchpoint.predict.purchase import PurchaseModel

_H = 1e-5  # step for the central differences of ln J in log-parameter space


@dataclass
class _Data:
    x: np.ndarray
    T: np.ndarray
    w: np.ndarray
    ux: np.ndarray
    ix: np.ndarray
    px: np.ndarray  # distinct (x, y) pairs for J: x
    py: np.ndarray  # ... and y
    i1: np.ndarray  # index of (x, t_x) in the pairs
    i2: np.ndarray  # index of (x, T) in the pairs


def _log_j(r: float, alpha: float, s: float, beta: float, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    big = r + s + x
    if alpha >= beta:
        z = (alpha - beta) / (alpha + y)
        return -big * np.log(alpha + y) - np.log(big) + np.log(hyp2f1(big, s + 1.0, big + 1.0, z))
    z = (beta - alpha) / (beta + y)
    return -big * np.log(beta + y) - np.log(big) + np.log(hyp2f1(big, r + x, big + 1.0, z))


class ParetoNBDModel(PurchaseModel):
    """Pareto/NBD: parameters ``r, alpha`` (purchase rate) and ``s, beta`` (drop-out rate)."""

    name = "pareto_nbd"
    param_names = ("r", "alpha", "s", "beta")
    default_start = (0.5, 10.0, 0.5, 10.0)

    def _prepare(self, x: np.ndarray, tx: np.ndarray, T: np.ndarray, *, weights: np.ndarray) -> _Data:
        ux, ix = np.unique(x, return_inverse=True)
        bx, by = np.concatenate([x, x]), np.concatenate([tx, T])
        inv, first = row_codes(bx, by)
        n = len(x)
        return _Data(x=x, T=T, w=weights, ux=ux, ix=ix.ravel(), px=bx[first], py=by[first], i1=inv[:n], i2=inv[n:])

    def _parts(self, theta: np.ndarray, d: _Data) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Per row: ln C, ln P (alive through T), ln(s * (J1 - J2)) and q = J2/J1."""
        r, alpha, s, beta = theta
        logC = (gammaln(r + d.ux) - gammaln(r))[d.ix] + r * np.log(alpha) + s * np.log(beta)
        logP = -(r + d.x) * np.log(alpha + d.T) - s * np.log(beta + d.T)
        lj = _log_j(r, alpha, s, beta, d.px, d.py)
        lj1, lj2 = lj[d.i1], lj[d.i2]
        q = np.exp(lj2 - lj1)
        logQ = np.log(s) + lj1 + np.log1p(-q)
        return logC, logP, logQ, q

    def _nll(self, log_theta: np.ndarray, d: _Data) -> tuple[float, np.ndarray]:
        theta = np.exp(log_theta)
        r, alpha, s, beta = theta
        logC, logP, logQ, q = self._parts(theta, d)
        tot = np.logaddexp(logP, logQ)
        ll = logC + tot
        w = d.w
        # d ln J / d eta on the distinct pairs, by central differences.
        dlj = np.empty((4, len(d.px)))
        for j in range(4):
            up, down = log_theta.copy(), log_theta.copy()
            up[j] += _H
            down[j] -= _H
            dlj[j] = (_log_j(*_four(np.exp(up)), d.px, d.py) - _log_j(*_four(np.exp(down)), d.px, d.py)) / (2 * _H)
        w1 = np.exp(logP - tot)  # = P(alive at T | data)
        w2 = np.exp(logQ - tot)
        one_minus_q = 1.0 - q
        safe = np.where(one_minus_q > 1e-12, one_minus_q, 1.0)
        x, T = d.x, d.T
        grad = np.empty(4)
        dlogC = [
            r * (digamma(r + d.ux) - digamma(r))[d.ix] + r * np.log(alpha),
            np.full_like(x, r),
            np.full_like(x, s * np.log(beta)),
            np.full_like(x, s),
        ]
        dlogP = [
            -r * np.log(alpha + T),
            -(r + x) * alpha / (alpha + T),
            -s * np.log(beta + T),
            -s * beta / (beta + T),
        ]
        for j in range(4):
            g1, g2 = dlj[j][d.i1], dlj[j][d.i2]
            dlogdiff = np.where(one_minus_q > 1e-12, (g1 - q * g2) / safe, g1)
            dQ = dlogdiff + (1.0 if j == 2 else 0.0)
            grad[j] = wsum(w, dlogC[j] + w1 * dlogP[j] + np.where(w2 > 0, w2 * dQ, 0.0))
        return -float(wsum(w, ll)), -grad

    def _loglik_rows(self, theta: np.ndarray, x: np.ndarray, tx: np.ndarray, T: np.ndarray) -> np.ndarray:
        d = self._prepare(x, tx, T, weights=np.ones_like(x))
        with np.errstate(divide="ignore", invalid="ignore"):
            logC, logP, logQ, _ = self._parts(theta, d)
        return logC + np.logaddexp(logP, logQ)

    def p_alive(self, frequency: Any, recency: Any, T: Any) -> np.ndarray:
        x, tx, t_cal = check_rfm(frequency, recency, T)
        d = self._prepare(x, tx, t_cal, weights=np.ones_like(x))
        with np.errstate(divide="ignore", invalid="ignore"):
            _, logP, logQ, _ = self._parts(self.theta, d)
        return np.exp(logP - np.logaddexp(logP, logQ))

    def _expected_if_alive(self, t: Any, x: np.ndarray, T: np.ndarray) -> np.ndarray:
        r, alpha, s, beta = self.theta
        return (r + x) * (beta + T) / (alpha + T) * _growth(s, beta + T, t)

    def expected_purchases_new(self, t: Any) -> np.ndarray:
        t = as_array(t, "t")
        r, alpha, s, beta = self.theta
        return r * beta / alpha * _growth(s, beta, t)

    def prob_purchases(self, n: Any, t: float) -> np.ndarray:
        """P(X(t) = n), integrating the NBD count over the Pareto (Lomax) lifetime by Gauss-Legendre."""
        n_arr = as_array(n, "n", integer=True)
        r, alpha, s, beta = self.theta
        nodes, weights = np.polynomial.legendre.leggauss(200)
        u = (nodes + 1) / 2 * t  # lifetimes in (0, t)
        wu = weights * t / 2
        density = s / beta * (1 + u / beta) ** (-(s + 1))
        survive = (1 + t / beta) ** (-s)
        out = np.empty_like(n_arr)
        for i, ni in enumerate(n_arr):

            def nbd(tt: np.ndarray, ni: float = ni) -> np.ndarray:
                with np.errstate(divide="ignore"):
                    return np.exp(
                        gammaln(r + ni)
                        - gammaln(r)
                        - gammaln(ni + 1)
                        + r * np.log(alpha / (alpha + tt))
                        + (ni * np.log(tt / (alpha + tt)) if ni > 0 else 0.0)
                    )

            out[i] = survive * nbd(np.array(t)) + float(np.sum(wu * density * nbd(u)))
        return out


def _four(v: np.ndarray) -> tuple[float, float, float, float]:
    return float(v[0]), float(v[1]), float(v[2]), float(v[3])


def _growth(s: float, base: Any, t: Any) -> np.ndarray:
    """[1 - (base/(base+t))^(s-1)] / (s-1), with its limit ln(1 + t/base) at s = 1."""
    base = np.asarray(base, dtype=np.float64)
    lr = np.log(base) - np.log(base + t)
    if abs(s - 1.0) < 1e-10:
        return -lr
    return -np.expm1((s - 1.0) * lr) / (s - 1.0)
