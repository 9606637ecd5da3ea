"""What the CLI, the HTTP API, jobs and the demo share: fit, check, score and store predictions.

The orders come from the event log, their customers by the customer rule
(:mod:`touchpoint.identity.people`), or from a file; each function returns what the surfaces show.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from touchpoint.predict.clv import ClvOptions, run_clv, write_predictions
from touchpoint.predict.summary import customer_key_source, orders_from_events, read_orders_file
from touchpoint.warehouse import Warehouse


def clv_from_warehouse(
    wh: Warehouse,
    options: ClvOptions | None = None,
    *,
    out_dir: str | Path | None = None,
    write: bool = True,
    rows: int = 0,
) -> dict[str, Any]:
    """Fit the purchase and spend models on the warehouse's orders, check them on the holdout, score
    every customer; with ``write``, replace the ``predictions`` table and log the run.

    Returns the run's summary (with ``rows`` customers' predictions), the customer key in words and,
    with ``write``, what was written."""
    run = run_clv(wh, orders_from_events(wh), options, out_dir=Path(out_dir) if out_dir is not None else None)
    result = run.to_dict(rows=rows)
    result["customer_key"] = customer_key_source(wh)
    if write:
        result["written"] = {"predictions": write_predictions(wh, run)}
    return result


def clv_from_file(
    path: str | Path,
    options: ClvOptions | None = None,
    *,
    fmt: str | None = None,
    mapping: dict[str, str] | None = None,
    revenue_is_order_total: bool = False,
    out_dir: str | Path | None = None,
    rows: int = 0,
) -> dict[str, Any]:
    """The same fit on an order file read as ``touchpoint import orders`` reads it (columns
    ``customer_id, order_id, timestamp, revenue``, renamed with ``mapping``); nothing is written to
    any warehouse."""
    from touchpoint.warehouse import Warehouse

    orders = read_orders_file(path, fmt=fmt, mapping=mapping, revenue_is_order_total=revenue_is_order_total)
    with Warehouse.open("duckdb://:memory:", migrate=False) as scratch:  # the file is the data
        run = run_clv(scratch, orders, options, out_dir=Path(out_dir) if out_dir is not None else None)
    return run.to_dict(rows=rows)


def propensity(
    wh: Warehouse, event: str, days: int, *, as_of: Any = None, write: bool = True, rows: int = 10
) -> dict[str, Any]:
    """Score every customer's chance of ``event`` within ``days``; with ``write``, store the scores."""
    from touchpoint.predict.propensity import run_propensity, write_scores

    run = run_propensity(wh, event, days, as_of=as_of)
    result = run.to_dict(rows=rows)
    if write:
        result["written"] = write_scores(wh, run)
    return result


def replenishment(
    wh: Warehouse, *, as_of: Any = None, write: bool = True, due_within: int | None = None
) -> list[dict[str, Any]]:
    """Each repeat buyer's next due date per product, soonest first; with ``write``, replace the
    ``replenishment`` table (always with every row); with ``due_within``, only those due in 0..N days."""
    import pyarrow.compute as pc

    from touchpoint.predict.replenish import replenishment as compute
    from touchpoint.predict.replenish import write_replenishment

    t = compute(wh, as_of=as_of)
    if write:
        write_replenishment(wh, t)
    if due_within is not None:
        days_left = t.column("days_until_due")
        t = t.filter(pc.and_(pc.greater_equal(days_left, 0), pc.less_equal(days_left, due_within)))
    rows: list[dict[str, Any]] = t.sort_by("days_until_due").to_pylist()
    return rows
