"""The audience definition language: JSON in, typed nodes out, every error naming the bad node's path.

A definition is one condition; conditions nest with ``all``/``any``/``not``. The same language is a
Python API: :func:`parse` turns JSON into these dataclasses and ``to_dict`` turns them back.

>>> d = parse({"all": [{"trait": "country", "eq": "SE"},
...                    {"event": "Product Viewed", "count": {"gte": 3}, "within_days": 7}]})
>>> d.items[1].count
Compare(ops=(('gte', 3),))
>>> to_dict(d) == {"all": [{"trait": "country", "eq": "SE"},
...                        {"event": "Product Viewed", "count": {"gte": 3}, "within_days": 7}]}
True
>>> try:
...     parse({"all": [{"trait": "country", "equals": "SE"}]})
... except InvalidDefinition as exc:
...     print(exc.path, "|", exc.message[:60])
$.all[0] | $.all[0]: unknown key 'equals' in a trait condition (allowed
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from touchpoint.errors import InvalidDefinition

VALUE_OPS = ("contains", "eq", "exists", "gt", "gte", "in", "lt", "lte", "neq")
DATE_OPS = ("before_days_ago", "within_days", "within_next_days")
NUMBER_OPS = ("eq", "neq", "gt", "gte", "lt", "lte")
WHERE_OPS = ("eq", "neq", "in", "gt", "gte", "lt", "lte", "contains", "exists")
KINDS = ("all", "any", "not", "trait", "prediction", "event", "sequence", "audience", "consent", "manual")
MAX_DAYS = 36_600
MAX_DEPTH = 32
MAX_NODES = 500
#: Predictions a condition can name: the column of ``predictions`` each reads, or a special source.
PREDICTIONS = (
    "p_alive",
    "clv",
    "expected_purchases",
    "expected_spend",
    "prob_purchase_window",
    "next_purchase_days",
    "next_purchase_at",
    "propensity",
    "replenishment_due_at",
)
FORWARD_DATES = ("next_purchase_at", "replenishment_due_at")


def bad(path: str, message: str, hint: str | None = None) -> InvalidDefinition:
    """The error for the node at ``path`` (``$.all[1]``): the message starts with the path."""
    return InvalidDefinition(
        f"{path}: {message}", hint=hint or "see docs/audiences.md for the definition language", path=path
    )


@dataclass(frozen=True)
class Compare:
    """One or more comparisons, all of which must hold: ``Compare((("gte", 3), ("lt", 10)))``."""

    ops: tuple[tuple[str, Any], ...]


@dataclass(frozen=True)
class Trait:
    """A trait of the profile (``profile_traits``) or a computed trait (a column of ``profiles``)."""

    trait: str
    ops: tuple[tuple[str, Any], ...]


@dataclass(frozen=True)
class Prediction:
    """A prediction: a column of ``predictions``, a propensity score (``event``, ``days``) or the
    earliest replenishment date (of ``product``, or of any product)."""

    prediction: str
    ops: tuple[tuple[str, Any], ...]
    event: str | None = None
    days: int | None = None
    product: str | None = None


@dataclass(frozen=True)
class Step:
    """One event kind, optionally filtered by its properties: ``where={"category": "lenses"}``."""

    event: str
    where: tuple[tuple[str, tuple[tuple[str, Any], ...]], ...] = ()


@dataclass(frozen=True)
class Event:
    """Behaviour: how often (``count``), how much (``sum`` of ``sum_property``), or when first/last."""

    step: Step
    within_days: int | None = None
    count: Compare | None = None
    sum_property: str | None = None
    sum: Compare | None = None
    first: tuple[tuple[str, Any], ...] | None = None
    last: tuple[tuple[str, Any], ...] | None = None


@dataclass(frozen=True)
class Sequence:
    """Each step strictly after the previous one, the last within ``within_days`` of the first."""

    steps: tuple[Step, ...]
    within_days: int


@dataclass(frozen=True)
class All:
    items: tuple[Any, ...]


@dataclass(frozen=True)
class AnyOf:
    items: tuple[Any, ...]


@dataclass(frozen=True)
class Not:
    item: Any


@dataclass(frozen=True)
class Audience:
    """Membership of another saved audience (its definition is inlined; cycles are refused)."""

    audience: str


@dataclass(frozen=True)
class Consent:
    """Consent for a purpose holds (:mod:`touchpoint.privacy.consent`: stated, or the purpose's default)."""

    purpose: str


@dataclass(frozen=True)
class Manual:
    """A manual audience: ``{"manual": true}`` as the whole definition. Its members are who was added
    (by an automation's ``add_to_audience`` step) and not removed since; a refresh changes nothing."""


Node = Trait | Prediction | Event | Sequence | All | AnyOf | Not | Audience | Consent | Manual


# -- parsing -------------------------------------------------------------------------------------------
def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def _scalar(v: Any) -> bool:
    return isinstance(v, str | bool) or _is_number(v)


def _days(path: str, v: Any) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v <= MAX_DAYS:
        raise bad(path, f"expected a whole number of days from 0 to {MAX_DAYS}, got {v!r}")
    return v


def _name(path: str, v: Any, what: str) -> str:
    if not isinstance(v, str) or not v.strip() or len(v) > 200:
        raise bad(path, f"expected {what} (a non-empty string of at most 200 characters), got {v!r}")
    return v


def _value_op(path: str, op: str, v: Any, *, dates: bool) -> Any:
    """Check one operator's operand; returns it normalised."""
    where = f"{path}.{op}"
    if op in DATE_OPS:
        if not dates:
            raise bad(where, f"{op} is not allowed here", hint=f"allowed: {', '.join(NUMBER_OPS)}")
        return _days(where, v)
    if op == "exists":
        if not isinstance(v, bool):
            raise bad(where, f"exists takes true or false, got {v!r}")
        return v
    if op == "in":
        if not isinstance(v, list) or not v or len(v) > 1000 or not all(_scalar(x) for x in v):
            raise bad(where, "in takes a non-empty list (at most 1000) of strings, numbers or booleans")
        kinds = {type(x) if not _is_number(x) else float for x in v}
        if len(kinds) > 1:
            raise bad(where, "in takes values of one type (all strings, all numbers or all booleans)")
        return tuple(v)
    if op == "contains":
        if not isinstance(v, str):
            raise bad(where, f"contains takes a string, got {v!r}")
        return v
    if op in ("gt", "gte", "lt", "lte"):
        if _is_number(v):
            return v
        if isinstance(v, str) and dates:
            try:
                datetime.fromisoformat(v)
            except ValueError:
                pass
            else:
                return v
        raise bad(where, f"{op} takes a number{' or an ISO date (2026-03-01)' if dates else ''}, got {v!r}")
    if not _scalar(v):
        raise bad(where, f"{op} takes a string, a number or a boolean, got {v!r}")
    return v


def _ops(path: str, obj: dict[str, Any], allowed: tuple[str, ...], *, dates: bool, kind: str) -> tuple:
    ops = []
    for key, v in obj.items():
        if key not in allowed:
            raise bad(path, f"unknown key {key!r} in {kind} (allowed: {', '.join(allowed)})")
        ops.append((key, _value_op(path, key, v, dates=dates)))
    if not ops:
        raise bad(path, f"{kind} needs an operator (one of: {', '.join(allowed)})")
    return tuple(ops)


def _compare(path: str, v: Any, what: str) -> Compare:
    if not isinstance(v, dict):
        raise bad(path, f'{what} takes an object like {{"gte": 3}} (operators: {", ".join(NUMBER_OPS)})')
    ops = _ops(path, v, NUMBER_OPS, dates=False, kind=f"a {what} comparison")
    for op, operand in ops:
        if not _is_number(operand):
            raise bad(f"{path}.{op}", f"{what} compares with a number, got {operand!r}")
    return Compare(ops)


def _split(path: str, obj: dict[str, Any], fixed: tuple[str, ...], ops: tuple[str, ...], kind: str) -> dict:
    extra = [k for k in obj if k not in fixed and k not in ops]
    if extra:
        raise bad(path, f"unknown key {extra[0]!r} in {kind} (allowed: {', '.join(ops + fixed[1:])})")
    return {k: v for k, v in obj.items() if k in ops}


def _step(path: str, obj: Any) -> Step:
    if not isinstance(obj, dict):
        raise bad(path, 'a step is an object like {"event": "Product Viewed"}')
    extra = [k for k in obj if k not in ("event", "where")]
    if extra:
        raise bad(path, f"unknown key {extra[0]!r} in a step (allowed: event, where)")
    return Step(_name(f"{path}.event", obj.get("event"), "an event name"), _where(f"{path}.where", obj.get("where")))


def _where(path: str, v: Any) -> tuple:
    if v is None:
        return ()
    if not isinstance(v, dict) or not v:
        raise bad(path, 'where takes an object of property filters, e.g. {"category": "lenses"}')
    out = []
    for prop, cond in v.items():
        _name(f"{path}.{prop}", prop, "a property name")
        if isinstance(cond, dict):
            ops = _ops(f"{path}.{prop}", cond, WHERE_OPS, dates=False, kind="a property filter")
        else:
            ops = (("eq", _value_op(f"{path}.{prop}", "eq", cond, dates=False)),)
        out.append((prop, ops))
    return tuple(out)


def _items(path: str, v: Any, key: str, depth: int, seen: list[int]) -> tuple:
    if not isinstance(v, list) or not v:
        raise bad(f"{path}.{key}", f"{key} takes a non-empty list of conditions")
    return tuple(_parse(f"{path}.{key}[{i}]", item, depth + 1, seen) for i, item in enumerate(v))


def _parse(path: str, obj: Any, depth: int, seen: list[int]) -> Node:
    seen[0] += 1
    if depth > MAX_DEPTH or seen[0] > MAX_NODES:
        raise bad(path, f"the definition is too large (at most {MAX_DEPTH} levels, {MAX_NODES} conditions)")
    if not isinstance(obj, dict):
        raise bad(path, f"a condition is a JSON object, got {type(obj).__name__}")
    kinds = [k for k in KINDS if k in obj and not (k == "event" and "prediction" in obj)]
    if len(kinds) != 1:
        what = "none" if not kinds else " and ".join(kinds)
        raise bad(
            path,
            f"a condition has exactly one of {', '.join(KINDS)} (found {what})",
        )
    kind = kinds[0]
    if kind == "manual":
        _split(path, obj, ("manual",), (), "a manual audience")
        if obj["manual"] is not True or path != "$":
            raise bad(path, '{"manual": true} is a whole definition, not a condition inside one')
        return Manual()
    if kind in ("all", "any"):
        _split(path, obj, (kind,), (), f"an {kind!r} condition")
        items = _items(path, obj[kind], kind, depth, seen)
        return All(items) if kind == "all" else AnyOf(items)
    if kind == "not":
        _split(path, obj, ("not",), (), "a 'not' condition")
        return Not(_parse(f"{path}.not", obj["not"], depth + 1, seen))
    if kind == "audience":
        _split(path, obj, ("audience",), (), "an audience condition")
        return Audience(_name(f"{path}.audience", obj["audience"], "an audience name"))
    if kind == "consent":
        _split(path, obj, ("consent",), (), "a consent condition")
        purpose = _name(f"{path}.consent", obj["consent"], "a purpose")
        from touchpoint.privacy import purposes

        known = purposes.purposes()
        if purpose not in known:
            raise bad(
                f"{path}.consent",
                f"{purpose!r} is not a consent purpose (known: {', '.join(sorted(known))})"[:300],
                hint="use a purpose of the consent_purposes setting (docs/privacy.md)",
            )
        return Consent(purpose)
    if kind == "trait":
        ops = _split(path, obj, ("trait",), VALUE_OPS + DATE_OPS, "a trait condition")
        name = _name(f"{path}.trait", obj["trait"], "a trait name")
        return Trait(name, _ops(path, ops, VALUE_OPS + DATE_OPS, dates=True, kind="a trait condition"))
    if kind == "prediction":
        fixed = ("prediction", "event", "days", "product")
        ops = _split(path, obj, fixed, NUMBER_OPS + DATE_OPS, "a prediction condition")
        name = obj["prediction"]
        if name not in PREDICTIONS:
            raise bad(f"{path}.prediction", f"unknown prediction {name!r} (allowed: {', '.join(PREDICTIONS)})")
        dated = name in FORWARD_DATES
        allowed = DATE_OPS if dated else NUMBER_OPS
        parsed = _ops(path, ops, allowed, dates=dated, kind=f"the prediction {name!r}")
        if not dated and not all(_is_number(v) for _, v in parsed):
            raise bad(path, f"the prediction {name!r} compares with numbers")
        event = days = product = None
        if name == "propensity":
            event = _name(f"{path}.event", obj.get("event"), "the event the propensity model predicts")
            days = _days(f"{path}.days", obj.get("days"))
        elif "event" in obj or "days" in obj:
            raise bad(path, "event and days belong to the prediction 'propensity' only")
        if "product" in obj:
            if name != "replenishment_due_at":
                raise bad(f"{path}.product", "product belongs to the prediction 'replenishment_due_at'")
            product = _name(f"{path}.product", obj["product"], "a product")
        return Prediction(name, parsed, event, days, product)
    if kind == "event":
        _split(path, obj, ("event", "where", "within_days", "count", "sum", "first", "last"), (), "an event condition")
        step = Step(_name(f"{path}.event", obj["event"], "an event name"), _where(f"{path}.where", obj.get("where")))
        within = None if obj.get("within_days") is None else _days(f"{path}.within_days", obj["within_days"])
        measures = [k for k in ("count", "sum", "first", "last") if k in obj]
        if len(measures) > 1:
            raise bad(path, f"an event condition has one of count, sum, first, last (found {', '.join(measures)})")
        measure = measures[0] if measures else "count"
        if measure == "count":
            count = _compare(f"{path}.count", obj["count"], "count") if "count" in obj else Compare((("gte", 1),))
            return Event(step, within, count=count)
        if measure == "sum":
            spec = obj["sum"]
            if not isinstance(spec, dict) or "property" not in spec:
                raise bad(f"{path}.sum", 'sum takes {"property": NAME, and operators like "gte": 100}')
            prop = _name(f"{path}.sum.property", spec["property"], "a property name")
            rest = {k: v for k, v in spec.items() if k != "property"}
            return Event(step, within, sum_property=prop, sum=_compare(f"{path}.sum", rest, "sum"))
        spec = obj[measure]
        if not isinstance(spec, dict):
            raise bad(f"{path}.{measure}", f'{measure} takes an object like {{"before_days_ago": 90}}')
        dops = _ops(f"{path}.{measure}", spec, (*DATE_OPS, "gt", "gte", "lt", "lte"), dates=True, kind=measure)
        return Event(step, within, first=dops if measure == "first" else None, last=dops if measure == "last" else None)
    # sequence
    _split(path, obj, ("sequence", "within_days"), (), "a sequence condition")
    steps = obj["sequence"]
    if not isinstance(steps, list) or not 2 <= len(steps) <= 10:
        raise bad(f"{path}.sequence", "a sequence takes a list of 2 to 10 steps")
    if "within_days" not in obj:
        raise bad(path, "a sequence needs within_days: the most days from its first step to its last")
    parsed_steps = tuple(_step(f"{path}.sequence[{i}]", s) for i, s in enumerate(steps))
    return Sequence(parsed_steps, _days(f"{path}.within_days", obj["within_days"]))


def parse(obj: Any) -> Node:
    """Validate a JSON definition and return its typed nodes.

    :class:`~touchpoint.errors.InvalidDefinition` names the bad node's path and what is allowed there."""
    return _parse("$", obj, 0, [0])


# -- back to JSON ----------------------------------------------------------------------------------------
def _ops_dict(ops: tuple) -> dict[str, Any]:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in ops}


