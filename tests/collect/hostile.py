"""Hypothesis strategies for hostile collector input, with the verdict each input must get.

A generated item is either *good* (must be stored exactly once) or *bad* (must be quarantined
with a field named). Items are built as JSON trees that may hold what no JSON library emits:
invalid UTF-8 bytes inside strings, lone surrogates, repeated keys, numbers beyond 64 bits,
nesting hundreds of levels deep. :func:`dump` writes such a tree as bytes, verbatim.

Every item carries a unique marker in its ``messageId``, so the tests find it again in the
``events`` or ``quarantine`` table whatever else it holds.
"""

from __future__ import annotations

import gzip
import uuid
import zlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import hypothesis.strategies as st
import msgspec
from hypothesis import event

_encode = msgspec.json.encode


@dataclass(frozen=True)
class Verbatim:
    """JSON text written as is (possibly not valid UTF-8, possibly not representable in Python)."""

    text: bytes


@dataclass(frozen=True)
class Pairs:
    """A JSON object as a list of pairs, so that a key may repeat."""

    items: tuple[tuple[str, Any], ...]


def dump(value: Any, *, spaced: bool = False) -> bytes:
    """JSON bytes of a tree of dicts, lists, :class:`Pairs`, :class:`Verbatim` and scalars."""
    colon, comma = (b" : ", b" ,\n ") if spaced else (b":", b",")
    if isinstance(value, Verbatim):
        return value.text
    if isinstance(value, Pairs | dict):
        pairs = value.items if isinstance(value, Pairs) else tuple(value.items())
        return b"{" + comma.join(_encode(k) + colon + dump(v, spaced=spaced) for k, v in pairs) + b"}"
    if isinstance(value, list | tuple):
        return b"[" + comma.join(dump(v, spaced=spaced) for v in value) + b"]"
    return _encode(value)


class Item:
    """One generated event: its bytes, whether it must be stored, and what kind of input it is.

    A plain class, not a dataclass: hypothesis prints dataclasses field by field, megabytes for deep items.
    """

    def __init__(self, marker: str, body: bytes, good: bool, kind: str) -> None:
        self.marker, self.body, self.good, self.kind = marker, body, good, kind

    def __repr__(self) -> str:  # short: a failing example is printed
        return f"Item({self.kind!r}, {self.body[:160]!r}{'...' if len(self.body) > 160 else ''})"


# ---- values that every limit accepts --------------------------------------------------------

safe_text = st.text(
    st.characters(blacklist_categories=("Cs", "Cc")),
    max_size=20,
)
safe_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**63), 2**64 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    safe_text,
)
safe_values = st.recursive(
    safe_scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(safe_text, inner, max_size=4)),
    max_leaves=10,
)
good_times = st.one_of(
    st.datetimes(min_value=datetime(1971, 1, 1), max_value=datetime(2199, 1, 1)).map(lambda d: d.isoformat()),
    st.sampled_from(["2026-01-01T00:00:00Z", "2026-06-30T23:59:59.999+14:00", "2026-01-01T00:00:00-12:00"]),
)


