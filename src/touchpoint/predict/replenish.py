"""Replenishment: when a customer who buys the same product again and again will run out next.

For every (customer, product) bought on at least two different days, the engine computes the days
between consecutive purchases divided by the quantity bought the first time (days one unit lasts).
The customer's own median of that, times the quantity of her last purchase, gives the date the
supply runs out: ``due_at = last purchase + median days per unit x last quantity``. An automation
can act a few days before ``due_at``. With fewer than ``min_intervals`` intervals the estimate is
flagged as uncertain (``intervals`` says how many it rests on).

Products are the ``products[]`` of "Order Completed" events, identified by ``sku``, else
``product_id``, else ``id``, else ``name``; ``quantity`` defaults to 1.

>>> import datetime as dt
>>> from touchpoint.warehouse import Warehouse
>>> from touchpoint.collect.store import write_messages
>>> wh = Warehouse.open("duckdb://:memory:")
>>> _ = write_messages(wh, [{"type": "track", "event": "Order Completed", "userId": "u1",
...     "timestamp": f"2024-01-{d:02d}T10:00:00Z", "properties": {"order_id": f"o{d}",
...     "products": [{"sku": "lens-30", "quantity": 1}]}} for d in (1, 31)])
>>> rows = replenishment(wh, as_of=dt.date(2024, 2, 15)).to_pylist()
>>> rows[0]["product"], rows[0]["days_per_unit"], rows[0]["due_at"]
('lens-30', 30.0, datetime.date(2024, 3, 1))
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import ibis
import ibis.expr.types as ir
import numpy as np
import pyarrow as pa

from touchpoint.collect.ecommerce import ORDER_COMPLETED
from touchpoint.predict.summary import as_date, events_with_customer
from touchpoint.warehouse import Warehouse

REPLENISHMENT_TABLE = "replenishment"


def product_purchases(wh: Warehouse) -> ir.Table:
    """One row per (customer_id, product, day) with the quantity bought that day."""
    events = events_with_customer(wh)
    o = events.filter((events.type == "track") & (events.event == ORDER_COMPLETED))
    items = o.select(customer_id=o.customer_id, day=o.timestamp.date(), item=o.properties["products"].array.unnest())
    item = items.item
    product = ibis.coalesce(item["sku"].str, item["product_id"].str, item["id"].str, item["name"].str)
    qty = ibis.coalesce(item["quantity"].float, item["quantity"].str.cast("float64"), ibis.literal(1.0))
    items = items.select("customer_id", "day", product=product, quantity=qty)
    items = items.filter(items.customer_id.notnull() & items.product.notnull())
    return items.group_by(["customer_id", "product", "day"]).aggregate(quantity=items.quantity.sum())


def replenishment_expr(purchases: ir.Table) -> ir.Table:
    """Per (customer, product) with >= 2 purchase days: intervals, median days per unit, last purchase."""
    w = ibis.window(group_by=["customer_id", "product"], order_by="day")
    p = purchases.mutate(prev_day=purchases.day.lag().over(w), prev_qty=purchases.quantity.lag().over(w))
    p = p.mutate(
        per_unit=ibis.ifelse(
            p.prev_day.notnull(),
            p.day.delta(p.prev_day, unit="day").cast("float64") / ibis.greatest(p.prev_qty, 1e-9),
            None,
        )
    )
    agg = p.group_by(["customer_id", "product"]).aggregate(
        purchases=p.count(),
        intervals=p.per_unit.count(),
        days_per_unit=p.per_unit.median(),
        last_day=p.day.max(),
        last_quantity=p.quantity.argmax(p.day),
    )
    return agg.filter(agg.intervals >= 1).order_by(["customer_id", "product"])


def replenishment(wh: Warehouse, *, as_of: Any = None, min_intervals: int = 2) -> pa.Table:
    """The replenishment table: when each repeat buyer of a product is due to run out."""
    expr = replenishment_expr(product_purchases(wh))
    table = wh.to_arrow(expr)
    n = table.num_rows
    last = table.column("last_day").to_numpy(zero_copy_only=False).astype("datetime64[D]")
    per_unit = table.column("days_per_unit").to_numpy(zero_copy_only=False).astype(np.float64)
    qty = table.column("last_quantity").to_numpy(zero_copy_only=False).astype(np.float64)
    cycle = np.round(per_unit * qty)
    due = last + cycle.astype("timedelta64[D]")
    when = np.datetime64(as_date(as_of, "as of") if as_of is not None else dt.date.today(), "D")
    days_left = (due - when).astype(np.int64)
    intervals = table.column("intervals").to_numpy(zero_copy_only=False)
    return pa.table(
        {
            "customer_id": table.column("customer_id"),
            "product": table.column("product"),
            "purchases": table.column("purchases"),
            "intervals": table.column("intervals"),
            "days_per_unit": per_unit,
            "last_purchase_at": pa.array(last, pa.date32()),
            "last_quantity": qty,
            "due_at": pa.array(due, pa.date32()),
            "days_until_due": days_left,
            "uncertain": pa.array(intervals < min_intervals) if n else pa.array([], pa.bool_()),
        }
    )


def write_replenishment(wh: Warehouse, table: pa.Table) -> int:
    wh.replace(REPLENISHMENT_TABLE, table)
    return table.num_rows
