"""Storing plans and their reviews: every save of a plan is a new version (``plans``), nothing is
overwritten; every review is kept with the version it reviewed (``plan_reviews``).

>>> from touchpoint.warehouse import Warehouse
>>> wh = Warehouse.open("duckdb://:memory:")
>>> doc = {"id": "p1", "goal": {"metric": "revenue", "baseline": 100, "target": 110},
...        "behaviour_changes": [{"id": "b", "audience": "all", "behaviour": "orders per person",
...                               "from": 1.0, "to": 1.1, "people": 100, "value_per_unit": 1.0}]}
>>> save_plan(wh, doc)["version"], save_plan(wh, doc, new_version=True, note="same again")["version"]
(1, 2)
>>> [p["version"] for p in list_plans(wh)]
[2]
"""

from __future__ import annotations

import json
from typing import Any

import pyarrow as pa

from touchpoint.errors import AlreadyExists, NotFound
from touchpoint.plan.document import Plan
from touchpoint.warehouse import Warehouse
from touchpoint.warehouse.clock import utcnow
from touchpoint.warehouse.schema import PLAN_REVIEWS, PLANS

_now = utcnow  # the warehouse's clock (touchpoint.warehouse.clock)


def _versions(wh: Warehouse, plan_id: str) -> list[dict[str, Any]]:
    t = wh.table(PLANS.name)
    return wh.to_arrow(t.filter(t.plan_id == plan_id).order_by(t.version)).to_pylist()


def _row(r: dict[str, Any]) -> dict[str, Any]:
    return {
        "plan_id": r["plan_id"],
        "version": int(r["version"]),
        "name": r["name"],
        "note": r["note"],
        "created_at": r["created_at"],
        "plan": json.loads(r["document"]),
    }


def save_plan(wh: Warehouse, document: dict[str, Any], *, new_version: bool = False, note: str = "") -> dict[str, Any]:
    """Check ``document`` and store it as version 1, or (``new_version``) as the next version of an
    existing plan. An existing id without ``new_version`` is refused."""
    plan = Plan.from_dict(document)
    with wh.write():  # the check and the insert under one lock: two saves cannot take one version
        versions = _versions(wh, plan.id)
        if versions and not new_version:
            raise AlreadyExists(
                f"a plan with id {plan.id!r} exists (version {versions[-1]['version']})",
                hint="save it as a new version (`touchpoint plan create FILE --new-version`), or choose another id",
            )
        if not versions and new_version:
            raise NotFound(f"no plan with id {plan.id!r} to make a new version of", hint="create it first")
        version = (int(versions[-1]["version"]) + 1) if versions else 1
        row = {
            "plan_id": plan.id,
            "version": version,
            "name": plan.name,
            "document": json.dumps(plan.to_dict()),
            "note": note[:1000],
            "created_at": _now(),
        }
        wh.append(PLANS.name, pa.Table.from_pylist([row], schema=PLANS.schema.to_pyarrow()))
    return _row(row)


def get_plan(wh: Warehouse, plan_id: str, version: int | None = None) -> dict[str, Any]:
    """A plan's latest (or given) version, with the list of its versions."""
    versions = _versions(wh, plan_id)
    if not versions:
        raise NotFound(f"no plan with id {plan_id!r}", hint="`touchpoint plan list` shows the plans")
    pick = versions[-1] if version is None else next((v for v in versions if v["version"] == version), None)
    if pick is None:
        raise NotFound(
            f"plan {plan_id!r} has no version {version}", hint=f"versions: {[int(v['version']) for v in versions]}"
        )
    out = _row(pick)
    out["versions"] = [
        {"version": int(v["version"]), "note": v["note"], "created_at": v["created_at"]} for v in versions
    ]
    return out


def list_plans(wh: Warehouse) -> list[dict[str, Any]]:
    """Every plan's latest version (without the documents)."""
    t = wh.table(PLANS.name)
    latest = t.group_by("plan_id").aggregate(version=t.version.max())
    rows = wh.to_arrow(t.join(latest, ["plan_id", "version"]).order_by("plan_id")).to_pylist()
    return [{k: r[k] for k in ("plan_id", "version", "name", "note", "created_at")} for r in rows]


def save_review(wh: Warehouse, review: dict[str, Any]) -> None:
    row = {
        "plan_id": review["plan_id"],
        "plan_version": review["plan_version"],
        "quarter": review["quarter"],
        "review": json.dumps(review, default=str),
        "reviewed_at": _now(),
    }
    with wh.write() as tx:
        tx.append(PLAN_REVIEWS.name, pa.Table.from_pylist([row], schema=PLAN_REVIEWS.schema.to_pyarrow()))


def reviews(wh: Warehouse, plan_id: str) -> list[dict[str, Any]]:
    """A plan's stored reviews, oldest first."""
    t = wh.table(PLAN_REVIEWS.name)
    rows = wh.to_arrow(t.filter(t.plan_id == plan_id).order_by(t.reviewed_at)).to_pylist()
    return [json.loads(r["review"]) | {"reviewed_at": r["reviewed_at"]} for r in rows]
