"""What each dashboard page shows, computed from stored results by the library (off the request path).

Every function returns plain data: headline numbers and ``tables`` (``{"columns", "rows"}``), which
the page draws as a chart, shows as a table and offers as CSV. Nothing here fits a model: predictions
and the marketing-mix model are read as their last run saved them; experiments, funnels, retention
and attribution are computed by the library from the warehouse, in the background (see snapshot.py).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from touchpoint.collect.ecommerce import ORDER_COMPLETED
from touchpoint.warehouse import Warehouse

WEEKS = 26
SANKEY_KEEP = 6  # the busiest steps drawn per column of the paths Sankey; the rest are "(other)"
FUNNEL = ("page", "page:/products%", "page:/cart", "page:/checkout", ORDER_COMPLETED)


NO_EVENTS = "No events yet: send some (docs/collect.md), import a file (`touchpoint import`) or run `touchpoint demo`."


def table(columns: list[str], rows: list[list[Any]]) -> dict[str, Any]:
    return {"columns": columns, "rows": rows}


def _weekly(wh: Warehouse, expr: Any, ts: str, value: str) -> dict[str, float]:
    rows = wh.to_arrow(expr).to_pylist()
    return {str(r[ts])[:10]: float(r[value] or 0) for r in rows}


def _weeks(ends: list[str], n: int = WEEKS) -> list[str]:
    """The last ``n`` Monday dates up to the latest one seen."""
    if not ends:
        return []
    last = datetime.fromisoformat(max(ends)).date()
    return [(last - timedelta(weeks=n - 1 - i)).isoformat() for i in range(n)]


def overview(wh: Warehouse, data_dir: Path) -> dict[str, Any]:
    """Customers, revenue, new customers, spend by week; P(alive), customer equity, ROMI from saved models."""
    from touchpoint.predict.summary import orders_from_events

    if wh.count("events") == 0:
        return {"missing": NO_EVENTS}
    orders = orders_from_events(wh)
    week = orders.ts.truncate("W")
    revenue = _weekly(wh, orders.group_by(week=week).agg(v=orders.revenue.sum()), "week", "v")
    firsts = orders.group_by("customer_id").agg(first=orders.ts.min())
    new = _weekly(wh, firsts.group_by(week=firsts.first.truncate("W")).agg(v=firsts.count()), "week", "v")
    spend_t = wh.table("spend")
    spend = _weekly(wh, spend_t.group_by(week=spend_t.date.truncate("W")).agg(v=spend_t.amount.sum()), "week", "v")
    weeks = _weeks([*revenue, *new, *spend])
    customers = int(wh.execute(firsts.count()))
    out: dict[str, Any] = {
        "customers": customers,
        "weeks": weeks,
        "revenue_total": float(sum(revenue.values())),
        "spend_total": float(sum(spend.values())),
        "tables": {
            "weekly": table(
                ["week", "revenue", "new_customers", "spend"],
                [[w, revenue.get(w, 0.0), int(new.get(w, 0)), spend.get(w, 0.0)] for w in weeks],
            )
        },
    }
    out["predictions"] = _predictions(wh)
    out["mmm"] = _mmm_total(data_dir)
    if out["predictions"].get("runs"):
        out["tables"]["equity_runs"] = table(
            ["run_at", "model", "customer_equity", "low_90", "high_90"], out["predictions"]["runs"]
        )
    return out


def _predictions(wh: Warehouse) -> dict[str, Any]:
    from touchpoint.predict import store

    run = store.latest_run(wh)
    if run is None:
        return {"missing": "no CLV run yet: run `touchpoint predict clv`"}
    fit = (run.get("summary") or {}).get("fit") or {}
    p = wh.table("predictions")
    active = wh.execute(p.p_alive.sum())
    runs = wh.table("prediction_runs").order_by("run_at")
    history = [
        [str(r["run_at"]), r["model"], r["customer_equity"], r["equity_low_90"], r["equity_high_90"]]
        for r in wh.to_arrow(runs.drop("summary")).to_pylist()
    ]
    failed = None if fit.get("converged", True) else (fit.get("message") or "the fit did not converge")
    return {
        "model": run["model"],
        "run_at": str(run["run_at"]),
        "as_of": str(run["as_of"]),
        "customers": run["customers"],
        "active": float(active or 0.0),
        "equity": run["customer_equity"],
        "equity_low": run.get("equity_low_90"),
        "equity_high": run.get("equity_high_90"),
        "warnings": fit.get("warnings") or [],
        "failed": failed,
        "runs": history,
    }


def _read_fit(data_dir: Path) -> dict[str, Any] | None:
    path = Path(data_dir) / "mmm" / "fit.json"
    if not path.exists():
        return None
    fit: dict[str, Any] = json.loads(path.read_text())
    return fit


def _mmm_total(data_dir: Path) -> dict[str, Any]:
    """Spend and ROMI over all channels, with the interval, from the saved posterior draws."""
    fit = _read_fit(data_dir)
    if fit is None:
        return {"missing": "no marketing-mix model yet: run `touchpoint mmm fit`"}
    out: dict[str, Any] = {"status": fit["status"], "reliable": fit["reliable"], "problems": fit.get("problems", [])}
    if not fit["reliable"]:
        return out
    import numpy as np

    from touchpoint.mmm import workflow

    result = workflow.load(Path(data_dir) / "mmm")
    n = result.design.n_train
    spend = result.data.spend
    returned = result.channel_contributions(spend)[:, :n, :].sum(axis=(1, 2))
    total = float(spend[:n].sum())
    romi = returned / total
    q = (1 - result.config.interval) / 2
    low, high = np.quantile(romi, [q, 1 - q])
    out.update(
        spend=total,
        romi=float(np.mean(romi)),
        romi_low=float(low),
        romi_high=float(high),
        interval=result.config.interval,
        weeks=fit["fitted_weeks"],
    )
    return out


def experiments(wh: Warehouse, data_dir: Path) -> dict[str, Any]:
    """Every experiment analysed with its own metrics (default options): lifts with intervals, SRM, verdict."""
    from touchpoint.experiments.definitions import list_experiments
    from touchpoint.experiments.planner import expected_duration
    from touchpoint.experiments.results import analyze_experiment

    found, planning = [], []
    for exp in list_experiments(wh):
        item: dict[str, Any] = {"key": exp.key, "name": exp.name or exp.key, "kind": exp.kind, "status": exp.status}
        try:
            result = analyze_experiment(wh, exp.key).to_dict()
        except Exception as exc:  # no exposures yet, a metric without data: shown, not hidden
            item["error"] = str(exc)
            found.append(item)
            continue
        rows = []
        for metric in result["metrics"]:
            for c in metric["comparisons"]:
                rows.append(
                    [
                        metric["metric"],
                        c["variant"],
                        c["estimate"],
                        c["ci_low"],
                        c["ci_high"],
                        c["p_adjusted"] if c["p_adjusted"] is not None else c["p_value"],
                        c["significant"],
                        c["error"],
                    ]
                )
        arms = [[m["metric"], a["variant"], a["n"], a["mean"]] for m in result["metrics"] for a in m["arms"]]
        for m in result["metrics"]:  # the planner starts from a metric's control arm (its baseline and sd)
            control = next((a for a in m["arms"] if a["variant"] == result["control"]), None)
            if control is not None and m["dimension"] is None:
                planning.append(_planning_metric(exp.key, m, control))
        item.update(
            verdict=result["verdict"],
            result_status=result["status"],
            srm=result["srm"],
            notes=result.get("notes", []),
            relative=result["options"]["relative"],
            engine=result["options"]["engine"],
            labels=[f"{r[0]}: {r[1]}" for r in rows],
            tables={
                f"{exp.key}-lifts": table(
                    ["metric", "variant", "estimate", "ci_low", "ci_high", "p_value", "significant", "error"], rows
                ),
                f"{exp.key}-arms": table(["metric", "variant", "units", "mean"], arms),
            },
        )
        found.append(item)
    tables = {k: v for item in found for k, v in item.get("tables", {}).items()}
    traffic = expected_duration(wh, 1).cumulative_units  # the planner's audience "any event", counted once
    return {"experiments": found, "tables": tables, "metrics": planning, "traffic": traffic}


def _planning_metric(key: str, metric: dict[str, Any], control: dict[str, Any]) -> dict[str, Any]:
    """A metric the experiment planner can start from: its control arm's rate or mean (and sd)."""
    binomial = metric["kind"] == "binomial"
    return {
        "id": f"{key}:{metric['metric']}",
        "label": f"{key}: {metric['metric']} ({metric['kind']}, control {control['mean']:.4g})",
        "kind": metric["kind"],
        "baseline": control["mean"],
        "sd": None if binomial else control["stddev"],
        "units": control["n"],
    }