@st.composite
def good_items(draw: st.DrawFn, marker: str) -> Item:
    """A valid event with odd but legal content: unicode, extreme legal numbers, deep legal nesting, repeats."""
    kind = draw(st.sampled_from(["track", "identify", "page", "screen", "group", "alias"]))
    item: dict[str, Any] = {"type": kind, "messageId": marker, "userId": draw(safe_text) + "u"}
    if kind == "track":
        item["event"] = draw(safe_text) + "E"
    if kind == "group":
        item["groupId"] = "g"
    if kind == "alias":
        item["previousId"] = "p"
    properties: dict[str, Any] = draw(st.dictionaries(safe_text.map("p_".__add__), safe_values, max_size=4))
    flavour = draw(st.sampled_from(["plain", "deep", "limits", "repeat", "times", "escapes", "spaced"]))
    event(f"good: {flavour}")
    if flavour == "deep":
        depth = draw(st.integers(1, 60))
        nested: Any = "bottom"
        for _ in range(depth):
            nested = [nested]
        properties["deep"] = nested
    elif flavour == "limits":
        properties["revenue"] = draw(st.sampled_from([1e15, -1e15, 0.0, 5e-324, "12.50"]))
        properties["big"] = draw(st.sampled_from([2**64 - 1, -(2**63), 1.7976931348623157e308, -5e-324]))
    elif flavour == "times":
        item["timestamp"] = draw(good_times)
    item["properties"] = properties
    body = dump(item, spaced=flavour == "spaced")
    if flavour == "repeat":  # a repeated key: the last value wins, in the typed column and in properties
        body = body[:-1] + b',"properties":{"revenue":1,"revenue":7.5}}'
    elif flavour == "escapes":  # legal escapes, a surrogate pair among them
        body = body[:-1] + b',"context":{"note":"\\ud83d\\ude00 \\u00e9 \\n \\t \\/ \\\\"}}'
    return Item(marker, body, True, f"good: {flavour}")


# ---- inputs that must be quarantined, each with the field at fault --------------------------

BAD_KINDS = (
    "invalid utf-8",
    "lone surrogate",
    "too deep",
    "number out of range",
    "typed number out of range",
    "timestamp out of window",
    "clock skew",
    "control character",
    "name too long",
    "wrong type",
    "no user",
)
_BAD_BYTES = [b"\xff", b"\xc3", b"\xed\xa0\x80", b"\xf8\x88\x80\x80\x80", b"\x80abc", b"\xe2\x82"]
_PLACES = ["properties", "context", "traits", "unknown", "integrations"]


def _placed(place: str, value: Any) -> tuple[str, Any]:
    if place == "unknown":
        return "someUnknownField", {"x": value}
    return place, {"k": value}


@st.composite
def bad_items(draw: st.DrawFn, marker: str) -> Item:
    """A valid event with exactly one fault that a limit refuses."""
    kind = draw(st.sampled_from(BAD_KINDS))
    event(f"bad: {kind}")
    item: dict[str, Any] = {"type": "track", "messageId": marker, "userId": "u", "event": "E"}
    place = draw(st.sampled_from(_PLACES))
    if kind == "invalid utf-8":
        junk = draw(st.sampled_from(_BAD_BYTES))
        text = Verbatim(b'"a' + junk + b'z"')
        if draw(st.booleans()):
            item["event"] = text
        else:
            key, value = _placed(place, text)
            item[key] = value
    elif kind == "lone surrogate":
        escape = draw(st.sampled_from([b"\\ud800", b"\\udfff", b"\\udc00\\ud800", b"x\\ud83d"]))
        key, value = _placed(place, Verbatim(b'"' + escape + b'"'))
        item[key] = value
    elif kind == "too deep":
        depth = draw(st.one_of(st.integers(65, 200), st.sampled_from([1000, 5000])))
        where = draw(st.sampled_from(["array", "object"]))
        inner = (b"[" * depth + b"]" * depth) if where == "array" else (b'{"a":' * depth + b"1" + b"}" * depth)
        key, value = _placed(place, Verbatim(inner))
        item[key] = value
    elif kind == "number out of range":
        number = draw(
            st.sampled_from([b"1e400", b"-1e400", b"1" + b"0" * 30, b"-" + b"9" * 5000, b"18446744073709551616"])
        )
        key, value = _placed(place, Verbatim(number))
        item[key] = value
    elif kind == "typed number out of range":
        field = draw(st.sampled_from(["revenue", "total", "value"]))
        item["properties"] = {field: draw(st.sampled_from([1e16, -1e300, "1e400", "-1e999", 2**63]))}
    elif kind == "timestamp out of window":
        item[draw(st.sampled_from(["timestamp", "sentAt", "originalTimestamp"]))] = draw(
            st.sampled_from(
                [
                    "0001-01-01T00:00:00+01:00",
                    "9999-12-31T23:59:59-05:00",
                    "1969-12-31T23:59:59Z",
                    "2201-01-01T00:00:00Z",
                    "0001-01-01",
                    "9999-12-31T23:59:59.999999",
                ]
            )
        )
    elif kind == "clock skew":
        item["timestamp"] = "1970-01-01T00:00:00Z"
        item["sentAt"] = draw(st.sampled_from(["2200-01-01T00:00:00Z", "1971-02-03T00:00:00Z"]))
        if draw(st.booleans()):
            item["timestamp"], item["sentAt"] = "2026-01-02T00:00:00Z", "2026-01-01T00:00:00Z"
    elif kind == "control character":
        char = draw(st.sampled_from(["\x00", "\x01", "\x1f", "\x7f", "\n"]))
        item[draw(st.sampled_from(["event", "userId", "anonymousId"]))] = f"a{char}b"
    elif kind == "name too long":
        item["event"] = "x" * draw(st.sampled_from([513, 30_000]))
    elif kind == "wrong type":
        field = draw(st.sampled_from(["userId", "event", "properties", "context", "timestamp"]))
        item[field] = draw(st.sampled_from([[1, 2], True, {"a": 1} if field not in _PLACES else 5]))
    elif kind == "no user":
        del item["userId"]
    return Item(marker, dump(item), False, f"bad: {kind}")


