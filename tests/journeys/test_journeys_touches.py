"""Journeys from the warehouse, attribution end to end, and the ROMI bridge."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pyarrow as pa
import pytest

from touchpoint.errors import InvalidInput
from touchpoint.journeys.attribution import attribute
from touchpoint.journeys.romi import normalise_channel, romi, romi_table
from touchpoint.journeys.touches import journeys


def test_journeys_split_at_conversions_with_lookback(wh, write, m) -> None:  # type: ignore[no-untyped-def]
    T0, page, track, d = m.T0, m.page, m.track, lambda n: timedelta(days=n)
    write(
        [
            page("a", T0 - d(40), query="utm_source=dv360&utm_medium=display"),  # outside the 30-day lookback
            page("a", T0 - d(3), query="utm_source=google&utm_medium=cpc"),
            page("a", T0 - d(1), query="utm_source=news&utm_medium=email"),
            {"type": "identify", "anonymousId": "a", "userId": "u", "timestamp": m.iso(T0 - d(1))},
            track("a", "Order Completed", T0, user="u", order_id="o1", revenue=100),
            track("a", "Order Completed", T0 + timedelta(seconds=5), user="u", order_id="o1", revenue=100),  # dup
            page("a", T0 + d(2), referrer="https://www.google.com/"),
            track("a", "Order Completed", T0 + d(2), user="u", order_id="o2", revenue=40),  # same-time session counts
            page("a", T0 + d(5), referrer="https://t.co/x"),  # after the last order: a non-converting journey
            track("b", "Order Completed", T0, user="b", order_id="o3", revenue=7),  # no touches
        ]
    )
    data = journeys(wh)
    got = sorted(zip(data.path_strings(), data.conversions, data.value, data.nulls, strict=True))
    assert got == [
        ("(none)", 1, 7, 0),
        ("organic_search", 1, 40, 0),
        ("organic_social", 0, 0, 1),
        ("paid_search > email", 1, 100, 0),
    ]
    i = data.path_strings().index("paid_search > email")
    ages = data.ages[data.offsets[i] : data.offsets[i + 1]]
    assert list(ages) == pytest.approx([3.0, 1.0])
    longer = journeys(wh, lookback_days=60)
    assert "display > paid_search > email" in longer.path_strings()
    later = journeys(wh, start=T0 + d(1))
    assert sorted(later.path_strings()) == ["organic_search", "organic_social"]
    first = journeys(wh, first_only=True)
    assert sorted(first.path_strings()) == [
        "(none)",
        "paid_search > email",
    ]  # u's later journeys are not acquisition
    with pytest.raises(InvalidInput, match="lookback"):
        journeys(wh, lookback_days=0)


def test_attribution_and_romi_from_the_warehouse(wh, write, m) -> None:  # type: ignore[no-untyped-def]
    T0, page, track = m.T0, m.page, m.track
    msgs = []
    for i in range(6):
        who = f"v{i}"
        medium = "email" if i % 2 else "cpc"
        source = "news" if i % 2 else "google"
        msgs.append(page(who, T0 + timedelta(hours=i), query=f"utm_source={source}&utm_medium={medium}"))
        if i < 4:
            msgs.append(track(who, "Order Completed", T0 + timedelta(hours=i, minutes=5), order_id=f"o{i}", revenue=50))
    write(msgs)
    spend = pa.table(
        {
            "date": [date(2026, 3, 2), date(2026, 3, 2), date(2026, 3, 2)],
            "channel": ["Paid Search", "Email", "TV"],
            "campaign": ["", "", ""],
            "amount": [100.0, 10.0, 500.0],
        }
    )
    wh.append("spend", spend)
    result = attribute(journeys(wh), "markov", bootstrap=20)
    out = romi(wh, {"markov": result}, start=datetime(2026, 3, 1), end=datetime(2026, 4, 1))
    rows = {r["channel"]: r for r in out["rows"]}
    assert rows["paid_search"]["conversions"] == pytest.approx(2)
    assert rows["paid_search"]["cpa"] == pytest.approx(50)
    assert rows["email"]["roas"] == pytest.approx(100 / 10)
    assert rows["tv"]["conversions"] == 0 and rows["tv"]["cpa"] is None
    assert out["unmatched_spend"] == ["tv"]
    assert "correlational" in out["caveat"]
    assert "cpa_ci" in rows["paid_search"]


def test_romi_table_and_names() -> None:
    from touchpoint.journeys.pathdata import PathData

    res = attribute(PathData.from_lists([["paid_social"]], conversions=[2], value=[30]), "first")
    table = romi_table({"first": res}, {"Paid Social": 60.0})
    assert table["rows"][0]["cpa"] == 30.0 and table["rows"][0]["roas"] == 0.5
    assert normalise_channel(" Paid-Search ") == "paid_search"
