"""The audiences step of ``touchpoint demo``: the shop defines the audiences a marketer would start
with and prints their sizes, evaluated at the end of the simulated period.

* **at-risk high-value**: P(alive) under 0.5 and CLV in the top quarter of the shop's customers;
* **replenishment due**: a product due to run out in the next 7 days;
* **browsed, not bought**: viewed a product page in the last 14 days and no order in that time.
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
    }


def run_demo(wh: Warehouse, truth: dict[str, Any], out_dir: pathlib.Path) -> dict[str, Any]:
    end = dt.datetime.fromisoformat(truth["period"]["end"]) - dt.timedelta(seconds=1)  # "end" is exclusive
    floor = _clv_quartile(wh)
    sizes: dict[str, Any] = {}
    for name, definition in definitions(floor).items():
        out = workflow.create(wh, name, definition, replace=True, now=end)
        sizes[name] = {"members": out["refresh"]["members"], "seconds": out["refresh"]["seconds"]}
    return {"evaluated_at": end.isoformat(), "clv_top_quartile": floor, "audiences": sizes}


def headline(s: dict[str, Any]) -> str:
    """The line ``touchpoint demo`` prints for this step."""
    parts = [f"{name} {v['members']:,}" for name, v in s["audiences"].items()]
    return "audiences: " + ", ".join(parts)
