"""The journeys step of ``touchpoint demo``: funnels, paths, retention and the attribution comparison.

On the simulated shop the truth is known: every customer's first order was *caused* by one
channel (``truth["acquisition"]["by_channel"]``), and each paid channel's spend and the revenue
of the first orders it caused (``truth["channels"]``). Every model attributes the same first-order
journeys; the summary says how far each lands from the truth (the share of first orders it puts
on the wrong channel) and compares ROAS from attribution with the true ROMI per paid channel.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from touchpoint.warehouse import Warehouse

FUNNEL = ["page:/products/%", "page:/cart", "page:/checkout", "Order Completed"]


def misattributed(credited: dict[str, float], truth: dict[str, float]) -> float:
    """Share of conversions on the wrong channel: half the L1 distance over the total.

    >>> misattributed({"a": 3, "b": 1}, {"a": 2, "b": 2})
    0.25
    """
    keys = set(credited) | set(truth)
    total = sum(truth.values()) or 1.0
    return float(sum(abs(credited.get(k, 0.0) - truth.get(k, 0.0)) for k in keys) / 2 / total)


def run_demo(wh: Warehouse, truth: dict[str, Any], out_dir: Path) -> dict[str, Any]:
    """Run funnels, paths, retention and attribution on the demo warehouse; write charts to ``out_dir``."""
    from datetime import datetime

    from touchpoint.journeys import charts
    from touchpoint.journeys.attribution import MODELS, attribute, comparison, fit_all
    from touchpoint.journeys.funnels import funnel
    from touchpoint.journeys.paths import paths
    from touchpoint.journeys.retention import retention
    from touchpoint.journeys.romi import romi
    from touchpoint.journeys.sessions import build_sessions_table
    from touchpoint.journeys.touches import journeys

    out = Path(out_dir) / "journeys"
    out.mkdir(parents=True, exist_ok=True)
    period = truth.get("period", {})
    start = datetime.fromisoformat(period["start"]) if period.get("start") else None
    end = datetime.fromisoformat(period["end"]) if period.get("end") else None
    summary: dict[str, Any] = {"charts": {}}

    summary["sessions"] = build_sessions_table(wh)
    fun = funnel(wh, FUNNEL, window_hours=24, breakdown="channel")
    summary["funnel"] = {
        "steps": [{"label": s["label"], "people": s["people"], "overall": s["overall"]} for s in fun["steps"]],
        "by_channel": {
            g["breakdown"]: g["steps"][-1]["overall"] for g in fun["groups"] if g["steps"][0]["people"] >= 30
        },
    }
    summary["charts"]["funnel"] = str(charts.funnel_chart(fun, out / "funnel.png", title="Product to order (24 h)"))

    to_order = paths(wh, "Order Completed", direction="to", depth=3, top=10)
    summary["paths_to_order"] = [{"path": p["path"], "people": p["people"]} for p in to_order["paths"][:5]]
    summary["charts"]["sankey"] = str(charts.sankey_chart(to_order, out / "paths_to_order.png"))

    ret = retention(wh, period="month", cohort="first_order", returning="order", max_periods=6)
    summary["retention"] = {
        "cohorts": len(ret["cohorts"]),
        "month_1_median": _median([c["periods"][1]["share"] for c in ret["cohorts"] if c["periods"][1]["share"]]),
    }
    if ret["cohorts"]:
        summary["charts"]["retention"] = str(charts.retention_chart(ret, out / "retention.png"))

    # Attribution of first orders, where the causal channel is known.
    data = journeys(wh, first_only=True, lookback_days=30)
    fitted = fit_all(data, MODELS)
    fitted["markov_order2"] = attribute(data, "markov", order=2)
    fitted["shapley_rate"] = attribute(data, "shapley", value_function="rate")
    table = comparison(fitted)
    true_first = {k: float(v) for k, v in truth.get("acquisition", {}).get("by_channel", {}).items()}
    errors = {
        name: misattributed({c: float(x) for c, x in zip(r.channels, r.conversions, strict=True)}, true_first)
        for name, r in fitted.items()
    }
    summary["attribution"] = {
        "journeys": data.n_paths,
        "first_orders": table["total_conversions"],
        "true_first_orders": sum(true_first.values()),
        "misattributed_share": {k: round(v, 4) for k, v in sorted(errors.items(), key=lambda kv: kv[1])},
        "credited": {row["channel"]: {m: round(row[m], 1) for m in fitted} for row in table["channels"]},
        "truth": true_first,
        "note": "share of first orders each model puts on a channel that did not cause them (0 = perfect)",
    }
    summary["charts"]["attribution"] = str(
        charts.attribution_chart(table, out / "attribution.png", title="First orders by channel", truth=true_first)
    )

    # ROMI bridge: spend over the whole period against credited first-order revenue.
    bridge = romi(wh, fitted, start=start, end=end)
    true_channels = truth.get("channels", {})
    romi_rows: dict[str, dict[str, Any]] = {}
    for row in bridge["rows"]:
        ch = row["channel"]
        if ch not in true_channels or row["spend"] <= 0:
            continue
        entry = romi_rows.setdefault(
            ch, {"spend": round(row["spend"], 2), "true_romi": round(float(true_channels[ch]["romi"]), 3)}
        )
        entry[row["model"]] = None if row["roas"] is None else round(row["roas"], 3)
    summary["romi"] = {
        "by_channel": romi_rows,
        "note": "ROAS = first-order revenue credited by each model / spend; true_romi = revenue of the first "
        "orders the channel caused / spend",
        "caveat": bridge["caveat"],
    }
    return summary


def _median(values: list[float]) -> float | None:
    if not values:
        return None
    s = sorted(values)
    mid = len(s) // 2
    return s[mid] if len(s) % 2 else (s[mid - 1] + s[mid]) / 2


def headline(s: dict[str, Any]) -> str:
    """The line ``touchpoint demo`` prints for this step."""
    return f"{s['sessions']:,} sessions; funnel, paths, retention and attribution charts written"
