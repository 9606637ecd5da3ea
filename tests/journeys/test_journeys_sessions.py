"""Sessions and channels: edge cases, stitching, custom rules and the golden SQL."""

from __future__ import annotations

import os
from datetime import datetime, timedelta
from pathlib import Path

import ibis
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from touchpoint.collect.channels import ChannelRule, classify, landing_fields, rules_from
from touchpoint.errors import InvalidInput
from touchpoint.journeys.frames import events_table
from touchpoint.journeys.funnels import funnel_expr
from touchpoint.journeys.people import person_events
from touchpoint.journeys.sessions import session_table, sessionize, sessions, sessions_from_events
from touchpoint.warehouse.schema import EVENTS

GOLDEN = Path(__file__).parent / "golden"


def rows(wh, **kw):  # type: ignore[no-untyped-def]
    return wh.to_arrow(session_table(wh, **kw).order_by(["person", "session_index"])).to_pylist()


def test_gap_exactly_at_timeout_continues_and_longer_splits(wh, write, m) -> None:  # type: ignore[no-untyped-def]
    write(
        [
            m.page("a", m.T0),
            m.page("a", m.T0 + m.minutes(30)),  # exactly the timeout: same session
            m.page("a", m.T0 + m.minutes(60) + timedelta(milliseconds=1)),  # 30 min + 1 ms later: new session
        ]
    )
    got = rows(wh)
    assert [(r["session_index"], r["events"]) for r in got] == [(1, 2), (2, 1)]
    assert [r["session_index"] for r in rows(wh, timeout_minutes=10)] == [1, 2, 3]


def test_out_of_order_arrival_is_sorted_by_timestamp(wh, write, m) -> None:  # type: ignore[no-untyped-def]
    write([m.page("a", m.T0 + m.minutes(100), "/late")])
    write([m.page("a", m.T0, "/first", query="utm_source=news&utm_medium=email")])
    write([m.page("a", m.T0 + m.minutes(5), "/second")])
    got = rows(wh)
    assert [(r["landing_path"], r["events"], r["channel"]) for r in got] == [
        ("/first", 2, "email"),
        ("/late", 1, "direct"),
    ]


def test_identical_timestamps_are_ordered_by_message_id(wh, write, m) -> None:  # type: ignore[no-untyped-def]
    write(
        [
            m.page("a", m.T0, "/b", mid="m2", query="utm_source=google&utm_medium=cpc"),
            m.page("a", m.T0, "/a", mid="m1", referrer="https://www.bing.com/"),
        ]
    )
    got = rows(wh)
    assert len(got) == 1
    assert got[0]["landing_path"] == "/a" and got[0]["channel"] == "organic_search"


def test_anonymous_visits_are_stitched_to_the_user(wh, write, m) -> None:  # type: ignore[no-untyped-def]
    write(
        [
            m.page("anon-1", m.T0, query="utm_source=facebook&utm_medium=paid_social"),
            {
                "type": "identify",
                "anonymousId": "anon-1",
                "userId": "u1",
                "timestamp": (m.T0 + m.minutes(1)).isoformat(),
            },
            m.track("x", "Order Completed", m.T0 + m.minutes(90), user="u1", order_id="o1", revenue=20),
        ]
    )
    assert {r["person"] for r in rows(wh)} == {"u1"}
    raw = {r["person"] for r in rows(wh, identity="raw")}
    assert raw == {"anon-1", "u1"}
    with pytest.raises(InvalidInput, match="identity_nodes"):
        rows(wh, identity="profiles")


def test_profile_with_thousands_of_events(wh, write, m) -> None:  # type: ignore[no-untyped-def]
    events = [m.page("heavy", m.T0 + m.minutes(i * 10), f"/p{i % 7}") for i in range(3000)]
    events += [m.page("heavy", m.T0 + m.minutes(31_000 + i * 45)) for i in range(1000)]  # every gap > 30 min
    write(events)
    got = rows(wh)
    assert len(got) == 1 + 1000
    assert got[0]["events"] == 3000


