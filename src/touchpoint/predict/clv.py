"""The customer-value pipeline: summarise orders in the engine, fit a purchase model and the
Gamma-Gamma spend model, check them on a holdout period, and score every customer (P(alive),
expected purchases, expected spend, discounted CLV, next purchase date), with customer equity as a
KPI with an interval.

>>> import datetime as dt, ibis, pyarrow as pa
>>> orders = ibis.memtable(pa.table({"customer_id": ["a", "a", "a", "b", "b", "c"],
...     "ts": [dt.datetime(2024, 1, d) for d in (1, 9, 20, 2, 15, 3)],
...     "revenue": [10.0, 12.0, 11.0, 30.0, 28.0, 5.0]}))
>>> opts = ClvOptions(model="bg_nbd", unit="days", equity_draws=0)
>>> try:
...     run = run_clv(ibis.duckdb.connect(), orders, opts)
... except NotConverged as exc:  # three customers are too few for a reliable fit
...     print(exc.code)
not_converged
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from touchpoint.errors import InvalidInput, NotConverged
from touchpoint.predict import MODELS
from touchpoint.predict.base import FitReport
from touchpoint.predict.gammagamma import GammaGammaModel
from touchpoint.predict.purchase import PurchaseModel
from touchpoint.predict.summary import (
    CustomerSummary,
    as_date,
    load_summary,
    repeat_purchases_by_period,
    rfm_summary,
    unit_days,
)
from touchpoint.predict.validation import calibration_fit, holdout_metrics, tracking, write_report
from touchpoint.warehouse import Warehouse

PREDICTIONS_TABLE = "predictions"
RUNS_TABLE = "prediction_runs"


@dataclass
class ClvOptions:
    """What to fit and how to value customers. Money is in the orders' currency."""

    model: str = "bg_nbd"
    calibration_end: Any = None  # default: the last order date (no holdout)
    holdout_end: Any = None
    unit: str = "weeks"
    horizon_days: float = 365.0
    period_days: float = 30.0  # CLV discounts per period of this length
    annual_discount_rate: float = 0.10
    margin: float = 1.0  # share of revenue that is profit
    purchase_window_days: float = 30.0  # for "probability of a purchase in the next N days"
    equity_draws: int = 100

    def validate(self) -> None:
        if self.model not in MODELS:
            raise InvalidInput(f"unknown model {self.model!r}", hint=f"use one of {', '.join(MODELS)}")
        unit_days(self.unit)
        if self.holdout_end is not None and self.calibration_end is None:
            raise InvalidInput("--holdout-end needs --calibration-end", hint="give both dates, YYYY-MM-DD")
        for name in ("horizon_days", "period_days", "purchase_window_days"):
            if not getattr(self, name) > 0:
                raise InvalidInput(f"{name} must be positive, got {getattr(self, name)}")
        if not 0 <= self.annual_discount_rate < 1:
            raise InvalidInput(f"annual discount rate {self.annual_discount_rate} must be in [0, 1)")
        if not 0 <= self.margin <= 1:
            raise InvalidInput(f"margin {self.margin} must be a share between 0 and 1")


