"""The quarterly review of a plan: per tactic, the measured effect with its interval next to the expected
one, and what to do (scale, keep, stop, or test); then the goal's probability of attainment with the
evidence in.

Evidence: a tactic that names an ``experiment`` (an experiment or holdout key) is measured by that
experiment's analysis on its first metric, as an absolute difference treatment - control with its 95%
interval (the experiments engine's own; converted to 90% for the roll-up). A tactic without evidence
gets a proposed minimum viable test: the smallest sample per arm that detects its expected effect on
the behaviour's current level (the experiments planner, 80% power, 5% two-sided) and, when the event
log shows how fast people arrive, how long that takes.

Decisions (each with its reason): **scale** when the effect is measured above zero and at least the
expected; **keep** when the interval still holds the expected effect, or when it is positive but
smaller; **stop** when the interval lies below zero, or entirely below half the expected effect with
zero inside it; **test** when there is no evidence yet.

Usage (``tests/plan/test_plan.py`` runs it on a warehouse with an experiment)::

    review = review_plan(wh, "grow-2027", quarter="2026Q3")
"""

from __future__ import annotations

import math
from typing import Any

from touchpoint.errors import InvalidInput, TouchpointError
from touchpoint.plan import rollup
from touchpoint.plan.document import Plan, Tactic
from touchpoint.plan.store import get_plan, save_review
from touchpoint.plan.surveys import quarter_bounds
from touchpoint.warehouse import Warehouse

Z95 = 1.959963984540054


def _measured(wh: Warehouse, t: Tactic) -> dict[str, Any] | None:
    """The tactic's measured effect from its experiment or its automation's holdout, or None when it has
    neither (a dict with the reason when the evidence is not there yet)."""
    if t.automation:
        return _automation_lift(wh, t.automation)
    if not t.experiment:
        return None
    from touchpoint.experiments.analysis import AnalysisOptions
    from touchpoint.experiments.definitions import get_experiment
    from touchpoint.experiments.workflow import analyze

    try:
        first = get_experiment(wh, t.experiment).metrics[:1]  # the tactic's evidence: the first metric only
        result, _ = analyze(wh, t.experiment, AnalysisOptions(relative=False), metrics=first or None)
    except TouchpointError as exc:
        return {"available": False, "reason": f"experiment {t.experiment!r}: {exc.message}"}
    if not result.metrics or not result.metrics[0].comparisons:
        return {"available": False, "reason": f"experiment {t.experiment!r} has no comparison yet"}
    m = result.metrics[0]
    c = m.comparisons[0]
    if c.estimate is None or c.ci_low is None or c.ci_high is None or not math.isfinite(c.ci_high - c.ci_low):
        return {"available": False, "reason": f"experiment {t.experiment!r}: {c.error or result.verdict}"}
    return {
        "available": True,
        "source": f"experiment {t.experiment!r}, metric {m.metric!r}, {c.variant} vs {result.control}",
        "effect": c.estimate,
        "low": c.ci_low,
        "high": c.ci_high,
        "interval": 0.95,
        "status": result.status,
        "units": {a.variant: a.n for a in m.arms},
    }


def _automation_lift(wh: Warehouse, name: str) -> dict[str, Any]:
    """The goal rate of an automation's treated entrants minus its held-out ones (an absolute difference,
    in the behaviour's own units when the behaviour is that rate), with its 95% interval."""
    from touchpoint.automations.lift import lift

    try:
        out = lift(wh, name, engine="frequentist", relative=False)
    except TouchpointError as exc:
        return {"available": False, "reason": f"automation {name!r}: {exc.message}"}
    c = out.get("lift") or {}
    low, high = c.get("ci_low"), c.get("ci_high")
    if c.get("estimate") is None or low is None or high is None or not math.isfinite(high - low):
        return {"available": False, "reason": f"automation {name!r}: {c.get('error') or out.get('verdict')}"}
    goal = out["goal"]
    return {
        "available": True,
        "source": f"automation {name!r}: {goal['event']} within {goal['within_days']} days, treated vs held out",
        "effect": c["estimate"],
        "low": low,
        "high": high,
        "interval": 0.95,
        "status": out["status"],
        "units": out["entrants"],
    }


def decide(expected: float, measured: dict[str, Any] | None) -> tuple[str, str]:
    """(decision, reason) from the expected effect and the measured one (see the module docstring)."""
    if not measured or not measured.get("available"):
        return "test", "no evidence yet: run the proposed minimum viable test"
    eff, low, high = measured["effect"], measured["low"], measured["high"]
    if high < 0:
        return "stop", f"it lowers the behaviour: the whole interval ({low:+.4g} to {high:+.4g}) is below zero"
    if low > 0 and eff >= expected:
        return (
            "scale",
            f"measured {eff:+.4g} (interval {low:+.4g} to {high:+.4g}), at least the expected {expected:+.4g}",
        )
    if low <= expected <= high:
        return "keep", f"the interval ({low:+.4g} to {high:+.4g}) still holds the expected {expected:+.4g}"
    if low > 0:
        return "keep", f"it works but less than expected: {eff:+.4g} against {expected:+.4g}; revise the expectation"
    if high < expected / 2:
        return "stop", f"the effect is at most {high:+.4g}, under half the expected {expected:+.4g}, and may be zero"
    return "keep", f"inconclusive: {eff:+.4g} (interval {low:+.4g} to {high:+.4g}); let the test run longer"


