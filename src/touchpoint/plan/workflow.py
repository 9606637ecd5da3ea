"""What the CLI (``touchpoint plan create|show|review|list``) and the HTTP API (``/v1/plans``) share:
each returns the dictionary the surfaces print.

>>> from touchpoint.warehouse import Warehouse
>>> wh = Warehouse.open("duckdb://:memory:")
>>> doc = {"id": "p1", "goal": {"metric": "revenue", "baseline": 100, "target": 110},
...        "behaviour_changes": [{"id": "b", "audience": "all", "behaviour": "orders per person",
...                               "from": 1.0, "to": 1.05, "people": 100, "value_per_unit": 1.0}]}
>>> created = create(wh, doc)
>>> created["version"], created["arithmetic"]["adds_up"]
(1, False)
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from touchpoint.errors import InvalidInput, NotFound
from touchpoint.plan import rollup, store
from touchpoint.plan.document import Plan
from touchpoint.plan.review import review_plan
from touchpoint.warehouse import Warehouse

MAX_FILE_BYTES = 1_000_000


def read_document(path: str | Path) -> dict[str, Any]:
    """A plan document from a JSON file, with errors naming the file."""
    p = Path(path)
    if not p.is_file():
        raise NotFound(f"plan file {str(p)!r} does not exist", hint="write the plan as JSON (docs/plan.md)")
    if p.stat().st_size > MAX_FILE_BYTES:
        raise InvalidInput(f"{p} is larger than {MAX_FILE_BYTES:,} bytes", hint="a plan is a small JSON document")
    try:
        doc = json.loads(p.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidInput(f"{p} is not JSON ({exc})", hint="see docs/plan.md for the plan document") from exc
    if not isinstance(doc, dict):
        raise InvalidInput(f"{p} does not hold a plan object", hint="see docs/plan.md for the plan document")
    return doc


def _analysed(stored: dict[str, Any]) -> dict[str, Any]:
    plan = Plan.from_dict(stored["plan"])
    return {**stored, "arithmetic": rollup.arithmetic(plan), "rollup": rollup.rollup(plan)}


def create(wh: Warehouse, document: dict[str, Any], *, new_version: bool = False, note: str = "") -> dict[str, Any]:
    """Store the plan (or a new version of it) and show its arithmetic and expected roll-up."""
    return _analysed(store.save_plan(wh, document, new_version=new_version, note=note))


def show(wh: Warehouse, plan_id: str, *, version: int | None = None) -> dict[str, Any]:
    """A stored plan with its arithmetic, its roll-up as planned and its reviews."""
    out = _analysed(store.get_plan(wh, plan_id, version))
    out["reviews"] = [
        {
            "quarter": r["quarter"],
            "plan_version": r["plan_version"],
            "reviewed_at": r["reviewed_at"],
            "probability_of_attainment": r["rollup"]["probability_of_attainment"],
            "decisions": {t["tactic"]: t["decision"] for t in r["tactics"]},
        }
        for r in store.reviews(wh, plan_id)
    ]
    return out


def review(
    wh: Warehouse, plan_id: str, *, quarter: str, version: int | None = None, write: bool = True
) -> dict[str, Any]:
    """The quarterly review (see :mod:`touchpoint.plan.review`), stored unless ``write`` is False."""
    return review_plan(wh, plan_id, quarter=quarter, version=version, write=write)


def plans(wh: Warehouse) -> list[dict[str, Any]]:
    return store.list_plans(wh)
