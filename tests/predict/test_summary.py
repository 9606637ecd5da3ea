"""The Ibis summaries: built from "Order Completed" events in a real warehouse and from order files,
they reproduce the published CDNOW calibration summary."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pytest

from touchpoint.collect.store import write_messages
from touchpoint.errors import InvalidInput, NotFound
from touchpoint.predict import BetaGeoModel
from touchpoint.predict.summary import (
    load_summary,
    orders_from_events,
    read_orders_file,
    repeat_purchases_by_period,
    rfm_summary,
)
from touchpoint.warehouse import Warehouse


@pytest.fixture(scope="module")
def cdnow_wh(cdnow_orders):
    wh = Warehouse.open("duckdb://:memory:")
    rows = cdnow_orders.to_pylist()
    messages = [
        {
            "type": "track",
            "event": "Order Completed",
            "userId": r["customer_id"],
            "messageId": f"cdnow-{i}",
            "timestamp": r["ts"].isoformat() + "Z",
            "properties": {"order_id": f"o{i}", "revenue": r["revenue"]},
        }
        for i, r in enumerate(rows)
    ]
    result = write_messages(wh, messages, source="test")
    assert result.stored == len(rows)
    yield wh
    wh.close()


def _by_id(summary):
    order = np.argsort(summary.customer_id.astype(int))
    return {k: getattr(summary, k)[order] for k in ("frequency", "recency", "T", "monetary_value")}


def test_summary_from_events_matches_published_cdnow(cdnow_wh, cdnow_published):
    expr = rfm_summary(orders_from_events(cdnow_wh), calibration_end="1997-09-30", holdout_end="1998-06-30")
    s = load_summary(cdnow_wh, expr)
    assert len(s) == 2357
    got = _by_id(s)
    np.testing.assert_array_equal(got["frequency"], cdnow_published["x"])
    np.testing.assert_allclose(got["recency"], cdnow_published["t_x"], atol=0.005)
    np.testing.assert_allclose(got["T"], cdnow_published["T"], atol=0.005)
    np.testing.assert_allclose(got["monetary_value"], cdnow_published["zbar"], atol=0.0051)
    assert s.duration_holdout == pytest.approx(39.0)
    assert s.frequency_holdout is not None and s.frequency_holdout.sum() > 0
    # Fitting on the engine's summary gives the published BG/NBD estimates.
    report = BetaGeoModel().fit(s.frequency, s.recency, s.T)
    assert report.params["r"] == pytest.approx(0.243, abs=1.5e-3)
    assert report.log_likelihood == pytest.approx(-9582.4, abs=0.1)


def test_tracking_counts_add_up(cdnow_wh):
    orders = orders_from_events(cdnow_wh)
    track = cdnow_wh.to_arrow(
        repeat_purchases_by_period(orders, calibration_end="1997-09-30", holdout_end="1998-06-30")
    ).to_pydict()
    s = load_summary(cdnow_wh, rfm_summary(orders, calibration_end="1997-09-30", holdout_end="1998-06-30"))
    total = sum(track["repeat_purchases"])
    assert total == int(s.frequency.sum() + s.frequency_holdout.sum())
    assert max(track["period"]) <= 78


def test_same_day_orders_merge_and_holdout_counts():
    import ibis

    orders = ibis.memtable(
        pa.table(
            {
                "customer_id": ["a", "a", "a", "a", "b"],
                "ts": [
                    dt.datetime(2024, 1, 1, 9),
                    dt.datetime(2024, 1, 1, 18),
                    dt.datetime(2024, 1, 15),
                    dt.datetime(2024, 2, 10),
                    dt.datetime(2024, 2, 1),
                ],
                "revenue": [10.0, 5.0, 30.0, 7.0, 3.0],
            }
        )
    )
    s = load_summary(
        ibis.duckdb.connect(),
        rfm_summary(orders, calibration_end="2024-01-31", holdout_end="2024-02-29", unit="days"),
    )
    # b's first order is after the calibration end: not in the summary.
    assert s.customer_id.tolist() == ["a"]
    assert s.frequency.tolist() == [1.0]  # two orders on Jan 1 count as one purchase day
    assert s.recency.tolist() == [14.0] and s.T.tolist() == [30.0]
    assert s.monetary_value.tolist() == [30.0]
    assert s.frequency_holdout.tolist() == [1.0] and s.duration_holdout == 29.0


def test_orders_file_path(tmp_path, cdnow_orders, cdnow_published):
    """An order file is read as `touchpoint import orders` reads it: its fields, renamed with a mapping."""
    path = tmp_path / "orders.csv"
    table = pa.table(
        {
            "cust": cdnow_orders["customer_id"],
            "order_id": pa.array([f"o{i}" for i in range(cdnow_orders.num_rows)]),
            "day": pa.array([t.strftime("%Y%m%d") for t in cdnow_orders["ts"].to_pylist()]),
            "value": cdnow_orders["revenue"],
        }
    )
    pacsv.write_csv(table, path)
    import ibis

    orders = read_orders_file(path, mapping={"customer_id": "cust", "timestamp": "day", "revenue": "value"})
    s = load_summary(ibis.duckdb.connect(), rfm_summary(orders, calibration_end="1997-09-30"))
    np.testing.assert_array_equal(_by_id(s)["frequency"], cdnow_published["x"])
    with pytest.raises(InvalidInput, match="line 2: field 'customer_id' is empty"):
        read_orders_file(path, mapping={"timestamp": "day", "revenue": "value"})
    with pytest.raises(NotFound):
        read_orders_file(tmp_path / "missing.csv")


def test_order_lines_sum_to_the_order_as_the_import_sums_them(tmp_path):
    path = tmp_path / "lines.csv"
    path.write_text(
        "customer_id,order_id,timestamp,price,quantity,revenue\n"
        "a,1,2024-01-01T10:00:00+02:00,5,2,\n"
        "a,1,2024-01-01T10:00:00+02:00,,,3\n"
        "b,2,20240102,,,7\n"
    )
    rows = read_orders_file(path).to_pyarrow().sort_by("customer_id").to_pylist()
    assert rows == [
        {"customer_id": "a", "ts": dt.datetime(2024, 1, 1, 8), "revenue": 13.0},
        {"customer_id": "b", "ts": dt.datetime(2024, 1, 2), "revenue": 7.0},
    ]


def test_bad_dates_are_named():
    import ibis

    orders = ibis.memtable(pa.table({"customer_id": ["a"], "ts": [dt.datetime(2024, 1, 1)], "revenue": [1.0]}))
    with pytest.raises(InvalidInput, match="calibration end"):
        rfm_summary(orders, calibration_end="yesterday")
    with pytest.raises(InvalidInput, match="not after calibration end"):
        rfm_summary(orders, calibration_end="2024-02-01", holdout_end="2024-01-01")
    with pytest.raises(InvalidInput, match="unknown time unit"):
        rfm_summary(orders, calibration_end="2024-02-01", unit="months")
