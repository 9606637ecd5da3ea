"""The cheap test for numbers out of range (``decode._maybe_huge``) misses none, and takes no UUID for one.

``check_text`` walks an event's tokens in Python (``locate``) only when the cheap test fires, and the file
import sends a line that fires it to the Python judge: a miss would store or refuse a number wrongly, a false
alarm costs a walk (about 40% of events with random UUID message ids fired it before the test looked where
numbers start). It missed integers of 19 digits below -2**63, which were stored though the rules refuse them.
"""

from __future__ import annotations

import uuid

import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st

from touchpoint.collect.decode import _HUGE_NUMBER, _maybe_huge, clean_text, locate

_NUMBER_TEXT = st.one_of(
    st.integers(min_value=-(10**30), max_value=10**30).map(str),
    st.builds(
        lambda m, f, e, sign: f"{m}{'.' + f if f else ''}e{sign}{e}",
        st.integers(min_value=-999, max_value=999),
        st.sampled_from(["", "0", "5", "125"]),
        st.integers(min_value=0, max_value=1200),
        st.sampled_from(["", "+", "-"]),
    ),
    st.floats(allow_nan=False, allow_infinity=False).map(repr),
)
_STRING = st.one_of(st.uuids().map(str), st.text(alphabet="0123456789eE+-.:,[ abc", max_size=30))
_SPACE = st.sampled_from(["", " ", "\n", "\t ", "\r\n"])


@st.composite
def documents(draw: st.DrawFn) -> bytes:
    """A JSON object with numbers written as drawn (any size, any spelling) and strings full of digits."""
    parts = []
    for i in range(draw(st.integers(min_value=1, max_value=6))):
        if draw(st.booleans()):
            value = draw(_NUMBER_TEXT)
        elif draw(st.booleans()):
            value = msgspec.json.encode(draw(_STRING)).decode()
        else:
            items = draw(st.lists(_NUMBER_TEXT, max_size=4))
            value = "[" + ",".join(draw(_SPACE) + x + draw(_SPACE) for x in items) + "]"
        parts.append(f'"k{i}":{draw(_SPACE)}{value}')
    return ("{" + ",".join(parts) + "}").encode()


@settings(max_examples=400, deadline=None)
@given(documents())
def test_every_number_out_of_range_is_caught(raw: bytes) -> None:
    found = locate(raw)
    if found is not None and "out of range" in found.reason:
        assert _maybe_huge(raw), raw


def test_uuids_and_strings_are_not_taken_for_numbers() -> None:
    ids = [str(uuid.UUID(int=(0x9E123 << 100) + n)) for n in range(50)] + [str(uuid.uuid4()) for _ in range(500)]
    for message_id in ids:
        assert not _maybe_huge(b'{"messageId":"%s","properties":{"sku":"e-1234"}}' % message_id.encode())
    assert not _maybe_huge(b'{"a":"12345678901234567890123","b":1e30}')


def test_numbers_out_of_range_anywhere_a_number_starts() -> None:
    for raw in (
        b"1e400",
        b'{"a":1e400}',
        b'{"a": -1.5E+400}',
        b"[1,2,1e999]",
        b'{"a":[ \n 123456789012345678901]}',
        b'{"a":-9223372036854775809}',  # 19 digits below -2**63: was stored, though the rules refuse it
    ):
        assert _maybe_huge(raw), raw
    assert _maybe_huge(b'{"note":"x:1e300"}')  # an upper bound: a string may fire it too


@settings(max_examples=1500, deadline=None)
@given(st.text(alphabet='0123456789eE+-.:,[ \t\r\n"x{}', max_size=60))
def test_the_shape_tests_never_hide_a_match_of_the_expression(text: str) -> None:
    """The tests over the text's shape only skip the expression where it would find nothing."""
    raw = text.encode()
    assert _maybe_huge(raw) == (_HUGE_NUMBER.search(raw) is not None), raw


@settings(max_examples=400, deadline=None)
@given(
    st.lists(st.one_of(documents(), _NUMBER_TEXT.map(str.encode), st.just(b'{"a":"\xff"}')), min_size=1, max_size=5),
    st.lists(_SPACE, min_size=12, max_size=12),
)
def test_a_clean_batch_body_has_only_clean_items(items: list[bytes], spaces: list[str]) -> None:
    """``clean_text`` passes a batch body once for all its items (``rows_from_body``): it must never pass a body
    with an item that ``check_text``'s tests over the text would stop (bad UTF-8, a number out of range), wherever
    the item sits and whatever whitespace surrounds it."""
    gap = [s.encode() for s in spaces]
    body = (
        b'{"batch":'
        + gap[0]
        + b"["
        + b",".join(gap[i % 11 + 1] + item + gap[i % 7 + 1] for i, item in enumerate(items))
    )
    body += b"]}"
    if clean_text(body):
        for item in items:
            item.decode("utf-8")
            assert not _maybe_huge(item), (body, item)
    else:
        assert any(_maybe_huge(item) or b"\xff" in item for item in items) or _maybe_huge(body)


def test_clean_text_refuses_what_an_item_would() -> None:
    assert clean_text(b'{"batch":[{"a":1},{"b":"x"}]}')
    assert not clean_text(b'{"batch":[{"a":1},{"b":1e400}]}')
    assert not clean_text(b'{"batch":[{"a":1}, -12345678901234567890]}')
    assert not clean_text(b'{"batch":[{"a":"\xc3"}]}')
