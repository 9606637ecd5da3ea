"""The plan step of ``touchpoint demo``: the demo shop's marketing plan and its quarterly review.

A goal (revenue of the next four quarters +15% on the last four), two behaviour changes (first-time
buyers' 90-day repeat rate; new customers a year) and four tactics: the win-back email (the demo's
randomized experiment is its evidence), a replenishment automation and a win-back audience (no
evidence yet: the review proposes minimum viable tests), and the media reallocation of the mmm step's
budget plan (its expected effect from the marketing-mix model, its value per new customer from the
CLV-valued investment case). The review's measured email effect is compared with the simulator's truth.
Runs after the experiments and mmm steps; the numbers come from the warehouse and their files.
"""

from __future__ import annotations

import datetime as dt
import json
import pathlib
from typing import Any

import ibis

from touchpoint.errors import NotFound
from touchpoint.plan import workflow
from touchpoint.plan.store import get_plan
from touchpoint.predict.summary import orders_from_events
from touchpoint.warehouse import Warehouse

PLAN_ID = "demo-shop-growth"
Z90 = 1.6448536269514722


def _quarter(day: dt.date) -> str:
    return f"{day.year}Q{(day.month - 1) // 3 + 1}"


def _orders(wh: Warehouse, end: dt.date) -> dict[str, float]:
    """Last year's revenue, new customers, mean order value and 90-day repeat rate of first-time buyers."""
    o = orders_from_events(wh)
    o = o.filter(o.customer_id.notnull())
    o = o.mutate(rank=ibis.row_number().over(group_by=o.customer_id, order_by=[o.ts, o.revenue]))
    per = o.group_by("customer_id").aggregate(first=o.ts.min(), second=o.ts.min(where=o.rank == 1))
    year_ago = ibis.literal(dt.datetime.combine(end - dt.timedelta(days=365), dt.time()))
    cutoff = ibis.literal(dt.datetime.combine(end - dt.timedelta(days=90), dt.time()))
    eligible = per.filter(per.first < cutoff)
    row = wh.to_arrow(
        eligible.aggregate(
            n=eligible.count(),
            repeat=(eligible.second.notnull() & (eligible.second <= eligible.first + ibis.interval(days=90)))
            .cast("int64")
            .sum(),
        )
    ).to_pylist()[0]
    last = o.filter(o.ts >= year_ago)
    money = wh.to_arrow(last.aggregate(revenue=last.revenue.sum(), aov=last.revenue.mean())).to_pylist()[0]
    new = wh.to_arrow(per.filter(per.first >= year_ago).count().name("n").as_table()).to_pylist()[0]["n"]
    return {
        "revenue": float(money["revenue"] or 0.0),
        "aov": float(money["aov"] or 0.0),
        "new_customers": float(new),
        "repeat_rate_90d": row["repeat"] / row["n"] if row["n"] else 0.0,
    }


def _mmm(out_dir: pathlib.Path) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    folder = out_dir.parent / "mmm"
    plan = json.loads((folder / "plan.json").read_text()) if (folder / "plan.json").exists() else None
    case = json.loads((folder / "case.json").read_text()) if (folder / "case.json").exists() else None
    return plan, case


