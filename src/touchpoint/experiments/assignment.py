"""Deterministic assignment of units to variants, exposure events, and persistent holdouts.

A unit's bucket is a number in [0, 1) from SHA-256 of ``"<experiment key>:<unit id>"``: the same unit
always gets the same bucket, independently in every experiment, with no state to store. The bucket
falls into one arm's share of [0, 1) (cumulative weights), so a new split sends *new* units to arms
in the new proportions. Units already exposed keep the arm they saw: :func:`assign` looks up their
first exposure before hashing ("sticky" assignment), so changing weights never moves a unit.

Exposures are Segment track events named "Experiment Viewed" with ``properties.experiment_id`` and
``properties.variation_id`` (Segment's and GrowthBook's convention), written through the collector's
own write path, so they are validated, deduplicated and kept like every other event.

Holdouts are long-lived experiments with the arms ``holdout`` (control) and ``treated``: automations
call :func:`in_holdout` before acting on a person and leave held-out people alone, then prove their
lift with the usual analysis.

>>> bucket("checkout-cta", "user-1") == bucket("checkout-cta", "user-1")
True
>>> choose_variant(0.3, ["control", "green"], [0.5, 0.5])
'control'
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

import numpy as np

from touchpoint.errors import InvalidInput
from touchpoint.experiments.definitions import Experiment, create_experiment, get_experiment
from touchpoint.experiments.metrics import EXPOSURE_EVENT, json_is, json_text, unit_column
from touchpoint.warehouse import Warehouse

HOLDOUT_ARMS = ("holdout", "treated")


def bucket(key: str, unit_id: str) -> float:
    """The unit's position in [0, 1) for experiment ``key`` (uniform, deterministic)."""
    digest = hashlib.sha256(f"{key}:{unit_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64


def buckets(key: str, unit_ids: Iterable[str]) -> np.ndarray:
    """:func:`bucket` for many units."""
    prefix = f"{key}:".encode()
    sha = hashlib.sha256
    return (
        np.array([int.from_bytes(sha(prefix + str(u).encode()).digest()[:8], "big") for u in unit_ids], dtype=float)
        / 2.0**64
    )


def choose_variant(position: float, variants: Sequence[str], weights: Sequence[float]) -> str:
    """The arm whose share of [0, 1) (in variant order, by cumulative weight) contains ``position``."""
    edges = np.cumsum(np.asarray(weights, dtype=float) / float(np.sum(weights)))
    index = int(np.searchsorted(edges, position, side="right"))
    return variants[min(index, len(variants) - 1)]


def choose_variants(positions: np.ndarray, variants: Sequence[str], weights: Sequence[float]) -> list[str]:
    edges = np.cumsum(np.asarray(weights, dtype=float) / float(np.sum(weights)))
    index = np.minimum(np.searchsorted(edges, positions, side="right"), len(variants) - 1)
    return [variants[i] for i in index]


def _unit_ids(units: str | Iterable[str]) -> list[str]:
    ids = [units] if isinstance(units, str) else [str(u) for u in units]
    bad = [u for u in ids if not u or not u.strip()]
    if bad:
        raise InvalidInput("a unit id is empty", hint="pass the user id (or anonymous id) of each unit")
    return ids


def previous_assignments(wh: Warehouse, exp: Experiment, unit_ids: list[str]) -> dict[str, str]:
    """Arms already seen by these units (their first exposure), from the event log."""
    if not unit_ids:
        return {}
    t = wh.table("events")  # not analytics: a unit keeps its arm whatever it consented to
    t = t.filter((t.type == "track") & (t.event == EXPOSURE_EVENT))
    t = t.mutate(
        _unit=unit_column(t, exp.unit),
        _var=json_text(t.properties["variation_id"]),
    )
    t = t.filter(json_is(t.properties["experiment_id"], exp.key) & t._unit.isin(unit_ids) & t._var.notnull())
    rows = wh.to_arrow(t.group_by("_unit").aggregate(v=t._var.argmin(t.timestamp))).to_pylist()
    return {r["_unit"]: r["v"] for r in rows}


def assign(wh: Warehouse, key: str, units: str | Iterable[str], *, sticky: bool = True) -> dict[str, str]:
    """The arm of each unit in experiment ``key``: its earlier arm if it was exposed (``sticky``),
    else the hash bucket under the current weights. Does not record an exposure."""
    exp = get_experiment(wh, key)
    ids = _unit_ids(units)
    known = previous_assignments(wh, exp, ids) if sticky else {}
    fresh = [u for u in ids if u not in known]
    out = dict(known)
    if fresh:
        out.update(zip(fresh, choose_variants(buckets(exp.key, fresh), exp.variants, exp.weights or []), strict=True))
    return {u: out[u] for u in ids}


def exposure_message(key: str, unit_id: str, variant: str, timestamp: datetime, *, unit: str = "any") -> dict[str, Any]:
    """The Segment track event that records one exposure."""
    msg: dict[str, Any] = {
        "type": "track",
        "event": EXPOSURE_EVENT,
        "properties": {"experiment_id": key, "variation_id": variant},
        "timestamp": timestamp.isoformat(),
    }
    msg["anonymousId" if unit == "anonymous_id" else "userId"] = unit_id
    return msg


def record_exposures(
    wh: Warehouse,
    key: str,
    exposures: Iterable[tuple[str, str, datetime]],
    *,
    source: str = "experiments",
) -> dict[str, int]:
    """Store exposures ``(unit_id, variant, when)`` as "Experiment Viewed" events. Idempotent."""
    from touchpoint.collect.store import write_messages

    exp = get_experiment(wh, key)
    allowed = set(exp.variants)

    def messages() -> Iterable[dict[str, Any]]:
        for unit_id, variant, when in exposures:
            if variant not in allowed:
                raise InvalidInput(
                    f"variant {variant!r} is not an arm of experiment {key!r}", hint=f"arms: {exp.variants}"
                )
            yield exposure_message(exp.key, str(unit_id), variant, when, unit=exp.unit)

    return write_messages(wh, messages(), source=source).to_dict()


def assign_and_expose(wh: Warehouse, key: str, units: Iterable[str], *, when: datetime | None = None) -> dict[str, str]:
    """Assign units and record their exposure now (or at ``when``).

    What an app calls when it shows a variant."""
    from touchpoint.collect.normalize import utcnow

    arms = assign(wh, key, units)
    at = when or utcnow()
    record_exposures(wh, key, [(u, v, at) for u, v in arms.items()])
    return arms


# -- holdouts ------------------------------------------------------------------------------------


def create_holdout(
    wh: Warehouse, key: str, share: float, *, description: str | None = None, metrics: list[Any] | None = None
) -> Experiment:
    """A persistent holdout keeping ``share`` (e.g. 0.05) of all units away from an automation."""
    if not 0 < share < 1:
        raise InvalidInput(f"holdout share {share!r} must be between 0 and 1", hint="e.g. 0.05 for 5%")
    exp = Experiment(
        key,
        variants=list(HOLDOUT_ARMS),
        weights=[share, 1 - share],
        control="holdout",
        kind="holdout",
        description=description,
        metrics=metrics or [],
    )
    return create_experiment(wh, exp)


def in_holdout(holdout: Experiment, unit_id: str) -> bool:
    """True if the unit belongs to the holdout group (pure: no warehouse access, safe per message)."""
    if holdout.kind != "holdout":
        raise InvalidInput(f"{holdout.key!r} is not a holdout", hint="create one with create_holdout()")
    return bucket(holdout.key, unit_id) < (holdout.weights or [0.0])[0]


def split_holdout(holdout: Experiment, unit_ids: Iterable[str]) -> tuple[list[str], list[str]]:
    """``(treated, held_out)`` for a batch of units: act on the first list only."""
    ids = _unit_ids(unit_ids)
    held = buckets(holdout.key, ids) < (holdout.weights or [0.0])[0]
    return [u for u, h in zip(ids, held, strict=True) if not h], [u for u, h in zip(ids, held, strict=True) if h]
