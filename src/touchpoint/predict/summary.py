"""Per-customer purchase summaries computed in the engine (Ibis): frequency, recency, age and mean
repeat spend for a calibration period, and purchases in a holdout period.

Orders are "Order Completed" track events. Purchases on the same calendar day are merged into one,
as the literature does (Fader, Hardie & Lee 2005; BTYD's ``dc.MergeTransactionsOnSameDate``):

* ``frequency``: repeat purchase days in the calibration period (days with an order, minus the first)
* ``recency``:   time from the first to the last purchase day in the calibration period
* ``T``:         time from the first purchase day to the calibration end date (inclusive end)
* ``monetary_value``: mean revenue of the repeat purchase days (0 without repeat purchases)

Times are in ``unit`` ("days" or "weeks" = days / 7).

>>> import datetime as dt, ibis, pyarrow as pa
>>> orders = ibis.memtable(pa.table({"customer_id": ["a", "a", "b"],
...     "ts": [dt.datetime(2024, 1, 1), dt.datetime(2024, 1, 8), dt.datetime(2024, 1, 3)],
...     "revenue": [10.0, 20.0, 5.0]}))
>>> s = load_summary(ibis.duckdb.connect(), rfm_summary(orders, calibration_end=dt.date(2024, 1, 15)))
>>> s.customer_id.tolist(), s.frequency.tolist(), s.recency.tolist(), s.T.tolist()
(['a', 'b'], [1.0, 0.0], [1.0, 0.0], [2.0, 1.7142857142857142])
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ibis
import ibis.expr.types as ir
import numpy as np
import pyarrow as pa

from touchpoint.collect.ecommerce import ORDER_COMPLETED
from touchpoint.errors import InvalidInput, NotFound
from touchpoint.identity.people import describe
from touchpoint.privacy.analytics import customer_events
from touchpoint.privacy.analytics import events as analytics_events

UNITS = {"days": 1.0, "weeks": 7.0}


def unit_days(unit: str) -> float:
    try:
        return UNITS[unit]
    except KeyError:
        raise InvalidInput(f"unknown time unit {unit!r}", hint=f"use one of {', '.join(UNITS)}") from None


def as_date(value: Any, name: str) -> dt.date:
    """A date from a ``date``, ``datetime`` or ISO string, with an error naming the option."""
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value)[:10])
    except ValueError:
        raise InvalidInput(f"{name} {value!r} is not a date", hint="write it as YYYY-MM-DD") from None


def customer_key_source(wh: Any) -> str:
    """Which identifier names a customer: the customer rule of :mod:`touchpoint.identity.people`
    (the resolved profile once identities are resolved, else user ids with anonymous visitors
    stitched to the user they identified as)."""
    return describe(wh)


def events_with_customer(wh: Any) -> ir.Table:
    """The event log with a ``customer_id`` column (:func:`touchpoint.privacy.analytics.customer_events`: the
    customer rule, over the events analytics may use)."""
    return customer_events(wh)  # the analytics door: consent to analytics applied


def orders_from_events(wh: Any) -> ir.Table:
    """Orders from the event log: ``customer_id``, ``ts`` (naive UTC), ``revenue`` (missing = 0)."""
    events = analytics_events(wh)
    o = customer_events(wh, events.filter((events.type == "track") & (events.event == ORDER_COMPLETED)))
    return o.select(
        customer_id=o.customer_id,
        ts=o.timestamp,
        revenue=o.revenue.fill_null(0.0),
    ).filter(ibis._.customer_id.notnull())


def read_orders_file(
    path: str | Path,
    *,
    fmt: str | None = None,
    mapping: dict[str, str] | None = None,
    revenue_is_order_total: bool = False,
) -> ir.Table:
    """Orders from a file, read as ``touchpoint import orders`` reads it, as an Ibis memtable
    (``customer_id``, ``ts``, ``revenue``; one row per order).

    The columns are the import's: ``customer_id``, ``order_id``, ``timestamp``, ``revenue`` (or ``price``
    and ``quantity``), renamed with ``mapping`` ({field: the file's column}, ``--map FIELD=COLUMN``);
    JSONL, CSV or Parquet (``fmt``, default from the extension). See docs/cli.md, "Reading files".
    """
    from touchpoint.collect.orders import read_orders

    path = Path(path)
    if not path.exists():
        raise NotFound(f"no orders file at {path}", hint="pass --orders with the path of a CSV or Parquet file")
    orders = read_orders(path, fmt=fmt, mapping=mapping, revenue_is_order_total=revenue_is_order_total)
    table = pa.table(
        {
            "customer_id": pa.array([o["customer_id"] for o in orders], pa.string()),
            "ts": pa.array([o["timestamp"] for o in orders], pa.timestamp("us")),
            "revenue": pa.array([o["revenue"] for o in orders], pa.float64()),
        }
    )
    return ibis.memtable(table)


def _daily(orders: ir.Table, until: dt.date) -> ir.Table:
    o = orders.mutate(day=orders.ts.date())
    o = o.filter(o.day <= ibis.literal(until))
    return o.group_by(["customer_id", "day"]).aggregate(revenue=o.revenue.sum())


def rfm_summary(
    orders: ir.Table,
    *,
    calibration_end: Any,
    holdout_end: Any = None,
    unit: str = "weeks",
) -> ir.Table:
    """The summary as an Ibis expression: one row per customer whose first order is on or before
    ``calibration_end``. With ``holdout_end``, also ``frequency_holdout`` (purchase days in
    (calibration_end, holdout_end]), ``monetary_holdout`` and ``duration_holdout``."""
    cal_end = as_date(calibration_end, "calibration end")
    hold_end = as_date(holdout_end, "holdout end") if holdout_end is not None else None
    if hold_end is not None and hold_end <= cal_end:
        raise InvalidInput(
            f"holdout end {hold_end} is not after calibration end {cal_end}",
            hint="the holdout period follows the calibration period",
        )
    days = unit_days(unit)
    daily = _daily(orders, hold_end or cal_end)
    cal = daily.filter(daily.day <= ibis.literal(cal_end))
    first = cal.group_by("customer_id").aggregate(first_day=cal.day.min())
    j = cal.join(first, "customer_id")
    agg = j.group_by("customer_id").aggregate(
        first_day=j.first_day.max(),
        last_day=j.day.max(),
        n_days=j.day.count(),
        repeat_revenue=ibis.ifelse(j.day > j.first_day, j.revenue, 0.0).sum(),
    )
    freq = (agg.n_days - 1).cast("float64")
    out = agg.select(
        "customer_id",
        "first_day",
        "last_day",
        frequency=freq,
        recency=agg.last_day.delta(agg.first_day, unit="day").cast("float64") / days,
        T=ibis.literal(cal_end).delta(agg.first_day, unit="day").cast("float64") / days,
        monetary_value=ibis.ifelse(freq > 0, agg.repeat_revenue / freq, 0.0),
    )
    if hold_end is not None:
        hold = daily.filter(daily.day > ibis.literal(cal_end))
        hagg = hold.group_by("customer_id").aggregate(
            frequency_holdout=hold.day.count().cast("float64"), revenue_holdout=hold.revenue.sum()
        )
        out = out.left_join(hagg, "customer_id").select(
            out,
            frequency_holdout=hagg.frequency_holdout.fill_null(0.0),
            monetary_holdout=ibis.ifelse(
                hagg.frequency_holdout.fill_null(0.0) > 0,
                hagg.revenue_holdout / hagg.frequency_holdout,
                0.0,
            ),
            duration_holdout=ibis.literal((hold_end - cal_end).days / days),
        )
    return out.order_by("customer_id")


def repeat_purchases_by_period(
    orders: ir.Table, *, calibration_end: Any, holdout_end: Any, unit: str = "weeks"
) -> ir.Table:
    """Repeat purchase days per period since the earliest first purchase, for customers whose first
    order is in the calibration period (the data of the tracking plot)."""
    cal_end = as_date(calibration_end, "calibration end")
    hold_end = as_date(holdout_end, "holdout end")
    days = unit_days(unit)
    daily = _daily(orders, hold_end)
    first = daily.group_by("customer_id").aggregate(first_day=daily.day.min())
    first = first.filter(first.first_day <= ibis.literal(cal_end))
    start = first.first_day.min().as_scalar()
    j = daily.join(first, "customer_id")
    rep = j.filter(j.day > j.first_day)
    period = (rep.day.delta(start, unit="day").cast("float64") / days).floor().cast("int64")
    rep = rep.mutate(period=period)
    return rep.group_by("period").aggregate(repeat_purchases=rep.count()).order_by("period")


@dataclass
class CustomerSummary:
    """A summary pulled from the engine into numpy arrays (what the models fit on)."""

    customer_id: np.ndarray
    frequency: np.ndarray
    recency: np.ndarray
    T: np.ndarray
    monetary_value: np.ndarray
    first_day: np.ndarray
    last_day: np.ndarray
    frequency_holdout: np.ndarray | None = None
    monetary_holdout: np.ndarray | None = None
    duration_holdout: float | None = None

    def __len__(self) -> int:
        return len(self.customer_id)


def load_summary(backend: Any, expr: ir.Table) -> CustomerSummary:
    """Run the summary expression on ``backend`` (an Ibis backend or a Warehouse)."""
    table = backend.to_pyarrow(expr) if hasattr(backend, "to_pyarrow") else backend.to_arrow(expr)
    cols = set(table.column_names)

    def col(name: str) -> np.ndarray:
        return table.column(name).to_numpy(zero_copy_only=False)

    has_hold = "frequency_holdout" in cols
    return CustomerSummary(
        customer_id=col("customer_id").astype(object),
        frequency=col("frequency").astype(np.float64),
        recency=col("recency").astype(np.float64),
        T=col("T").astype(np.float64),
        monetary_value=col("monetary_value").astype(np.float64),
        first_day=col("first_day"),
        last_day=col("last_day"),
        frequency_holdout=col("frequency_holdout").astype(np.float64) if has_hold else None,
        monetary_holdout=col("monetary_holdout").astype(np.float64) if has_hold else None,
        duration_holdout=float(col("duration_holdout")[0]) if has_hold and table.num_rows else None,
    )
