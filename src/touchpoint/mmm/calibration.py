"""The measurement loop: a lift measured by an experiment or an automation's holdout calibrates the MMM.

A key names where a lift was measured (``touchpoint mmm calibrate --from-experiment KEY``):

=====================  =================================================================================
``experiment:KEY``     experiment ``KEY``'s analysed result (``touchpoint experiment analyze KEY``): the
(or just ``KEY``)      absolute lift of its revenue metric (treatment minus control, per unit) times the
                       treatment arm's units, over the experiment's start..end (or now)
``automation:NAME``    automation ``NAME``'s holdout lift (treated versus held-out entrants on its goal),
                       times ``value_per_conversion``, from its first entry to now; resolved by
                       :mod:`touchpoint.automations.calibration`, which the surfaces pass in ``sources``
=====================  =================================================================================

An experiment's key may itself hold ``:``; only the prefixes above are read as a kind. A lift becomes a
return on the channel's spend in the test's period (``spend``: the ``spend`` table's sum for the
channel over the period, unless given), with its standard error. Nothing is stored until it is accepted
(:func:`accept`, ``--accept``): then it sits in the ``mmm_calibrations`` table with its source, who
accepted it and when, and every later fit of the warehouse's model uses it (:func:`active`) until it is
withdrawn (:func:`withdraw`). How the model uses it: docs/mmm.md, "Calibration from lift tests".

>>> from touchpoint.warehouse import Warehouse
>>> wh = Warehouse.open("duckdb://:memory:")
>>> parse_key("automation:welcome"), parse_key("checkout:v2")
(('automation', 'welcome'), ('experiment', 'checkout:v2'))
>>> lift = MeasuredLift("experiment:tv-geo", "2024-03-04", "2024-03-31", 12_000.0, 8_000.0, 16_000.0, 2_000.0)
>>> p = proposal(wh, lift, channel="tv", channels=("tv", "search"), spend=8_000.0)
>>> round(p["roi"], 2), round(p["roi_se"], 2)
(1.5, 0.25)
>>> stored = accept(wh, p, by="cli:ann")
>>> [c.channel for c in active(wh)], withdraw(wh, stored["calibration_id"], by="cli:ann")["status"]
(['tv'], 'withdrawn')
"""

from __future__ import annotations

import json
import math
import uuid
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import date, datetime
from statistics import NormalDist
from typing import Any

import ibis
import pyarrow as pa

from touchpoint.errors import AlreadyExists, InvalidInput, NotFound
from touchpoint.mmm.config import LiftCalibration
from touchpoint.warehouse import Warehouse, schema
from touchpoint.warehouse.clock import utcnow

TABLE = schema.MMM_CALIBRATIONS.name
PREFIXES = ("experiment", "automation")
KEY_HINT = "keys: experiment:KEY (or KEY) for an experiment, automation:NAME for an automation's holdout"
Z90 = 1.6448536269514722  # the 90% interval the model reports


@dataclass(frozen=True)
class MeasuredLift:
    """What a test measured: the incremental revenue over ``start``..``end`` (ISO dates) with its interval
    (``low``..``high`` at ``level``) and standard error; ``channel`` when the source names one."""

    source: str
    start: str
    end: str
    incremental: float
    low: float
    high: float
    se: float
    level: float = 0.95
    channel: str | None = None
    metric: str | None = None
    units: float | None = None
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class LiftOptions:
    """How to read a source: the experiment's metric and treatment arm, an automation's conversion value."""

    metric: str | None = None
    arm: str | None = None
    value_per_conversion: float | None = None
    level: float = 0.95


Resolver = Callable[[Warehouse, str, LiftOptions], MeasuredLift]


def parse_key(key: str) -> tuple[str, str]:
    """``(kind, name)`` of a key; a key without a known prefix names an experiment."""
    if not key or not key.strip():
        raise InvalidInput("--from-experiment needs a key", hint=KEY_HINT)
    kind, sep, name = key.partition(":")
    if sep and kind in PREFIXES:
        if not name:
            raise InvalidInput(f"key {key!r} names no {kind}", hint=KEY_HINT)
        return kind, name
    return "experiment", key


