"""The bridge from the marketing-mix model's new customers to their lifetime value.

The MMM fitted on a new-customer KPI says how many first orders (or how much first-order revenue) a
spend plan causes, week by week. Those customers keep buying: the CLV model says how often a new
customer buys again, and when (BG/NBD-family: E[repeat purchases in (0, t]] for a customer just
acquired), and what a repeat order is worth (Gamma-Gamma: the population mean spend p*gamma/(q-1)).
Each week's cohort of new customers is convolved with that repeat-purchase curve, so repeat revenue
arrives as it would: mostly in the first months, with a long tail.

Uncertainty: every MMM posterior draw is paired with one draw of the purchase and spend models'
parameters (from their asymptotic normal on the log scale; the two models are fitted on different
data, so independent pairing is the joint distribution). Each pair gives one revenue path; the case's
cash flows, NPV, payback and probability of paying back are read off those paths.

Assumption, stated in the case: customers the media bring buy again like the customers the CLV model
was fitted on. When a channel brings worse (or better) customers, fit CLV on that channel's cohort.

>>> import numpy as np
>>> from touchpoint.predict import BetaGeoModel, GammaGammaModel
>>> bg = BetaGeoModel(params={"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426})  # CDNOW, weeks
>>> gg = GammaGammaModel(params={"p": 6.25, "q": 3.74, "gamma": 15.44})
>>> lt = Lifetime(bg, gg, unit_days=7.0, first_order_value=35.0)
>>> curves = lt.repeat_revenue_per_customer(weeks=104, draws=0)
>>> curves.shape, bool(np.all(np.diff(curves.cumsum(axis=1)) >= 0))
((1, 104), True)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from touchpoint.errors import InvalidInput
from touchpoint.predict.gammagamma import GammaGammaModel
from touchpoint.predict.purchase import PurchaseModel

NEW_CUSTOMER_KPIS = ("new_customer_revenue", "new_customers")


@dataclass
class Lifetime:
    """What one new customer is worth after the first order, and when, under the CLV models.

    ``first_order_value`` turns first-order revenue into customers (for the ``new_customer_revenue``
    KPI); ``unit_days`` is the purchase model's time unit in days.
    """

    purchase: PurchaseModel
    spend: GammaGammaModel | None
    unit_days: float
    first_order_value: float
    repeat_order_value: float | None = None  # used when there is no spend model (the data's mean)
    seed: int = 3

    def __post_init__(self) -> None:
        if not self.first_order_value > 0:
            raise InvalidInput(
                f"the mean first-order value is {self.first_order_value!r}; it must be positive",
                hint="the warehouse needs first orders with revenue",
            )
        if self.spend is None and not (self.repeat_order_value and self.repeat_order_value > 0):
            raise InvalidInput(
                "no spend model and no mean repeat-order value to value repeat purchases",
                hint="run `touchpoint predict clv` on orders with repeat purchases",
            )

    def _params(self, draws: int) -> tuple[np.ndarray, np.ndarray | None]:
        theta = self.purchase.theta
        if draws == 0:
            p = theta[None, :]
            s = None if self.spend is None else self.spend.theta[None, :]
            return p, s
        p = self.purchase.sample_params(draws, seed=self.seed)
        if self.spend is None:
            return p, None
        s = self.spend.sample_params(4 * draws, seed=self.seed + 1)
        s = s[s[:, 1] > 1][:draws]  # q <= 1 means an infinite mean spend: not a usable draw
        if len(s) < draws:
            raise InvalidInput(
                "the spend model's q is too uncertain (q <= 1 in most draws) to value repeat orders",
                hint="fit the CLV model on more repeat orders",
            )
        return p, s

    def repeat_revenue_per_customer(self, weeks: int, draws: int) -> np.ndarray:
        """``(max(draws, 1), weeks)``: expected repeat revenue in week k after acquisition (k = 0..weeks-1)
        for one new customer acquired mid-week, per parameter draw (``draws=0``: the point estimate)."""
        p, s = self._params(draws)
        t_mid = (np.arange(weeks + 1) - 0.5).clip(0.0) * 7.0 / self.unit_days  # week edges, mid-week start
        out = np.empty((len(p), weeks))
        saved = self.purchase.params_
        try:
            for i, theta in enumerate(p):
                self.purchase.params_ = dict(zip(self.purchase.param_names, map(float, theta), strict=True))
                cum = self.purchase.expected_purchases_new(t_mid[1:])
                out[i] = np.diff(np.concatenate([[0.0], cum]))
        finally:
            self.purchase.params_ = saved
        if s is None:
            value = np.full(len(p), float(self.repeat_order_value or 0.0))
        else:
            value = s[:, 0] * s[:, 2] / (s[:, 1] - 1.0)
        return out * value[:, None]

    def expected_repeat_orders(self, weeks: float) -> float:
        """E[repeat orders within ``weeks`` of the first] at the fitted parameters."""
        return float(self.purchase.expected_purchases_new(np.array([weeks * 7.0 / self.unit_days]))[0])

    def describe(self) -> dict[str, Any]:
        return {
            "purchase_model": self.purchase.name,
            "purchase_params": dict(self.purchase.params_ or {}),
            "spend_model": None if self.spend is None else "gamma_gamma",
            "spend_params": None if self.spend is None else dict(self.spend.params_ or {}),
            "first_order_value": self.first_order_value,
            "repeat_order_value": (
                self.spend.population_mean_spend() if self.spend is not None else self.repeat_order_value
            ),
            "repeat_orders_per_new_customer_1y": self.expected_repeat_orders(52.1775),
            "repeat_orders_per_new_customer_2y": self.expected_repeat_orders(2 * 52.1775),
        }


def cohort_revenue(new_customers: np.ndarray, per_customer: np.ndarray) -> np.ndarray:
    """Repeat revenue by week ``(D, W)`` of weekly cohorts ``(D, W)``: each draw's cohorts convolved
    with that draw's per-customer curve ``(D, W)``."""
    d, w = new_customers.shape
    out = np.empty((d, w))
    for i in range(d):
        out[i] = np.convolve(new_customers[i], per_customer[i])[:w]
    return out