CASES = [
    ({"utm_source": "youtube", "utm_medium": "video", "referrer": "https://www.youtube.com/"}, "video"),
    (
        {"utm_source": "facebook", "utm_medium": "paid_social", "url": "https://shop.example/?fbclid=9"},
        "paid_social",
    ),
    ({"url": "https://shop.example/?gclid=abc"}, "paid_search"),
    ({"url": "https://shop.example/?msclkid=abc"}, "paid_search"),
    ({"utm_source": "google", "utm_medium": "cpc"}, "paid_search"),
    ({"utm_source": "facebook", "utm_medium": "cpc"}, "paid_social"),
    ({"utm_source": "Instagram", "utm_medium": "paid"}, "paid_social"),
    ({"utm_source": "dv360", "utm_medium": "display"}, "display"),
    ({"utm_source": "newsletter", "utm_medium": "email"}, "email"),
    ({"utm_source": "partnerx", "utm_medium": "affiliate"}, "affiliate"),
    ({"referrer": "https://www.google.de/search?q=x", "url": "https://shop.example/"}, "organic_search"),
    ({"referrer": "https://duckduckgo.com/", "url": "https://shop.example/"}, "organic_search"),
    ({"referrer": "https://l.facebook.com/", "url": "https://shop.example/?fbclid=1"}, "organic_social"),
    ({"referrer": "https://t.co/abc", "url": "https://shop.example/"}, "organic_social"),
    ({"referrer": "https://blog.example.org/post", "url": "https://shop.example/"}, "referral"),
    ({"referrer": "https://shop.example/cart", "url": "https://shop.example/"}, "direct"),
    ({"url": "https://shop.example/"}, "direct"),
    ({"utm_source": "billboard", "utm_medium": "offline"}, "other"),
]


@pytest.mark.parametrize(("fields", "channel"), CASES)
def test_default_rules_in_python(fields, channel) -> None:  # type: ignore[no-untyped-def]
    assert classify(landing_fields(fields)) == channel


def test_default_rules_in_the_warehouse_agree_with_python(wh, write, m) -> None:  # type: ignore[no-untyped-def]
    messages = []
    for i, (fields, _) in enumerate(CASES):
        query = "&".join(f"{k}={v}" for k, v in fields.items() if k.startswith("utm_"))
        url = fields.get("url", "https://shop.example/")
        if query:
            url += ("&" if "?" in url else "?") + query
        props = {"url": url, "referrer": fields.get("referrer")}
        messages.append(
            {"type": "page", "anonymousId": f"v{i:02d}", "timestamp": m.T0.isoformat(), "properties": props}
        )
    write(messages)
    got = [r["channel"] for r in rows(wh)]
    assert got == [channel for _, channel in CASES]


def test_custom_rules(wh, write, m) -> None:  # type: ignore[no-untyped-def]
    write([m.page("a", m.T0, query="utm_source=tv&utm_medium=offline")])
    rules = rules_from([{"channel": "tv", "any": [{"utm_source": "^tv$"}]}, {"channel": "rest"}])
    assert rows(wh, rules=rules)[0]["channel"] == "tv"
    with pytest.raises(InvalidInput, match="unknown field 'utm_color'"):
        ChannelRule("x", [{"utm_color": "red"}])
    with pytest.raises(InvalidInput, match="not a regular expression"):
        rules_from([{"channel": "x", "any": {"utm_source": "("}}])
    with pytest.raises(InvalidInput, match="no 'channel'"):
        rules_from([{"any": []}])
    rule = ChannelRule("email", [{"utm_medium": "^email$"}])
    assert ChannelRule.from_dict(rule.to_dict()) == rule


def test_timeout_validation() -> None:
    t = ibis.table(EVENTS.schema, name="events").mutate(person=ibis._.user_id)
    with pytest.raises(InvalidInput, match="timeout"):
        sessionize(t, timeout_minutes=0)


# -- golden SQL --------------------------------------------------------------------------------------
def _unbound() -> ibis.Table:
    t = ibis.table(EVENTS.schema, name="events")
    return t.mutate(person=ibis.coalesce(t.user_id, t.anonymous_id))


