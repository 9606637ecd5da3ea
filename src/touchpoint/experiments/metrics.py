"""Metric definitions, and their sufficient statistics computed in the warehouse with Ibis.

A metric counts what exposed units did after their first exposure, within a conversion window:

* ``binomial``: did the unit do ``event`` at least once (e.g. "Order Completed")?
* ``mean``: the sum of ``value`` per unit (``count`` of events, a typed column such as ``revenue``,
  or ``properties.<key>``), optionally capped at ``cap`` or winsorised at the ``cap_quantile``;
* ``ratio``: the sum of ``value`` over the sum of ``denominator_value`` of ``denominator_event``
  (e.g. revenue per order), analysed with the delta method.

For CUPED, the same quantity over the ``covariate_days`` before each unit's exposure is the
covariate. Everything up to the per-arm sums runs in the engine (DuckDB by default), so the cost on
the Python side does not grow with the number of units.

>>> Metric.parse("revenue:mean:Order Completed:revenue:cap=500").cap
500.0
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from datetime import datetime
from typing import TYPE_CHECKING, Any

import ibis

from touchpoint.collect.ecommerce import ORDER_COMPLETED
from touchpoint.errors import InvalidInput
from touchpoint.experiments.statistics import ArmStats, MetricKind, MetricStats, check_kind
from touchpoint.privacy.analytics import events as analytics_events
from touchpoint.warehouse.jsonpath import check_json_key

if TYPE_CHECKING:
    import ibis.expr.types as ir

    from touchpoint.warehouse import Warehouse

EXPOSURE_EVENT = "Experiment Viewed"
MAX_DAYS = 3660  # ten years: longer windows overflow date arithmetic and mean nothing for an experiment
NUMERIC_COLUMNS = ("revenue",)


@dataclass(frozen=True)
class Metric:
    """What to measure per exposed unit. See the module docstring for the kinds."""

    name: str
    kind: MetricKind = "binomial"
    event: str = ORDER_COMPLETED
    value: str = "count"
    cap: float | None = None
    cap_quantile: float | None = None
    window_days: float | None = None
    denominator_event: str | None = None
    denominator_value: str = "count"
    covariate_days: float = 14.0
    inverse: bool = False

    def __post_init__(self) -> None:
        if not self.name:
            raise InvalidInput("a metric needs a name", hint="e.g. 'purchase:binomial:Order Completed'")
        check_kind(self.kind)
        check_value(self.value, self.name)
        check_value(self.denominator_value, self.name)
        if self.kind == "ratio" and not self.denominator_event:
            raise InvalidInput(
                f"ratio metric {self.name!r} needs a denominator_event",
                hint="e.g. 'aov:ratio:Order Completed:revenue:den=Order Completed'",
            )
        if self.cap is not None and not self.cap > 0:
            raise InvalidInput(f"metric {self.name!r}: cap {self.cap} must be positive", hint="e.g. cap=500")
        if self.cap_quantile is not None and not 0.5 <= self.cap_quantile < 1:
            raise InvalidInput(
                f"metric {self.name!r}: cap_quantile {self.cap_quantile} must be in [0.5, 1)",
                hint="e.g. 0.99",
            )
        if self.window_days is not None and not 0 < self.window_days <= MAX_DAYS:
            raise InvalidInput(
                f"metric {self.name!r}: window_days {self.window_days} must be in (0, {MAX_DAYS}]", hint="e.g. window=7"
            )
        if not 0 < self.covariate_days <= MAX_DAYS:
            raise InvalidInput(
                f"metric {self.name!r}: covariate_days {self.covariate_days} must be in (0, {MAX_DAYS}]",
                hint="e.g. pre=14",
            )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Metric:
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise InvalidInput(f"metric fields {sorted(unknown)} are not known", hint=f"use: {sorted(known)}")
        try:
            return cls(**data)
        except TypeError as exc:
            raise InvalidInput(
                f"metric definition {data!r} is incomplete: {exc}", hint="give at least a name"
            ) from None

    @classmethod
    def parse(cls, spec: str) -> Metric:
        """``NAME:KIND:EVENT[:VALUE][:key=value...]``; keys cap, q (cap quantile), window, den, den_value,
        pre (covariate days), inverse.

        >>> Metric.parse("aov:ratio:Order Completed:revenue:den=Order Completed").denominator_event
        'Order Completed'
        """
        parts = [p.strip() for p in spec.split(":")]
        if len(parts) < 3:
            raise InvalidInput(
                f"metric spec {spec!r} needs at least NAME:KIND:EVENT",
                hint="e.g. 'purchase:binomial:Order Completed' or 'revenue:mean:Order Completed:revenue:cap=500'",
            )
        data: dict[str, Any] = {"name": parts[0], "kind": parts[1], "event": parts[2]}
        keys = {
            "cap": "cap",
            "q": "cap_quantile",
            "window": "window_days",
            "den": "denominator_event",
            "den_value": "denominator_value",
            "pre": "covariate_days",
            "inverse": "inverse",
        }
        for i, part in enumerate(parts[3:]):
            if "=" not in part:
                if i == 0:
                    data["value"] = part
                    continue
                raise InvalidInput(f"metric spec {spec!r}: {part!r} is not key=value", hint=f"keys: {sorted(keys)}")
            k, _, v = part.partition("=")
            if k not in keys:
                raise InvalidInput(f"metric spec {spec!r}: option {k!r} is not known", hint=f"use: {sorted(keys)}")
            field_name = keys[k]
            if field_name in ("cap", "cap_quantile", "window_days", "covariate_days"):
                try:
                    data[field_name] = float(v)
                except ValueError:
                    raise InvalidInput(
                        f"metric spec {spec!r}: {k}={v!r} is not a number", hint="e.g. cap=500"
                    ) from None
            elif field_name == "inverse":
                data[field_name] = v.lower() in ("1", "true", "yes")
            else:
                data[field_name] = v
        return cls(**data)


def check_value(value: str, metric: str) -> None:
    if value == "count" or value in NUMERIC_COLUMNS:
        return
    if value.startswith("properties.") and len(value) > 11:
        check_json_key(value.removeprefix("properties."), f"metric {metric!r}: value")
        return
    raise InvalidInput(
        f"metric {metric!r}: value {value!r} is not known",
        hint="use 'count', 'revenue' or 'properties.<key>' (a numeric property of the event)",
    )


# -- Ibis expressions ---------------------------------------------------------------------------


def unit_column(t: ir.Table, unit: str) -> ir.Column:
    """The raw id a unit was assigned by (``customer`` units are assigned by user id, else anonymous id)."""
    if unit == "user_id":
        return t.user_id
    if unit == "anonymous_id":
        return t.anonymous_id
    return ibis.coalesce(t.user_id, t.anonymous_id)


def with_unit(wh: Warehouse, t: ir.Table, unit: str) -> ir.Table:
    """``t`` with ``_unit``: the raw id, or for ``customer`` the customer of the customer rule
    (:mod:`touchpoint.identity.people`), so exposures and orders of one person meet across their ids."""
    if unit == "customer":
        from touchpoint.privacy.analytics import customer_events

        return customer_events(wh, t, name="_unit")
    return t.mutate(_unit=unit_column(t, unit))


def json_text(value: Any) -> Any:
    """A JSON scalar as text: strings without their quotes, numbers as written.

    One JSON parse per row (Ibis' typed ``.str``/``.int`` accessors parse several times), which
    matters on tens of millions of exposure events. Ids are compared as text, so ``"variation_id": 1``
    and ``"1"`` are the same arm.
    """
    text = value.cast("string")
    return text.startswith('"').ifelse(text.substr(1, text.length() - 2), text)


def json_is(value: Any, expected: str) -> Any:
    """True where the JSON scalar ``value`` is the string (or number) ``expected``; no per-row unquoting."""
    import json

    return value.cast("string").isin([expected, json.dumps(expected)])


def _value(t: ir.Table, value: str) -> ir.Column:
    if value == "count":
        return ibis.literal(1.0)
    if value in NUMERIC_COLUMNS:
        return t[value].cast("float64").fill_null(0.0)
    key = value.removeprefix("properties.")
    return json_text(t.properties[key]).try_cast("float64").fill_null(0.0)


def _exposure_rows(wh: Warehouse, key: str, unit: str, start: datetime | None, end: datetime | None) -> ir.Table:
    t = analytics_events(wh)
    t = t.filter((t.type == "track") & (t.event == EXPOSURE_EVENT))
    t = t.filter(json_is(t.properties["experiment_id"], key))
    t = with_unit(wh, t, unit)
    t = t.mutate(_var=json_text(t.properties["variation_id"]))
    t = t.filter(t._unit.notnull())  # a missing variation_id gives arm None, dropped as unknown
    if start is not None:
        t = t.filter(t.timestamp >= start)
    if end is not None:
        t = t.filter(t.timestamp < end)
    return t


def exposures(
    wh: Warehouse,
    key: str,
    *,
    unit: str = "any",
    start: datetime | None = None,
    end: datetime | None = None,
    dimension: str | None = None,
) -> ir.Table:
    """One row per exposed unit: ``unit``, ``variant``, ``first_at`` (first exposure), ``multiple``
    (True when the unit saw more than one arm: such units are left out), optional ``dimension``.

    >>> from touchpoint.warehouse import Warehouse
    >>> exposures(Warehouse.open("duckdb://:memory:"), "cta").columns
    ('unit', 'first_at', 'variant', 'multiple')
    """
    t = _exposure_rows(wh, key, unit, start, end)
    aggs: dict[str, Any] = {
        "first_at": t.timestamp.min(),
        "variant": t._var.min(),
        "multiple": t._var.min() != t._var.max(),
    }
    if dimension is not None:
        aggs["dimension"] = _dimension(t, dimension).argmin(t.timestamp)
    return t.group_by(unit=t._unit).aggregate(**aggs)


def _dimension(t: ir.Table, dimension: str) -> ir.Column:
    if dimension.startswith("properties."):
        key = check_json_key(dimension.removeprefix("properties."), "dimension")
        return json_text(t.properties[key]).fill_null("(none)")
    if dimension.startswith("context."):
        node = t.context
        for part in dimension.removeprefix("context.").split("."):
            node = node[check_json_key(part, "dimension", prefix="context.")]
        return json_text(node).fill_null("(none)")
    if dimension in ("source", "utm_source", "utm_medium", "utm_campaign"):
        return t[dimension].fill_null("(none)")
    raise InvalidInput(
        f"dimension {dimension!r} is not supported",
        hint="use properties.<key> or context.<path> of the exposure event, or source/utm_*",
    )


def _seconds(days: float) -> Any:
    return ibis.interval(seconds=round(days * 86400))


def _per_unit_values(
    wh: Warehouse,
    exposed: ir.Table,
    metrics: list[Metric],
    *,
    unit: str,
    end: datetime | None,
    covariates: bool,
) -> tuple[ir.Table, dict[str, dict[str, str]]]:
    """One row per exposed unit that did any metric event, with one column per metric part.

    A single join of the exposures with the events of every metric, then conditional sums per unit:
    each metric's numerator (``y``) and denominator (``d``) inside its window after first exposure,
    and its pre-exposure covariate (``x``). Returns the table and, per metric, its column names.
    """
    names: set[str] = set()
    for m in metrics:
        names.add(m.event)
        if m.denominator_event:
            names.add(m.denominator_event)
    e = analytics_events(wh)
    e = with_unit(wh, e.filter((e.type == "track") & e.event.isin(sorted(names))), unit)
    values = sorted({m.value for m in metrics} | {m.denominator_value for m in metrics if m.kind == "ratio"})
    value_cols = {v: f"_v{i}" for i, v in enumerate(values)}
    e = e.select(
        "_unit",
        _ts=e.timestamp,
        _event=e.event,
        **{col: _value(e, v) for v, col in value_cols.items()},
    )
    j = exposed.select("unit", "first_at").join(e, exposed.unit == e._unit)
    aggs: dict[str, Any] = {}
    columns: dict[str, dict[str, str]] = {}

    def window(days: float | None) -> Any:
        cond = j._ts >= j.first_at
        if days is not None:
            cond &= j._ts < j.first_at + _seconds(days)
        if end is not None:
            cond &= j._ts < end
        return cond

    for i, m in enumerate(metrics):
        cols: dict[str, str] = {}
        binary = m.kind == "binomial"
        hit = window(m.window_days) & (j._event == m.event)
        v = j[value_cols[m.value]]
        cols["y"] = f"y{i}"
        aggs[cols["y"]] = (hit & (v != 0)).ifelse(1.0, 0.0).max() if binary else hit.ifelse(v, 0.0).sum()
        if m.kind == "ratio":
            dv = j[value_cols[m.denominator_value]]
            cols["d"] = f"d{i}"
            aggs[cols["d"]] = (window(m.window_days) & (j._event == m.denominator_event)).ifelse(dv, 0.0).sum()
        elif covariates:
            pre = (j._ts < j.first_at) & (j._ts >= j.first_at - _seconds(m.covariate_days)) & (j._event == m.event)
            cols["x"] = f"x{i}"
            aggs[cols["x"]] = (pre & (v != 0)).ifelse(1.0, 0.0).max() if binary else pre.ifelse(v, 0.0).sum()
        columns[m.name] = cols
    return j.group_by(_u=j.unit).aggregate(**aggs), columns


def compute_stats(
    wh: Warehouse,
    key: str,
    metrics: list[Metric],
    *,
    unit: str = "any",
    start: datetime | None = None,
    end: datetime | None = None,
    covariates: bool = True,
    dimension: str | None = None,
) -> tuple[list[MetricStats], dict[str, Any]]:
    """Per-arm sums of every metric for experiment ``key``, computed in the warehouse in one query
    (plus one per metric winsorised at a quantile).

    Returns the statistics and a summary of the exposures: units per arm and how many units saw
    more than one arm (those are left out, as GrowthBook does).
    """
    if not metrics:
        raise InvalidInput("no metrics to compute", hint="give at least one metric")
    exposed = exposures(wh, key, unit=unit, start=start, end=end, dimension=dimension)
    per_unit, columns = _per_unit_values(wh, exposed, metrics, unit=unit, end=end, covariates=covariates)
    joined = exposed.left_join(per_unit, exposed.unit == per_unit._u)
    parts = [c for cols in columns.values() for c in cols.values()]
    units = joined.select(
        "variant",
        "multiple",
        *(["dimension"] if dimension else []),
        **{c: joined[c].fill_null(0.0) for c in parts},
    )
    caps: dict[str, float] = {}
    for i, m in enumerate(metrics):
        if m.kind != "mean":
            continue
        cap = m.cap
        if m.cap_quantile is not None:
            col = units[f"y{i}"]
            q = units.filter(~units.multiple & (col > 0))[f"y{i}"].quantile(m.cap_quantile)
            q = q.to_pyarrow().as_py()
            cap = float(q) if q is not None else None
        if cap is not None:
            caps[m.name] = cap
            units = units.mutate(**{c: ibis.least(units[c], cap) for c in columns[m.name].values()})
    aggs: dict[str, Any] = {"n": units.count()}
    for m in metrics:
        cols = columns[m.name]
        y = units[cols["y"]]
        aggs[f"{cols['y']}__sum"] = y.sum()
        aggs[f"{cols['y']}__ss"] = (y * y).sum()
        for other in ("d", "x"):
            if other in cols:
                o = units[cols[other]]
                aggs[f"{cols[other]}__sum"] = o.sum()
                aggs[f"{cols[other]}__ss"] = (o * o).sum()
                aggs[f"{cols[other]}__xy"] = (y * o).sum()
    keys = ["variant", "multiple", *(["dimension"] if dimension else [])]
    rows = wh.to_arrow(units.group_by(keys).aggregate(**aggs)).to_pylist()
    multiple = sum(int(r["n"]) for r in rows if r["multiple"])
    rows = [r for r in rows if not r["multiple"] and r["variant"] is not None]
    if not rows:
        raise InvalidInput(
            f"experiment {key!r} has no exposures",
            hint=f"record '{EXPOSURE_EVENT}' track events with properties.experiment_id = {key!r}"
            + (f" between {start} and {end or 'now'}" if start else ""),
        )
    units_by_arm: dict[str, int] = {}
    for r in rows:
        units_by_arm[r["variant"]] = units_by_arm.get(r["variant"], 0) + int(r["n"])
    out: list[MetricStats] = []
    for m in metrics:
        out.extend(_metric_stats(m, columns[m.name], rows, dimension is not None))
    summary = {"units": units_by_arm, "multiple_exposures": multiple, "caps": caps}
    return out, summary


def _arm(variant: str, row: dict[str, Any], cols: dict[str, str]) -> ArmStats:
    def g(name: str) -> float:
        return float(row.get(name) or 0.0)

    y = cols["y"]
    arm = ArmStats(variant, n=g("n"), sum=g(f"{y}__sum"), sum_squares=g(f"{y}__ss"))
    if "d" in cols:
        d = cols["d"]
        arm.den_sum, arm.den_sum_squares, arm.num_den_sum_products = (
            g(f"{d}__sum"),
            g(f"{d}__ss"),
            g(f"{d}__xy"),
        )
    if "x" in cols:
        x = cols["x"]
        arm.cov_sum, arm.cov_sum_squares, arm.num_cov_sum_products = (
            g(f"{x}__sum"),
            g(f"{x}__ss"),
            g(f"{x}__xy"),
        )
    return arm


def _metric_stats(m: Metric, cols: dict[str, str], rows: list[dict[str, Any]], by_dimension: bool) -> list[MetricStats]:
    kind: Any = m.kind
    has_cov = "x" in cols
    if not by_dimension:
        arms = sorted((_arm(r["variant"], r, cols) for r in rows), key=lambda a: a.variant)
        return [MetricStats(m.name, kind, arms, None, has_cov, m.inverse)]
    overall: dict[str, ArmStats] = {}
    by_dim: dict[str, list[ArmStats]] = {}
    for r in rows:
        arm = _arm(r["variant"], r, cols)
        by_dim.setdefault(str(r["dimension"]), []).append(arm)
        acc = overall.setdefault(arm.variant, ArmStats(arm.variant, 0.0, 0.0))
        for f in fields(ArmStats):
            if f.name != "variant":
                setattr(acc, f.name, getattr(acc, f.name) + getattr(arm, f.name))
    result = [MetricStats(m.name, kind, sorted(overall.values(), key=lambda a: a.variant), None, has_cov, m.inverse)]
    for dim, arms in sorted(by_dim.items()):
        result.append(MetricStats(m.name, kind, sorted(arms, key=lambda a: a.variant), dim, has_cov, m.inverse))
    return result
