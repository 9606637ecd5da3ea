"""``touchpoint import orders``: order files mapped to "Order Completed" track events.

A file has one row per order or per order line. Lines of the same order become one event
whose ``products`` lists the lines and whose ``revenue`` is the sum of the lines' revenue
(or, with ``revenue_is_order_total``, the order's total as given on its lines). The event's
messageId is ``order-<order_id>``, so importing the same orders again changes nothing.

Fields (rename with ``mapping``, e.g. ``{"customer_id": "cust_no"}``): customer_id, order_id,
timestamp, revenue; optional email, currency, product_id, sku, name, quantity, price.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import msgspec

from touchpoint.collect.decode import EventError
from touchpoint.collect.ecommerce import ORDER_COMPLETED
from touchpoint.collect.files import ChunkWriter, ImportReport, mapped_records
from touchpoint.collect.normalize import MAX_AMOUNT, EventRows, Rejected, utcnow
from touchpoint.collect.readers import Progress, detect_format
from touchpoint.warehouse import Warehouse

REQUIRED = ("customer_id", "order_id", "timestamp")
LINE_FIELDS = ("product_id", "sku", "name", "category", "quantity", "price")
_encode = msgspec.json.Encoder().encode


def _number(value: Any, field: str) -> float | None:
    """A number within the range of the typed amount columns; out of range is refused, never nulled."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise EventError(f"field '{field}': expected a number, got {value!r}", field)
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        raise EventError(f"field '{field}': {str(value)[:40]!r} is not a number", field) from None
    if not math.isfinite(number) or abs(number) > MAX_AMOUNT:
        raise EventError(
            f"field '{field}': {str(value)[:40]!r} is out of range (at most {MAX_AMOUNT:,.0f} either side of zero)",
            field,
        )
    return number


def _line(data: dict[str, Any]) -> dict[str, Any]:
    for field in REQUIRED:
        if data.get(field) in (None, ""):
            raise EventError(f"field '{field}' is empty; every order row needs it (rename columns with --map)", field)
    revenue = _number(data.get("revenue"), "revenue")
    quantity = _number(data.get("quantity"), "quantity")
    price = _number(data.get("price"), "price")
    if revenue is None:
        if price is None:
            raise EventError("field 'revenue' is empty and there is no 'price' to compute it from", "revenue")
        revenue = _number(price * (quantity if quantity is not None else 1.0), "revenue")
    line = {k: data[k] for k in LINE_FIELDS if data.get(k) not in (None, "")}
    if quantity is not None:
        line["quantity"] = quantity
    if price is not None:
        line["price"] = price
    return {
        "customer_id": str(data["customer_id"]),
        "order_id": str(data["order_id"]),
        "timestamp": data["timestamp"],
        "revenue": revenue,
        "currency": data.get("currency"),
        "email": data.get("email"),
        "line": line,
    }


def order_message(lines: list[dict[str, Any]], *, revenue_is_order_total: bool = False) -> dict[str, Any]:
    """One "Order Completed" event from the lines of one order."""
    first = lines[0]
    products = [ln["line"] for ln in lines if ln["line"]]
    revenue = first["revenue"] if revenue_is_order_total else sum(ln["revenue"] for ln in lines)
    timestamp = first["timestamp"]
    properties: dict[str, Any] = {"order_id": first["order_id"], "revenue": round(revenue, 10)}
    if first["currency"]:
        properties["currency"] = first["currency"]
    if products:
        properties["products"] = products
    message: dict[str, Any] = {
        "type": "track",
        "event": ORDER_COMPLETED,
        "messageId": f"order-{first['order_id']}",
        "userId": first["customer_id"],
        "timestamp": timestamp if isinstance(timestamp, str) else timestamp.isoformat(),
        "properties": properties,
    }
    if first["email"]:
        message["context"] = {"traits": {"email": first["email"]}}
    return message


def import_orders(
    warehouse: Warehouse,
    path: Path,
    *,
    fmt: str | None = None,
    mapping: dict[str, str] | None = None,
    source: str = "orders-import",
    revenue_is_order_total: bool = False,
    chunk_events: int = 100_000,
    progress: Progress | None = None,
) -> ImportReport:
    """Import an order file as "Order Completed" events; returns counts and sample reasons."""
    fmt = detect_format(path, fmt)
    report = ImportReport(file=str(path))
    started = time.perf_counter()
    received_at = utcnow()
    orders: dict[str, list[dict[str, Any]]] = {}
    first_origin: dict[str, str] = {}
    bad = EventRows()

    def reject(rejected: Rejected) -> None:
        bad.reject(rejected, received_at, source)

    for origin, line in mapped_records(
        path, fmt, prefix="orders", mapping=mapping, progress=progress, convert=_line, reject=reject
    ):
        orders.setdefault(line["order_id"], []).append(line)
        first_origin.setdefault(line["order_id"], origin)

    writer = ChunkWriter(warehouse, report)
    try:
        rows = bad
        for order_id, lines in orders.items():
            message = order_message(lines, revenue_is_order_total=revenue_is_order_total)
            rows.add_raw(
                _encode(message),
                received_at=received_at,
                source=source,
                origin=first_origin[order_id],
            )
            if len(rows) + len(rows.rejected) >= chunk_events:
                writer.submit(rows)
                rows = EventRows()
        if len(rows) or rows.rejected:
            writer.submit(rows)
    finally:
        writer.close()
    report.seconds = time.perf_counter() - started
    return report


def read_orders(
    path: Path,
    *,
    fmt: str | None = None,
    mapping: dict[str, str] | None = None,
    revenue_is_order_total: bool = False,
) -> list[dict[str, Any]]:
    """The orders of a file read exactly as :func:`import_orders` reads them, without storing anything.

    One dict per order: ``customer_id``, ``order_id``, ``timestamp`` (naive UTC) and ``revenue`` (the
    lines summed, or the order's total with ``revenue_is_order_total``). Analyses that take an order file
    (``touchpoint predict clv --orders``) use it, so a file that imports also analyses. A row the import
    would quarantine is refused here with its line and reason (nothing is kept to replay).
    """
    from touchpoint.collect.normalize import parse_time
    from touchpoint.errors import InvalidInput

    def convert(data: dict[str, Any]) -> dict[str, Any]:
        line = _line(data)
        when = line["timestamp"]
        line["timestamp"] = parse_time(when if isinstance(when, str) else when.isoformat(), "timestamp")
        return line

    def refuse(rejected: Rejected) -> None:
        reason = rejected.reason
        if not reason.startswith("line ") and rejected.origin:
            reason = f"line {rejected.origin.rsplit(':', 1)[-1]}: {reason}"
        raise InvalidInput(
            f"{path.name} {reason}",
            hint="an order row needs customer_id, order_id, timestamp, revenue (rename with --map FIELD=COLUMN)",
        )

    orders: dict[str, list[dict[str, Any]]] = {}
    rows = mapped_records(
        path, detect_format(path, fmt), prefix="orders", mapping=mapping, progress=None, convert=convert, reject=refuse
    )
    for _, line in rows:
        orders.setdefault(line["order_id"], []).append(line)
    out = []
    for lines in orders.values():
        event = order_message(lines, revenue_is_order_total=revenue_is_order_total)
        first = lines[0]
        out.append(
            {
                "customer_id": first["customer_id"],
                "order_id": first["order_id"],
                "timestamp": first["timestamp"],
                "revenue": event["properties"]["revenue"],
            }
        )
    return out