def journeys(wh: Warehouse, data_dir: Path) -> dict[str, Any]:
    """The funnel, paths to an order, monthly retention of first-order cohorts, attribution side by side."""
    from touchpoint.journeys.attribution import MODELS, comparison, fit_all
    from touchpoint.journeys.funnels import funnel
    from touchpoint.journeys.paths import fold, paths
    from touchpoint.journeys.retention import retention
    from touchpoint.journeys.touches import journeys as journey_data

    if wh.count("events") == 0:
        return {"missing": NO_EVENTS}
    out: dict[str, Any] = {"tables": {}, "funnel_steps": list(FUNNEL)}
    fun = funnel(wh, list(FUNNEL), window_hours=168)
    out["tables"]["funnel"] = table(
        ["step", "people", "overall", "overall_low", "overall_high", "from_previous"],
        [
            [s["label"], s["people"], s["overall"], *(s["overall_ci"] or (None, None)), s["from_previous"]]
            for s in fun["steps"]  # no interval when nobody took the first step (a shop without page views)
        ],
    )
    to_order = paths(wh, ORDER_COMPLETED, direction="to", depth=3, top=10)
    out["tables"]["paths"] = table(["path", "people"], [[_path(p["path"]), p["people"]] for p in to_order["paths"]])
    drawn = fold(to_order["sankey"], keep=SANKEY_KEEP)
    out["sankey"] = {**drawn, "people": to_order["people"], "direction": to_order["direction"], "keep": SANKEY_KEEP}
    names = drawn["nodes"]
    out["tables"]["sankey"] = table(
        ["from", "to", "people"],
        [[names[lk["source"]], names[lk["target"]], lk["value"]] for lk in drawn["links"]],
    )
    ret = retention(wh, period="month", cohort="first_order", returning="order", max_periods=6)
    width = max((len(c["periods"]) for c in ret["cohorts"]), default=0)
    out["tables"]["retention"] = table(
        ["cohort", "size", *[f"month_{k}" for k in range(width)]],
        [
            [c["cohort"], c["size"], *[p["share"] for p in c["periods"]], *[None] * (width - len(c["periods"]))]
            for c in ret["cohorts"]
        ],
    )
    data = journey_data(wh, lookback_days=30)
    if data.n_paths:
        compared = comparison(fit_all(data, MODELS))
        models = compared["models"]
        out["models"] = models
        out["tables"]["attribution"] = table(
            ["channel", *models], [[r["channel"], *[r[m] for m in models]] for r in compared["channels"]]
        )
    return out


