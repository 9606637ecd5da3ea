"""The dashboard's marketing pages: audiences with lead scores, automations with their lift, and the plan
with its KPIs.

Like :mod:`touchpoint.web.sections`, each function returns plain data (headline numbers and ``tables``)
computed by the library off the request path; nothing here changes what it reads.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from touchpoint.warehouse import Warehouse
from touchpoint.web.sections import table

HISTORY_DAYS = 30
NO_AUDIENCES = (
    "No audiences yet: define one with `touchpoint audiences create NAME --definition FILE.json` "
    "(docs/audiences.md) or run `touchpoint demo`."
)
NO_AUTOMATIONS = "No automations yet: define one with `touchpoint automations create FILE.json` (docs/automations.md)."
NO_PLAN = "No plan yet: write one (docs/plan.md) and run `touchpoint plan create FILE.json`, or run `touchpoint demo`."


def audiences(wh: Warehouse, data_dir: Path) -> dict[str, Any]:
    """Every audience with its size, last evaluation and entries/exits per day; every score's bands."""
    from touchpoint.audiences import membership, scores
    from touchpoint.audiences import workflow as aw

    found = aw.list_audiences(wh)
    items = []
    tables: dict[str, Any] = {}
    for a in found:  # the days up to its last evaluation (the demo's clock is in the past)
        days = membership.history(wh, a["name"], days=HISTORY_DAYS, end=a["evaluated_at"])
        rows = [[str(d["date"]), d["entered"], d["exited"], d["size"]] for d in days]
        tables[f"{a['name']}-history"] = table(["date", "entered", "exited", "size"], rows)
        items.append({**a, "evaluated_at": str(a["evaluated_at"] or ""), "history": rows})
    tables["audiences"] = table(
        ["audience", "version", "members", "evaluated_at", "description"],
        [[a["name"], a["version"], a["members"], a["evaluated_at"], a["description"] or ""] for a in items],
    )
    score_items = []
    for s in scores.list_all(wh):
        bands = [b["name"] for b in s["definition"].get("bands", [])]
        r = wh.table("score_results")
        r = r.filter(r.score == s["name"])
        counts = {row["band"]: int(row["n"]) for row in wh.to_arrow(r.group_by("band").agg(n=r.count())).to_pylist()}
        stage_counts = wh.to_arrow(r.group_by("stage").agg(n=r.count()).order_by("stage")).to_pylist()
        rows = [[b, counts.get(b, 0)] for b in bands]
        tables[f"score-{s['name']}-bands"] = table(["band", "profiles"], rows)
        tables[f"score-{s['name']}-stages"] = table(
            ["stage", "profiles"], [[row["stage"] or "(none)", int(row["n"])] for row in stage_counts]
        )
        score_items.append({"name": s["name"], "version": s["version"], "bands": rows, "scored": sum(counts.values())})
    out: dict[str, Any] = {"audiences": items, "scores": score_items, "tables": tables, "days": HISTORY_DAYS}
    if not items and not score_items:
        out["missing"] = NO_AUDIENCES
    return out


def _step(step: Any) -> str:
    """One step of a flow in words: what it does, and for an action the purpose its consent is checked for."""
    if step.kind == "wait":
        unit, amount = next(iter(step.options.items()))
        return f"wait {amount} {unit}"
    if step.kind == "send_email":
        return f"email \u201c{step.options.get('subject', '')}\u201d ({step.purpose})"
    if step.kind == "webhook":
        return f"webhook to {step.options.get('url', '')} ({step.purpose})"
    o = step.options
    words = {
        "wait_until": lambda: f"wait until {o['time']} local time",
        "wait_for": lambda: f"wait for {o['event']} (at most {o['timeout_days']} days)",
        "branch": lambda: "branch on a condition",
        "split": lambda: f"split into {', '.join(o['arms'])}",
        "hand_off": lambda: f"hand off to sales ({o['owner']}, {o['url']})",
        "set_trait": lambda: f"set {', '.join(o['traits'])}",
        "add_to_audience": lambda: f"add to audience {o['audience']}",
        "remove_from_audience": lambda: f"remove from audience {o['audience']}",
    }
    return words[step.kind]() if step.kind in words else step.kind