def _step_dict(step: Step) -> dict[str, Any]:
    out: dict[str, Any] = {"event": step.event}
    if step.where:
        out["where"] = {
            p: (ops[0][1] if len(ops) == 1 and ops[0][0] == "eq" else _ops_dict(ops)) for p, ops in step.where
        }
    return out


def to_dict(node: Node) -> dict[str, Any]:
    """The JSON form of a definition (``parse(to_dict(d)) == d``)."""
    if isinstance(node, All):
        return {"all": [to_dict(i) for i in node.items]}
    if isinstance(node, AnyOf):
        return {"any": [to_dict(i) for i in node.items]}
    if isinstance(node, Not):
        return {"not": to_dict(node.item)}
    if isinstance(node, Audience):
        return {"audience": node.audience}
    if isinstance(node, Consent):
        return {"consent": node.purpose}
    if isinstance(node, Manual):
        return {"manual": True}
    if isinstance(node, Trait):
        return {"trait": node.trait, **_ops_dict(node.ops)}
    if isinstance(node, Prediction):
        out: dict[str, Any] = {"prediction": node.prediction}
        out.update(
            {k: v for k, v in (("event", node.event), ("days", node.days), ("product", node.product)) if v is not None}
        )
        return {**out, **_ops_dict(node.ops)}
    if isinstance(node, Sequence):
        return {"sequence": [_step_dict(s) for s in node.steps], "within_days": node.within_days}
    out = _step_dict(node.step)
    if node.within_days is not None:
        out["within_days"] = node.within_days
    if node.sum is not None:
        out["sum"] = {"property": node.sum_property, **_ops_dict(node.sum.ops)}
    elif node.first is not None:
        out["first"] = _ops_dict(node.first)
    elif node.last is not None:
        out["last"] = _ops_dict(node.last)
    elif node.count is not None:
        out["count"] = _ops_dict(node.count.ops)
    return out


def audiences_named(node: Node) -> list[str]:
    """The audiences a definition refers to, in order of appearance."""
    if isinstance(node, All | AnyOf):
        return [n for item in node.items for n in audiences_named(item)]
    if isinstance(node, Not):
        return audiences_named(node.item)
    if isinstance(node, Audience):
        return [node.audience]
    return []
