"""The audiences step of ``touchpoint demo``: the shop defines the audiences a marketer would start
with and prints their sizes, evaluated at the end of the simulated period.

* **at-risk high-value**: P(alive) under 0.5 and CLV in the top quarter of the shop's customers;
* **replenishment due**: a product due to run out in the next 7 days;
* **browsed, not bought**: viewed a product page in the last 14 days and no order in that time;
* **at-risk high-value, emailable**: those of the first whose marketing_email consent holds (given on
  the simulated consent banner at sign-up, docs/privacy.md): whom a win-back email may reach;

and a lead score (known email; email opens and product views fading with a half-life) with its bands.
"""

from __future__ import annotations

import datetime as dt
import pathlib
from typing import Any

from touchpoint.audiences import workflow
from touchpoint.warehouse import Warehouse


def _clv_quartile(wh: Warehouse) -> float:
    t = wh.table("predictions")
    value = wh.to_arrow(t.clv.quantile(0.75)).as_py()
    return round(float(value or 0.0), 2)


def definitions(clv_floor: float) -> dict[str, dict[str, Any]]:
    return {
        "at-risk-high-value": {
            "all": [{"prediction": "p_alive", "lt": 0.5}, {"prediction": "clv", "gte": clv_floor}],
        },
        "replenishment-due": {"prediction": "replenishment_due_at", "within_days": 7},
        "browsed-not-bought": {
            "all": [
                {"event": "Page Viewed", "where": {"path": {"contains": "/products/"}}, "within_days": 14},
                {"not": {"event": "Order Completed", "within_days": 14}},
            ]
        },
        "at-risk-high-value-emailable": {
            "all": [{"audience": "at-risk-high-value"}, {"consent": "marketing_email"}],
        },
    }


LEAD_SCORE: dict[str, Any] = {
    "fit": [{"name": "known-email", "when": {"trait": "email", "exists": True}, "points": 10}],
    "engagement": [
        {"name": "email-opens", "event": "Email Opened", "points": 3, "half_life_days": 14, "group": "email"},
        {
            "name": "product-views",
            "event": "Page Viewed",
            "where": {"path": {"contains": "/products/"}},
            "points": 5,
            "half_life_days": 7,
            "group": "web",
        },
    ],
    "caps": {"email": 20, "web": 30},
    "ceiling": 60,
    "bands": [{"name": "cold", "min": 0}, {"name": "warm", "min": 12}, {"name": "hot", "min": 20}],
    "stages": [
        {"name": "subscriber"},
        {"name": "lead", "min_points": 12},
        {"name": "marketing-qualified", "min_points": 20},
        {"name": "customer", "when": {"trait": "orders", "gte": 1}},
    ],
}


def run_demo(wh: Warehouse, truth: dict[str, Any], out_dir: pathlib.Path) -> dict[str, Any]:
    end = dt.datetime.fromisoformat(truth["period"]["end"]) - dt.timedelta(seconds=1)  # "end" is exclusive
    floor = _clv_quartile(wh)
    sizes: dict[str, Any] = {}
    for name, definition in definitions(floor).items():
        out = workflow.create(wh, name, definition, replace=True, now=end)
        sizes[name] = {"members": out["refresh"]["members"], "seconds": out["refresh"]["seconds"]}
    from touchpoint.audiences import scores

    scores.save(wh, "lead", LEAD_SCORE, replace=True)
    lead = scores.run(wh, "lead", now=end)
    return {
        "evaluated_at": end.isoformat(),
        "clv_top_quartile": floor,
        "audiences": sizes,
        "lead_score": {"bands": lead["bands"], "stages": lead["stages"]},
    }


def headline(s: dict[str, Any]) -> str:
    """The line ``touchpoint demo`` prints for this step."""
    parts = [f"{name} {v['members']:,}" for name, v in s["audiences"].items()]
    bands = s.get("lead_score", {}).get("bands", {})
    lead = ", ".join(f"{b} {n:,}" for b, n in sorted(bands.items()))
    return "audiences: " + ", ".join(parts) + (f"; lead score bands: {lead}" if lead else "")