def _day(value: Any) -> str:
    if isinstance(value, datetime):
        return value.date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    return str(value)[:10]


def from_experiment(wh: Warehouse, key: str, opts: LiftOptions) -> MeasuredLift:
    """The lift of experiment ``key``'s revenue metric, in money over the treatment arm."""
    from touchpoint.experiments.analysis import AnalysisOptions
    from touchpoint.experiments.definitions import get_experiment
    from touchpoint.experiments.results import analyze_experiment

    try:
        exp = get_experiment(wh, key)
    except NotFound:
        raise NotFound(
            f"no experiment with key {key!r} (field: --from-experiment)",
            hint=f"`touchpoint experiment list` shows them; {KEY_HINT}",
        ) from None
    revenue = [m for m in exp.metrics if m.kind == "mean" and m.value in ("revenue", "properties.revenue")]
    names = [m.name for m in exp.metrics]
    if opts.metric is not None:
        chosen = [m for m in exp.metrics if m.name == opts.metric]
        if not chosen:
            raise InvalidInput(
                f"experiment {key!r} has no metric {opts.metric!r} (field: --metric)",
                hint=f"its metrics: {names}",
                field="metric",
            )
        if chosen[0].kind != "mean":
            raise InvalidInput(
                f"metric {opts.metric!r} of experiment {key!r} is {chosen[0].kind}, not money per unit "
                "(field: --metric)",
                hint="calibrate from a mean metric of revenue, e.g. 'revenue:mean:Order Completed:revenue'",
                field="metric",
            )
    elif len(revenue) == 1:
        chosen = revenue
    else:
        raise InvalidInput(
            f"experiment {key!r} has {'no' if not revenue else 'more than one'} revenue metric (field: --metric)",
            hint=f"name the metric with --metric (its metrics: {names}); a lift test needs "
            "'revenue:mean:Order Completed:revenue'",
            field="metric",
        )
    metric = chosen[0]
    treatments = [v for v in exp.variants if v != exp.control]
    arm = opts.arm or (treatments[0] if len(treatments) == 1 else None)
    if arm not in treatments:
        raise InvalidInput(
            f"experiment {key!r}: {'arm ' + repr(arm) + ' is not a treatment' if arm else 'which arm ran the channel?'}"
            " (field: --arm)",
            hint=f"pass --arm with one of {treatments} (the control {exp.control!r} is the group without the channel)",
            field="arm",
        )
    result = analyze_experiment(
        wh, key, options=AnalysisOptions(relative=False, engine="frequentist", alpha=1 - opts.level), metrics=[metric]
    )
    if result.status in ("srm_failed", "insufficient_data"):
        raise InvalidInput(
            f"experiment {key!r} cannot calibrate the model: {result.status} ({result.verdict})",
            hint="fix the experiment (its sample ratio, or wait for more units) and analyse it again",
        )
    res = result.metrics[0]
    comp = next(c for c in res.comparisons if c.variant == arm)
    units = next(a.n for a in res.arms if a.variant == arm)
    if comp.estimate is None or comp.stderr is None or not comp.stderr > 0:
        raise InvalidInput(
            f"experiment {key!r} has no lift with a standard error for {arm!r}: {comp.error or 'no variance'}",
            hint="wait for more units in both arms",
        )
    end = result.extra["experiment"]["end_at"] or utcnow()
    return MeasuredLift(
        source=f"experiment:{key}",
        start=_day(exp.start_at),
        end=_day(end),
        incremental=comp.estimate * units,
        low=(comp.ci_low if comp.ci_low is not None else comp.estimate) * units,
        high=(comp.ci_high if comp.ci_high is not None else comp.estimate) * units,
        se=comp.stderr * units,
        level=opts.level,
        metric=metric.name,
        units=float(units),
        details={"arm": arm, "control": exp.control, "per_unit_lift": comp.estimate, "status": result.status},
    )


