"""The one validator every path uses: what is accepted, what is quarantined, and why."""

from __future__ import annotations

from datetime import datetime

import msgspec
import pytest

from touchpoint.collect.normalize import EVENT_COLUMNS, EventRows

NOW = datetime(2026, 3, 1, 12, 0, 0)


def one(event: dict, **kwargs) -> dict:
    rows = EventRows()
    assert rows.add_raw(msgspec.json.encode(event), received_at=NOW, source="t", **kwargs), rows.rejected
    return dict(zip(EVENT_COLUMNS, rows.rows[0], strict=True))


def reason(event: dict | bytes, **kwargs) -> tuple[str, str | None]:
    rows = EventRows()
    raw = event if isinstance(event, bytes) else msgspec.json.encode(event)
    assert not rows.add_raw(raw, received_at=NOW, source="t", **kwargs)
    assert len(rows.rejected) == 1 and len(rows) == 0
    return rows.rejected[0].reason, rows.rejected[0].field


def test_track_keeps_json_exactly_and_extracts_typed_columns() -> None:
    row = one(
        {
            "type": "track",
            "userId": "u1",
            "event": " Order Completed ",
            "messageId": "m1",
            "properties": {
                "revenue": "12.50",
                "currency": "eur",
                "order_id": 17,
                "email": " Ann@Example.COM ",
            },
            "context": {"page": {"url": "https://s.example/p?utm_source=news&utm_medium=email&x=1"}},
        }
    )
    assert row["event"] == "Order Completed"
    assert row["revenue"] == 12.5 and row["currency"] == "EUR" and row["order_id"] == "17"
    assert row["email"] == "ann@example.com"
    assert row["utm_source"] == "news" and row["utm_medium"] == "email" and row["path"] == "/p"
    assert msgspec.json.decode(row["properties"])["email"] == " Ann@Example.COM "  # raw kept as sent


def test_context_campaign_wins_over_url_and_page_properties_are_used() -> None:
    row = one(
        {
            "type": "page",
            "anonymousId": "a1",
            "properties": {"url": "https://s.example/x?utm_source=u"},
            "context": {"campaign": {"source": "google", "medium": "cpc", "name": "spring"}, "page": "odd"},
        }
    )
    assert (row["utm_source"], row["utm_medium"], row["utm_campaign"]) == ("google", "cpc", "spring")
    assert row["url"] == "https://s.example/x?utm_source=u"


def test_clock_skew_is_corrected_with_sent_at() -> None:
    # The client's clock is 1 hour fast: it says the event happened 10 s before it was sent.
    row = one(
        {
            "type": "track",
            "userId": "u",
            "event": "E",
            "timestamp": "2026-03-01T13:00:00Z",
            "sentAt": "2026-03-01T13:00:10Z",
        }
    )
    assert row["timestamp"] == datetime(2026, 3, 1, 11, 59, 50)
    assert row["original_timestamp"] == datetime(2026, 3, 1, 13, 0, 0)
    assert row["received_at"] == NOW


def test_time_zones_become_utc_and_missing_timestamp_is_receipt_time() -> None:
    assert one({"type": "track", "userId": "u", "event": "E", "timestamp": "2026-03-01T14:00:00+02:00"})[
        "timestamp"
    ] == datetime(2026, 3, 1, 12, 0)
    assert one({"type": "track", "userId": "u", "event": "E"})["timestamp"] == NOW


def test_numeric_ids_are_kept_as_text() -> None:
    row = one({"type": "identify", "userId": 42, "anonymousId": 7.0, "traits": {"email": "x@y.z"}})
    assert (row["user_id"], row["anonymous_id"], row["email"]) == ("42", "7", "x@y.z")


@pytest.mark.parametrize(
    ("event", "field", "words"),
    [
        ({"type": "track", "event": "E"}, "userId", "needs 'userId' or 'anonymousId'"),
        ({"type": "track", "userId": "u"}, "event", "needs the event name"),
        ({"type": "track", "userId": "u", "event": "  "}, "event", "needs the event name"),
        ({"type": "group", "userId": "u"}, "groupId", "group's id"),
        ({"type": "alias", "userId": "u"}, "previousId", "previous id"),
        ({"type": "bogus", "userId": "u"}, "type", "not one of"),
        ({"userId": "u"}, "type", "missing"),
        ({"type": "track", "userId": "u", "event": "E", "timestamp": "yesterday"}, "timestamp", "ISO 8601"),
        (
            {"type": "track", "userId": "u", "event": "E", "timestamp": "0001-01-01T00:00:00"},
            "timestamp",
            "1970",
        ),
        ({"type": "track", "userId": "u", "event": "E", "properties": [1, 2]}, "properties", "JSON object"),
        ({"type": "track", "userId": "u", "event": 5}, "event", "expected a string, got a number"),
        ({"type": "track", "userId": True, "event": "E"}, "userId", "boolean"),
        ({"type": "track", "userId": "u\x00", "event": "E"}, "userId", "NUL"),
        ({"type": "track", "userId": "u" * 2000, "event": "E"}, "userId", "longer than"),
    ],
)
def test_bad_events_are_refused_with_the_field_named(event: dict, field: str, words: str) -> None:
    text, got_field = reason(event)
    assert got_field == field
    assert words in text and field in text


def test_not_json_and_not_object_are_refused() -> None:
    assert "not valid JSON" in reason(b"{nope")[0]
    assert "not a JSON object" in reason(b"[1, 2]")[0]


def test_size_limit_per_event() -> None:
    text, _ = reason({"type": "track", "userId": "u", "event": "E", "properties": {"x": "y" * 500}}, max_bytes=100)
    assert "over the limit of 100 bytes" in text


def test_default_type_from_the_endpoint() -> None:
    rows = EventRows()
    assert rows.add_raw(b'{"userId":"u"}', received_at=NOW, source="t", default_type="identify")
    assert rows.rows[0][1] == "identify"


def test_deterministic_ids_make_reimports_idempotent() -> None:
    a, b = EventRows(), EventRows()
    raw = b'{"type":"track","userId":"u","event":"E","timestamp":"2026-01-01T00:00:00Z"}'
    a.add_raw(raw, received_at=NOW, source="t", deterministic_ids=True)
    b.add_raw(raw, received_at=NOW, source="t", deterministic_ids=True)
    assert a.rows[0][0] == b.rows[0][0]
    c = EventRows()
    c.add_raw(raw, received_at=NOW, source="t")
    assert c.rows[0][0] != a.rows[0][0]  # live traffic without messageId gets a fresh id


def test_arrow_tables_match_the_schema() -> None:
    rows = EventRows()
    rows.add_raw(b'{"type":"track","userId":"u","event":"E"}', received_at=NOW, source="t")
    rows.add_raw(b'{"type":"track"}', received_at=NOW, source="t", origin="http:batch")
    assert rows.to_arrow().num_rows == 1
    q = rows.quarantine_arrow().to_pylist()[0]
    assert q["status"] == "quarantined" and q["origin"] == "http:batch" and q["payload"] == '{"type":"track"}'
