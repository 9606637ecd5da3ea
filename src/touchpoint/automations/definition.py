"""Automation definitions: JSON in, validated dataclasses out, with errors naming the field.

A definition has a trigger, steps, an optional exit goal, a holdout and a re-entry policy
(docs/automations.md). The issue's minimal definition is valid as written:

>>> a = parse({"name": "welcome", "trigger": {"event": "Signed Up"}, "holdout": 0.1,
...            "goal": {"event": "Order Completed", "within_days": 14},
...            "steps": [{"send_email": {"subject": "Welcome {{ traits.first_name }}", "text": "Hello!",
...                                      "purpose": "marketing_email"}}]})
>>> a.trigger.event, a.holdout, a.reentry.policy, a.steps[0].kind, a.goal.within_days
('Signed Up', 0.1, 'once', 'send_email', 14)
>>> try:
...     parse({**a.raw, "holdout": 0})
... except InvalidDefinition as exc:
...     print(exc.path, "-", exc.message)
$.holdout - $.holdout: a holdout of 0 leaves nothing to measure the automation against
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from touchpoint.automations import template
from touchpoint.errors import InvalidDefinition

NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
PURPOSE = re.compile(r"^[A-Za-z0-9_]{1,64}$")
TRANSACTIONAL = "transactional"  # the purpose exempt from the consent rule (receipts, password resets)
MAX_DEPTH = 24  # a definition nested deeper than this is refused before it is read (a fork adds 4 levels)
MAX_STEPS = 50
WHERE_OPS = ("eq", "ne", "in", "gt", "gte", "lt", "lte", "exists")
WAIT_UNITS = {"minutes": 60.0, "hours": 3600.0, "days": 86400.0}
DEFAULT_HOLDOUT = 0.1


def bad(path: str, message: str, hint: str | None = None) -> InvalidDefinition:
    return InvalidDefinition(f"{path}: {message}", hint=hint or "see docs/automations.md", path=path)


@dataclass(frozen=True)
class Schedule:
    """``every`` (seconds, anchored at the automation's creation) or ``cron`` (five fields, UTC)."""

    every: float | None = None
    cron: str | None = None


@dataclass(frozen=True)
class Trigger:
    """``{"event": NAME, "where": {...}}``, ``{"audience": NAME, "on": "enter"|"exit"}``,
    ``{"score": NAME, "band": BAND}``, ``{"before"|"after": DATE, "days": N}`` or
    ``{"schedule": {"every"|"cron": ..., "audience": NAME}}``."""

    event: str | None = None
    where: dict[str, Any] = field(default_factory=dict)
    audience: str | None = None
    on: str = "enter"
    score: str | None = None
    band: str | None = None
    date: str | None = None  # a prediction (next_purchase_at, replenishment_due_at) or a trait
    direction: str = "before"  # before | after the date
    days: int = 0
    product: str | None = None  # replenishment_due_at of one product
    schedule: Schedule | None = None

    @property
    def kind(self) -> str:
        if self.event is not None:
            return "event"
        if self.schedule is not None:
            return "schedule"
        if self.score is not None:
            return "score"
        if self.date is not None:
            return "date"
        return "audience"

    @property
    def clock(self) -> bool:
        """Fires with the clock (a date, a schedule), not with new events."""
        return self.kind in ("date", "schedule")


ACTIONS = ("send_email", "webhook", "hand_off", "set_trait", "add_to_audience", "remove_from_audience")
CONTROL = ("wait", "wait_until", "wait_for", "branch", "split")
STEP_KINDS = ACTIONS + CONTROL
LINEAR = ("send_email", "webhook", "wait")  # flows of only these are decided whole at entry
TIME_OF_DAY = re.compile(r"^([01][0-9]|2[0-3]):([0-5][0-9])$")


@dataclass(frozen=True)
class Step:
    """One step: an action (``send_email``, ``webhook``, ``hand_off``, ``set_trait``, ``add_to_audience``,
    ``remove_from_audience``; with a purpose where it contacts someone), a wait (``wait`` for ``seconds``,
    ``wait_until`` a local time, ``wait_for`` an event), or a fork (``branch``, ``split``) whose ``paths``
    are named lists of steps. ``index`` numbers every step of the flow depth-first (a ``hand_off`` takes two
    numbers: its webhook and its email), and is the step of the outbox key."""

    kind: str
    options: dict[str, Any]
    purpose: str | None = None
    seconds: float = 0.0
    index: int = -1
    paths: tuple[tuple[str, tuple[Step, ...]], ...] = ()
    condition: Any = None  # a branch's parsed audience condition


@dataclass(frozen=True)
class Goal:
    event: str
    within_days: int


@dataclass(frozen=True)
class Reentry:
    """``once`` (ever), ``every_time``, or ``once_per_days`` with ``days``."""

    policy: str = "once"
    days: int | None = None


@dataclass(frozen=True)
class Automation:
    name: str
    trigger: Trigger
    steps: tuple[Step, ...]
    goal: Goal | None = None
    holdout: float = DEFAULT_HOLDOUT
    allow_no_holdout: bool = False
    reentry: Reentry = field(default_factory=Reentry)
    description: str | None = None
    raw: dict[str, Any] = field(default_factory=dict, compare=False)

    def actions(self) -> list[tuple[int, Step, float]]:
        """``(step index, step, seconds after entry)`` of every action step (the durations of the plain waits
        before it add up; in a flow with forks, the first path's)."""
        out, delay = [], 0.0
        for step in self.walk():
            if step.kind == "wait":
                delay += step.seconds
            elif step.kind in ACTIONS:
                out.append((step.index, step, delay))
        return out

    def walk(self) -> list[Step]:
        """Every step, depth-first (the order of their indices)."""
        out: list[Step] = []

        def visit(steps: tuple[Step, ...]) -> None:
            for s in steps:
                out.append(s)
                for _, sub in s.paths:
                    visit(sub)

        visit(self.steps)
        return out

    @property
    def linear(self) -> bool:
        """Only sends and plain waits: every message is decided when the contact enters."""
        return all(s.kind in LINEAR for s in self.steps)

    def step(self, index: int) -> Step:
        """The step numbered ``index`` (a hand-off's email is its number + 1)."""
        for s in self.walk():
            if s.index == index or (s.kind == "hand_off" and s.index + 1 == index):
                return s
        raise KeyError(index)

    def successors(self) -> dict[int, int | None]:
        """Each step's next step once it is done: the next in its list, else the next after its fork."""
        nxt: dict[int, int | None] = {}

        def visit(steps: tuple[Step, ...], after: int | None) -> None:
            for i, s in enumerate(steps):
                follow = steps[i + 1].index if i + 1 < len(steps) else after
                nxt[s.index] = follow
                for _, sub in s.paths:
                    visit(sub, follow)

        visit(self.steps, None)
        return nxt

    def path_start(self, step: Step, name: str) -> int | None:
        """The first step of a fork's path ``name`` (the step after the fork when the path is empty)."""
        for n, sub in step.paths:
            if n == name and sub:
                return sub[0].index
        return self.successors()[step.index]

    def to_dict(self) -> dict[str, Any]:
        return dict(self.raw)


def _depth(value: Any, limit: int, path: str = "$") -> None:
    stack = [(value, 1, path)]
    while stack:
        item, level, where = stack.pop()
        if level > limit:
            raise bad(where, f"the definition is nested deeper than {limit} levels", hint="flatten it")
        if isinstance(item, dict):
            stack.extend((v, level + 1, f"{where}.{k}") for k, v in item.items())
        elif isinstance(item, list):
            stack.extend((v, level + 1, f"{where}[{i}]") for i, v in enumerate(item))


def _object(path: str, value: Any, allowed: tuple[str, ...], required: tuple[str, ...], what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise bad(path, f"{what} must be a JSON object, got {type(value).__name__}")
    unknown = [k for k in value if k not in allowed]
    if unknown:
        raise bad(
            f"{path}.{unknown[0]}", f"unknown key {unknown[0]!r} in {what}", hint=f"allowed: {', '.join(allowed)}"
        )
    missing = [k for k in required if k not in value]
    if missing:
        raise bad(f"{path}.{missing[0]}", f"{what} needs {missing[0]!r}")
    return value


def _text(path: str, value: Any, what: str, *, limit: int = 200) -> str:
    if not isinstance(value, str) or not value.strip():
        raise bad(path, f"{what} must be a non-empty string, got {value!r}"[:300])
    if len(value) > limit:
        raise bad(path, f"{what} is longer than {limit} characters")
    return value


def _int(path: str, value: Any, lo: int, hi: int, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise bad(path, f"{what} must be a whole number from {lo} to {hi}, got {value!r}"[:300])
    return value


def _purpose(path: str, value: Any) -> str:
    from touchpoint.privacy import purposes

    known = purposes.purposes()
    if not isinstance(value, str) or not PURPOSE.match(value) or (value != TRANSACTIONAL and value not in known):
        raise bad(
            path,
            f"purpose {value!r} is not a consent purpose"[:300],
            hint=f"use one of {', '.join(sorted(known))} (the consent_purposes setting), or 'transactional' "
            "for messages that need no consent (receipts, password resets)",
        )
    return value


def _where(path: str, value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise bad(path, 'where must be an object of property filters, e.g. {"plan": "pro"}')
    for prop, cond in value.items():
        at = f"{path}.{prop}"
        if not isinstance(prop, str) or not prop:
            raise bad(at, "a property name must be a non-empty string")
        if isinstance(cond, dict):
            if not cond:
                raise bad(at, f"an empty condition; use one of: {', '.join(WHERE_OPS)}")
            for op, operand in cond.items():
                if op not in WHERE_OPS:
                    raise bad(f"{at}.{op}", f"unknown operator {op!r}", hint=f"use one of: {', '.join(WHERE_OPS)}")
                if op == "in" and not isinstance(operand, list):
                    raise bad(f"{at}.in", "'in' takes a list of values")
                if op in ("gt", "gte", "lt", "lte") and (
                    isinstance(operand, bool) or not isinstance(operand, int | float | str)
                ):
                    raise bad(f"{at}.{op}", f"{op!r} compares with a number or a string, got {operand!r}"[:300])
                if op == "exists" and not isinstance(operand, bool):
                    raise bad(f"{at}.exists", "'exists' takes true or false")
        elif isinstance(cond, list):
            raise bad(at, 'a list is not a condition; use {"in": [...]}')
    return value


DURATION = re.compile(r"^([1-9][0-9]{0,5})([mhd])$")
DURATION_UNITS = {"m": 60.0, "h": 3600.0, "d": 86400.0}
CRON_FIELDS = (("minute", 0, 59), ("hour", 0, 23), ("day of month", 1, 31), ("month", 1, 12), ("day of week", 0, 6))


def cron_field(path: str, text: str, lo: int, hi: int, what: str) -> frozenset[int]:
    """One cron field (``*``, ``*/n``, ``a``, ``a-b``, ``a-b/n``, comma lists) as the set of values it allows.

    >>> sorted(cron_field("$", "*/20", 0, 59, "minute")), sorted(cron_field("$", "1-5", 0, 6, "day of week"))
    ([0, 20, 40], [1, 2, 3, 4, 5])
    """
    out: set[int] = set()
    for part in text.split(","):
        m = re.fullmatch(r"(\*|(\d+)(?:-(\d+))?)(?:/(\d+))?", part)
        if m is None:
            raise bad(
                path, f"the {what} field {text!r} is not a cron field"[:300], hint="e.g. 0 9 * * 1 (Mondays 09:00)"
            )
        step = int(m.group(4)) if m.group(4) else 1
        a, b = (lo, hi) if m.group(1) == "*" else (int(m.group(2)), int(m.group(3) or m.group(2)))
        if not lo <= a <= b <= hi or step < 1:
            raise bad(path, f"the {what} field {text!r} is outside {lo}-{hi}"[:300])
        out.update(range(a, b + 1, step))
    return frozenset(out)


def _schedule(path: str, value: Any) -> tuple[Schedule, str]:
    obj = _object(path, value, ("every", "cron", "audience"), ("audience",), "a schedule")
    audience = _text(f"{path}.audience", obj["audience"], "the audience's name", limit=64)
    if ("every" in obj) == ("cron" in obj):
        raise bad(path, "a schedule takes one of every or cron", hint='e.g. {"every": "7d"} or {"cron": "0 9 * * 1"}')
    if "every" in obj:
        m = DURATION.match(obj["every"]) if isinstance(obj["every"], str) else None
        seconds = int(m.group(1)) * DURATION_UNITS[m.group(2)] if m else 0.0
        if not 3600 <= seconds <= 366 * 86400:
            raise bad(
                f"{path}.every",
                f"every {obj['every']!r} is not a period from 1 hour to 366 days"[:300],
                hint='a number and m, h or d: "60m", "12h", "7d"',
            )
        return Schedule(every=seconds), audience
    cron = _text(f"{path}.cron", obj["cron"], "the cron expression")
    fields = cron.split()
    if len(fields) != 5:
        raise bad(
            f"{path}.cron", f"{cron!r} has {len(fields)} fields, not 5"[:300], hint="minute hour day month weekday"
        )
    for text, (what, lo, hi) in zip(fields, CRON_FIELDS, strict=True):
        cron_field(f"{path}.cron", text, lo, hi, what)
    return Schedule(cron=" ".join(fields)), audience


def _trigger(value: Any) -> Trigger:
    path = "$.trigger"
    if isinstance(value, dict) and "schedule" in value:
        obj = _object(path, value, ("schedule",), ("schedule",), "a schedule trigger")
        sched, audience = _schedule(f"{path}.schedule", obj["schedule"])
        return Trigger(audience=audience, schedule=sched)
    if isinstance(value, dict) and "score" in value:
        obj = _object(path, value, ("score", "band"), ("score", "band"), "a score band trigger")
        return Trigger(
            score=_text(f"{path}.score", obj["score"], "the score's name", limit=64),
            band=_text(f"{path}.band", obj["band"], "the band's name", limit=64),
        )
    if isinstance(value, dict) and ("before" in value or "after" in value):
        if "before" in value and "after" in value:
            raise bad(path, "a date trigger takes one of before or after")
        direction = "before" if "before" in value else "after"
        obj = _object(path, value, (direction, "days", "product"), (direction, "days"), "a date trigger")
        date = _text(f"{path}.{direction}", obj[direction], "the date's prediction or trait", limit=64)
        product = None
        if "product" in obj:
            if date != "replenishment_due_at":
                raise bad(f"{path}.product", "product belongs to the date replenishment_due_at")
            product = _text(f"{path}.product", obj["product"], "the product", limit=200)
        return Trigger(
            date=date, direction=direction, days=_int(f"{path}.days", obj["days"], 0, 366, "days"), product=product
        )
    if isinstance(value, dict) and "audience" in value:
        obj = _object(path, value, ("audience", "on"), ("audience",), "an audience trigger")
        name = _text(f"{path}.audience", obj["audience"], "the audience's name", limit=64)
        on = obj.get("on", "enter")
        if on not in ("enter", "exit"):
            raise bad(f"{path}.on", f"'on' must be 'enter' or 'exit', got {on!r}"[:300])
        return Trigger(audience=name, on=on)
    if isinstance(value, dict) and "event" not in value:
        raise bad(
            path,
            "a trigger has one of event, audience, score, before, after or schedule",
            hint='e.g. {"event": "Signed Up"} or {"before": "next_purchase_at", "days": 5}',
        )
    obj = _object(path, value, ("event", "where"), ("event",), "the trigger")
    name = _text(f"{path}.event", obj["event"], "the event name")
    return Trigger(event=name, where=_where(f"{path}.where", obj.get("where", {})))


def _steps(path: str, value: Any, counter: list[int], *, empty: bool = False) -> tuple[Step, ...]:
    if not isinstance(value, list) or (not value and not empty):
        raise bad(path, "steps must be a non-empty list" if not empty else "a path is a list of steps")
    if len(value) > MAX_STEPS:
        raise bad(path, f"at most {MAX_STEPS} steps, got {len(value)}")
    return tuple(_step(f"{path}[{i}]", s, counter) for i, s in enumerate(value))


def _step(path: str, value: Any, counter: list[int]) -> Step:
    if not isinstance(value, dict) or len(value) != 1:
        raise bad(path, f"a step is an object with one key: {', '.join(STEP_KINDS)}")
    index = counter[0]
    counter[0] += 2 if isinstance(value, dict) and "hand_off" in value else 1
    step = _step_body(path, value, counter)
    return Step(step.kind, step.options, step.purpose, step.seconds, index, step.paths, step.condition)


def _step_body(path: str, value: dict[str, Any], counter: list[int]) -> Step:
    kind, body = next(iter(value.items()))
    at = f"{path}.{kind}"
    if kind == "send_email":
        obj = _object(at, body, ("subject", "text", "html", "purpose"), ("subject", "text", "purpose"), "send_email")
        for part in ("subject", "text", "html"):
            if part in obj:
                template.check(f"{at}.{part}", _text(f"{at}.{part}", obj[part], part, limit=100_000))
        return Step(
            kind,
            {k: obj[k] for k in ("subject", "text", "html") if k in obj},
            _purpose(f"{at}.purpose", obj["purpose"]),
        )
    if kind == "webhook":
        obj = _object(at, body, ("url", "purpose", "body"), ("url", "purpose"), "webhook")
        url = _text(f"{at}.url", obj["url"], "the URL", limit=2000)
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise bad(f"{at}.url", f"{url!r} is not an http(s) URL"[:300], hint="e.g. https://crm.example/hooks/lead")
        options: dict[str, Any] = {"url": url}
        if "body" in obj:
            if not isinstance(obj["body"], dict):
                raise bad(f"{at}.body", "the body must be a JSON object (its strings are templates)")
            _check_body(f"{at}.body", obj["body"])
            options["body"] = obj["body"]
        return Step(kind, options, _purpose(f"{at}.purpose", obj["purpose"]))
    if kind == "wait":
        obj = _object(at, body, tuple(WAIT_UNITS), (), "wait")
        if len(obj) != 1:
            raise bad(at, 'a wait takes one of: minutes, hours, days (e.g. {"days": 2})')
        unit, amount = next(iter(obj.items()))
        if (
            isinstance(amount, bool)
            or not isinstance(amount, int | float)
            or not 0 < amount <= 366 * 86400 / WAIT_UNITS[unit]
        ):
            raise bad(f"{at}.{unit}", f"a wait must be positive and at most 366 days, got {amount!r}"[:300])
        return Step(kind, {unit: amount}, None, float(amount) * WAIT_UNITS[unit])
    if kind == "wait_until":
        obj = _object(at, body, ("time",), ("time",), "wait_until")
        if not isinstance(obj["time"], str) or not TIME_OF_DAY.match(obj["time"]):
            raise bad(f"{at}.time", f"time {obj['time']!r} is not HH:MM"[:300], hint='e.g. "09:00" (24-hour)')
        return Step(kind, {"time": obj["time"]})
    if kind == "wait_for":
        keys = ("event", "where", "timeout_days", "on_event", "on_timeout")
        obj = _object(at, body, keys, ("event", "timeout_days"), "wait_for")
        options = {
            "event": _text(f"{at}.event", obj["event"], "the event name"),
            "where": _where(f"{at}.where", obj.get("where", {})),
            "timeout_days": _int(f"{at}.timeout_days", obj["timeout_days"], 1, 366, "timeout_days"),
        }
        paths = tuple(
            (name, _steps(f"{at}.{name}", obj.get(name, []), counter, empty=True))
            for name in ("on_event", "on_timeout")
        )
        return Step(kind, options, paths=paths)
    if kind == "branch":
        obj = _object(at, body, ("if", "then", "else"), ("if",), "branch")
        from touchpoint.audiences import definition as audience_language

        try:
            condition = audience_language.parse(obj["if"])
        except InvalidDefinition as exc:  # its path is relative to the condition: put it under ours
            sub = (exc.path or "$")[1:]
            where = f"{at}.if{sub}"
            message = exc.message.split(": ", 1)[1] if exc.message.startswith(exc.path or "\0") else exc.message
            raise bad(where, message, hint=exc.hint or "the audiences language: docs/audiences.md") from None
        paths = tuple(
            (name, _steps(f"{at}.{name}", obj.get(name, []), counter, empty=True)) for name in ("then", "else")
        )
        return Step(kind, {"if": obj["if"]}, paths=paths, condition=condition)
    if kind == "split":
        obj = _object(at, body, ("arms",), ("arms",), "split")
        arms = obj["arms"]
        if not isinstance(arms, list) or not 2 <= len(arms) <= 10:
            raise bad(f"{at}.arms", "a split takes a list of 2 to 10 arms", hint='[{"name": "a", "steps": [...]}, ...]')
        names: list[str] = []
        weights: list[float] = []
        paths_list = []
        for i, arm in enumerate(arms):
            ap = f"{at}.arms[{i}]"
            a = _object(ap, arm, ("name", "weight", "steps"), ("name", "steps"), "an arm")
            name = _text(f"{ap}.name", a["name"], "the arm's name", limit=64)
            if name in names:
                raise bad(f"{ap}.name", f"two arms are named {name!r}")
            weight = a.get("weight", 1)
            if isinstance(weight, bool) or not isinstance(weight, int | float) or not weight > 0:
                raise bad(f"{ap}.weight", f"weight must be a positive number, got {weight!r}"[:300])
            names.append(name)
            weights.append(float(weight))
            paths_list.append((name, _steps(f"{ap}.steps", a["steps"], counter, empty=True)))
        return Step(kind, {"arms": names, "weights": weights}, paths=tuple(paths_list))
    if kind == "hand_off":
        keys = ("url", "owner", "score", "purpose", "timeline_days")
        obj = _object(at, body, keys, ("url", "owner", "score"), "hand_off")
        url = _text(f"{at}.url", obj["url"], "the CRM's URL", limit=2000)
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise bad(f"{at}.url", f"{url!r} is not an http(s) URL"[:300], hint="e.g. https://crm.example/hooks/lead")
        owner = _text(f"{at}.owner", obj["owner"], "the owner's email address", limit=320)
        if "@" not in owner or any(c in owner for c in " \r\n<>,"):
            raise bad(f"{at}.owner", f"{owner!r} is not an email address"[:300], hint="e.g. sales@shop.example")
        options = {
            "url": url,
            "owner": owner,
            "score": _text(f"{at}.score", obj["score"], "the score's name", limit=64),
            "timeline_days": _int(f"{at}.timeline_days", obj.get("timeline_days", 30), 1, 366, "timeline_days"),
        }
        return Step(kind, options, _purpose(f"{at}.purpose", obj.get("purpose", TRANSACTIONAL)))
    if kind == "set_trait":
        obj = _object(at, body, ("traits",), ("traits",), "set_trait")
        traits = obj["traits"]
        if not isinstance(traits, dict) or not traits:
            raise bad(f"{at}.traits", 'traits must be a non-empty object, e.g. {"lifecycle": "nurtured"}')
        for k, v in traits.items():
            if not k or k.startswith("consent_"):
                raise bad(
                    f"{at}.traits.{k}", f"trait {k!r} cannot be set by an automation", hint="consent is the person's"
                )
            if isinstance(v, dict | list):
                raise bad(f"{at}.traits.{k}", "a trait set by an automation is a string, number, boolean or null")
            if isinstance(v, str):
                template.check(f"{at}.traits.{k}", v)
        return Step(kind, {"traits": traits})
    if kind in ("add_to_audience", "remove_from_audience"):
        obj = _object(at, body, ("audience",), ("audience",), kind)
        return Step(kind, {"audience": _text(f"{at}.audience", obj["audience"], "the audience's name", limit=64)})
    raise bad(path, f"unknown step {kind!r}", hint=f"steps: {', '.join(STEP_KINDS)}")


def _check_body(path: str, value: Any) -> None:
    if isinstance(value, str):
        template.check(path, value)
    elif isinstance(value, dict):
        for k, v in value.items():
            _check_body(f"{path}.{k}", v)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            _check_body(f"{path}[{i}]", v)


def _reentry(value: Any) -> Reentry:
    path = "$.reentry"
    if value in ("once", "every_time"):
        return Reentry(value)
    if isinstance(value, dict) and set(value) == {"once_per_days"}:
        return Reentry("once_per_days", _int(f"{path}.once_per_days", value["once_per_days"], 1, 3660, "once_per_days"))
    raise bad(path, f"reentry {value!r} is not known"[:300], hint='use "once", "every_time" or {"once_per_days": N}')


def parse(value: Any) -> Automation:
    """Validate a definition (a parsed JSON object) and return it; :class:`InvalidDefinition` names the field."""
    _depth(value, MAX_DEPTH)
    allowed = ("name", "description", "trigger", "steps", "goal", "holdout", "allow_no_holdout", "reentry")
    obj = _object("$", value, allowed, ("name", "trigger", "steps"), "an automation")
    name = obj["name"]
    if not isinstance(name, str) or not NAME.match(name):
        raise bad("$.name", f"name {name!r} is not allowed"[:300], hint="1-64 lower-case letters, digits, '-' or '_'")
    description = obj.get("description")
    if description is not None:
        _text("$.description", description, "the description", limit=2000)
    trigger = _trigger(obj["trigger"])
    steps_raw = obj["steps"]
    if not isinstance(steps_raw, list) or not steps_raw:
        raise bad("$.steps", "steps must be a non-empty list", hint='e.g. [{"send_email": {...}}]')
    counter = [0]
    steps = _steps("$.steps", steps_raw, counter)
    if counter[0] > MAX_STEPS:
        raise bad("$.steps", f"at most {MAX_STEPS} steps, got {counter[0]}")
    if all(s.kind not in ACTIONS for s in Automation("x", trigger, steps).walk()):
        raise bad("$.steps", "the steps only wait; add an action (send_email, webhook, hand_off, set_trait, ...)")
    goal = None
    if obj.get("goal") is not None:
        g = _object("$.goal", obj["goal"], ("event", "within_days"), ("event", "within_days"), "the goal")
        goal = Goal(
            _text("$.goal.event", g["event"], "the goal's event"),
            _int("$.goal.within_days", g["within_days"], 1, 366, "within_days"),
        )
    allow = obj.get("allow_no_holdout", False)
    if not isinstance(allow, bool):
        raise bad("$.allow_no_holdout", "allow_no_holdout must be true or false")
    holdout = obj.get("holdout", DEFAULT_HOLDOUT)
    if isinstance(holdout, bool) or not isinstance(holdout, int | float) or not 0 <= holdout < 1:
        raise bad(
            "$.holdout",
            f"holdout must be a share from 0 up to (not including) 1, got {holdout!r}"[:300],
            hint="e.g. 0.1",
        )
    if holdout == 0 and not allow:
        raise bad(
            "$.holdout",
            "a holdout of 0 leaves nothing to measure the automation against",
            hint='keep a share (default 0.1), or set "allow_no_holdout": true to contact everyone',
        )
    default_reentry = "every_time" if trigger.schedule is not None else "once"  # a schedule sends every run
    reentry = _reentry(obj.get("reentry", default_reentry))
    raw = {"holdout": float(holdout), "reentry": obj.get("reentry", default_reentry), **obj}
    return Automation(name, trigger, steps, goal, float(holdout), allow, reentry, description, raw)