def _path(path: Any) -> str:
    return " → ".join(map(str, path)) if isinstance(path, list | tuple) else str(path)


def data_sources(wh: Warehouse, data_dir: Path) -> dict[str, Any]:
    """Sources with their keys' state and their events received per day over the last two weeks."""
    from touchpoint import keys

    e = wh.table("events")
    since = datetime.now(UTC).replace(tzinfo=None) - timedelta(days=14)
    recent = e.filter(e.received_at >= since)
    rows = wh.to_arrow(
        recent.group_by(source=recent.source.fill_null("(none)"), day=recent.received_at.date()).agg(n=recent.count())
    ).to_pylist()
    totals = wh.to_arrow(e.group_by(source=e.source.fill_null("(none)")).agg(n=e.count(), last=e.received_at.max()))
    by_source = {r["source"]: r for r in totals.to_pylist()}
    sources = []
    for info in keys.list_sources(wh):
        seen = by_source.pop(info.name, {})
        sources.append([info.name, info.status, info.key_prefix, seen.get("n", 0), str(seen.get("last") or "")])
    sources += [[name, "no key", "", r["n"], str(r["last"])] for name, r in sorted(by_source.items())]
    days = [(since.date() + timedelta(days=i + 1)).isoformat() for i in range(14)]
    per_day: dict[str, dict[str, int]] = {}
    for r in rows:
        per_day.setdefault(r["source"], {})[str(r["day"])] = int(r["n"])
    return {
        "days": days,
        "tables": {
            "sources": table(["source", "status", "key_prefix", "events", "last_received"], sources),
            "volume": table(
                ["day", *sorted(per_day)], [[d, *[per_day[s].get(d, 0) for s in sorted(per_day)]] for d in days]
            ),
        },
    }


