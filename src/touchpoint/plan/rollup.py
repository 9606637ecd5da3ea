"""The plan's arithmetic and its roll-up: do the behaviour changes add up to the goal, do the tactics
add up to the behaviour changes, and how likely is the goal given what each tactic is expected (or was
measured) to do.

Arithmetic: each behaviour change adds people x (to - from) x value_per_unit to the goal's metric; the
changes add up when their sum reaches the goal's gap (target - baseline). Each behaviour change needs
(to - from); its tactics' expected effects add up to what they are expected to deliver.

Roll-up: each tactic's effect is drawn from a normal whose mean is its expected (or measured) effect
and whose standard deviation is its 90% interval's half-width / 1.645 (the normal approximation of an
experiment's or a model's posterior); effects on one behaviour add. Every draw gives the metric's
value at the deadline, baseline + sum of people x effect x value_per_unit, so the goal's probability
of attainment is the share of draws at or above the target.

>>> from touchpoint.plan.document import Plan
>>> plan = Plan.from_dict({"id": "p", "goal": {"metric": "revenue", "baseline": 100, "target": 110},
...     "behaviour_changes": [{"id": "b", "audience": "all", "behaviour": "orders per person",
...         "from": 1.0, "to": 1.1, "people": 100, "value_per_unit": 1.0}],
...     "tactics": [{"id": "t", "kind": "content", "behaviour_change": "b",
...         "expected": {"effect": 0.12, "low": 0.08, "high": 0.16}}]})
>>> a = arithmetic(plan)
>>> a["adds_up"], round(a["planned_total"], 6)
(True, 10.0)
>>> r = rollup(plan)
>>> 0.75 < r["probability_of_attainment"] < 0.85  # P(N(0.12, 0.024) >= 0.10) = 0.79
True
"""

from __future__ import annotations

from typing import Any

import numpy as np

from touchpoint.plan.document import Plan

Z90 = 1.6448536269514722
DRAWS = 20_000
LEVEL = 0.9


def arithmetic(plan: Plan) -> dict[str, Any]:
    """What the behaviour changes add up to against the goal, and what the tactics add up to against
    each behaviour change; both said in words when they fall short."""
    gap = plan.goal.gap
    changes: list[dict[str, Any]] = []
    for c in plan.behaviour_changes:
        tactics = [t for t in plan.tactics if t.behaviour_change == c.id]
        expected = sum(t.expected.effect for t in tactics)
        covered = expected / c.change if c.change else None
        changes.append(
            {
                "id": c.id,
                "audience": c.audience,
                "behaviour": c.behaviour,
                "from": c.from_,
                "to": c.to,
                "change": c.change,
                "people": c.people,
                "value_per_unit": c.value_per_unit,
                "contribution": c.contribution,
                "share_of_gap": c.contribution / gap if gap else None,
                "tactics": [t.id for t in tactics],
                "tactics_expected_change": expected,
                "tactics_cover": covered,
                "tactics_add_up": bool(covered is not None and covered >= 1 - 1e-9),
            }
        )
    total = sum(c["contribution"] for c in changes)
    adds_up = total >= gap - 1e-9 * max(abs(gap), 1.0)
    verdict = f"the behaviour changes add {total:,.0f} to {plan.goal.metric}: " + (
        f"enough for the goal's {gap:,.0f}"
        if adds_up
        else f"short of the goal's {gap:,.0f} by {gap - total:,.0f} ({total / gap:.0%} of it)"
        if gap
        else "the goal asks for no change"
    )
    short = [c["id"] for c in changes if not c["tactics_add_up"]]
    if short:
        verdict += f"; the tactics fall short of the change needed in: {', '.join(short)}"
    return {
        "goal": {
            "metric": plan.goal.metric,
            "baseline": plan.goal.baseline,
            "target": plan.goal.target,
            "gap": gap,
            "deadline": plan.goal.deadline,
        },
        "behaviour_changes": changes,
        "planned_total": total,
        "adds_up": bool(adds_up),
        "shortfall": max(gap - total, 0.0),
        "verdict": verdict,
    }


def rollup(
    plan: Plan, effects: dict[str, tuple[float, float, float]] | None = None, *, draws: int = DRAWS, seed: int = 0
) -> dict[str, Any]:
    """The goal's expected attainment with its interval and probability, from draws of every tactic's
    effect. ``effects`` maps tactic id -> (effect, low, high) measured in a review; other tactics use
    their expected effect."""
    effects = effects or {}
    rng = np.random.default_rng(seed)
    people = {c.id: c for c in plan.behaviour_changes}
    total = np.zeros(draws)
    by_tactic = []
    for t in plan.tactics:
        mean, low, high = effects.get(t.id, (t.expected.effect, t.expected.low, t.expected.high))
        sd = max(high - low, 0.0) / (2 * Z90)
        d = rng.normal(mean, sd, draws) if sd > 0 else np.full(draws, mean)
        c = people[t.behaviour_change]
        value = c.people * d * c.value_per_unit
        total += value
        by_tactic.append(
            {
                "tactic": t.id,
                "effect_used": mean,
                "from": "measured" if t.id in effects else "expected",
                "contribution": float(value.mean()),
            }
        )
    reached = plan.goal.baseline + total
    q = (1 - LEVEL) / 2
    lo, hi = np.quantile(reached, [q, 1 - q])
    gap = plan.goal.gap
    return {
        "metric": plan.goal.metric,
        "target": plan.goal.target,
        "expected": float(reached.mean()),
        "low": float(lo),
        "high": float(hi),
        "interval": LEVEL,
        "expected_share_of_gap": float(total.mean() / gap) if gap else None,
        "probability_of_attainment": float(np.mean(reached >= plan.goal.target)),
        "draws": draws,
        "by_tactic": by_tactic,
        "method": "each tactic's effect ~ normal(effect, 90% half-width / 1.645), measured where a review "
        "has evidence, else expected; effects on one behaviour add; attainment = share of draws reaching "
        "the target",
    }
