"""Reading the derived prediction tables: one customer's predictions, and the latest CLV run with the
customer-equity KPI.

>>> from touchpoint.warehouse import Warehouse
>>> wh = Warehouse.open("duckdb://:memory:")
>>> latest_run(wh) is None
True
"""

from __future__ import annotations

import json
import math
from typing import Any

import ibis
import ibis.expr.types as ir

from touchpoint.errors import InvalidInput, NotFound
from touchpoint.predict.clv import PREDICTIONS_TABLE, RUNS_TABLE
from touchpoint.predict.propensity import PROPENSITY_TABLE
from touchpoint.predict.replenish import REPLENISHMENT_TABLE
from touchpoint.warehouse import Warehouse


def clean(value: Any) -> Any:
    """NaN and infinite floats become None (recursively), so the value is valid JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: clean(v) for k, v in value.items()}
    if isinstance(value, list):
        return [clean(v) for v in value]
    return value


def _customer(wh: Warehouse, table: str, customer_id: str) -> ir.Table:
    t = wh.table(table)
    return t.filter(t.customer_id == customer_id)


def _rows(wh: Warehouse, table: str, customer_id: str) -> list[dict[str, Any]]:
    return [clean(r) for r in wh.prepared(_customer, customer_id, key=table).to_pylist()]


def top_customers(wh: Warehouse, *, by: str = "clv", limit: int = 50, offset: int = 0) -> dict[str, Any]:
    """Customers of the latest CLV run, highest ``by`` first (clv, p_alive, expected_purchases)."""
    if by not in {"clv", "p_alive", "expected_purchases", "prob_purchase_window"}:
        raise InvalidInput(f"cannot sort predictions by {by!r}", hint="use clv, p_alive or expected_purchases")
    total = wh.count(PREDICTIONS_TABLE)
    if not total:
        raise NotFound("no predictions have been made yet", hint="run `touchpoint predict clv` first")
    rows = wh.prepared(_top, key=(by, limit, offset)).to_pylist()
    return {"total": total, "by": by, "rows": [clean(r) for r in rows]}


def _top(wh: Warehouse, page: tuple[str, int, int]) -> ir.Table:
    by, limit, offset = page
    return wh.table(PREDICTIONS_TABLE).order_by(ibis.desc(by)).limit(limit, offset=offset)


def _profile_ids(wh: Warehouse, customer_id: str) -> list[str]:
    """The id itself, plus its resolved profile id when identities are resolved."""
    ids = [customer_id]
    try:
        from touchpoint import identity

        profile = identity.resolve(wh, customer_id)
        if profile and profile not in ids:
            ids.append(profile)
    except Exception:
        pass
    return ids


def customer_predictions(wh: Warehouse, customer_id: str) -> dict[str, Any]:
    """Everything predicted for one customer (user id or profile id): CLV, P(alive), next purchase,
    propensity scores and replenishment dates. Raises NotFound when nothing is known."""
    out: dict[str, Any] = {"customer_id": customer_id, "clv": None, "propensity": [], "replenishment": []}
    for cid in _profile_ids(wh, customer_id):
        clv = _rows(wh, PREDICTIONS_TABLE, cid)
        if clv and out["clv"] is None:
            out["clv"] = clv[0]
            out["customer_id"] = cid
        out["propensity"] += _rows(wh, PROPENSITY_TABLE, cid)
        out["replenishment"] += _rows(wh, REPLENISHMENT_TABLE, cid)
    if out["clv"] is None and not out["propensity"] and not out["replenishment"]:
        if not wh.count(PREDICTIONS_TABLE) and not wh.count(RUNS_TABLE):
            raise NotFound("no predictions have been made yet", hint="run `touchpoint predict clv` first")
        raise NotFound(
            f"no predictions for customer {customer_id!r}",
            hint="customers need an order before the calibration end; check the id (user id or profile id)",
        )
    return out


def _latest_run(wh: Warehouse) -> ir.Table:
    t = wh.table(RUNS_TABLE)
    return t.order_by(t.run_at.desc()).limit(1)


def latest_run(wh: Warehouse) -> dict[str, Any] | None:
    """The latest CLV run: model, parameters, fit, holdout metrics and customer equity with its interval."""
    rows = wh.prepared(_latest_run).to_pylist()
    if not rows:
        return None
    row = rows[0]
    summary = json.loads(row.pop("summary"))
    return clean({**row, "summary": summary})
