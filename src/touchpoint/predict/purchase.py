"""The interface of the purchase-count models (BG/NBD, MBG/NBD, Pareto/NBD): fitting on (x, t_x, T)
and the predictions every model offers, including discounted customer lifetime value.

Time is in the unit the summary was made in (days or weeks); every ``t`` and ``T`` uses it.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Callable
from typing import Any

import numpy as np

from touchpoint.errors import InvalidInput
from touchpoint.predict.base import FitReport, Model, as_array, check_rfm, compress


class PurchaseModel(Model):
    """A model of repeat purchases and drop-out, fitted on frequency, recency and age."""

    def fit(
        self,
        frequency: Any,
        recency: Any,
        T: Any,
        *,
        weights: Any = None,
        start: tuple[float, ...] | None = None,
        restarts: int = 0,
    ) -> FitReport:
        """Maximum-likelihood fit; returns the :class:`FitReport` (also kept as ``report_``).

        ``weights`` counts customers per row (for summaries that are already grouped).
        """
        x, tx, t_cal = check_rfm(frequency, recency, T)
        if x.size == 0:
            raise InvalidInput("no customers to fit on", hint="check the calibration period has orders")
        w = None if weights is None else as_array(weights, "weights")
        (ux, utx, uT), counts = compress(x, tx, t_cal, weights=w)
        if (x > 0).sum() == 0:
            raise InvalidInput(
                "no customer made a repeat purchase in the calibration period; the model cannot be fitted",
                hint="use a later calibration end date or more data",
            )
        data = self._prepare(ux, utx, uT, weights=counts)
        return self._fit_prepared(data, int(counts.sum()), len(ux), start, restarts)

    @abstractmethod
    def _prepare(self, x: np.ndarray, tx: np.ndarray, T: np.ndarray, *, weights: np.ndarray) -> Any:
        """Arrays the likelihood needs, from distinct (x, t_x, T) rows and their weights."""

    def log_likelihood(self, frequency: Any, recency: Any, T: Any) -> np.ndarray:
        """Each customer's log-likelihood under the current parameters."""
        x, tx, t_cal = check_rfm(frequency, recency, T)
        return self._loglik_rows(self.theta, x, tx, t_cal)

    @abstractmethod
    def _loglik_rows(self, theta: np.ndarray, x: np.ndarray, tx: np.ndarray, T: np.ndarray) -> np.ndarray:
        """Per-row log-likelihood at parameters ``theta``."""

    # -- predictions -----------------------------------------------------------------------------
    @abstractmethod
    def p_alive(self, frequency: Any, recency: Any, T: Any) -> np.ndarray:
        """P(the customer is still active at T | x, t_x, T)."""

    def expected_purchases(self, t: Any, frequency: Any, recency: Any, T: Any) -> np.ndarray:
        """E[purchases in (T, T+t] | x, t_x, T]: the conditional expectation."""
        x, tx, t_cal = check_rfm(frequency, recency, T)
        t = float(np.asarray(t)) if np.ndim(t) == 0 else as_array(t, "t")
        return self._expected_if_alive(t, x, t_cal) * self.p_alive(x, tx, t_cal)

    @abstractmethod
    def _expected_if_alive(self, t: Any, x: np.ndarray, T: np.ndarray) -> np.ndarray:
        """E[purchases in (T, T+t] | active at T, x, T]."""

    def _expected_if_alive_fn(self, x: np.ndarray, T: np.ndarray) -> Callable[[float], np.ndarray]:
        """``t -> E[purchases in (T, T+t] | active]`` with per-customer work done once (for CLV)."""
        return lambda t: self._expected_if_alive(t, x, T)

    @abstractmethod
    def expected_purchases_new(self, t: Any) -> np.ndarray:
        """E[repeat purchases in (0, t]] for a new customer (the unconditional expectation)."""

    @abstractmethod
    def prob_purchases(self, n: Any, t: float) -> np.ndarray:
        """P(X(t) = n): the probability that a new customer makes n repeat purchases in (0, t]."""

    def next_purchase_wait(self, frequency: Any, recency: Any, T: Any, quantile: float = 0.5) -> np.ndarray:
        """Time after T until the next purchase, at ``quantile``, for a customer who is still active.

        Given activity, the purchase rate's posterior is Gamma(r + x, alpha + T), so the wait is Lomax:
        P(W > w) = ((alpha + T) / (alpha + T + w)) ** (r + x). Drop-out after T is not modelled here:
        weigh the date by :meth:`p_alive`.
        """
        x, _, t_cal = check_rfm(frequency, recency, T)
        if not 0 < quantile < 1:
            raise InvalidInput(f"quantile {quantile} must be between 0 and 1")
        r, alpha = self.params_["r"], self.params_["alpha"]  # type: ignore[index]
        return (alpha + t_cal) * np.expm1(-np.log1p(-quantile) / (r + x))

    def prob_purchase_within(self, t: float, frequency: Any, recency: Any, T: Any) -> np.ndarray:
        """P(at least one purchase in (T, T+t]) = P(alive) x P(wait <= t | alive) (drop-out before the
        next purchase ignored, exact for BG/NBD and MBG/NBD where drop-out happens only at purchases)."""
        x, tx, t_cal = check_rfm(frequency, recency, T)
        r, alpha = self.params_["r"], self.params_["alpha"]  # type: ignore[index]
        survive = np.exp((r + x) * (np.log(alpha + t_cal) - np.log(alpha + t_cal + t)))
        return self.p_alive(x, tx, t_cal) * (1.0 - survive)

    def clv(
        self,
        frequency: Any,
        recency: Any,
        T: Any,
        spend: Any,
        *,
        horizon: float,
        period: float,
        discount_rate: float,
        margin: float = 1.0,
        params: np.ndarray | None = None,
    ) -> np.ndarray:
        """Discounted customer lifetime value over ``horizon``.

        CLV = margin * spend * sum_k (E[Y(k*period)] - E[Y((k-1)*period)]) / (1 + discount_rate)^k for
        k = 1..ceil(horizon/period): expected purchases per period, each valued at the expected spend
        per purchase and discounted at ``discount_rate`` per period (the same scheme as lifetimes).
        """
        x, tx, t_cal = check_rfm(frequency, recency, T)
        m = as_array(spend, "spend")
        if horizon <= 0 or period <= 0:
            raise InvalidInput(f"horizon ({horizon}) and period ({period}) must be positive")
        if discount_rate < 0 or margin < 0:
            raise InvalidInput(f"discount_rate ({discount_rate}) and margin ({margin}) cannot be negative")
        saved = self.params_
        if params is not None:
            self.params_ = dict(zip(self.param_names, (float(v) for v in params), strict=True))
        try:
            steps = int(np.ceil(horizon / period - 1e-9))
            value = np.zeros_like(x)
            previous = np.zeros_like(x)
            expected = self._expected_if_alive_fn(x, t_cal)
            for k in range(1, steps + 1):
                current = expected(min(k * period, horizon))
                value += (current - previous) / (1.0 + discount_rate) ** k
                previous = current
            value *= self.p_alive(x, tx, t_cal)
        finally:
            self.params_ = saved
        return margin * m * value