def mmm(wh: Warehouse, data_dir: Path) -> dict[str, Any]:
    """The saved marketing-mix fit: ROMI and marginal ROMI per channel, response curves, plan and case."""
    fit = _read_fit(data_dir)
    if fit is None:
        return {"missing": "no marketing-mix model yet: run `touchpoint mmm fit` (or the demo)"}
    folder = Path(data_dir) / "mmm"
    out: dict[str, Any] = {
        "status": fit["status"],
        "reliable": fit["reliable"],
        "problems": fit.get("problems", []),
        "warnings": fit.get("warnings", []),
        "target": fit.get("target"),
        "method": fit.get("method"),
        "weeks": fit.get("fitted_weeks"),
        "brand_share": fit.get("brand_share"),
        "tables": {},
    }
    romi = fit.get("romi") or {}
    out["tables"]["romi"] = table(
        ["channel", "spend", "romi", "romi_low", "romi_high", "marginal_romi", "marginal_low", "marginal_high", "note"],
        [
            [
                ch,
                r["spend"],
                r["romi"]["mean"],
                r["romi"]["low"],
                r["romi"]["high"],
                r["marginal_romi"]["mean"],
                r["marginal_romi"]["low"],
                r["marginal_romi"]["high"],
                r.get("note") or "",
            ]
            for ch, r in romi.items()
        ],
    )
    curves = fit.get("response_curves") or {}
    curve_rows = []
    for ch, c in curves.items():
        for i, s in enumerate(c.get("weekly_spend", [])):
            curve_rows.append(
                [ch, s, c["mean"][i], (c.get("low") or [None] * (i + 1))[i], (c.get("high") or [None] * (i + 1))[i]]
            )
    out["tables"]["response_curves"] = table(["channel", "weekly_spend", "response", "low", "high"], curve_rows)
    plan_path = folder / "plan.json"
    if plan_path.exists():
        plan = json.loads(plan_path.read_text())
        out["plan"] = {"budget": plan.get("budget"), "weeks": plan.get("weeks"), "expected": plan.get("expected")}
        out["tables"]["plan"] = table(
            ["channel", "planned", "current", "share", "brand"],
            [[ch, c["total"], c["current_total"], c["share"], c["brand"]] for ch, c in plan["channels"].items()],
        )
    case_path = folder / "case.json"
    if case_path.exists():
        case = json.loads(case_path.read_text())
        out["case"] = {
            k: case.get(k)
            for k in (
                "horizon_months",
                "total_spend",
                "romi",
                "npv",
                "payback_month",
                "probability_pays_back",
                "discount_rate",
                "gross_margin",
            )
        }
        out["case_pdf"] = (folder / "case.pdf").exists()
        out["tables"]["case_months"] = table(
            ["month", "spend", "revenue", "cash_flow", "cumulative", "cumulative_low", "cumulative_high"],
            [
                [
                    m["month"],
                    m["spend"],
                    m["revenue"]["mean"],
                    m["cash_flow"]["mean"],
                    m["cumulative_cash_flow"]["mean"],
                    m["cumulative_cash_flow"]["low"],
                    m["cumulative_cash_flow"]["high"],
                ]
                for m in case.get("months", [])
            ],
        )
    return out
