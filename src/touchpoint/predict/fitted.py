"""The fitted CLV models of the latest stored run, rebuilt with their parameters' covariance, so other
parts of the house (the plan's KPIs, the investment case) can value customers and draw parameters to
carry the fit's uncertainty into their own intervals.

>>> from touchpoint.warehouse import Warehouse
>>> fitted_value(Warehouse.open("duckdb://:memory:")) is None
True
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import numpy as np

from touchpoint.errors import InvalidInput
from touchpoint.predict import MODELS
from touchpoint.predict.clv import ClvOptions
from touchpoint.predict.gammagamma import GammaGammaModel
from touchpoint.predict.purchase import PurchaseModel
from touchpoint.predict.store import latest_run
from touchpoint.warehouse import Warehouse


@dataclass
class FittedValue:
    """The CLV models of a stored run, rebuilt with their covariance, and its valuation options."""

    model: PurchaseModel
    spend: GammaGammaModel | None
    options: ClvOptions
    as_of: dt.date
    run: dict[str, Any]

    def draws(self, n: int, seed: int = 7) -> list[tuple[np.ndarray, np.ndarray | None]]:
        """``n`` joint draws of (purchase parameters, spend parameters); spend draws with q <= 1 (an
        infinite mean spend) are redrawn from the remaining ones."""
        p = self.model.sample_params(n, seed=seed)
        if self.spend is None:
            return [(p[i], None) for i in range(n)]
        s = self.spend.sample_params(4 * n, seed=seed + 1)
        s = s[s[:, 1] > 1][:n]
        if len(s) < n:
            raise InvalidInput(
                "the spend model's parameter q is too uncertain to value customers (q <= 1 in most draws)",
                hint="fit the CLV model on more repeat orders (`touchpoint predict clv`)",
            )
        return [(p[i], s[i]) for i in range(n)]


def fitted_value(wh: Warehouse) -> FittedValue | None:
    """The latest CLV run's models (None when there is no run)."""
    run = latest_run(wh)
    if run is None:
        return None
    summary = run["summary"]
    model = MODELS[summary["model"]](params=summary["params"])
    if summary.get("covariance") is not None:
        model.covariance_ = np.asarray(summary["covariance"], dtype=np.float64)
    spend: GammaGammaModel | None = None
    sm = summary.get("spend_model")
    if sm and sm.get("used", sm.get("converged") and sm["params"].get("q", 0) > 1):
        spend = GammaGammaModel(params=sm["params"])
        if sm.get("covariance") is not None:
            spend.covariance_ = np.asarray(sm["covariance"], dtype=np.float64)
    v = summary.get("valuation", {})
    options = ClvOptions(
        model=summary["model"],
        unit=summary.get("unit", "weeks"),
        horizon_days=float(v.get("horizon_days", 365.0)),
        period_days=float(v.get("period_days", 30.0)),
        annual_discount_rate=float(v.get("annual_discount_rate", 0.10)),
        margin=float(v.get("margin", 1.0)),
    )
    as_of = dt.date.fromisoformat(str(summary["as_of"]))
    return FittedValue(model, spend, options, as_of, run)
