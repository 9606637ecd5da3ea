"""The compiled common path (``normalize_common``) stores and quarantines exactly what the full rules do.

Every body is judged twice by ``rows_from_body``: with the common path, and with every event through the full
rules (``body.COMMON_PATH = False``); the rows, the quarantine records and the answer's errors must be equal
field by field. Random message ids are drawn from the same deterministic sequence in both runs.
"""

from __future__ import annotations

import itertools
import uuid
from datetime import datetime
from typing import Any

import hypothesis.strategies as st
import msgspec
import pytest
from hypothesis import given, settings

from touchpoint.collect import body, normalize
from touchpoint.collect.body import Limits, rows_from_body
from touchpoint.collect.rules import EVENT_TYPES

RECEIVED = datetime(2026, 12, 3, 7, 30, 0, 123456)
LIMITS = Limits(max_event_bytes=4000, max_batch_events=50)

json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=12),
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=6), inner, max_size=3)),
    max_leaves=8,
)
ids = st.one_of(
    st.none(),
    st.just(""),
    st.from_regex(r"[a-z0-9-]{1,12}", fullmatch=True),
    st.text(max_size=8),  # surrogates, spaces
    st.sampled_from(["a\x00b", "tab\there", "del\x7f", " padded "]),  # control characters
    st.just("x" * 1025),
    st.integers(-(2**65), 2**65),
    st.floats(),
    st.booleans(),
)
names = st.one_of(
    st.none(),
    st.just(""),
    st.just("  Order Completed "),
    st.sampled_from(["line\nbreak", "nul\x00", "  "]),
    st.text(max_size=10),
    st.just("n" * 513),
    st.integers(),
)
times = st.one_of(
    st.none(),
    st.just(""),
    st.datetimes(min_value=datetime(1960, 1, 1), max_value=datetime(2210, 1, 1)).map(
        lambda d: d.isoformat(timespec=["seconds", "milliseconds", "microseconds"][d.microsecond % 3]) + "Z"
    ),
    st.datetimes().map(lambda d: d.isoformat() + "+02:00"),
    st.sampled_from(
        ["2026-11-01T10:00:00.123Z", "2026-11-01T10:05:00Z", "2026-11-01", "2026-11-01T10:00:00.1234567Z", " x"]
    ),
    st.text(max_size=6),
    st.integers(),
)
amounts = st.one_of(
    st.none(), st.floats(), st.integers(-(2**64), 2**64), st.sampled_from(["12.5", " 3 ", "abc", "1e300"])
)
properties = st.one_of(
    st.none(),
    st.fixed_dictionaries(
        {},
        optional={
            "revenue": amounts,
            "total": amounts,
            "value": amounts,
            "currency": st.one_of(st.sampled_from(["eur", " usd ", ""]), json_scalars),
            "order_id": json_scalars,
            "orderId": json_scalars,
            "email": st.sampled_from(["A@B.example", "nope", " c@d.example "]),
            "url": st.sampled_from(["https://s.example/a?utm_source=x&utm_campaign=y%20z", "/p?utm_medium=m"]),
            "path": json_scalars,
            "referrer": json_scalars,
            "extra": json_values,
        },
    ),
    json_values,
)
contexts = st.one_of(
    st.none(),
    st.fixed_dictionaries(
        {},
        optional={
            "page": st.one_of(
                st.fixed_dictionaries(
                    {},
                    optional={
                        "url": st.sampled_from(
                            ["https://shop.example/p?utm_source=news&utm_medium=email", "https://x.example/", ""]
                        ),
                        "path": json_scalars,
                        "referrer": json_scalars,
                    },
                ),
                json_scalars,
            ),
            "campaign": st.one_of(
                st.dictionaries(st.sampled_from(["source", "name", "medium"]), json_scalars), json_scalars
            ),
            "traits": st.one_of(st.fixed_dictionaries({}, optional={"email": json_scalars}), json_scalars),
            "ip": st.just("10.0.0.1"),
        },
    ),
    json_values,
)
objects = st.one_of(st.none(), st.dictionaries(st.text(max_size=5), json_values, max_size=3), json_values)
events = st.fixed_dictionaries(
    {},
    optional={
        "type": st.one_of(st.sampled_from([*EVENT_TYPES, "Track", " page ", "bogus"]), json_scalars),
        "messageId": ids,
        "userId": ids,
        "anonymousId": ids,
        "event": names,
        "name": names,
        "category": names,
        "groupId": ids,
        "previousId": ids,
        "timestamp": times,
        "originalTimestamp": times,
        "sentAt": times,
        "properties": properties,
        "traits": st.one_of(st.fixed_dictionaries({}, optional={"email": json_scalars}), objects),
        "context": contexts,
        "integrations": objects,
        "writeKey": st.one_of(st.none(), st.text(max_size=4), st.integers()),
        "unknown": json_values,
    },
)
# The usual event, mostly: so that most examples take the common path and compare it field by field.
usual = st.builds(
    lambda i, extra: (
        {
            "type": "track",
            "messageId": f"m{i}",
            "userId": f"u{i}",
            "event": "Product Viewed",
            "timestamp": "2026-11-01T10:00:00.123Z",
            "properties": {"product_id": f"p{i}", "price": 12.5, "currency": "EUR"},
            "context": {"page": {"url": "https://shop.example/p?utm_source=news", "referrer": "https://g.example/"}},
        }
        | extra
    ),
    st.integers(0, 10**6),
    st.one_of(st.just({}), events),  # as sent, or with any field replaced
)