#: Sources the measuring core resolves itself; packages above add theirs (``automation``).
SOURCES: dict[str, Resolver] = {"experiment": from_experiment}


def measure(
    wh: Warehouse, key: str, opts: LiftOptions | None = None, *, sources: Mapping[str, Resolver] | None = None
) -> MeasuredLift:
    """Resolve ``key`` through ``sources`` (default: experiments only)."""
    kind, name = parse_key(key)
    table = dict(sources or SOURCES)
    if kind not in table:
        raise InvalidInput(f"lifts of kind {kind!r} are not readable here", hint=KEY_HINT)
    return table[kind](wh, name, opts or LiftOptions())


def channel_spend(wh: Warehouse, channel: str, start: str, end: str) -> float:
    """The ``spend`` table's total for ``channel`` over ``start``..``end`` (inclusive days)."""
    t = wh.table(schema.SPEND.name)
    expr = t.filter(
        (t.channel == channel)
        & (t.date >= ibis.literal(date.fromisoformat(start)))
        & (t.date <= ibis.literal(date.fromisoformat(end)))
    ).amount.sum()
    value = wh.to_arrow(expr)
    value = value.as_py() if hasattr(value, "as_py") else value
    return float(value or 0.0)


def proposal(
    wh: Warehouse,
    lift: MeasuredLift,
    *,
    channel: str | None,
    channels: tuple[str, ...] | list[str],
    spend: float | None = None,
) -> dict[str, Any]:
    """The lift as a return on ``channel``'s spend in the test's period: what accepting it would store."""
    chosen = channel or lift.channel
    if not chosen:
        raise InvalidInput(
            f"{lift.source} does not say which channel it tested (field: --channel)",
            hint=f"pass --channel with one of the model's channels: {', '.join(channels)}",
            field="channel",
        )
    if chosen not in channels:
        raise InvalidInput(
            f"channel {chosen!r} is not in the marketing-mix model (field: --channel)",
            hint=f"the model's channels: {', '.join(channels)}",
            field="channel",
        )
    if spend is None:
        spend = channel_spend(wh, chosen, lift.start, lift.end)
        if not spend > 0:
            raise InvalidInput(
                f"no spend on {chosen!r} is recorded between {lift.start} and {lift.end} (field: --spend)",
                hint="pass --spend with what the channel cost the test's treated units in that period",
                field="spend",
            )
    elif not (math.isfinite(spend) and spend > 0):
        raise InvalidInput(f"--spend {spend} must be a positive amount", hint="the channel's spend in the test")
    z = _z(lift.level)
    roi, roi_se = lift.incremental / spend, lift.se / spend
    return {
        "source": lift.source,
        "channel": chosen,
        "period": {"start": lift.start, "end": lift.end},
        "metric": lift.metric,
        "units": lift.units,
        "lift": {"estimate": lift.incremental, "low": lift.low, "high": lift.high, "se": lift.se, "level": lift.level},
        "spend": float(spend),
        "roi": roi,
        "roi_se": roi_se,
        "roi_interval": {"low": roi - z * roi_se, "high": roi + z * roi_se, "level": lift.level},
        "details": lift.details,
    }


def _z(level: float) -> float:
    return NormalDist().inv_cdf(0.5 + level / 2)


def _rows(items: list[dict[str, Any]]) -> pa.Table:
    return pa.Table.from_pylist(items, schema=schema.MMM_CALIBRATIONS.schema.to_pyarrow())