def automations(wh: Warehouse, data_dir: Path) -> dict[str, Any]:
    """Every automation: its flow, entrants per arm, messages per status, and the lift its holdout measures."""
    from touchpoint.automations import store
    from touchpoint.automations import workflow as aw
    from touchpoint.errors import TouchpointError

    items, rows, tables = [], [], {}
    for listed in aw.list_automations(wh):
        name = listed["name"]
        shown, auto = aw.show(wh, name), store.load(wh, name)
        try:
            lift = aw.lift(wh, name)
        except TouchpointError as exc:  # no goal or no holdout: the page says why there is no lift
            lift = {"status": "not_measured", "verdict": exc.message}
        entries = {arm: int(shown["entries"].get(arm, 0)) for arm in ("treated", "holdout")}
        outbox = {status: int(n) for status, n in sorted(shown["outbox"].items())}
        tables[f"{name}-outbox"] = table(["status", "messages"], [[k, v] for k, v in outbox.items()])
        rows.append(
            [name, listed["status"], listed["trigger"], entries["treated"], entries["holdout"], listed["sent"],
             listed["pending"], listed["dead"]]
        )  # fmt: skip
        goal = auto.goal
        items.append(
            {
                **listed,
                "description": auto.description,
                "flow": [_step(step) for step in auto.steps],
                "goal": f"{goal.event} within {goal.within_days} days" if goal is not None else None,
                "entries": entries,
                "outbox": outbox,
                "lift": lift,
            }
        )
    tables["automations"] = table(
        ["automation", "status", "trigger", "entered", "held out", "sent", "waiting", "dead letters"], rows
    )
    out: dict[str, Any] = {"automations": items, "tables": tables}
    if not items:
        out["missing"] = NO_AUTOMATIONS
    return out


def clv_failed(wh: Warehouse) -> str | None:
    """Why the latest CLV run cannot be trusted (its fit did not converge), or None."""
    from touchpoint.predict import store

    run = store.latest_run(wh)
    fit = ((run or {}).get("summary") or {}).get("fit") or {}
    if fit.get("converged", True):
        return None
    return str(fit.get("message") or "the fit did not converge")


def plan(wh: Warehouse, data_dir: Path) -> dict[str, Any]:
    """The KPIs that matter (customer equity, satisfaction, relative attractiveness) and every plan with
    its arithmetic, its roll-up and its latest quarterly review."""
    from touchpoint.config import get_settings
    from touchpoint.plan import store
    from touchpoint.plan.kpis import kpis
    from touchpoint.plan.workflow import plans, show

    tables: dict[str, Any] = {}
    try:
        k = kpis(wh, brand=get_settings().brand_name)
    except Exception as exc:  # no predictions or no answers yet: the page says why, the plans still show
        k = {"error": str(exc)}
    failed = clv_failed(wh)
    if failed and isinstance(k.get("customer_equity"), dict):  # a run that did not converge gives no numbers
        k["customer_equity"] = {"failed": failed, "method": "the latest `touchpoint predict clv` run"}
    headline = []
    for key in ("customer_equity", "satisfaction", "relative_attractiveness"):
        kpi = k.get(key) or {}
        headline.append(
            {
                "key": key,
                "value": kpi.get("value"),
                "low": kpi.get("low"),
                "high": kpi.get("high"),
                "n": kpi.get("n"),
                "method": kpi.get("method") or "",
                "hint": kpi.get("hint") or "",
                "failed": kpi.get("failed"),
            }
        )
    tables["kpis"] = table(
        ["kpi", "value", "low", "high", "n", "method"],
        [[h["key"], h["value"], h["low"], h["high"], h["n"], h["method"]] for h in headline],
    )
    quarters = (k.get("customer_equity") or {}).get("by_quarter") or []
    tables["equity_by_quarter"] = table(
        ["quarter", "customer_equity", "low", "high", "customers", "acquisition", "retention", "spend_per_customer"],
        [
            [
                q["quarter"],
                q["value"],
                q["low"],
                q["high"],
                q.get("customers"),
                *[(q.get("change") or {}).get(part, {}).get("value") for part in ("acquisition", "retention")],
                (q.get("change") or {}).get("spend_per_customer", {}).get("value"),
            ]
            for q in quarters
        ],
    )
    found = []
    for p in plans(wh):
        shown = show(wh, p["plan_id"])
        reviews = store.reviews(wh, p["plan_id"])
        latest = reviews[-1] if reviews else None
        item: dict[str, Any] = {
            "plan_id": p["plan_id"],
            "name": p["name"],
            "version": p["version"],
            "goal": shown["plan"]["goal"],
            "verdict": shown["arithmetic"].get("verdict"),
            "adds_up": shown["arithmetic"].get("adds_up"),
            "rollup": shown.get("rollup") or {},
            "quarter": latest["quarter"] if latest else None,
        }
        if latest:
            review = latest
            rows = []
            for t in review.get("tactics", []):
                m = t.get("measured") or {}
                e = t.get("expected") or {}
                rows.append(
                    [t["name"], t["kind"], e.get("effect"), e.get("low"), e.get("high"), m.get("effect"),
                     m.get("low"), m.get("high"), t.get("decision"), t.get("reason")]
                )  # fmt: skip
            tables[f"{p['plan_id']}-tactics"] = table(
                ["tactic", "kind", "expected", "expected_low", "expected_high", "measured", "measured_low",
                 "measured_high", "decision", "reason"],
                rows,
            )  # fmt: skip
            item["tactics"] = rows
            item["rollup"] = review.get("rollup") or item["rollup"]
        found.append(item)
    out: dict[str, Any] = {"kpis": headline, "plans": found, "quarters": quarters, "tables": tables}
    if "error" in k:
        out["kpi_error"] = k["error"]
    if not found:
        out["no_plan"] = NO_PLAN
    return out
