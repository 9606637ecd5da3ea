"""The weekly table a marketing-mix model is fitted on: KPI, spend per channel, controls.

Built from the warehouse (``spend`` table and "Order Completed" events, aggregated by Ibis in the
engine) or read from a CSV/Parquet file with a date column. Daily rows are summed into weeks
starting on Monday (controls are averaged).

>>> import numpy as np
>>> d = MMMData.from_columns(
...     dates=np.arange("2024-01-01", "2024-07-01", 7, dtype="datetime64[D]"),
...     target=np.linspace(100, 130, 26), spend={"tv": np.ones(26), "search": np.arange(26.0)})
>>> d.channels, d.n_weeks
(('tv', 'search'), 26)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from touchpoint.collect.ecommerce import ORDER_COMPLETED
from touchpoint.errors import InvalidInput, NotFound

WAREHOUSE_DECIMALS = 4  # weekly sums read from the warehouse are rounded here, so refits are reproducible
MIN_WEEKS = 26


@dataclass(frozen=True)
class MMMData:
    """Weekly observations. ``spend`` is ``(weeks, channels)`` in money; ``controls`` ``(weeks, k)``."""

    dates: np.ndarray
    target: np.ndarray
    spend: np.ndarray
    channels: tuple[str, ...]
    controls: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))
    control_names: tuple[str, ...] = ()
    target_name: str = "revenue"

    @property
    def n_weeks(self) -> int:
        return int(self.target.shape[0])

    @classmethod
    def from_columns(
        cls,
        *,
        dates: Any,
        target: Any,
        spend: dict[str, Any],
        controls: dict[str, Any] | None = None,
        target_name: str = "revenue",
    ) -> MMMData:
        """Build and validate from plain arrays (one value per week)."""
        controls = controls or {}
        n = len(target)
        ctrl = np.column_stack([np.asarray(v, float) for v in controls.values()]) if controls else np.zeros((n, 0))
        data = cls(
            dates=np.asarray(dates, dtype="datetime64[D]"),
            target=np.asarray(target, dtype=float),
            spend=np.column_stack([np.asarray(v, float) for v in spend.values()]) if spend else np.zeros((n, 0)),
            channels=tuple(spend),
            controls=ctrl,
            control_names=tuple(controls),
            target_name=target_name,
        )
        data.validate()
        return data

    def validate(self, holdout_weeks: int = 0) -> None:
        """Raise :class:`InvalidInput` naming the column and the fix when the table cannot be fitted."""
        n = self.n_weeks
        if not self.channels:
            raise InvalidInput("no spend channels were given", hint="name at least one channel column")
        if len(set(self.channels)) != len(self.channels):
            raise InvalidInput(f"channel names repeat: {list(self.channels)}", hint="name each channel once")
        if self.spend.shape != (n, len(self.channels)) or self.dates.shape != (n,):
            raise InvalidInput("dates, target and spend have different lengths", hint="give one value per week")
        if self.controls.shape[0] != n and self.controls.size:
            raise InvalidInput("controls have a different length than the target", hint="one value per week")
        if n < MIN_WEEKS + holdout_weeks:
            raise InvalidInput(
                f"only {n} weeks of data; a marketing-mix model needs at least {MIN_WEEKS + holdout_weeks}",
                hint=f"use at least {MIN_WEEKS} weeks plus the {holdout_weeks} held-out weeks (104+ is better)",
            )
        if n > 1:
            gaps = np.diff(self.dates).astype(int)
            bad = np.flatnonzero(gaps != 7)
            if bad.size:
                i = int(bad[0])
                raise InvalidInput(
                    f"dates are not consecutive weeks: {self.dates[i]} is followed by {self.dates[i + 1]}",
                    hint="give one row per week (or per day) with no gaps; fill missing weeks with zero spend",
                )
        if not np.all(np.isfinite(self.target)):
            week = self.dates[int(np.flatnonzero(~np.isfinite(self.target))[0])]
            raise InvalidInput(f"target {self.target_name!r} is missing in the week of {week}", hint="fill it in")
        for j, name in enumerate(self.channels):
            col = self.spend[:, j]
            if not np.all(np.isfinite(col)) or np.any(col < 0):
                week = self.dates[int(np.flatnonzero(~(np.isfinite(col) & (col >= 0)))[0])]
                raise InvalidInput(
                    f"spend of channel {name!r} is missing or negative in the week of {week}",
                    hint="spend must be a number >= 0 (0 for weeks without spend)",
                )
            fit_part = col[: n - holdout_weeks] if holdout_weeks else col
            if fit_part.sum() <= 0:
                raise InvalidInput(
                    f"channel {name!r} has no spend in the fitted weeks",
                    hint="drop the channel or add its spend",
                )
        for j, name in enumerate(self.control_names):
            if not np.all(np.isfinite(self.controls[:, j])):
                raise InvalidInput(f"control {name!r} has missing values", hint="fill them (e.g. 0 for no promotion)")

    def to_dict(self) -> dict[str, Any]:
        return {
            "dates": [str(d) for d in self.dates],
            "target": self.target.tolist(),
            "target_name": self.target_name,
            "spend": {c: self.spend[:, j].tolist() for j, c in enumerate(self.channels)},
            "controls": {c: self.controls[:, j].tolist() for j, c in enumerate(self.control_names)},
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MMMData:
        return cls.from_columns(
            dates=data["dates"],
            target=data["target"],
            spend=data["spend"],
            controls=data.get("controls") or None,
            target_name=data.get("target_name", "revenue"),
        )


def _weekly(dates: np.ndarray, values: dict[str, np.ndarray], means: set[str]) -> tuple[np.ndarray, dict]:
    """Sum (or average, for ``means``) daily rows into Monday-starting weeks, dropping partial ends."""
    days = dates.astype("datetime64[D]")
    # 1970-01-01 was a Thursday: shift so weeks start on Monday.
    week = ((days.astype(int) + 3) // 7) * 7 - 3
    weeks, inverse, counts = np.unique(week, return_inverse=True, return_counts=True)
    full = counts == 7
    out = {}
    for name, col in values.items():
        total = np.bincount(inverse, weights=col, minlength=len(weeks))
        out[name] = (total / counts if name in means else total)[full]
    return weeks[full].astype("datetime64[D]"), out


def from_file(
    path: str | Path,
    *,
    date_column: str,
    target: str,
    channels: list[str],
    controls: list[str] | None = None,
) -> MMMData:
    """Read a CSV or Parquet file with one row per week (or per day) into :class:`MMMData`.

    >>> import pathlib, tempfile
    >>> p = pathlib.Path(tempfile.mkdtemp(), "w.csv")
    >>> rows = ["week,sales,tv"] + [f"2024-01-{1 + 7 * i:02d},{100 + i},{5}" for i in range(4)]
    >>> _ = p.write_text("\\n".join(rows))
    >>> from_file(p, date_column="week", target="sales", channels=["tv"]).n_weeks
    Traceback (most recent call last):
    ...
    touchpoint.errors.InvalidInput: only 4 weeks of data; a marketing-mix model needs at least 26 ...
    """
    import pyarrow.compute as pc

    p = Path(path)
    if not p.exists():
        raise NotFound(f"file {str(p)!r} does not exist", hint="check the path given with --file")
    if p.suffix.lower() in (".parquet", ".pq"):
        import pyarrow.parquet as pq

        table = pq.read_table(p)
    elif p.suffix.lower() in (".csv", ".txt"):
        import pyarrow.csv as pcsv

        table = pcsv.read_csv(p)
    else:
        raise InvalidInput(f"cannot read {p.name!r}: unknown file type", hint="use a .csv or .parquet file")
    controls = controls or []
    wanted = [date_column, target, *channels, *controls]
    missing = [c for c in wanted if c not in table.column_names]
    if missing:
        raise InvalidInput(
            f"column(s) {', '.join(map(repr, missing))} not in {p.name}",
            hint=f"the file has: {', '.join(table.column_names)}",
        )
    if not channels:
        raise InvalidInput("no --channel columns given", hint="name each spend column with --channel")
    try:
        dates = np.asarray(pc.cast(table[date_column], "date32").to_numpy(zero_copy_only=False), "datetime64[D]")
    except Exception as exc:
        raise InvalidInput(
            f"column {date_column!r} does not hold dates", hint="use ISO dates such as 2024-01-01"
        ) from exc
    cols: dict[str, np.ndarray] = {}
    for name in [target, *channels, *controls]:
        try:
            arr = pc.cast(table[name], "float64").to_numpy(zero_copy_only=False)
        except Exception as exc:
            raise InvalidInput(f"column {name!r} is not numeric", hint="remove currency signs and text") from exc
        cols[name] = np.nan_to_num(arr, nan=0.0) if name in channels else arr
    order = np.argsort(dates, kind="stable")
    dates = dates[order]
    cols = {k: v[order] for k, v in cols.items()}
    if len(np.unique(dates)) != len(dates):
        raise InvalidInput(f"column {date_column!r} repeats dates", hint="aggregate to one row per date first")
    if len(dates) > 1 and int(np.median(np.diff(dates).astype(int))) == 1:
        dates, cols = _weekly(dates, cols, set(controls))
    return MMMData.from_columns(
        dates=dates,
        target=cols[target],
        spend={c: cols[c] for c in channels},
        controls={c: cols[c] for c in controls} or None,
        target_name=target,
    )


KPIS = {
    "revenue": "sum of order revenue",
    "conversions": "number of orders",
    "new_customer_revenue": "revenue of each customer's first order",
    "new_customers": "number of customers placing their first order",
}


def _daily_kpi(wh: Any, kpi: str) -> Any:
    """Daily ``kpi`` from "Order Completed" events; the "new" KPIs count each customer's first order only.

    The customer is the one of the customer rule (:mod:`touchpoint.identity.people`), as in
    predictions, journeys and experiments; orders without any identifier count towards revenue and
    conversions but not towards the new-customer KPIs.
    """
    import ibis

    from touchpoint.privacy.analytics import customer_events
    from touchpoint.privacy.analytics import events as analytics_events

    ev = analytics_events(wh)  # orders of people who denied analytics are not counted (docs/privacy.md)
    orders = ev.filter((ev.type == "track") & (ev.event == ORDER_COMPLETED))
    day = orders.timestamp.cast("date")
    if kpi in ("revenue", "conversions"):
        value = orders.revenue.fill_null(0).sum() if kpi == "revenue" else orders.count()
        return orders.group_by(day=day).aggregate(**{kpi: value})
    o = customer_events(wh, orders)
    o = o.filter(o.customer_id.notnull()).select("customer_id", ts=o.timestamp, revenue=o.revenue.fill_null(0.0))
    o = o.mutate(rank=ibis.row_number().over(group_by=o.customer_id, order_by=[o.ts, o.revenue]))
    first = o.filter(o.rank == 0)
    value = first.revenue.sum() if kpi == "new_customer_revenue" else first.count()
    new = first.group_by(day=first.ts.cast("date")).aggregate(**{kpi: value})
    days = orders.select(day=day).distinct()  # days with orders but no new customer are zeros, not gaps
    j = days.left_join(new, days.day == new.day)
    return j.select(day=days.day, **{kpi: j[kpi].fill_null(0)})


def from_warehouse(wh: Any, *, kpi: str = "revenue", channels: list[str] | None = None) -> MMMData:
    """Weekly KPI from "Order Completed" events and weekly spend per channel from ``spend``.

    ``kpi`` is one of :data:`KPIS`. New-customer KPIs suit acquisition media: repeat orders of the
    customer base grow with it and would otherwise sit in the baseline. Weeks run Monday to Sunday;
    a partial first or last week is dropped; weeks without spend count as zero.
    """
    if kpi not in KPIS:
        raise InvalidInput(f"kpi {kpi!r} is not known", hint=f"use one of {', '.join(KPIS)}")
    daily = _daily_kpi(wh, kpi)
    sp = wh.table("spend")
    if channels:
        sp = sp.filter(sp.channel.isin(channels))
    spend_daily = sp.group_by(day=sp.date, channel=sp.channel).aggregate(amount=sp.amount.sum())
    kpi_tab = wh.to_arrow(daily.order_by("day"))
    spend_tab = wh.to_arrow(spend_daily)
    if kpi_tab.num_rows == 0:
        raise NotFound(
            f"no {ORDER_COMPLETED!r} events in the warehouse",
            hint="import orders, or fit from a file with --file",
        )
    if spend_tab.num_rows == 0 and channels:
        known = sorted(wh.to_arrow(wh.table("spend").select("channel").distinct())["channel"].to_pylist())
        raise NotFound(f"no spend for channel(s) {sorted(channels)}", hint=f"channels with spend: {known}")
    if spend_tab.num_rows == 0:
        raise NotFound("the spend table is empty", hint="import spend (`touchpoint import spend FILE`) or use --file")
    k_days = np.asarray(kpi_tab["day"].to_numpy(zero_copy_only=False), "datetime64[D]")
    s_days = np.asarray(spend_tab["day"].to_numpy(zero_copy_only=False), "datetime64[D]")
    names = sorted(set(spend_tab["channel"].to_pylist()))
    if channels:
        absent = sorted(set(channels) - set(names))
        if absent:
            raise NotFound(f"no spend for channel(s) {absent}", hint=f"channels with spend: {names}")
        names = list(channels)
    # Spend recorded once per week (one date per week) covers the six days after its date too.
    uniq = np.unique(s_days)
    weekly_spend = len(uniq) > 1 and bool(np.all(np.diff(uniq).astype(int) % 7 == 0))
    s_end = s_days.max() + np.timedelta64(6 if weekly_spend else 0, "D")
    start, end = max(k_days.min(), s_days.min()), min(k_days.max(), s_end)
    if end < start:
        raise InvalidInput("orders and spend do not overlap in time", hint="import spend for the order period")
    days = np.arange(start, end + np.timedelta64(1, "D"), dtype="datetime64[D]")
    index = {d: i for i, d in enumerate(days.astype(int))}
    cols: dict[str, np.ndarray] = {kpi: np.zeros(len(days))}
    kv = kpi_tab[kpi].to_numpy(zero_copy_only=False).astype(float)
    for d, v in zip(k_days.astype(int), kv, strict=True):
        if d in index:
            cols[kpi][index[d]] = v
    for name in names:
        cols["spend:" + name] = np.zeros(len(days))
    amounts = spend_tab["amount"].to_numpy(zero_copy_only=False).astype(float)
    for d, ch, v in zip(s_days.astype(int), spend_tab["channel"].to_pylist(), amounts, strict=True):
        if d in index and "spend:" + ch in cols:
            cols["spend:" + ch][index[d]] += v
    weeks, weekly = _weekly(days, cols, set())
    # The engine sums in parallel, so the last bits of a sum change from run to run; NUTS would amplify
    # them into different draws. Money has no meaning below 1/10,000 of a unit: round there.
    weekly = {k: np.round(v, WAREHOUSE_DECIMALS) for k, v in weekly.items()}
    return MMMData.from_columns(
        dates=weeks, target=weekly[kpi], spend={n: weekly["spend:" + n] for n in names}, target_name=kpi
    )