def accept(wh: Warehouse, prop: dict[str, Any], *, by: str) -> dict[str, Any]:
    """Store ``prop`` (from :func:`proposal`) as accepted by ``by`` (``cli:<user>``, ``key:<name>``)."""
    with wh.write():  # the duplicate check and the insert under one lock
        t = wh.table(TABLE)
        same = t.filter((t.source == prop["source"]) & (t.channel == prop["channel"]) & (t.status == "accepted"))
        existing = wh.to_arrow(same.select("calibration_id")).column("calibration_id").to_pylist()
        if existing:
            raise AlreadyExists(
                f"{prop['source']} on {prop['channel']} is already accepted as {existing[0]}",
                hint=f"withdraw it first: `touchpoint mmm calibrations withdraw {existing[0]}`",
            )
        row = {
            "calibration_id": f"cal-{uuid.uuid4().hex[:12]}",
            "source": prop["source"],
            "channel": prop["channel"],
            "period_start": date.fromisoformat(prop["period"]["start"]),
            "period_end": date.fromisoformat(prop["period"]["end"]),
            "metric": prop.get("metric"),
            "units": prop.get("units"),
            "lift": prop["lift"]["estimate"],
            "lift_low": prop["lift"]["low"],
            "lift_high": prop["lift"]["high"],
            "lift_se": prop["lift"]["se"],
            "level": prop["lift"]["level"],
            "spend": prop["spend"],
            "roi": prop["roi"],
            "roi_se": prop["roi_se"],
            "status": "accepted",
            "accepted_by": by,
            "accepted_at": utcnow(),
            "withdrawn_by": None,
            "withdrawn_at": None,
            "details": json.dumps(prop.get("details") or {}, default=str, sort_keys=True),
        }
        wh.append(TABLE, _rows([row]))
    return _public(row)


def _public(row: dict[str, Any]) -> dict[str, Any]:
    out = dict(row)
    for k in ("period_start", "period_end", "accepted_at", "withdrawn_at"):
        if out.get(k) is not None:
            out[k] = out[k].isoformat()
    out["details"] = json.loads(out["details"]) if out.get("details") else {}
    return out


def list_calibrations(wh: Warehouse, *, withdrawn: bool = False) -> list[dict[str, Any]]:
    """Stored calibrations, oldest first; withdrawn ones too with ``withdrawn``."""
    t = wh.table(TABLE)
    if not withdrawn:
        t = t.filter(t.status == "accepted")
    rows = wh.to_arrow(t.order_by([t.accepted_at, t.calibration_id])).to_pylist()
    return [_public(r) for r in rows]


def get(wh: Warehouse, calibration_id: str) -> dict[str, Any]:
    t = wh.table(TABLE)
    rows = wh.to_arrow(t.filter(t.calibration_id == calibration_id)).to_pylist()
    if not rows:
        raise NotFound(
            f"no calibration {calibration_id!r} (field: calibration_id)",
            hint="`touchpoint mmm calibrations list` shows them",
        )
    return _public(rows[0])


def withdraw(wh: Warehouse, calibration_id: str, *, by: str) -> dict[str, Any]:
    """Stop using a calibration from the next fit on (the row stays, marked withdrawn, with who and when)."""
    with wh.write() as tx:
        row = get(wh, calibration_id)
        if row["status"] == "withdrawn":
            raise InvalidInput(
                f"calibration {calibration_id} was already withdrawn at {row['withdrawn_at']} by {row['withdrawn_by']}",
                hint="`touchpoint mmm calibrations list --withdrawn` shows it",
            )
        at = utcnow()
        values = {"status": "withdrawn", "withdrawn_by": by, "withdrawn_at": at}
        tx.update(TABLE, values, key="calibration_id", value=calibration_id)
    return row | {"status": "withdrawn", "withdrawn_by": by, "withdrawn_at": at.isoformat()}


def as_model_input(row: dict[str, Any]) -> LiftCalibration:
    return LiftCalibration(
        channel=row["channel"],
        start=row["period_start"],
        end=row["period_end"],
        roi=row["roi"],
        roi_se=row["roi_se"],
        source=row["source"],
        calibration_id=row["calibration_id"],
    )


def active(wh: Warehouse) -> tuple[LiftCalibration, ...]:
    """Every accepted, not withdrawn calibration, as the model's input (oldest first)."""
    return tuple(as_model_input(r) for r in list_calibrations(wh))


def describe(cal: LiftCalibration) -> dict[str, Any]:
    return asdict(cal)
