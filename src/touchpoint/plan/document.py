"""A marketing plan as a document: a goal, the behaviour changes that should reach it, the tactics that
should cause them. Read from JSON (or a dict), checked field by field, with errors naming the field.

    {"id": "grow-2027", "name": "Repeat revenue 2027",
     "goal": {"metric": "revenue", "baseline": 1200000, "change": 0.15, "deadline": "2027Q2"},
     "behaviour_changes": [
       {"id": "repeat", "audience": "first-time buyers", "behaviour": "repeat purchase rate",
        "from": 0.18, "to": 0.24, "people": 20000, "value_per_unit": 95.0}],
     "tactics": [
       {"id": "winback-email", "kind": "experiment", "behaviour_change": "repeat",
        "expected": {"effect": 0.03, "low": 0.01, "high": 0.05, "source": "last year's test"},
        "cost": 4000, "experiment": "email-winback-2026"}]}

A behaviour change adds ``people x (to - from) x value_per_unit`` to the goal's metric (value_per_unit:
what one person's unit of the behaviour is worth in the goal's metric, e.g. the revenue of a repeat
buyer). A tactic's expected effect is in the behaviour's own units (e.g. +0.03 on a rate). The audience
is a name in plain text until audiences are linked.

>>> plan = Plan.from_dict({"id": "p", "goal": {"metric": "revenue", "baseline": 100, "target": 110},
...     "behaviour_changes": [{"id": "b", "audience": "all", "behaviour": "orders per person",
...         "from": 1.0, "to": 1.1, "people": 100, "value_per_unit": 1.0}], "tactics": []})
>>> plan.goal.target, plan.behaviour_changes[0].contribution
(110.0, 10.000000000000009)
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, field
from typing import Any

from touchpoint.errors import InvalidInput
from touchpoint.plan.surveys import quarter_bounds

TACTIC_KINDS = ("automation", "experiment", "budget", "content", "audience")
ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
HINT = "see docs/plan.md for the plan document"


def _obj(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise InvalidInput(f"{where} must be an object, got {type(value).__name__}", hint=HINT)
    return value


def _num(d: dict[str, Any], key: str, where: str, *, required: bool = True, positive: bool = False) -> float | None:
    value = d.get(key)
    if value is None:
        if required:
            raise InvalidInput(f"{where}.{key} is missing", hint=HINT)
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InvalidInput(f"{where}.{key} must be a finite number, got {value!r}", hint=HINT)
    if positive and value <= 0:
        raise InvalidInput(f"{where}.{key} must be positive, got {value!r}", hint=HINT)
    return float(value)


def _text(d: dict[str, Any], key: str, where: str, *, required: bool = True, limit: int = 500) -> str:
    value = d.get(key)
    if value in (None, "") and not required:
        return ""
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput(f"{where}.{key} must be a non-empty text", hint=HINT)
    if len(value) > limit:
        raise InvalidInput(f"{where}.{key} is longer than {limit} characters", hint=HINT)
    return value.strip()


def _id(d: dict[str, Any], where: str) -> str:
    value = _text(d, "id", where, limit=64)
    if not ID.match(value):
        raise InvalidInput(
            f"{where}.id {value!r} may hold letters, digits, '_', '.' and '-' only (64 at most)", hint=HINT
        )
    return value


@dataclass
class Goal:
    metric: str
    baseline: float
    target: float
    deadline: str | None = None
    description: str = ""

    @property
    def gap(self) -> float:
        return self.target - self.baseline

    @classmethod
    def from_dict(cls, d: Any) -> Goal:
        d = _obj(d, "goal")
        baseline = _num(d, "baseline", "goal")
        assert baseline is not None
        target = _num(d, "target", "goal", required=False)
        change = _num(d, "change", "goal", required=False)
        if (target is None) == (change is None):
            raise InvalidInput("goal needs exactly one of target (a value) or change (e.g. 0.15 for +15%)", hint=HINT)
        deadline = d.get("deadline")
        if deadline is not None:
            if not isinstance(deadline, str):
                raise InvalidInput("goal.deadline must be a quarter like 2027Q2", hint=HINT)
            quarter_bounds(deadline)
            deadline = deadline.strip().upper()
        return cls(
            metric=_text(d, "metric", "goal", limit=100),
            baseline=baseline,
            target=target if target is not None else baseline * (1 + float(change or 0.0)),
            deadline=deadline,
            description=_text(d, "description", "goal", required=False),
        )


@dataclass
class BehaviourChange:
    id: str
    audience: str
    behaviour: str
    from_: float
    to: float
    people: float
    value_per_unit: float

    @property
    def change(self) -> float:
        return self.to - self.from_

    @property
    def contribution(self) -> float:
        """What the change adds to the goal's metric: people x (to - from) x value per unit."""
        return self.people * self.change * self.value_per_unit

    @classmethod
    def from_dict(cls, d: Any, where: str) -> BehaviourChange:
        d = _obj(d, where)
        return cls(
            id=_id(d, where),
            audience=_text(d, "audience", where, limit=200),
            behaviour=_text(d, "behaviour", where, limit=200),
            from_=_num(d, "from", where) or 0.0,
            to=_num(d, "to", where) or 0.0,
            people=_num(d, "people", where, positive=True) or 0.0,
            value_per_unit=_num(d, "value_per_unit", where) or 0.0,
        )

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["from"] = out.pop("from_")
        return out