def _check_golden(name: str, sql: str) -> None:
    path = GOLDEN / name
    if os.environ.get("UPDATE_GOLDEN") or not path.exists():
        if os.environ.get("CI") and not path.exists():
            pytest.fail(f"golden file {path} is missing")
        path.parent.mkdir(exist_ok=True)
        path.write_text(sql + "\n")
    assert sql + "\n" == path.read_text(), f"SQL changed; rerun with UPDATE_GOLDEN=1 to accept ({name})"


def test_golden_sessions_sql() -> None:
    expr = sessions(sessionize(_unbound(), timeout_minutes=30))
    _check_golden("sessions.duckdb.sql", ibis.to_sql(expr, dialect="duckdb"))
    fast = sessions_from_events(_unbound(), timeout_minutes=30)
    _check_golden("sessions_from_events.duckdb.sql", ibis.to_sql(fast, dialect="duckdb"))


def test_golden_funnel_sql() -> None:
    expr = funnel_expr(_unbound(), ["page:/product%", "Product Added", "Order Completed"], window_hours=72)
    _check_golden("funnel.duckdb.sql", ibis.to_sql(expr, dialect="duckdb"))


def test_golden_sql_also_compiles_for_postgres() -> None:
    # the expressions are portable Ibis: they compile for another engine without DuckDB-only SQL
    ibis.to_sql(sessions(sessionize(_unbound())), dialect="postgres")
    ibis.to_sql(funnel_expr(_unbound(), ["page", "Order Completed"]), dialect="postgres")


def test_person_events_modes(wh) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(InvalidInput, match="not known"):
        person_events(wh, identity="psychic")  # type: ignore[arg-type]


@settings(max_examples=8, deadline=None)
@given(
    gaps=st.lists(st.sampled_from([0, 1, 29, 30, 31, 120]), min_size=1, max_size=25),
    people=st.integers(1, 3),
    kinds=st.lists(st.sampled_from(["page", "track"]), min_size=25, max_size=25),
)
def test_one_sort_sessions_equal_the_reference(gaps, people, kinds) -> None:  # type: ignore[no-untyped-def]
    rows = []
    for p in range(people):
        t = datetime(2026, 1, 1)
        for i, gap in enumerate(gaps):
            t = t + timedelta(minutes=gap)
            rows.append(
                {
                    "person": f"p{p}",
                    "type": kinds[i],
                    "event": "x" if kinds[i] == "track" else None,
                    "timestamp": t,
                    "message_id": f"{p}-{i:03d}",
                    "utm_medium": "email" if i % 4 == 0 else None,
                }
            )
    t = events_table(rows)
    cols = [
        "person",
        "session_id",
        "session_index",
        "session_start",
        "session_end",
        "events",
        "pages",
        "channel",
    ]
    fast = sessions_from_events(t).select(*cols).order_by(["person", "session_index"]).to_pyarrow().to_pylist()
    slow = sessions(sessionize(t)).select(*cols).order_by(["person", "session_index"]).to_pyarrow().to_pylist()
    assert fast == slow


def test_profiles_from_the_identity_tables(wh, write, m) -> None:  # type: ignore[no-untyped-def]
    import pyarrow as pa

    write(
        [
            m.page("phone", m.T0, query="utm_source=news&utm_medium=email"),
            m.page("laptop", m.T0 + m.minutes(60), user="u9"),
        ]
    )
    nodes = pa.table(
        {
            "id_type": ["anonymous_id", "anonymous_id", "user_id"],
            "id_value": ["phone", "laptop", "u9"],
            "profile_id": ["prof-1", "prof-1", "prof-1"],
        }
    )
    wh.append("identity_nodes", nodes)
    assert {r["person"] for r in rows(wh)} == {"prof-1"}  # auto picks the profiles
    assert [r["channel"] for r in rows(wh, identity="profiles")] == ["email", "direct"]
    assert {r["person"] for r in rows(wh, identity="stitch")} == {"phone", "u9"}
