"""Replenishment dates from a customer's own purchase intervals, and orders keyed by resolved profiles."""

from __future__ import annotations

import datetime as dt

import pytest

from touchpoint.collect.store import write_messages
from touchpoint.predict.replenish import replenishment
from touchpoint.predict.summary import customer_key_source, load_summary, orders_from_events, rfm_summary
from touchpoint.warehouse import Warehouse

DAY0 = dt.datetime(2025, 1, 1, 10)


def _order(user: str | None, day: int, lines: list[dict], anon: str | None = None) -> dict:
    msg = {
        "type": "track",
        "event": "Order Completed",
        "timestamp": (DAY0 + dt.timedelta(days=day)).isoformat() + "Z",
        "properties": {"order_id": f"{user or anon}-{day}", "revenue": 20.0, "products": lines},
    }
    if user:
        msg["userId"] = user
    if anon:
        msg["anonymousId"] = anon
    return msg


@pytest.fixture
def wh():
    w = Warehouse.open("duckdb://:memory:")
    yield w
    w.close()


def test_due_date_scales_with_quantity(wh):
    write_messages(
        wh,
        [
            _order("u1", 0, [{"sku": "lens-30", "quantity": 2}, {"sku": "mug"}]),
            _order("u1", 60, [{"sku": "lens-30", "quantity": 1}]),
            _order("u1", 90, [{"sku": "lens-30", "quantity": "1"}]),
            _order("u2", 0, [{"product_id": "lens-30"}]),
            _order("u2", 45, [{"product_id": "lens-30"}]),
        ],
    )
    rows = {(r["customer_id"], r["product"]): r for r in replenishment(wh, as_of="2025-04-20").to_pylist()}
    assert set(rows) == {("u1", "lens-30"), ("u2", "lens-30")}  # the mug was bought once
    u1 = rows[("u1", "lens-30")]
    assert u1["days_per_unit"] == 30.0 and u1["intervals"] == 2 and not u1["uncertain"]
    assert u1["due_at"] == dt.date(2025, 4, 1) + dt.timedelta(days=30)
    assert u1["days_until_due"] == 11
    u2 = rows[("u2", "lens-30")]
    assert u2["days_per_unit"] == 45.0 and u2["uncertain"]  # one interval only


def test_orders_use_resolved_profiles(wh):
    from touchpoint import identity

    write_messages(
        wh,
        [
            {"type": "page", "anonymousId": "a1", "timestamp": DAY0.isoformat() + "Z"},
            _order(None, 0, [{"sku": "x"}], anon="a1"),  # bought before logging in
            {
                "type": "identify",
                "anonymousId": "a1",
                "userId": "u9",
                "timestamp": (DAY0 + dt.timedelta(days=1)).isoformat() + "Z",
            },
            _order("u9", 20, [{"sku": "x"}]),
        ],
    )
    before = load_summary(wh, rfm_summary(orders_from_events(wh), calibration_end="2025-03-01", unit="days"))
    # without identity resolution the identify call still stitches the anonymous order to u9 (the customer rule)
    assert before.customer_id.tolist() == ["u9"] and before.frequency.tolist() == [1.0]
    assert customer_key_source(wh).endswith("(identities not resolved)")
    identity.rebuild(wh)
    assert customer_key_source(wh).startswith("profile_id")
    after = load_summary(wh, rfm_summary(orders_from_events(wh), calibration_end="2025-03-01", unit="days"))
    assert len(after) == 1 and after.customer_id[0] == identity.resolve(wh, "u9")
    assert after.frequency.tolist() == [1.0] and after.recency.tolist() == [20.0]
