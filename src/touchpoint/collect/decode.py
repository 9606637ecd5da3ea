"""The one JSON decoder of the collector: bytes in, a checked message out, or the field that is wrong.

HTTP bodies, batch items, JSONL lines, quarantine replays and Python dicts all pass through
:func:`decode_event`, so every path applies the same limits:

- the text is strict UTF-8 (no invalid bytes, no lone surrogates such as ``"\\ud800"``);
- nesting is at most :data:`MAX_DEPTH` levels deep, anywhere in the item (unknown fields included);
- every number fits a 64-bit value: integers from -2**63 to 2**64-1, other numbers finite doubles;
- a key repeated in one object: the last value wins, everywhere. The four JSON objects
  (``properties``, ``traits``, ``context``, ``integrations``) are stored re-encoded from what was
  decoded, so the stored JSON and the typed columns always agree.

The fast path is msgspec (in C). Only when it refuses an item does :func:`locate` walk the bytes
token by token to name the field and the reason; that walk never recurses, so no input is too deep
for it.

>>> bytes(decode_event(b'{"type":"track","userId":"u1","event":"E","properties":{"a":1,"a":2}}').properties)
b'{"a":2}'
"""

from __future__ import annotations

import json
import re
from typing import Any

import msgspec

from touchpoint.collect.rules import MAX_DEPTH as MAX_DEPTH
from touchpoint.collect.spec import NULL, Message

INT_MIN = -(2**63)
INT_MAX = 2**64 - 1
JSON_FIELDS = ("properties", "traits", "context", "integrations")

_decode_message = msgspec.json.Decoder(Message).decode
_decode_any = msgspec.json.decode
_encode = msgspec.json.Encoder().encode

# One token of JSON text: a string, a structural character, whitespace, or a bare word (number, literal).
_TOKEN = re.compile(rb'"(?:[^"\\]|\\.)*"?|[{}\[\]:,]|\s+|[^\s{}\[\]:,"]+', re.S)
# A number token starts the text or follows ":", "," or "[" (and whitespace); the same characters inside a string
# follow anything, e.g. the "9e123" or "e-4123" of a UUID, which are no exponent.
_HUGE_NUMBER = re.compile(rb"(?:^|[:,\[])[ \t\r\n]*(?:-?[0-9]{20}|-[0-9]{19}|-?[0-9]+(?:\.[0-9]*)?[eE][+-]?[0-9]{3})")
# The text's shape for the cheap tests: digits and "." to "0", e/E to "e", signs to "+", the characters a
# number follows to ":", whitespace deleted, anything else to "x". Each match of _HUGE_NUMBER has a shape
# the tests below find (deleting whitespace can only add matches), so they bound it from above.
_SHAPES = bytes(
    ord("0")
    if 48 <= b <= 57 or b == 46
    else ord("e")
    if b in b"eE"
    else ord("+")
    if b in b"+-"
    else ord(":")
    if b in b":,["
    else ord("x")
    for b in range(256)
)
# The shapes of those matches: a sign, then 19 digits or more, or digits and an exponent of 3 digits or more, after
# a number's start (19 unsigned digits fire it too: an upper bound). One expression with a literal first byte.
_HUGE_SHAPE = re.compile(rb":\+?0(?:0{18}|0*e\+?000)")


def _maybe_huge(raw: bytes) -> bool:
    """Whether ``raw`` may hold a number out of range: 20 digits, a minus and 19 (below -2**63), or a 3-digit
    exponent, where a number starts (an upper bound: a string holding ``:1e300`` fires it too). Tests over the
    text's shape (:data:`_SHAPES`) run first, in C; the expression over the text only when they fire. Over a
    100-event batch with random message ids: 0.1 ms, against 0.9 ms for the expression alone (which tries
    every position); 1 µs an event."""
    if _HUGE_SHAPE.search(b":" + raw.translate(_SHAPES, b" \t\r\n")) is None:
        return False
    return _HUGE_NUMBER.search(raw) is not None


_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")


