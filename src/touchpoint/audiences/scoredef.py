"""Lead score definitions: fit rules (audience conditions), engagement rules (events with a half-life),
group caps, a ceiling, bands and lifecycle stages. Errors name the JSON path, as for audiences.

>>> s = parse_score({"fit": [{"when": {"trait": "country", "eq": "SE"}, "points": 10}],
...                  "engagement": [{"event": "Email Opened", "points": 5, "half_life_days": 14, "group": "email"}],
...                  "caps": {"email": 30}, "ceiling": 100,
...                  "bands": [{"name": "cold", "min": 0}, {"name": "hot", "min": 60}]})
>>> [r.name for r in s.fit + s.engagement], s.caps, [b.name for b in s.bands]
(['fit[0]', 'engagement[0]'], {'email': 30.0}, ['cold', 'hot'])
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from touchpoint.audiences import definition as d
from touchpoint.audiences.definition import bad

DEFAULT_STAGES = ("subscriber", "lead", "marketing-qualified", "sales-qualified", "customer")


@dataclass(frozen=True)
class FitRule:
    name: str
    when: d.Node
    points: float
    group: str


@dataclass(frozen=True)
class EngagementRule:
    """Each matching event adds ``points x 0.5 ** (age in days / half_life_days)``."""

    name: str
    step: d.Step
    points: float
    half_life_days: float
    within_days: int | None
    group: str


@dataclass(frozen=True)
class Band:
    name: str
    min: float


@dataclass(frozen=True)
class Stage:
    """A lifecycle stage, earned when ``when`` holds and the points reach ``min_points`` (both optional)."""

    name: str
    when: d.Node | None = None
    min_points: float | None = None


@dataclass(frozen=True)
class ScoreDefinition:
    fit: list[FitRule]
    engagement: list[EngagementRule]
    caps: dict[str, float] = field(default_factory=dict)
    ceiling: float | None = None
    bands: list[Band] = field(default_factory=list)
    stages: list[Stage] = field(default_factory=list)


def _number(path: str, v: Any, *, positive: bool = False) -> float:
    if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v) or abs(v) > 1e9:
        raise bad(path, f"expected a number, got {v!r}")
    if positive and v <= 0:
        raise bad(path, f"expected a number above 0, got {v!r}")
    return float(v)


def _keys(path: str, obj: Any, allowed: tuple[str, ...], what: str) -> dict[str, Any]:
    if not isinstance(obj, dict):
        raise bad(path, f"{what} is a JSON object")
    extra = [k for k in obj if k not in allowed]
    if extra:
        raise bad(path, f"unknown key {extra[0]!r} in {what} (allowed: {', '.join(allowed)})")
    return obj


def _list(path: str, v: Any) -> list[Any]:
    if v is None:
        return []
    if not isinstance(v, list) or len(v) > 200:
        raise bad(path, "expected a list (at most 200 items)")
    return v


def parse_score(obj: Any) -> ScoreDefinition:
    """Validate a score definition (see docs/audiences.md, Lead scoring)."""
    _keys("$", obj, ("fit", "engagement", "caps", "ceiling", "bands", "stages"), "a score definition")
    names: set[str] = set()

    def name_of(path: str, rule: dict[str, Any], default: str) -> str:
        name = rule.get("name", default)
        if not isinstance(name, str) or not name or len(name) > 100 or name in names:
            raise bad(f"{path}.name", f"rule names are unique non-empty strings, got {name!r}")
        names.add(name)
        return name

    def group_of(path: str, rule: dict[str, Any], default: str) -> str:
        group = rule.get("group", default)
        if not isinstance(group, str) or not group:
            raise bad(f"{path}.group", f"a group is a non-empty string, got {group!r}")
        return group

    fit = []
    for i, rule in enumerate(_list("$.fit", obj.get("fit"))):
        path = f"$.fit[{i}]"
        _keys(path, rule, ("name", "when", "points", "group"), "a fit rule")
        if "when" not in rule or "points" not in rule:
            raise bad(path, "a fit rule needs when (a condition) and points")
        try:
            when = d.parse(rule["when"])
        except d.InvalidDefinition as exc:
            raise bad(f"{path}.when{(exc.path or '$')[1:]}", exc.message.split(": ", 1)[-1]) from None
        fit.append(
            FitRule(
                name_of(path, rule, f"fit[{i}]"),
                when,
                _number(f"{path}.points", rule["points"]),
                group_of(path, rule, "fit"),
            )
        )
    engagement = []
    for i, rule in enumerate(_list("$.engagement", obj.get("engagement"))):
        path = f"$.engagement[{i}]"
        allowed = ("name", "event", "where", "points", "half_life_days", "within_days", "group")
        _keys(path, rule, allowed, "an engagement rule")
        if "event" not in rule or "points" not in rule:
            raise bad(path, "an engagement rule needs event and points (and half_life_days, default 30)")
        try:
            step = d.parse({"event": rule["event"], **({"where": rule["where"]} if "where" in rule else {})}).step  # type: ignore[union-attr]
        except d.InvalidDefinition as exc:
            raise bad(f"{path}{(exc.path or '$')[1:]}", exc.message.split(": ", 1)[-1]) from None
        within = rule.get("within_days")
        engagement.append(
            EngagementRule(
                name_of(path, rule, f"engagement[{i}]"),
                step,
                _number(f"{path}.points", rule["points"]),
                _number(f"{path}.half_life_days", rule.get("half_life_days", 30), positive=True),
                None if within is None else d._days(f"{path}.within_days", within),
                group_of(path, rule, "engagement"),
            )
        )
    caps = {}
    raw_caps = obj.get("caps") or {}
    if not isinstance(raw_caps, dict):
        raise bad("$.caps", 'caps maps a group to its most points, e.g. {"email": 30}')
    groups = {r.group for r in fit} | {r.group for r in engagement}
    for group, cap in raw_caps.items():
        if group not in groups:
            raise bad(f"$.caps.{group}", f"no rule is in group {group!r} (groups: {', '.join(sorted(groups))})")
        caps[group] = _number(f"$.caps.{group}", cap, positive=True)
    ceiling = None if obj.get("ceiling") is None else _number("$.ceiling", obj["ceiling"], positive=True)
    bands = []
    for i, band in enumerate(_list("$.bands", obj.get("bands"))):
        _keys(f"$.bands[{i}]", band, ("name", "min"), "a band")
        if not isinstance(band.get("name"), str) or not band["name"]:
            raise bad(f"$.bands[{i}].name", "a band needs a name")
        bands.append(Band(band["name"], _number(f"$.bands[{i}].min", band.get("min"))))
    if [b.min for b in bands] != sorted({b.min for b in bands}):
        raise bad("$.bands", "bands go from the lowest min to the highest, each min different")
    stages = []
    raw_stages = obj.get("stages")
    for i, stage in enumerate(_list("$.stages", raw_stages) if raw_stages is not None else []):
        path = f"$.stages[{i}]"
        _keys(path, stage, ("name", "when", "min_points"), "a stage")
        if not isinstance(stage.get("name"), str) or not stage["name"]:
            raise bad(f"{path}.name", "a stage needs a name")
        stage_when: d.Node | None = None
        if "when" in stage:
            try:
                stage_when = d.parse(stage["when"])
            except d.InvalidDefinition as exc:
                raise bad(f"{path}.when{(exc.path or '$')[1:]}", exc.message.split(": ", 1)[-1]) from None
        low = None if stage.get("min_points") is None else _number(f"{path}.min_points", stage["min_points"])
        stages.append(Stage(stage["name"], stage_when, low))
    if len({s.name for s in stages}) != len(stages):
        raise bad("$.stages", "stage names must be different")
    if not fit and not engagement:
        raise bad("$", "a score needs at least one fit or engagement rule")
    return ScoreDefinition(fit, engagement, caps, ceiling, bands, stages)
