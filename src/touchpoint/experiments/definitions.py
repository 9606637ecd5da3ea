"""Experiment definitions, stored in the ``experiments`` table (declared in the warehouse schema).

An experiment has a ``key`` (what exposure events carry as ``experiment_id``), its variants and
weights, the control, its metrics, and a start and end. Holdouts are experiments of kind
"holdout" with the arms ``holdout`` (control) and ``treated``. Every change of weights is kept in
``weights_history``: units already exposed keep their arm (see :mod:`touchpoint.experiments.assignment`).

>>> from touchpoint.warehouse import Warehouse
>>> wh = Warehouse.open("duckdb://:memory:")
>>> exp = create_experiment(wh, Experiment("checkout-cta", variants=["control", "green"]))
>>> [e.key for e in list_experiments(wh)]
['checkout-cta']
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

import ibis
import pyarrow as pa

from touchpoint.errors import AlreadyExists, InvalidInput, NotFound
from touchpoint.experiments.metrics import Metric
from touchpoint.warehouse import Warehouse, schema
from touchpoint.warehouse.clock import utcnow

TABLE = schema.EXPERIMENTS.name
KEY_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$")
UNITS = ("user_id", "anonymous_id", "any", "customer")
KINDS = ("experiment", "holdout")
STATUSES = ("draft", "running", "stopped")

EXPERIMENTS = schema.EXPERIMENTS


_now = utcnow  # the warehouse's clock (touchpoint.warehouse.clock)


@dataclass
class Experiment:
    """One experiment (or holdout) definition."""

    key: str
    variants: list[str] = field(default_factory=lambda: ["control", "treatment"])
    weights: list[float] | None = None
    control: str | None = None
    metrics: list[Metric] = field(default_factory=list)
    name: str | None = None
    kind: str = "experiment"
    status: str = "running"
    description: str | None = None
    unit: str = "customer"  # the customer rule (touchpoint.identity.people); "any" for raw ids
    start_at: datetime | None = None
    end_at: datetime | None = None
    weights_history: list[dict[str, Any]] = field(default_factory=list)
    created_at: datetime | None = None
    updated_at: datetime | None = None

    def __post_init__(self) -> None:
        if not KEY_PATTERN.match(self.key or ""):
            raise InvalidInput(
                f"experiment key {self.key!r} is not valid",
                hint="use 1-128 letters, digits, '_', '-', '.', ':' starting with a letter or digit",
            )
        self.variants = [str(v) for v in self.variants]
        if len(self.variants) < 2 or len(set(self.variants)) != len(self.variants):
            raise InvalidInput(
                f"experiment {self.key!r}: variants {self.variants} must be at least two distinct names",
                hint="e.g. --variant control --variant treatment",
            )
        if self.weights is None:
            self.weights = [1 / len(self.variants)] * len(self.variants)
        self.weights = check_weights(self.weights, len(self.variants))
        self.control = self.control or self.variants[0]
        if self.control not in self.variants:
            raise InvalidInput(
                f"experiment {self.key!r}: control {self.control!r} is not a variant",
                hint=f"use one of {self.variants}",
            )
        for name, value, allowed in (
            ("unit", self.unit, UNITS),
            ("kind", self.kind, KINDS),
            ("status", self.status, STATUSES),
        ):
            if value not in allowed:
                raise InvalidInput(
                    f"experiment {self.key!r}: {name} {value!r} is not known", hint=f"use one of {allowed}"
                )
        if self.start_at and self.end_at and self.end_at <= self.start_at:
            raise InvalidInput(
                f"experiment {self.key!r}: end {self.end_at} is not after start {self.start_at}",
                hint="give an end after the start",
            )
        self.metrics = [m if isinstance(m, Metric) else Metric.from_dict(m) for m in self.metrics]
        names = [m.name for m in self.metrics]
        if len(set(names)) != len(names):
            raise InvalidInput(f"experiment {self.key!r}: metric names repeat: {names}", hint="name each once")

    @property
    def weight_map(self) -> dict[str, float]:
        return dict(zip(self.variants, self.weights or [], strict=True))

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["metrics"] = [m.to_dict() for m in self.metrics]
        return out

    def to_row(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "name": self.name,
            "kind": self.kind,
            "status": self.status,
            "description": self.description,
            "variants": json.dumps(self.variants),
            "weights": json.dumps(self.weights),
            "control": self.control,
            "metrics": json.dumps([m.to_dict() for m in self.metrics]),
            "unit": self.unit,
            "start_at": self.start_at,
            "end_at": self.end_at,
            "weights_history": json.dumps(self.weights_history, default=str),
            "created_at": self.created_at,
            "updated_at": self.updated_at,
        }

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Experiment:
        return cls(
            key=row["key"],
            name=row.get("name"),
            kind=row.get("kind") or "experiment",
            status=row.get("status") or "running",
            description=row.get("description"),
            variants=json.loads(row["variants"]),
            weights=json.loads(row["weights"]),
            control=row.get("control"),
            metrics=[Metric.from_dict(m) for m in json.loads(row.get("metrics") or "[]")],
            unit=row.get("unit") or "any",
            start_at=row.get("start_at"),
            end_at=row.get("end_at"),
            weights_history=json.loads(row.get("weights_history") or "[]"),
            created_at=row.get("created_at"),
            updated_at=row.get("updated_at"),
        )


def check_weights(weights: list[float], n_variants: int) -> list[float]:
    """Weights normalised to sum to 1; each must be >= 0 and one per variant."""
    try:
        w = [float(x) for x in weights]
    except (TypeError, ValueError):
        raise InvalidInput(f"weights {weights!r} must be numbers", hint="e.g. --weights 50,50") from None
    if len(w) != n_variants:
        raise InvalidInput(
            f"{len(w)} weights for {n_variants} variants",
            hint="give one weight per variant, in the same order",
        )
    if any(x < 0 or x != x for x in w) or sum(w) <= 0:
        raise InvalidInput(f"weights {w} must be >= 0 and not all 0", hint="e.g. 50,50 or 0.9,0.1")
    total = sum(w)
    return [x / total for x in w]


def _write(wh: Warehouse, exp: Experiment) -> None:
    rows = pa.Table.from_pylist([exp.to_row()], schema=EXPERIMENTS.schema.to_pyarrow())
    wh.upsert(TABLE, rows, EXPERIMENTS.key)


def create_experiment(wh: Warehouse, exp: Experiment, *, replace: bool = False) -> Experiment:
    """Store a new definition; an existing key is refused unless ``replace``."""
    with wh.write():  # the check and the write under one lock: two creates of one key cannot both pass
        if not replace and _find(wh, exp.key) is not None:
            raise AlreadyExists(
                f"an experiment with key {exp.key!r} exists",
                hint="choose another key, or `touchpoint experiment list` to see it",
            )
        now = _now()
        exp.created_at = exp.created_at or now
        exp.updated_at = now
        exp.start_at = exp.start_at or (now if exp.status == "running" else None)
        if not exp.weights_history:
            exp.weights_history = [{"at": (exp.start_at or now).isoformat(), "weights": exp.weights}]
        _write(wh, exp)
    return exp


def _find(wh: Warehouse, key: str) -> Experiment | None:
    t = wh.table(TABLE)
    rows = wh.to_arrow(t.filter(t.key == key)).to_pylist()
    return Experiment.from_row(rows[0]) if rows else None


def get_experiment(wh: Warehouse, key: str) -> Experiment:
    exp = _find(wh, key)
    if exp is None:
        raise NotFound(
            f"no experiment with key {key!r}",
            hint="`touchpoint experiment list` shows them; `touchpoint experiment create` makes one",
        )
    return exp


def list_experiments(wh: Warehouse, *, kind: str | None = None) -> list[Experiment]:
    """All definitions, newest first (``kind`` "experiment" or "holdout" to filter)."""
    t = wh.table(TABLE)
    if kind is not None:
        t = t.filter(t.kind == kind)
    rows = wh.to_arrow(t.order_by([ibis.desc(t.created_at), t.key])).to_pylist()
    return [Experiment.from_row(r) for r in rows]


def update_weights(wh: Warehouse, key: str, weights: list[float]) -> Experiment:
    """Change an experiment's weights from now on; units already exposed keep their arm."""
    with wh.write():  # read, change and write back under the write lock
        exp = get_experiment(wh, key)
        if exp.kind == "holdout":
            raise InvalidInput(
                f"{key!r} is a holdout; its share cannot change without breaking its comparison",
                hint="create a new holdout instead",
            )
        exp.weights = check_weights(weights, len(exp.variants))
        exp.updated_at = _now()
        exp.weights_history.append({"at": exp.updated_at.isoformat(), "weights": exp.weights})
        _write(wh, exp)
        return exp


def set_status(wh: Warehouse, key: str, status: str, *, at: datetime | None = None) -> Experiment:
    """Start (``running``) or stop an experiment; stopping sets ``end_at``."""
    with wh.write():  # read, change and write back under the write lock
        exp = get_experiment(wh, key)
        if status not in STATUSES:
            raise InvalidInput(f"status {status!r} is not known", hint=f"use one of {STATUSES}")
        exp.status = status
        now = at or _now()
        if status == "running" and exp.start_at is None:
            exp.start_at = now
        if status == "stopped":
            exp.end_at = now
        exp.updated_at = _now()
        _write(wh, exp)
        return exp
