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
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import ibis

from touchpoint.errors import InvalidInput
from touchpoint.experiments.statistics import ArmStats, MetricStats, check_kind

if TYPE_CHECKING:
    import ibis.expr.types as ir

    from touchpoint.warehouse import Warehouse

EXPOSURE_EVENT = "Experiment Viewed"
NUMERIC_COLUMNS = ("revenue",)


@dataclass(frozen=True)
class Metric:
    """What to measure per exposed unit. See the module docstring for the kinds."""

    name: str
    kind: str = "binomial"
    event: str = "Order Completed"
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
        if self.window_days is not None and not self.window_days > 0:
            raise InvalidInput(f"metric {self.name!r}: window_days must be positive", hint="e.g. window=7")
        if not self.covariate_days > 0:
            raise InvalidInput(f"metric {self.name!r}: covariate_days must be positive", hint="e.g. pre=14")

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
                hint="e.g. 'purchase:binomial:Order Completed' or "
                "'revenue:mean:Order Completed:revenue:cap=500'",
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
                raise InvalidInput(
                    f"metric spec {spec!r}: {part!r} is not key=value", hint=f"keys: {sorted(keys)}"
                )
            k, _, v = part.partition("=")
            if k not in keys:
                raise InvalidInput(
                    f"metric spec {spec!r}: option {k!r} is not known", hint=f"use: {sorted(keys)}"
                )
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
    if value == "count" or value in NUMERIC_COLUMNS or (value.startswith("properties.") and len(value) > 11):
        return
    raise InvalidInput(
        f"metric {metric!r}: value {value!r} is not known",
        hint="use 'count', 'revenue' or 'properties.<key>' (a numeric property of the event)",
    )


# -- Ibis expressions ---------------------------------------------------------------------------


def unit_column(t: ir.Table, unit: str) -> ir.Column:
    if unit == "user_id":
        return t.user_id
    if unit == "anonymous_id":
        return t.anonymous_id
    return ibis.coalesce(t.user_id, t.anonymous_id)


def _value(t: ir.Table, value: str) -> ir.Column:
    if value == "count":
        return ibis.literal(1.0)
    if value in NUMERIC_COLUMNS:
        return t[value].cast("float64").fill_null(0.0)
    key = value.removeprefix("properties.")
    prop = t.properties[key]
    return ibis.coalesce(prop.float, prop.int.cast("float64"), ibis.literal(0.0))


def exposures(
    wh: Warehouse,
    key: str,
    *,
    unit: str = "any",
    start: datetime | None = None,
    end: datetime | None = None,
    dimension: str | None = None,
) -> ir.Table:
    """One row per exposed unit: ``unit``, ``variant`` (of its first exposure), ``first_at``, ``variants``
    (how many different arms it saw; more than one means the unit is excluded), optional ``dimension``."""
    t = wh.table("events")
    t = t.filter((t.type == "track") & (t.event == EXPOSURE_EVENT))
    prop = t.properties
    t = t.mutate(
        _unit=unit_column(t, unit),
        _exp=ibis.coalesce(prop["experiment_id"].str, prop["experiment_id"].int.cast("string")),
        _var=ibis.coalesce(prop["variation_id"].str, prop["variation_id"].int.cast("string")),
    )
    t = t.filter(t._exp == key).filter(t._unit.notnull() & t._var.notnull())
    if start is not None:
        t = t.filter(t.timestamp >= start)
    if end is not None:
        t = t.filter(t.timestamp < end)
    aggs: dict[str, Any] = {
        "variant": t._var.argmin(t.timestamp),
        "first_at": t.timestamp.min(),
        "variants": t._var.nunique(),
    }
    if dimension is not None:
        aggs["dimension"] = _dimension(t, dimension).argmin(t.timestamp)
    return t.group_by(unit=t._unit).aggregate(**aggs)


def _dimension(t: ir.Table, dimension: str) -> ir.Column:
    if dimension.startswith("properties."):
        p = t.properties[dimension.removeprefix("properties.")]
        return ibis.coalesce(p.str, p.int.cast("string"), ibis.literal("(none)"))
    if dimension.startswith("context."):
        path = dimension.removeprefix("context.").split(".")
        node = t.context
        for part in path:
            node = node[part]
        return ibis.coalesce(node.str, ibis.literal("(none)"))
    if dimension in ("source", "utm_source", "utm_medium", "utm_campaign"):
        return t[dimension].fill_null("(none)")
    raise InvalidInput(
        f"dimension {dimension!r} is not supported",
        hint="use properties.<key> or context.<path> of the exposure event, or source/utm_*",
    )


