"""The engine import's pre-pass (engine_import.chunks): lines tested a block at a time decide as one at a time.

A block of lines is decoded as one JSON array; a line that is no JSON object on its own can still be a piece of
a valid array (``{"c":[{"d":1}`` then ``{"e":2}]}``), so the block's verdict must never differ from the lines'.
"""

from __future__ import annotations

import tracemalloc
from typing import Any

import hypothesis.strategies as st
import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from tests.collect.hostile import items

from touchpoint.collect import engine_import
from touchpoint.collect.engine_import import Chunk, _sort_line, chunks
from touchpoint.collect.readers import Tally

_json = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=False) | st.text(max_size=6),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
    max_leaves=8,
)


@st.composite
def line(draw: st.DrawFn) -> bytes:
    """A line of a JSONL file: canonical objects (with and without messageId), other JSON, pieces of objects
    cut at a bracket or comma, objects joined by a comma, spaced or re-spelled JSON, hostile items."""
    value: Any = draw(st.dictionaries(st.sampled_from(["messageId", "a", "b", "é"]), _json, max_size=4))
    text = msgspec.json.encode(value)
    kind = draw(st.integers(0, 7))
    if kind == 0:
        return draw(st.sampled_from([b"1", b"[1]", b'"x"', b"null", b"{}", b"[]", b"{", b"}", b"],[", b"}]}"]))
    if kind == 1:
        cuts = [i for i, c in enumerate(text) if c in b"[{,"] or [0]
        at = draw(st.sampled_from(cuts))
        return text[:at] if draw(st.booleans()) else text[at:]
    if kind == 2:
        return text + b"," + msgspec.json.encode(draw(st.dictionaries(st.text(max_size=3), _json, max_size=2)))
    if kind == 3:
        return text.replace(b":", b": ", 1)
    if kind == 4:
        body: bytes = draw(items()).body
        return body.strip() or b"{}"
    return text


def one_at_a_time(lines: list[tuple[int, bytes]], limit: int = 10_000) -> Chunk:
    chunk = Chunk()
    for number, text in lines:
        _sort_line(number, text, chunk, limit)
    return chunk


def fields(chunk: Chunk) -> tuple[Any, ...]:
    return chunk.numbers, chunk.texts, chunk.fallbacks, chunk.plain, chunk.pending


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(lines=st.lists(line(), max_size=40), block=st.integers(1, 9), limit=st.sampled_from([12, 40, 10_000]))
def test_a_block_decides_as_its_lines_one_at_a_time(lines: list[bytes], block: int, limit: int) -> None:
    numbered = [(n, text) for n, text in enumerate(lines, start=1) if b"\n" not in text and text.strip() == text]
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(engine_import, "BLOCK_LINES", block)
        (chunk,) = chunks(numbered, Tally(), 10_000, limit) if numbered else [Chunk()]
    assert fields(chunk) == fields(one_at_a_time(numbered, limit))


def test_pieces_that_join_into_a_valid_array_are_not_candidates() -> None:
    """Three lines, two of them no JSON on their own, whose join is an array of three objects, each encoding back
    to a piece of the text: only the whole line is a candidate; the pieces go to the Python judge."""
    lines = [b'{"a":1},{"b":2}', b'{"c":[{"d":1}', b'{"e":2}]}', b'{"messageId":"m","f":3}']
    numbered = list(enumerate(lines, start=1))
    (chunk,) = chunks(numbered, Tally(), 100, None)
    assert chunk.numbers == [4] and chunk.fallbacks == [None]
    assert [n for n, _ in chunk.pending] == [1, 2, 3]


@pytest.fixture
def decoded(monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
    """The texts the pre-pass decodes, in order."""
    seen: list[bytes] = []
    decode = engine_import._decode

    def counting(text: bytes) -> Any:
        seen.append(text)
        return decode(text)

    monkeypatch.setattr(engine_import, "_decode", counting)
    return seen


def test_a_block_of_canonical_lines_is_decided_at_once(decoded: list[bytes]) -> None:
    """The common case takes the block path (one decode), not a decode a line."""
    lines = [(n, msgspec.json.encode({"type": "track", "n": n, "k": "x" if n % 2 else "é"})) for n in range(1, 2_500)]
    (chunk,) = chunks(lines, Tally(), 10_000, None)
    assert len(decoded) == -(-len(lines) // engine_import.BLOCK_LINES)  # one decode a block
    assert chunk.numbers == [n for n, _ in lines] and not chunk.pending
    assert chunk.plain == [n % 2 == 1 for n, _ in lines]
    assert chunk.fallbacks[0] is not None and chunk.fallbacks[0].startswith("tp-")


def test_a_line_over_the_limit_is_not_copied_into_a_block(decoded: list[bytes]) -> None:
    """A line longer than the events' limit (a whole JSON array on one line, say) goes to the Python judge with
    its block tested line by line: the block is not joined into a copy for it, and nothing decodes it."""
    huge = msgspec.json.encode({"type": "track", "items": list(range(2_000_000))})  # 15 MB
    lines = [(n, msgspec.json.encode({"type": "track", "n": n})) for n in range(1, 6)] + [(6, huge)]
    tracemalloc.start()
    try:
        (chunk,) = chunks(lines, Tally(), 10_000, 1_000)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert chunk.numbers == [1, 2, 3, 4, 5] and chunk.pending == [(6, huge)]
    assert len(decoded) == 5 and max(map(len, decoded)) < 1_000  # the short lines one by one, never the block
    assert peak < len(huge) // 10  # no copy of the huge line