@st.composite
def items(draw: st.DrawFn) -> Item:
    marker = f"fz-{uuid.uuid4().hex}"
    if draw(st.booleans()):
        return draw(good_items(marker))
    return draw(bad_items(marker))


# ---- whole request bodies ---------------------------------------------------------------------


class Body:
    """A request: its bytes and headers, and whether its items can be judged at all."""

    def __init__(self, content: bytes, headers: dict[str, str], usable: bool, kind: str) -> None:
        self.content, self.headers, self.usable, self.kind = content, headers, usable, kind

    def __repr__(self) -> str:
        return f"Body({self.kind!r}, {self.headers!r}, {len(self.content)} bytes)"


@st.composite
def encodings(draw: st.DrawFn, payload: bytes) -> Body:
    """``payload`` sent as is, compressed, or compressed and then broken."""
    kind = draw(
        st.sampled_from(
            [
                "identity",
                "gzip",
                "deflate",
                "gzip two members",
                "gzip trailing garbage",
                "gzip truncated trailer",
                "gzip bad crc",
                "gzip truncated",
                "brotli claimed",
                "garbage claimed gzip",
            ]
        )
    )
    event(f"encoding: {kind}")
    content_type = draw(
        st.sampled_from(
            [
                "application/json",
                "text/plain",
                "text/plain;charset=UTF-8",
                "application/x-www-form-urlencoded",
                "",
                "application/octet-stream",
                "multipart/form-data; boundary=x",
            ]
        )
    )
    event(f"content type: {content_type or 'none'}")
    headers = {"Content-Type": content_type} if content_type else {}
    packed = gzip.compress(payload)
    usable = True
    if kind == "identity":
        content = payload
    elif kind == "gzip":
        content = packed
        headers["Content-Encoding"] = draw(st.sampled_from(["gzip", "GZIP", "x-gzip"]))
    elif kind == "deflate":
        content = zlib.compress(payload)
        headers["Content-Encoding"] = "deflate"
    else:
        usable = False
        headers["Content-Encoding"] = "br" if kind == "brotli claimed" else "gzip"
        content = {
            "gzip two members": packed + gzip.compress(b'{"batch":[]}'),
            "gzip trailing garbage": packed + b"\x00garbage",
            "gzip truncated trailer": packed[:-3],
            "gzip bad crc": packed[:-8] + bytes([packed[-8] ^ 0xFF]) + packed[-7:],
            "gzip truncated": packed[: max(1, len(packed) // 2)],
            "brotli claimed": payload,
            "garbage claimed gzip": payload,
        }[kind]
    return Body(content, headers, usable, kind)
