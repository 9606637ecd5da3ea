"""Customer equity: the sum of CLV over customers, with its interval, quarter by quarter, and its change
split into acquisition, retention and spend per customer.

The latest CLV run (``touchpoint predict clv``) gives the model, its parameters and their asymptotic
covariance. Customer equity at the end of a quarter scores every customer with the orders known
then. The interval carries the models' parameter uncertainty: purchase and spend parameters are
drawn from their asymptotic normal (log scale), and each draw scores a fixed random subsample of
customers (all of them when there are few); the spread of the subsample's total, scaled to the
population, gives the 90% interval around the full-population value.

Each customer's CLV is (expected spend per order, S) x (discounted expected orders x margin, P). From one
quarter end to the next the change in equity splits exactly into

- acquisition: the CLV of customers whose first order fell in the quarter;
- retention: sum over existing customers of S_before x (P_now - P_before): the change in how many
  orders they are expected to place (more if they bought again, fewer as silent customers look lost);
- spend per customer: sum over existing customers of P_now x (S_now - S_before): the change in what
  each order is expected to be worth.

Usage (``tests/plan/test_kpis.py`` runs it on a warehouse with predictions)::

    equity = customer_equity(wh, quarter="2026Q3")
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import ibis
import numpy as np

from touchpoint.errors import InvalidInput
from touchpoint.plan.surveys import quarter_bounds
from touchpoint.predict.clv import score
from touchpoint.predict.fitted import FittedValue, fitted_value
from touchpoint.predict.summary import CustomerSummary, orders_from_events, unit_days
from touchpoint.warehouse import Warehouse

DRAWS = 40
SUBSAMPLE = 1000
LEVEL = 0.9


def _parts(fv: FittedValue, s: CustomerSummary, day: dt.date, draw: Any = None) -> tuple[np.ndarray, np.ndarray]:
    """Per customer (S = expected spend per order, CLV), zero where a customer cannot be valued."""
    p, sp = draw if draw is not None else (None, None)
    v = score(fv.model, fv.spend, s, fv.options, day, params=p, spend_params=sp)
    return np.nan_to_num(v["expected_spend"]), np.nan_to_num(v["clv"])


def _decompose(
    ids_a: np.ndarray, sa: np.ndarray, ca: np.ndarray, ids_b: np.ndarray, sb: np.ndarray, cb: np.ndarray
) -> dict[str, float]:
    """The change from (a) to (b) split into acquisition, retention and spend per customer."""
    # ids are sorted (np.unique), and every customer of (a) is in (b): customers only ever join
    at = np.minimum(np.searchsorted(ids_a, ids_b), max(ids_a.size - 1, 0))
    old = (ids_a[at] == ids_b) if ids_a.size else np.zeros(ids_b.size, dtype=bool)
    ia = at[old]
    with np.errstate(divide="ignore", invalid="ignore"):
        p_a = np.where(sa[ia] > 0, ca[ia] / sa[ia], 0.0)
        p_b = np.where(sb[old] > 0, cb[old] / sb[old], 0.0)
    return {
        "acquisition": float(cb[~old].sum()),
        "retention": float((sa[ia] * (p_b - p_a)).sum()),
        "spend_per_customer": float((p_b * (sb[old] - sa[ia])).sum()),
    }


def quarter_ends(first: dt.date, as_of: dt.date) -> list[tuple[str, dt.date]]:
    """(label, last day counted) for each quarter from ``first`` to ``as_of`` (the last one may be partial)."""
    out: list[tuple[str, dt.date]] = []
    y, q = first.year, (first.month - 1) // 3 + 1
    while True:
        start, end = quarter_bounds(f"{y}Q{q}")
        if start > as_of:
            return out
        out.append((f"{y}Q{q}", min(end - dt.timedelta(days=1), as_of)))
        y, q = (y + 1, 1) if q == 4 else (y, q + 1)


def _interval(point: float, draws: np.ndarray) -> tuple[float | None, float | None]:
    d = draws[np.isfinite(draws)]
    if d.size < 10:
        return None, None
    lo, hi = np.quantile(d, [(1 - LEVEL) / 2, (1 + LEVEL) / 2])
    return float(min(lo, point)), float(max(hi, point))


def _daily_orders(wh: Warehouse, as_of: dt.date) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """(customer ids, days, revenue): one row per customer and purchase day up to ``as_of``, pulled once
    (one query, not one per quarter: compiling the summary expression costs more than running it)."""
    o = orders_from_events(wh)
    o = o.mutate(day=o.ts.date())
    o = o.filter(o.customer_id.notnull() & (o.day <= ibis.literal(as_of)))
    rows = wh.to_arrow(o.group_by(["customer_id", "day"]).aggregate(revenue=o.revenue.sum()))
    if rows.num_rows == 0:
        return None
    return (
        rows.column("customer_id").to_numpy(zero_copy_only=False).astype(object),
        rows.column("day").to_numpy(zero_copy_only=False).astype("datetime64[D]"),
        rows.column("revenue").to_numpy(zero_copy_only=False).astype(np.float64),
    )


def _summary_at(
    daily: tuple[np.ndarray, np.ndarray, np.ndarray], end: dt.date, days_per_unit: float
) -> CustomerSummary:
    """The RFM summary of :func:`touchpoint.predict.summary.rfm_summary` with ``calibration_end=end``, in numpy."""
    ids, day, revenue = daily
    keep = day <= np.datetime64(end, "D")
    ids, day, revenue = ids[keep], day[keep], revenue[keep]
    uniq, code = np.unique(ids.astype(str), return_inverse=True)
    n = uniq.size
    d = day.astype(np.int64)
    first = np.full(n, np.iinfo(np.int64).max)
    np.minimum.at(first, code, d)
    last = np.full(n, np.iinfo(np.int64).min)
    np.maximum.at(last, code, d)
    freq = np.bincount(code, minlength=n).astype(np.float64) - 1.0
    repeat = np.bincount(code, weights=np.where(d > first[code], revenue, 0.0), minlength=n)
    end_day = np.datetime64(end, "D").astype(np.int64)
    return CustomerSummary(
        customer_id=uniq.astype(object),
        frequency=freq,
        recency=(last - first) / days_per_unit,
        T=(end_day - first) / days_per_unit,
        monetary_value=np.where(freq > 0, repeat / np.maximum(freq, 1.0), 0.0),
        first_day=first.astype("datetime64[D]"),
        last_day=last.astype("datetime64[D]"),
    )


def by_quarter(wh: Warehouse, fv: FittedValue, *, draws: int = DRAWS) -> list[dict[str, Any]]:
    """Customer equity at each quarter end with its interval, and its change split three ways."""
    daily = _daily_orders(wh, fv.as_of)
    if daily is None:
        return []
    ends = quarter_ends(daily[1].min().astype(dt.date), fv.as_of)
    sums = [_summary_at(daily, e, unit_days(fv.options.unit)) for _, e in ends]
    population = sums[-1].customer_id
    rng = np.random.default_rng(11)
    sub_ids = (population if population.size <= SUBSAMPLE else rng.choice(population, SUBSAMPLE, replace=False)).astype(
        str
    )
    scale = population.size / max(sub_ids.size, 1)
    pars = fv.draws(draws) if draws else []
    rows: list[dict[str, Any]] = []
    prev: dict[str, Any] | None = None
    for (label, end), s in zip(ends, sums, strict=True):
        spend, clv = _parts(fv, s, end)
        keep = np.isin(s.customer_id.astype(str), sub_ids)
        sub = _subset(s, keep)
        base_s, base_c = spend[keep], clv[keep]
        drawn = [_parts(fv, sub, end, d) for d in pars]
        total = float(clv.sum())
        sample_totals = np.array([c.sum() for _, c in drawn])
        lo, hi = _interval(total, total + (sample_totals - base_c.sum()) * scale)
        row: dict[str, Any] = {
            "quarter": label,
            "as_of": end.isoformat(),
            "value": total,
            "low": lo,
            "high": hi,
            "customers": int(s.customer_id.size),
        }
        cur: dict[str, Any] = {
            "ids": s.customer_id,
            "s": spend,
            "c": clv,
            "sub_ids": sub.customer_id,
            "bs": base_s,
            "bc": base_c,
        }
        cur["drawn"] = drawn
        if prev is not None:
            parts = _decompose(prev["ids"], prev["s"], prev["c"], s.customer_id, spend, clv)
            point_sub = _decompose(prev["sub_ids"], prev["bs"], prev["bc"], sub.customer_id, base_s, base_c)
            change: dict[str, Any] = {"total": total - prev["total"]}
            for k, v in parts.items():
                d = np.array(
                    [
                        _decompose(prev["sub_ids"], a[0], a[1], sub.customer_id, b[0], b[1])[k]
                        for a, b in zip(prev["drawn"], drawn, strict=True)
                    ]
                )
                low, high = _interval(v, v + (d - point_sub[k]) * scale)
                change[k] = {"value": v, "low": low, "high": high}
            row["change"] = change
        cur["total"] = total
        prev = cur
        rows.append(row)
    return rows


def _subset(s: CustomerSummary, keep: np.ndarray) -> CustomerSummary:
    return CustomerSummary(
        customer_id=s.customer_id[keep],
        frequency=s.frequency[keep],
        recency=s.recency[keep],
        T=s.T[keep],
        monetary_value=s.monetary_value[keep],
        first_day=s.first_day[keep],
        last_day=s.last_day[keep],
    )


METHOD = (
    "sum over customers of discounted CLV (BG/NBD-family purchases x Gamma-Gamma spend) from the latest "
    "`touchpoint predict clv` run; {level:.0%} interval from {draws} draws of both models' parameters from "
    "their asymptotic normal (log scale); change by quarter split exactly into acquisition (new customers' "
    "CLV), retention (expected orders of existing customers) and spend per customer (expected value per order)"
)


def customer_equity(wh: Warehouse, *, quarter: str | None = None, draws: int = DRAWS) -> dict[str, Any]:
    """The customer-equity KPI: now (the latest run), or at the end of ``quarter``, with the series."""
    fv = fitted_value(wh)
    if fv is None:
        return {
            "value": None,
            "low": None,
            "high": None,
            "n": 0,
            "method": "no CLV predictions",
            "hint": "run `touchpoint predict clv` first",
        }
    series = by_quarter(wh, fv, draws=draws)
    run = fv.run
    out: dict[str, Any] = {
        "value": run["customer_equity"],
        "low": run["equity_low_90"],
        "high": run["equity_high_90"],
        "n": int(run["customers"]),
        "as_of": fv.as_of.isoformat(),
        "model": run["model"],
        "valuation": run["summary"].get("valuation"),
        "method": METHOD.format(level=LEVEL, draws=draws),
        "by_quarter": series,
    }
    if quarter is not None:
        quarter_bounds(quarter)  # a malformed quarter fails here, naming --quarter
        label = quarter.strip().upper()
        row = next((r for r in series if r["quarter"] == label), None)
        if row is None:
            known = f"{series[0]['quarter']} to {series[-1]['quarter']}" if series else "none"
            raise InvalidInput(
                f"no customer equity for --quarter {quarter}: the predictions cover {known} (as of {fv.as_of})",
                hint="pick a quarter with orders up to the latest `touchpoint predict clv` run",
            )
        out.update({k: row[k] for k in ("value", "low", "high", "as_of")})
        out["n"] = row["customers"]
        out["quarter"] = label
        if "change" in row:
            out["change"] = row["change"]
    return out