def minimum_viable_test(
    wh: Warehouse, plan: Plan, t: Tactic, durations: dict[int, dict[str, Any]] | None = None
) -> dict[str, Any]:
    """The smallest two-arm test that detects the tactic's expected effect on its behaviour
    (``durations`` caches the event-log look-up of how long a number of units takes to arrive)."""
    from touchpoint.experiments import planner

    change = next(c for c in plan.behaviour_changes if c.id == t.behaviour_change)
    base, effect = change.from_, t.expected.effect
    if t.kind == "budget":
        return {
            "possible": False,
            "reason": "a budget line is measured by a holdout of regions or weeks, not by splitting people: run "
            "one where spend changes, then calibrate the marketing-mix model with its result "
            "(`touchpoint mmm fit --roi-prior CH=ROI:SE`)",
        }
    if effect == 0:
        return {"possible": False, "reason": "the expected effect is zero: there is nothing to detect"}
    out: dict[str, Any] = {"baseline": base, "expected_effect": effect, "alpha": 0.05, "power": 0.8}
    try:
        if 0 < base < 1 and 0 < base + effect < 1:
            n = planner.sample_size_binomial(base, effect / base)
            out["metric"] = f"{change.behaviour} (a rate)"
        else:
            raise InvalidInput("not a rate")
    except InvalidInput:
        return {
            **out,
            "possible": False,
            "reason": f"{change.behaviour!r} is not a rate between 0 and 1: size the test with "
            "`touchpoint experiment plan --sd` from the behaviour's standard deviation",
        }
    per_arm = math.ceil(n)
    out.update(possible=True, units_per_arm=per_arm, units_total=2 * per_arm)
    out["fits_the_audience"] = 2 * per_arm <= change.people
    if not out["fits_the_audience"]:
        out["note"] = (
            f"the audience ({change.people:,.0f} people) is smaller than the {2 * per_arm:,} the test needs: "
            "test a bolder version of the tactic or accept a longer, pooled test"
        )
    cache = durations if durations is not None else {}
    if 2 * per_arm not in cache:
        try:
            cache[2 * per_arm] = {"days": planner.expected_duration(wh, 2 * per_arm).days}
        except TouchpointError as exc:
            cache[2 * per_arm] = {"days": None, "days_note": exc.message}
    out.update(cache[2 * per_arm])
    return out


def review_plan(
    wh: Warehouse, plan_id: str, *, quarter: str, version: int | None = None, write: bool = True
) -> dict[str, Any]:
    """Review ``plan_id`` for ``quarter``: evidence, decisions and the roll-up; stored with ``write``."""
    quarter_bounds(quarter)
    stored = get_plan(wh, plan_id, version)
    plan = Plan.from_dict(stored["plan"])
    rows = []
    effects: dict[str, tuple[float, float, float]] = {}
    durations: dict[int, dict[str, Any]] = {}
    for t in plan.tactics:
        measured = _measured(wh, t)
        decision, reason = decide(t.expected.effect, measured)
        row: dict[str, Any] = {
            "tactic": t.id,
            "name": t.name,
            "kind": t.kind,
            "behaviour_change": t.behaviour_change,
            "cost": t.cost,
            "expected": {
                "effect": t.expected.effect,
                "low": t.expected.low,
                "high": t.expected.high,
                "source": t.expected.source,
            },
            "measured": measured,
            "decision": decision,
            "reason": reason,
        }
        if measured and measured.get("available"):
            half = (measured["high"] - measured["low"]) / 2 * rollup.Z90 / Z95  # 95% -> 90% half-width
            effects[t.id] = (measured["effect"], measured["effect"] - half, measured["effect"] + half)
        else:
            row["minimum_viable_test"] = minimum_viable_test(wh, plan, t, durations)
        rows.append(row)
    review = {
        "plan_id": plan.id,
        "plan_version": stored["version"],
        "name": plan.name,
        "quarter": quarter.strip().upper(),
        "goal": plan.to_dict()["goal"],
        "arithmetic": rollup.arithmetic(plan),
        "tactics": rows,
        "rollup": rollup.rollup(plan, effects),
        "rollup_as_planned": rollup.rollup(plan),
    }
    if write:
        save_review(wh, review)
    return review