@dataclass
class Expected:
    effect: float
    low: float
    high: float
    source: str = ""

    @classmethod
    def from_dict(cls, d: Any, where: str) -> Expected:
        d = _obj(d, where)
        effect = _num(d, "effect", where)
        assert effect is not None
        low = _num(d, "low", where, required=False)
        high = _num(d, "high", where, required=False)
        low = effect if low is None else low
        high = effect if high is None else high
        if not low <= effect <= high:
            raise InvalidInput(f"{where}: low <= effect <= high does not hold ({low}, {effect}, {high})", hint=HINT)
        return cls(effect, low, high, _text(d, "source", where, required=False))


@dataclass
class Tactic:
    id: str
    name: str
    kind: str
    behaviour_change: str
    expected: Expected
    cost: float = 0.0
    experiment: str | None = None  # an experiment or holdout key whose measured lift is this tactic's evidence
    audience: str = ""
    automation: str | None = None  # an automation whose holdout lift on its goal is this tactic's evidence

    @classmethod
    def from_dict(cls, d: Any, where: str) -> Tactic:
        d = _obj(d, where)
        kind = _text(d, "kind", where, limit=20)
        if kind not in TACTIC_KINDS:
            raise InvalidInput(f"{where}.kind {kind!r} is not known", hint=f"use one of: {', '.join(TACTIC_KINDS)}")
        experiment = d.get("experiment")
        if experiment is not None and (not isinstance(experiment, str) or not experiment.strip()):
            raise InvalidInput(f"{where}.experiment must be an experiment key", hint=HINT)
        automation = d.get("automation")
        if automation is not None and (not isinstance(automation, str) or not automation.strip()):
            raise InvalidInput(f"{where}.automation must be an automation's name", hint=HINT)
        if experiment is not None and automation is not None:
            raise InvalidInput(
                f"{where} names both an experiment and an automation",
                hint="give one source of evidence per tactic: the experiment, or the automation's holdout",
            )
        return cls(
            id=_id(d, where),
            name=_text(d, "name", where, required=False, limit=200) or str(d.get("id")),
            kind=kind,
            behaviour_change=_text(d, "behaviour_change", where, limit=64),
            expected=Expected.from_dict(d.get("expected"), f"{where}.expected"),
            cost=_num(d, "cost", where, required=False) or 0.0,
            experiment=experiment.strip() if isinstance(experiment, str) else None,
            audience=_text(d, "audience", where, required=False, limit=200),
            automation=automation.strip() if isinstance(automation, str) else None,
        )


@dataclass
class Plan:
    id: str
    goal: Goal
    behaviour_changes: list[BehaviourChange]
    tactics: list[Tactic] = field(default_factory=list)
    name: str = ""

    @classmethod
    def from_dict(cls, d: Any) -> Plan:
        d = _obj(d, "plan")
        changes_in = d.get("behaviour_changes")
        if not isinstance(changes_in, list) or not changes_in:
            raise InvalidInput("plan.behaviour_changes must be a non-empty list", hint=HINT)
        tactics_in = d.get("tactics", [])
        if not isinstance(tactics_in, list):
            raise InvalidInput("plan.tactics must be a list", hint=HINT)
        if len(changes_in) > 100 or len(tactics_in) > 500:
            raise InvalidInput("a plan holds at most 100 behaviour changes and 500 tactics", hint=HINT)
        changes = [BehaviourChange.from_dict(c, f"behaviour_changes[{i}]") for i, c in enumerate(changes_in)]
        tactics = [Tactic.from_dict(t, f"tactics[{i}]") for i, t in enumerate(tactics_in)]
        for kind, items in (("behaviour change", changes), ("tactic", tactics)):
            seen: set[str] = set()
            for item in items:
                if item.id in seen:
                    raise InvalidInput(f"two {kind}s have the id {item.id!r}", hint="give each its own id")
                seen.add(item.id)
        known = {c.id for c in changes}
        for i, t in enumerate(tactics):
            if t.behaviour_change not in known:
                raise InvalidInput(
                    f"tactics[{i}].behaviour_change {t.behaviour_change!r} is not a behaviour change of the plan",
                    hint=f"use one of: {', '.join(sorted(known))}",
                )
        plan_id = _id(d, "plan")
        return cls(
            id=plan_id,
            goal=Goal.from_dict(d.get("goal")),
            behaviour_changes=changes,
            tactics=tactics,
            name=_text(d, "name", "plan", required=False, limit=200) or plan_id,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "goal": asdict(self.goal),
            "behaviour_changes": [c.to_dict() for c in self.behaviour_changes],
            "tactics": [asdict(t) for t in self.tactics],
        }