@dataclass
class ClvRun:
    """Everything one run produced; ``to_dict()`` is the JSON the CLI and API print."""

    options: ClvOptions
    run_at: dt.datetime
    as_of: dt.date
    calibration_end: dt.date
    model: PurchaseModel
    fit: FitReport
    spend_fit: FitReport | None
    holdout: dict[str, Any] | None
    track: dict[str, Any] | None
    equity: dict[str, Any]
    predictions: pa.Table
    calibration: dict[str, Any] | None = None
    warnings: list[str] = field(default_factory=list)
    spend_model: GammaGammaModel | None = None  # the spend model CLV used (None: customers' own means)
    files: dict[str, str] = field(default_factory=dict)

    def to_dict(self, *, rows: int = 0) -> dict[str, Any]:
        o = self.options
        out: dict[str, Any] = {
            "model": o.model,
            "run_at": self.run_at.isoformat(),
            "as_of": self.as_of.isoformat(),
            "calibration_end": self.calibration_end.isoformat(),
            "holdout_end": None if o.holdout_end is None else as_date(o.holdout_end, "holdout end").isoformat(),
            "unit": o.unit,
            "params": self.fit.params,
            "standard_errors": self.fit.standard_errors,
            # the parameters' asymptotic covariance: what the plan's KPIs and the investment case
            # draw parameters from, to carry this fit's uncertainty into their intervals
            "covariance": None if self.model.covariance_ is None else self.model.covariance_.tolist(),
            "log_likelihood": self.fit.log_likelihood,
            "fit": self.fit.to_dict(),
            "spend_model": None
            if self.spend_fit is None
            else {
                "model": "gamma_gamma",
                "params": self.spend_fit.params,
                "standard_errors": self.spend_fit.standard_errors,
                "covariance": None
                if self.spend_model is None or self.spend_model.covariance_ is None
                else self.spend_model.covariance_.tolist(),
                "used": self.spend_model is not None,
                "log_likelihood": self.spend_fit.log_likelihood,
                "converged": self.spend_fit.converged,
                "warnings": self.spend_fit.warnings,
            },
            "calibration_fit": self.calibration,
            "holdout": self.holdout,
            "customer_equity": self.equity,
            "customers": self.predictions.num_rows,
            "valuation": {
                "horizon_days": o.horizon_days,
                "period_days": o.period_days,
                "annual_discount_rate": o.annual_discount_rate,
                "margin": o.margin,
            },
            "warnings": self.warnings,
            "files": self.files,
        }
        if rows:
            out["predictions"] = self.predictions.slice(0, rows).to_pylist()
        return out


def _last_order_day(backend: Any, orders: Any) -> dt.date:
    value = _execute(backend, orders.ts.max())
    if value is None or value != value:  # the max of no rows: None, or pandas' NaT (which is not equal to itself)
        raise InvalidInput("there are no orders", hint='send "Order Completed" events or pass --orders FILE')
    return as_date(value, "last order")


def _execute(backend: Any, expr: Any) -> Any:
    return backend.execute(expr)


def _to_arrow(backend: Any, expr: Any) -> pa.Table:
    return backend.to_pyarrow(expr) if hasattr(backend, "to_pyarrow") else backend.to_arrow(expr)