def _text(event: dict[str, Any], duplicate: bool, deep: bool) -> bytes:
    raw = msgspec.json.encode(event)
    if duplicate and raw != b"{}":  # a key repeated: the last value wins, on both paths
        raw = b'{"userId":"first","properties":{"a":1},' + raw[1:]
    if deep:
        raw = raw[:-1] + b',"nested":' + b"[" * 40 + b"]" * 40 + b"}"
    return raw


def _judged(monkeypatch: pytest.MonkeyPatch, body_bytes: bytes, kind: str, common: bool) -> Any:
    counter = itertools.count()
    monkeypatch.setattr(uuid, "uuid4", lambda: uuid.UUID(int=next(counter)))
    monkeypatch.setattr(body, "COMMON_PATH", common)
    try:
        rows, problems = rows_from_body(body_bytes, kind, received_at=RECEIVED, source="web", limits=LIMITS)
    except Exception as exc:  # a refusal of the whole body must be the same too
        return type(exc).__name__, str(exc)
    return rows.rows, rows.rejected, rows.rejected_at, rows.rejected_source, problems


taken: list[bool] = []


@settings(max_examples=300, deadline=None)
@given(
    items=st.lists(st.tuples(st.one_of(usual, events), st.booleans(), st.booleans()), min_size=1, max_size=6),
    kind=st.sampled_from(["batch", "track", "page", "identify", "group", "alias", "screen"]),
    shared=st.fixed_dictionaries({}, optional={"context": contexts, "integrations": objects, "sentAt": times}),
)
def test_the_common_path_stores_and_quarantines_what_the_rules_do(
    items: list[tuple[dict[str, Any], bool, bool]], kind: str, shared: dict[str, Any]
) -> None:
    texts = [_text(event, duplicate, deep and i == 0) for i, (event, duplicate, deep) in enumerate(items)]
    if kind == "batch":
        envelope = msgspec.json.encode(shared)[:-1] + (b"," if shared else b"")
        sent = envelope + b'"batch":[' + b",".join(texts) + b"]}"
    else:
        sent = texts[0]
    with pytest.MonkeyPatch.context() as monkeypatch:
        real = normalize.normalize_common
        calls: list[bool] = []

        def spy(*args: Any, **kwargs: Any) -> Any:
            row = real(*args, **kwargs)
            calls.append(row is not None)
            return row

        monkeypatch.setattr(body, "normalize_common", spy)
        common = _judged(monkeypatch, sent, kind, True)
        rules = _judged(monkeypatch, sent, kind, False)
    assert common == rules
    taken.extend(calls)


def test_the_common_path_is_taken_by_usual_events_and_declines_the_rest() -> None:
    """The property test above compares something: the usual event takes the common path, others do not."""
    usual_event = b'{"type":"track","userId":"u1","event":"E","timestamp":"2026-11-01T10:00:00.123Z"}'
    assert normalize.normalize_common(usual_event, received_at=RECEIVED, source="web") is not None
    for unusual in (
        b'{"type":"track","userId":1,"event":"E"}',  # a number as an id
        b'{"type":"track","userId":"u1","event":"E","timestamp":"2026-11-01T10:00:00+02:00"}',
        b'{"type":"track","userId":"u1"}',  # refused: the rules word why
        b'{"type":"track","userId":"u1","event":"E","properties":[]}',
    ):
        assert normalize.normalize_common(unusual, received_at=RECEIVED, source="web") is None
    if taken:  # after the property test in the same run: both paths were exercised many times
        assert sum(taken) >= 30 and taken.count(False) >= 30, (sum(taken), taken.count(False))
