"""What a rejected input names, read from hostile payloads: the identifiers that tell an erased person's input (a
rejected ``"context": 5`` once raised there and failed the whole write once anyone was erased: the collector's
batch, an import) and the messageId of its quarantine record, at any depth and whatever its fields hold."""

from __future__ import annotations

import hypothesis.strategies as st
import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from tests.collect.hostile import items

from touchpoint.collect import suppression
from touchpoint.collect.body import Limits, rows_from_body
from touchpoint.collect.normalize import EventRows, message_id_of, utcnow
from touchpoint.collect.store import write_rows
from touchpoint.collect.suppression import _payload_ids
from touchpoint.warehouse import Warehouse

_ODD = [5, "x", [1, {"email": "a@b.example"}], True, None, {"traits": 5}, {"traits": {"email": 7}}]


@pytest.mark.parametrize("odd", _ODD)
@pytest.mark.parametrize("field", ["context", "traits", "properties", "userId"])
def test_the_identifiers_of_a_payload_of_any_shape(field: str, odd: object) -> None:
    payload = msgspec.json.encode({"anonymousId": "a-1", field: odd}).decode()
    assert "a-1" in _payload_ids(payload)


def test_the_identifiers_of_a_payload_at_any_depth_and_with_odd_strings() -> None:
    """Read without recursion: the answer of a payload thousands of levels deep does not depend on the stack;
    an escaped lone surrogate in an identifier is hashed, not a crash."""
    deep = '{"userId":"bob","deep":' + "[" * 5000 + "]" * 5000 + ',"context":{"traits":{"email":" A@B.example"}}}'
    assert _payload_ids(deep) == ["bob", "a@b.example"]
    assert _payload_ids('{"userId":"\\ud800","anonymousId":12,"traits":{"email":5}}') == ["\ud800", "12"]
    assert _payload_ids('{"userId":"bob"') == [] and _payload_ids("[1]") == [] and _payload_ids("") == []
    assert suppression.digest("\ud800", b"k")  # hashed


@pytest.fixture(scope="module")
def erased() -> Warehouse:
    wh = Warehouse.open("duckdb://:memory:")
    with wh.write() as tx:
        suppression.add(wh, tx, [("user_id", "bob")], "erasure-1")
    suppression.forget(wh)
    return wh


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(hostile=st.lists(items(), min_size=1, max_size=12), bob=st.booleans())
def test_hostile_items_beside_an_erased_person_are_each_accounted_for(
    erased: Warehouse, hostile: list, bob: bool
) -> None:
    rows = EventRows()
    for item in hostile:
        rows.add_raw(item.body, received_at=utcnow(), source="test")
    if bob:
        rows.add_raw(b'{"type":"track","userId":"bob","event":"E","context":5}', received_at=utcnow(), source="t")
    result = write_rows(erased, rows)  # never raises
    assert result.received == len(hostile) + bob
    assert result.suppressed >= bob
    assert result.stored + result.duplicates + result.rejected + result.suppressed == result.received


@pytest.mark.parametrize("depth", [50, 980, 5000])
def test_a_rejected_items_message_id_does_not_depend_on_the_callers_stack(depth: int) -> None:
    """The quarantine record's messageId of an item nested deeper than the limit is read without recursion: the
    same from a shallow and from a deep stack (the HTTP path and the file import once disagreed at ~980)."""
    raw = b'{"messageId":"m-1","deep":' + b"[" * depth + b"]" * depth + b"}"

    def nested(levels: int) -> str | None:
        return nested(levels - 1) if levels else message_id_of(raw)

    assert message_id_of(raw) == nested(600) == "m-1"
    assert message_id_of(b'{"messageId":5,"deep":' + b"[" * depth + b"]" * depth + b"}") is None


def test_an_erased_persons_body_with_spaces_before_it_is_recognised(erased: Warehouse) -> None:
    """A single-event HTTP body is quarantined as sent, spaces and line breaks before it included."""
    rows, _ = rows_from_body(
        b'\n {"type":"track","userId":"bob","event":{"x":1}}',
        "track",
        received_at=utcnow(),
        source="s",
        limits=Limits(),
    )
    assert rows.rejected
    result = write_rows(erased, rows)
    assert (result.suppressed, result.quarantined) == (1, 0)