class EventError(ValueError):
    """Why one event cannot be stored; ``field`` names the offending field (``properties.a[2]``)."""

    def __init__(self, reason: str, field: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.field = field


class NotJson(EventError):
    """The text is not JSON at all (a syntax error), as opposed to JSON that breaks a limit."""


def _path(stack: list[list[Any]]) -> str | None:
    """``properties.products[2].name``; deep paths keep their first levels: ``x[0][0][0][0][...]``."""
    out = ""
    for depth, (is_object, key, _) in enumerate(stack):
        if depth == 5:
            return (out or "$") + "[...]"
        if key is None:
            continue
        if is_object:
            out += f".{key}" if out else str(key)
        else:
            out += f"[{key}]"
    return out or None


def _number_problem(token: bytes) -> str | None:
    if token in (b"true", b"false", b"null"):
        return None
    text = token.decode("ascii", "backslashreplace")
    if not (token[:1].isdigit() or token[:1] == b"-"):
        return None  # a syntax error, which the decoder describes
    if b"." in token or b"e" in token or b"E" in token:
        try:
            value = float(token)
        except ValueError:
            return None  # a syntax error
        if value in (float("inf"), float("-inf")):
            return f"the number {text[:40]} is out of range (beyond a 64-bit double)"
        return None
    digits = token.lstrip(b"-")
    if not digits.isdigit():
        return None  # a syntax error
    if len(digits) > 20 or not (INT_MIN <= int(token) <= INT_MAX):
        shown = text if len(text) <= 40 else text[:20] + f"... ({len(digits)} digits)"
        return f"the integer {shown} is out of range (-2**63 to 2**64-1)"
    return None


def _string_problem(token: bytes) -> str | None:
    try:
        token.decode("utf-8")
    except UnicodeDecodeError as exc:
        return f"invalid UTF-8 (byte 0x{token[exc.start]:02x}); send text encoded as UTF-8"
    if b"\\" in token:
        try:
            value = json.loads(token.decode("utf-8"))
        except ValueError:
            return "a string holds an invalid escape"
        if _SURROGATE_ESCAPE.search(token):
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                return "a string holds a lone surrogate (\\ud800-\\udfff); send text encoded as UTF-8"
    return None


def _key_text(token: bytes) -> str:
    try:
        value = json.loads(token.decode("utf-8"))
    except ValueError:
        return token.decode("utf-8", "backslashreplace")[1:-1]
    return str(value).encode("utf-8", "backslashreplace").decode("utf-8")


def locate(raw: bytes, *, max_depth: int = MAX_DEPTH) -> EventError | None:
    """The first problem in ``raw`` that the limits refuse, with its path; None when there is none.

    Walks the tokens with an explicit stack (no recursion), so it works at any depth.
    """
    stack: list[list[Any]] = []  # [is object, current key or index, expecting a key]
    for match in _TOKEN.finditer(raw):
        token = match.group()
        first = token[:1]
        if first in b" \t\r\n" or first.isspace():
            continue
        top = stack[-1] if stack else None
        if first in (b"{", b"["):
            if len(stack) >= max_depth:
                return EventError(f"nested deeper than {max_depth} levels", _path(stack))
            stack.append([first == b"{", None if first == b"{" else 0, first == b"{"])
        elif first in (b"}", b"]"):
            if stack:
                stack.pop()
        elif first == b",":
            if top is not None:
                if top[0]:
                    top[2] = True
                else:
                    top[1] += 1
        elif first == b":":
            if top is not None:
                top[2] = False
        elif first == b'"':
            problem = _string_problem(token)
            if top is not None and top[0] and top[2]:
                if problem is not None:
                    return EventError(f"a key {problem}", _path(stack))
                top[1] = _key_text(token)
            elif problem is not None:
                return EventError(problem, _path(stack))
        else:
            problem = _number_problem(token)
            if problem is not None:
                return EventError(problem, _path(stack))
    return None


def split_batch(body: bytes) -> tuple[list[bytes], dict[str, bytes]] | None:
    """A batch body's items and top-level values as raw bytes, found without decoding them.

    The slow path for a body the fast decoder refuses as a whole (an item nested 1,000 deep, an
    item with invalid UTF-8 in a string field of the envelope...), so that each item can still be
    judged on its own. None when the body is not a JSON object with a ``batch`` array.
    """
    found = top_level(body)
    if found is None or found[1].get("batch") != b"[]":  # b"[]" marks a batch that was an array
        return None
    return found


def top_level(body: bytes) -> tuple[list[bytes], dict[str, bytes]] | None:
    """A JSON object's top-level values as raw bytes (a ``batch`` array's items apart, the array itself
    as ``b"[]"``), found by walking its tokens without recursion, so at any depth of nesting. None when
    the body is not one JSON object."""
    depth = 0
    key: str | None = None
    expect_key = False
    start = -1
    items: list[bytes] = []
    envelope: dict[str, bytes] = {}
    in_batch = False
    for match in _TOKEN.finditer(body):
        token = match.group()
        first = token[:1]
        if first.isspace():
            continue
        if depth == 0:
            if first != b"{":
                return None
            depth, expect_key = 1, True
            continue
        if depth == 1:
            if first == b"}":
                depth = 0
                continue
            if first == b",":
                expect_key = True
                continue
            if first == b":":
                expect_key = False
                continue
            if expect_key:
                if first != b'"':
                    return None
                key = _key_text(token)
                continue
            # the start of a top-level value
            if key == "batch" and first == b"[":
                in_batch, depth, start = True, 2, -1
                continue
            start = match.start()
            if first in (b"{", b"["):
                depth = 2
            else:
                envelope[str(key)] = token
            continue
        # depth >= 2
        if in_batch and depth == 2:
            if first == b"]":
                if start >= 0:
                    items.append(body[start : match.start()].strip())
                in_batch, depth, start = False, 1, -1
                envelope["batch"] = b"[]"
                continue
            if first == b",":
                if start >= 0:
                    items.append(body[start : match.start()].strip())
                start = -1
                continue
            if start < 0:
                start = match.start()
        if first in (b"{", b"["):
            depth += 1
        elif first in (b"}", b"]"):
            depth -= 1
            if depth == 1 and not in_batch:
                envelope[str(key)] = body[start : match.end()]
    if depth != 0:
        return None
    return items, envelope


def top_fields(raw: bytes) -> dict[str, bytes]:
    """A JSON object's top-level values as raw bytes (:func:`top_level`, so at any depth and without recursion);
    empty when ``raw`` is not one object."""
    found = top_level(raw)
    return found[1] if found is not None else {}


def _named(found: EventError) -> EventError:
    """``found`` with its path in front of the reason, as every message names its field."""
    return EventError(f"field '{found.field}': {found.reason}", found.field) if found.field else found


def _refused(raw: bytes, exc: Exception) -> EventError:
    """Name the field behind a failure of the fast path, or describe the failure plainly."""
    found = locate(raw)
    if found is not None:
        return _named(found)
    if isinstance(exc, UnicodeDecodeError):
        return EventError(f"invalid UTF-8 (byte 0x{raw[exc.start]:02x}); send text encoded as UTF-8")
    if isinstance(exc, RecursionError):
        return EventError(f"nested deeper than {MAX_DEPTH} levels")
    return NotJson(f"not valid JSON: {exc}")


def _within(field: str, error: EventError) -> EventError:
    """``error`` found inside the value of ``field``: its path is prefixed with ``field``."""
    where = f"{field}.{error.field}" if error.field and not error.field.startswith("[") else field
    if error.field and error.field.startswith("["):
        where = field + error.field
    reason = error.reason.split(": ", 1)[1] if error.field and error.reason.startswith("field '") else error.reason
    return type(error)(f"field '{where}': {reason}", where)


def clean_text(raw: bytes) -> bool:
    """Whether ``raw`` passes :func:`check_text`'s tests of the text as a whole: valid UTF-8, and no number that
    may be out of range. True for a batch body holds for each of its items (a slice of valid UTF-8 cut at a
    bracket or comma is valid UTF-8; an item follows ``[`` or ``,``, where a number may start, so a number the
    test finds in an item it finds in the body), so a clean body's items need only the depth bound
    (:func:`check_depth`): one pass over the body instead of one an item.

    >>> clean_text(b'{"batch":[{"a":1},{"b":2}]}'), clean_text(b'{"batch":[{"a":1e400}]}'), clean_text(b'"\\xff"')
    (True, False, False)
    """
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return not _maybe_huge(raw)


def _may_be_deep(raw: bytes) -> bool:
    """An upper bound of the nesting limit: more brackets than :data:`MAX_DEPTH` (the exact walk only then)."""
    return raw.count(b"{") + raw.count(b"[") > MAX_DEPTH


def check_depth(raw: bytes) -> None:
    """:func:`check_text` for text that :func:`clean_text` passed (or a slice of it): the nesting limit alone."""
    if _may_be_deep(raw):
        check_text(raw)


def check_text(raw: bytes, field: str | None = None) -> None:
    """Refuse invalid UTF-8 and nesting over :data:`MAX_DEPTH` (cheap unless something is wrong).

    ``field``: the name of the value ``raw`` is (for paths in messages), when it is not a whole event.
    """
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        error = _refused(raw, exc)
        raise (_within(field, error) if field else error) from None
    # Cheap upper bounds first; the exact walk only when one of them says something may be wrong:
    # more brackets than the depth limit, or a run of 20+ digits or a 3-digit exponent (a number
    # that may be out of range, anywhere, fields that are not stored included).
    if _may_be_deep(raw) or _maybe_huge(raw):
        found = locate(raw)
        if found is not None:
            error = _named(found)
            raise (_within(field, error) if field else error) from None


def canonical_object(raw: msgspec.Raw | bytes, field: str) -> msgspec.Raw:
    """``raw`` (an object or null) decoded and encoded again: the form stored, last duplicate key winning."""
    text = bytes(raw)
    try:
        value = _decode_any(text)
    except (msgspec.DecodeError, msgspec.ValidationError, RecursionError, UnicodeDecodeError) as exc:
        raise _within(field, _refused(text, exc)) from None
    if value is None:
        return NULL
    if not isinstance(value, dict):
        raise EventError(f"field '{field}': expected a JSON object", field)
    return msgspec.Raw(_encode(value))


def decode_object(raw: bytes, field: str) -> dict[str, Any] | None:
    """A JSON object (or null) with the same limits as an event, e.g. a batch's shared ``context``."""
    check_text(raw, field)
    canonical = canonical_object(raw, field)
    value: dict[str, Any] | None = _decode_any(bytes(canonical))
    return value


def decode_record(raw: bytes) -> dict[str, Any]:
    """One JSON object of a file (a JSONL line), with the same limits as an event."""
    check_text(raw)
    try:
        value = _decode_any(raw)
    except (msgspec.DecodeError, msgspec.ValidationError, RecursionError, UnicodeDecodeError) as exc:
        raise _refused(raw, exc) from None
    if not isinstance(value, dict):
        raise EventError(f"expected a JSON object, got {type(value).__name__}")
    return value


def decode_event(raw: bytes) -> Message:
    """One event, checked against every limit above; raises :class:`EventError` naming the field.

    Message-level problems (a wrong type for a field) raise ``msgspec.ValidationError``, which
    :func:`touchpoint.collect.normalize.validation_reason` turns into words.
    """
    check_text(raw)
    try:
        msg = _decode_message(raw)
    except msgspec.ValidationError as exc:
        if "out of range" in str(exc):
            raise _refused(raw, exc) from None
        raise
    except (msgspec.DecodeError, RecursionError, UnicodeDecodeError) as exc:
        raise _refused(raw, exc) from None
    for name in JSON_FIELDS:
        value = getattr(msg, name)
        if bytes(value) != b"null":
            setattr(msg, name, canonical_object(value, name))
    return msg


def encode(value: Any) -> bytes:
    """JSON text of a Python value (what the file importers build from flat rows)."""
    return _encode(value)


__all__ = [
    "MAX_DEPTH",
    "EventError",
    "NotJson",
    "canonical_object",
    "check_depth",
    "check_text",
    "clean_text",
    "decode_event",
    "decode_object",
    "locate",
]