def score(
    model: PurchaseModel,
    spend: GammaGammaModel | None,
    s: CustomerSummary,
    options: ClvOptions,
    as_of: dt.date,
    *,
    params: np.ndarray | None = None,
    spend_params: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """Per-customer predictions under the fitted (or the given) parameters."""
    days = unit_days(options.unit)
    horizon = options.horizon_days / days
    period = options.period_days / days
    rate = (1 + options.annual_discount_rate) ** (options.period_days / 365.0) - 1
    if spend is not None:
        saved = spend.params_
        if spend_params is not None:
            spend.params_ = dict(zip(spend.param_names, (float(v) for v in spend_params), strict=True))
        try:
            exp_spend = spend.expected_spend(s.frequency, s.monetary_value)
        finally:
            spend.params_ = saved
    else:
        exp_spend = np.where(s.frequency > 0, s.monetary_value, np.nan)
    clv = model.clv(
        s.frequency,
        s.recency,
        s.T,
        np.nan_to_num(exp_spend),
        horizon=horizon,
        period=period,
        discount_rate=rate,
        margin=options.margin,
        params=params,
    )
    return {"expected_spend": exp_spend, "clv": np.where(np.isfinite(exp_spend), clv, np.nan)}


def _equity_interval(
    model: PurchaseModel,
    spend: GammaGammaModel | None,
    s: CustomerSummary,
    options: ClvOptions,
    as_of: dt.date,
    total: float,
) -> dict[str, Any]:
    n = len(s)
    rng = np.random.default_rng(0)
    idx = rng.choice(n, size=min(n, 5000), replace=False) if n > 5000 else np.arange(n)
    sub = CustomerSummary(
        customer_id=s.customer_id[idx],
        frequency=s.frequency[idx],
        recency=s.recency[idx],
        T=s.T[idx],
        monetary_value=s.monetary_value[idx],
        first_day=s.first_day[idx],
        last_day=s.last_day[idx],
    )
    base = np.nansum(score(model, spend, sub, options, as_of)["clv"])
    draws = model.sample_params(options.equity_draws, seed=1)
    sdraws = spend.sample_params(options.equity_draws, seed=2) if spend is not None else None
    ratios = []
    for i in range(options.equity_draws):
        if sdraws is not None and sdraws[i][1] <= 1:
            continue
        value = np.nansum(
            score(
                model,
                spend,
                sub,
                options,
                as_of,
                params=draws[i],
                spend_params=None if sdraws is None else sdraws[i],
            )["clv"]
        )
        ratios.append(value / base if base else np.nan)
    r = np.array(ratios, dtype=np.float64)
    r = r[np.isfinite(r)]
    low, high = (np.percentile(r, [5, 95]) * total).tolist() if r.size >= 10 else (float("nan"), float("nan"))
    return {
        "value": total,
        "low_90": low,
        "high_90": high,
        "method": (
            f"sum of discounted CLV over {options.horizon_days:g} days; 90% interval from {r.size} draws of "
            "the purchase and spend parameters from their asymptotic normal (log scale), applied to a "
            f"random subsample of {len(idx)} customers and scaled to the total"
        ),
    }


def run_clv(backend: Any, orders: Any, options: ClvOptions | None = None, *, out_dir: Path | None = None) -> ClvRun:
    """Fit, validate and score. ``backend`` is an Ibis backend or a Warehouse; ``orders`` an Ibis table
    with ``customer_id``, ``ts`` and ``revenue`` (see :mod:`touchpoint.predict.summary`)."""
    options = options or ClvOptions()
    options.validate()
    run_at = dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0)
    warnings: list[str] = []
    if options.calibration_end is None:
        cal_end = _last_order_day(backend, orders)
    else:
        cal_end = as_date(options.calibration_end, "calibration end")
    hold_end = as_date(options.holdout_end, "holdout end") if options.holdout_end is not None else None
    cal = load_summary(backend, rfm_summary(orders, calibration_end=cal_end, holdout_end=hold_end, unit=options.unit))
    if len(cal) == 0:
        raise InvalidInput(
            f"no customer has an order on or before the calibration end {cal_end}",
            hint="choose a later --calibration-end",
        )
    model = MODELS[options.model]()
    fit = model.fit(cal.frequency, cal.recency, cal.T)
    if not fit.converged:
        raise NotConverged(
            f"the {options.model} fit did not converge ({fit.message}; {'; '.join(fit.warnings)})",
            hint="try another --model, a longer calibration period, or check the orders for bulk duplicates",
        )
    warnings.extend(fit.warnings)
    spend: GammaGammaModel | None = GammaGammaModel()
    spend_fit: FitReport | None = None
    try:
        assert spend is not None
        spend_fit = spend.fit(cal.frequency, cal.monetary_value)
        warnings.extend(spend_fit.warnings)
        if not spend_fit.converged or spend.params_["q"] <= 1:  # type: ignore[index]
            warnings.append("the spend model did not converge or has q <= 1; CLV uses each customer's own mean")
            spend = None
    except InvalidInput as exc:
        warnings.append(f"spend model not fitted: {exc.message}; CLV uses each customer's own mean spend")
        spend = None
    holdout = track = None
    days = unit_days(options.unit)
    calibration = calibration_fit(model, cal.frequency, cal.T)
    if hold_end is not None:
        assert cal.frequency_holdout is not None and cal.duration_holdout is not None
        holdout = holdout_metrics(model, cal.frequency, cal.recency, cal.T, cal.frequency_holdout, cal.duration_holdout)
        per = _to_arrow(
            backend,
            repeat_purchases_by_period(orders, calibration_end=cal_end, holdout_end=hold_end, unit=options.unit),
        ).to_pydict()
        first = cal.first_day.astype("datetime64[D]")
        start = first.min().astype(dt.date)
        birth = (first - first.min()).astype(np.float64) / days
        periods = int(np.ceil(((hold_end - start).days + 1) / days))
        track = tracking(model, birth, periods, dict(zip(per["period"], per["repeat_purchases"], strict=True)))
        now = load_summary(backend, rfm_summary(orders, calibration_end=hold_end, unit=options.unit))
        as_of = hold_end
    else:
        now, as_of = cal, cal_end
    values = score(model, spend, now, options, as_of)
    p_alive = model.p_alive(now.frequency, now.recency, now.T)
    horizon = options.horizon_days / days
    expected = model.expected_purchases(horizon, now.frequency, now.recency, now.T)
    wait = model.next_purchase_wait(now.frequency, now.recency, now.T) * days
    within = model.prob_purchase_within(options.purchase_window_days / days, now.frequency, now.recency, now.T)
    as_of_ts = np.datetime64(as_of, "D")
    next_at = as_of_ts + np.round(wait).astype("timedelta64[D]")
    n = len(now)
    predictions = pa.table(
        {
            "customer_id": pa.array(now.customer_id.tolist(), pa.string()),
            "model": pa.array([options.model] * n, pa.string()),
            "run_at": pa.array([run_at] * n, pa.timestamp("us")),
            "as_of": pa.array([as_of] * n, pa.date32()),
            "frequency": now.frequency,
            "recency": now.recency,
            "T": now.T,
            "monetary_value": now.monetary_value,
            "p_alive": p_alive,
            "expected_purchases": expected,
            "expected_spend": values["expected_spend"],
            "clv": values["clv"],
            "horizon_days": np.full(n, options.horizon_days),
            "prob_purchase_window": within,
            "purchase_window_days": np.full(n, options.purchase_window_days),
            "next_purchase_at": pa.array(next_at.astype("datetime64[D]"), pa.date32()),
            "next_purchase_days": wait,
        }
    )
    total = float(np.nansum(values["clv"]))
    equity = _equity_interval(model, spend, now, options, as_of, total)
    run = ClvRun(
        options=options,
        run_at=run_at,
        as_of=as_of,
        calibration_end=cal_end,
        model=model,
        fit=fit,
        spend_fit=spend_fit,
        holdout=holdout,
        track=track,
        equity=equity,
        predictions=predictions,
        calibration=calibration,
        warnings=warnings,
        spend_model=spend,
    )
    if out_dir is not None:
        run.files = write_report(
            out_dir,
            model_name=options.model,
            holdout=holdout,
            track=track,
            calibration_periods=(
                (cal_end - cal.first_day.astype("datetime64[D]").min().astype(dt.date)).days / days
                if hold_end
                else None
            ),
            unit=options.unit,
            calibration=calibration,
            extra={"params": fit.params, "log_likelihood": fit.log_likelihood},
        )
        model.save(Path(out_dir) / f"{options.model}.json")
    return run


def write_predictions(wh: Warehouse, run: ClvRun) -> int:
    """Replace the ``predictions`` table with this run's scores and log the run in ``prediction_runs``."""
    summary = run.to_dict()
    row = pa.table(
        {
            "run_at": pa.array([run.run_at], pa.timestamp("us")),
            "model": [run.options.model],
            "as_of": pa.array([run.as_of], pa.date32()),
            "customers": [run.predictions.num_rows],
            "customer_equity": [run.equity["value"]],
            "equity_low_90": [run.equity["low_90"]],
            "equity_high_90": [run.equity["high_90"]],
            "log_likelihood": [run.fit.log_likelihood],
            "summary": [json.dumps({k: v for k, v in summary.items() if k != "files"}, default=float)],
        }
    )
    with wh.write() as tx:
        tx.replace(PREDICTIONS_TABLE, run.predictions)
        tx.append(RUNS_TABLE, row)
    return run.predictions.num_rows
