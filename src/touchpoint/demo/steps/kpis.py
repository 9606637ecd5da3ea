"""The kpis step of ``touchpoint demo``: customer equity by quarter, satisfaction and relative
attractiveness on the demo shop (after the predict step wrote its CLV), checked against the truth of the
simulated survey answers (:mod:`touchpoint.demo.surveys`)."""

from __future__ import annotations

import pathlib
from typing import Any

from touchpoint.plan.kpis import kpis
from touchpoint.warehouse import Warehouse


def _covers(kpi: dict[str, Any], truth: float | None) -> bool | None:
    if truth is None or kpi.get("low") is None or kpi.get("high") is None:
        return None
    return bool(kpi["low"] <= truth <= kpi["high"])


def run_demo(wh: Warehouse, truth: dict[str, Any], out_dir: pathlib.Path) -> dict[str, Any]:
    st = truth.get("surveys", {})
    k = kpis(wh, brand=st.get("brand"), nps=True)
    ce, sat, ra = k["customer_equity"], k["satisfaction"], k["relative_attractiveness"]
    csat_truth = st.get("csat", {})
    rel = ra.get("relation_to_retention_and_clv", {})
    return {
        "customer_equity": {key: ce.get(key) for key in ("value", "low", "high", "n", "as_of")}
        | {"quarters": len(ce.get("by_quarter", [])), "last_change": (ce.get("by_quarter") or [{}])[-1].get("change")},
        "satisfaction": {
            "mean": sat.get("value"),
            "interval": [sat.get("low"), sat.get("high")],
            "true_mean": csat_truth.get("mean"),
            "covers_truth": _covers(sat, csat_truth.get("mean")),
            "top_box": sat.get("top_box", {}).get("value"),
            "top_box_covers_truth": _covers(sat.get("top_box", {}), csat_truth.get("top_box")),
            "answers": sat.get("n"),
        },
        "relative_attractiveness": {
            "index": ra.get("value"),
            "interval": [ra.get("low"), ra.get("high")],
            "true_index": st.get("attractiveness", {}).get("index"),
            "covers_truth": _covers(ra, st.get("attractiveness", {}).get("index")),
            "respondents": ra.get("n"),
            "predicts_p_alive": rel.get("p_alive", {}).get("verdict"),
            "predicts_clv": rel.get("clv", {}).get("verdict"),
        },
        "nps": {"value": k["nps"]["value"], "n": k["nps"]["n"], "why_not_headline": k["nps"]["why_not_a_headline_kpi"]},
    }


def headline(s: dict[str, Any]) -> str:
    """The line ``touchpoint demo`` prints for this step."""
    ce, sat, ra = s["customer_equity"], s["satisfaction"], s["relative_attractiveness"]
    equity = (
        "customer equity -"
        if ce["value"] is None
        else f"customer equity {ce['value']:,.0f} ({ce['low']:,.0f}-{ce['high']:,.0f})"
    )
    parts = [equity]
    if sat["mean"] is not None:
        parts.append(f"satisfaction {sat['mean']:.2f} (truth {sat['true_mean']:.2f})")
    if ra["index"] is not None:
        parts.append(f"attractiveness index {ra['index']:.3f} (truth {ra['true_index']:.3f})")
    return "; ".join(parts)