def _per_unit(
    wh: Warehouse,
    exposed: ir.Table,
    event: str,
    value: str,
    *,
    unit: str,
    lo_days: float,
    hi_days: float | None,
    end: datetime | None,
    binary: bool,
) -> ir.Table:
    """Sum (or 0/1 occurrence) of ``value`` of ``event`` per exposed unit.

    Events count from first exposure + ``lo_days`` to first exposure + ``hi_days``."""
    e = wh.table("events")
    e = e.filter((e.type == "track") & (e.event == event))
    e = e.select(_unit=unit_column(e, unit), _ts=e.timestamp, _v=_value(e, value))
    j = exposed.select("unit", "first_at").join(e, exposed.unit == e._unit)
    lo = j.first_at + ibis.interval(seconds=round(lo_days * 86400))
    cond = j._ts >= lo
    if hi_days is not None:
        cond &= j._ts < j.first_at + ibis.interval(seconds=round(hi_days * 86400))
    else:
        cond &= j._ts >= j.first_at
    if end is not None:
        cond &= j._ts < end
    j = j.filter(cond)
    agg = j._v.max() if binary else j._v.sum()
    return j.group_by("unit").aggregate(val=agg)


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
    """Per-arm sums of every metric for experiment ``key``, computed in the warehouse.

    Returns the statistics and a summary of the exposures: units per arm and how many units saw
    more than one arm (those are left out, as GrowthBook does).
    """
    exp_all = exposures(wh, key, unit=unit, start=start, end=end, dimension=dimension)
    exp_all = exp_all.cache()
    multi = exp_all.filter(exp_all.variants > 1).count().to_pyarrow().as_py()
    exposed = exp_all.filter(exp_all.variants == 1)
    group_keys = ["variant", "dimension"] if dimension else ["variant"]
    counts = wh.to_arrow(exposed.group_by(group_keys).aggregate(n=exposed.count())).to_pylist()
    if not counts:
        raise InvalidInput(
            f"experiment {key!r} has no exposures",
            hint=f"record '{EXPOSURE_EVENT}' track events with properties.experiment_id = {key!r}"
            + (f" between {start} and {end or 'now'}" if start else ""),
        )
    units_by_arm: dict[str, int] = {}
    for row in counts:
        units_by_arm[row["variant"]] = units_by_arm.get(row["variant"], 0) + int(row["n"])
    out: list[MetricStats] = []
    for metric in metrics:
        out.extend(
            _metric_stats(wh, exposed, metric, unit=unit, end=end, covariates=covariates, dimension=dimension)
        )
    summary = {"units": units_by_arm, "multiple_exposures": int(multi or 0)}
    return out, summary


def _metric_stats(
    wh: Warehouse,
    exposed: ir.Table,
    metric: Metric,
    *,
    unit: str,
    end: datetime | None,
    covariates: bool,
    dimension: str | None,
) -> list[MetricStats]:
    binary = metric.kind == "binomial"
    window = metric.window_days
    num = _per_unit(
        wh, exposed, metric.event, metric.value, unit=unit, lo_days=0, hi_days=window, end=end, binary=binary
    )
    units = exposed.left_join(num, exposed.unit == num.unit).select(
        *[c for c in exposed.columns if c != "unit"], unit=exposed.unit, y=num.val.fill_null(0.0)
    )
    if metric.kind == "ratio":
        assert metric.denominator_event is not None
        den = _per_unit(
            wh,
            exposed,
            metric.denominator_event,
            metric.denominator_value,
            unit=unit,
            lo_days=0,
            hi_days=window,
            end=end,
            binary=False,
        )
        units = units.left_join(den, units.unit == den.unit).select(
            *[c for c in units.columns if c != "unit"], unit=units.unit, d=den.val.fill_null(0.0)
        )
    use_cov = covariates and metric.kind != "ratio"
    if use_cov:
        pre = _per_unit(
            wh,
            exposed,
            metric.event,
            metric.value,
            unit=unit,
            lo_days=-metric.covariate_days,
            hi_days=0,
            end=None,
            binary=binary,
        )
        units = units.left_join(pre, units.unit == pre.unit).select(
            *[c for c in units.columns if c != "unit"], unit=units.unit, x=pre.val.fill_null(0.0)
        )
    if metric.kind == "mean" and (metric.cap is not None or metric.cap_quantile is not None):
        cap = metric.cap
        if metric.cap_quantile is not None:
            q = units.filter(units.y > 0).y.quantile(metric.cap_quantile).to_pyarrow().as_py()
            cap = float(q) if q is not None else None
        if cap is not None:
            units = units.mutate(y=ibis.least(units.y, cap))
            if use_cov:
                units = units.mutate(x=ibis.least(units.x, cap))
    aggs = {"n": units.count(), "sum": units.y.sum(), "sum_squares": (units.y * units.y).sum()}
    if metric.kind == "ratio":
        aggs |= {
            "den_sum": units.d.sum(),
            "den_sum_squares": (units.d * units.d).sum(),
            "num_den_sum_products": (units.y * units.d).sum(),
        }
    if use_cov:
        aggs |= {
            "cov_sum": units.x.sum(),
            "cov_sum_squares": (units.x * units.x).sum(),
            "num_cov_sum_products": (units.y * units.x).sum(),
        }
    keys = ["variant", "dimension"] if dimension else ["variant"]
    rows = wh.to_arrow(units.group_by(keys).aggregate(**aggs)).to_pylist()
    by_dim: dict[str | None, list[ArmStats]] = {}
    for row in rows:
        arm = ArmStats(
            variant=row["variant"],
            **{k: float(row[k] or 0.0) for k in aggs},
        )
        by_dim.setdefault(row.get("dimension") if dimension else None, []).append(arm)
    result = []
    if dimension:  # also the overall sums, from the per-dimension ones
        overall: dict[str, ArmStats] = {}
        for arms in by_dim.values():
            for arm in arms:
                acc = overall.setdefault(arm.variant, ArmStats(arm.variant, 0.0, 0.0))
                for f in fields(ArmStats):
                    if f.name != "variant":
                        setattr(acc, f.name, getattr(acc, f.name) + getattr(arm, f.name))
        result.append(
            MetricStats(
                metric.name,
                metric.kind,
                sorted(overall.values(), key=lambda a: a.variant),  # type: ignore[arg-type]
                None,
                use_cov,
                metric.inverse,
            )
        )
    for dim, arms in sorted(by_dim.items(), key=lambda kv: str(kv[0])):
        result.append(
            MetricStats(
                metric.name,
                metric.kind,
                sorted(arms, key=lambda a: a.variant),  # type: ignore[arg-type]
                dim,
                use_cov,
                metric.inverse,
            )
        )
    return result


def window_end(start: datetime | None, days: float | None) -> datetime | None:
    return None if start is None or days is None else start + timedelta(days=days)