def document(wh: Warehouse, truth: dict[str, Any], out_dir: pathlib.Path) -> dict[str, Any]:
    """The demo shop's plan, from its own data and the earlier steps' models."""
    end = dt.date.fromisoformat(truth["period"]["end"])
    facts = _orders(wh, end)
    mmm_plan, case = _mmm(out_dir)
    lifetime = (case or {}).get("lifetime_value") or {}
    per_customer = (lifetime.get("value_per_new_customer") or {}).get("mean") or facts["aov"]
    first_value = lifetime.get("first_order_value") or facts["aov"]
    media = {"effect": 0.0, "low": 0.0, "high": 0.0, "source": "no marketing-mix plan"}
    cost = 0.0
    if mmm_plan:
        up = mmm_plan["uplift"]["revenue"]  # first-order revenue over the plan's weeks
        media = {
            "effect": up["mean"] / first_value,
            "low": up["low"] / first_value,
            "high": up["high"] / first_value,
            "source": "marketing-mix model: the budget plan's uplift in first-order revenue over the current mix "
            f"(P(better) {mmm_plan['uplift']['probability_better']:.0%}), / the mean first-order value",
        }
    rate = facts["repeat_rate_90d"]
    deadline = _quarter(end + dt.timedelta(days=365))
    return {
        "id": PLAN_ID,
        "name": "Demo shop: revenue +15% in a year",
        "goal": {
            "metric": "revenue",
            "baseline": round(facts["revenue"], 2),
            "change": 0.15,
            "deadline": deadline,
            "description": "revenue of the next four quarters, 15% above the last four",
        },
        "behaviour_changes": [
            {
                "id": "repeat-first-timers",
                "audience": "first-time buyers",
                "behaviour": "repeat purchase within 90 days",
                "from": round(rate, 4),
                "to": round(min(rate + 0.06, 0.99), 4),
                "people": facts["new_customers"],
                "value_per_unit": round(facts["aov"], 2),
            },
            {
                "id": "more-new-customers",
                "audience": "prospects reached by paid media",
                "behaviour": "new customers a year",
                "from": facts["new_customers"],
                "to": round(facts["new_customers"] * 1.1),
                "people": 1,
                "value_per_unit": round(per_customer, 2),
            },
        ],
        "tactics": [
            {
                "id": "winback-email",
                "name": "Win-back email",
                "kind": "experiment",
                "behaviour_change": "repeat-first-timers",
                "experiment": truth["experiment"]["key"],
                "expected": {"effect": 0.03, "low": 0.0, "high": 0.06, "source": "the email vendor's benchmark"},
                "cost": 2000,
            },
            {
                "id": "replenishment-reminder",
                "name": "Replenishment reminder for contact lenses",
                "kind": "automation",
                "behaviour_change": "repeat-first-timers",
                "audience": "lens buyers due in 14 days (touchpoint predict replenishment)",
                "expected": {"effect": 0.015, "low": 0.0, "high": 0.03, "source": "a guess: to be tested"},
                "cost": 1500,
            },
            {
                "id": "winback-audience",
                "name": "Win-back offer to fading customers",
                "kind": "audience",
                "behaviour_change": "repeat-first-timers",
                "audience": "first-time buyers with P(alive) below 0.5",
                "expected": {"effect": 0.015, "low": -0.005, "high": 0.035, "source": "a guess: to be tested"},
                "cost": 3000,
            },
            {
                "id": "media-reallocation",
                "name": "Reallocate the media budget (mmm plan)",
                "kind": "budget",
                "behaviour_change": "more-new-customers",
                "expected": media,
                "cost": cost,
            },
        ],
    }


def run_demo(wh: Warehouse, truth: dict[str, Any], out_dir: pathlib.Path) -> dict[str, Any]:
    doc = document(wh, truth, out_dir)
    try:
        get_plan(wh, PLAN_ID)
    except NotFound:  # the first run creates version 1; a re-run stores the next version
        created = workflow.create(wh, doc)
    else:
        created = workflow.create(wh, doc, new_version=True, note="demo re-run")
    end = dt.date.fromisoformat(truth["period"]["end"]) - dt.timedelta(days=1)
    review = workflow.review(wh, PLAN_ID, quarter=_quarter(end))
    email = next(t for t in review["tactics"] if t["tactic"] == "winback-email")
    true_lift = truth["experiment"]["true_lift_absolute"]
    m = email["measured"] or {}
    return {
        "plan_id": PLAN_ID,
        "version": created["version"],
        "quarter": review["quarter"],
        "goal": review["goal"],
        "adds_up": review["arithmetic"]["adds_up"],
        "arithmetic": review["arithmetic"]["verdict"],
        "probability_of_attainment": review["rollup"]["probability_of_attainment"],
        "probability_as_planned": review["rollup_as_planned"]["probability_of_attainment"],
        "expected_attainment": {k: review["rollup"][k] for k in ("expected", "low", "high")},
        "tactics": [
            {
                "tactic": t["tactic"],
                "expected": t["expected"]["effect"],
                "measured": (t["measured"] or {}).get("effect"),
                "decision": t["decision"],
                "reason": t["reason"],
                "minimum_viable_test": t.get("minimum_viable_test"),
            }
            for t in review["tactics"]
        ],
        "email_effect_vs_truth": {
            "measured": m.get("effect"),
            "interval": [m.get("low"), m.get("high")],
            "true_lift_absolute": true_lift,
            "covers_truth": bool(m.get("available") and m["low"] <= true_lift <= m["high"]),
        },
    }


def headline(s: dict[str, Any]) -> str:
    """The line ``touchpoint demo`` prints for this step."""
    decisions = ", ".join(f"{t['tactic']} {t['decision']}" for t in s["tactics"])
    return f"P(goal) {s['probability_of_attainment']:.0%} in review {s['quarter']}; {decisions}"
