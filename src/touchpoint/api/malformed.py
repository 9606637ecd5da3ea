"""Where a JSON request body that cannot be parsed goes wrong: the field, for the error message.

FastAPI answers a body that is not valid UTF-8, or nests deeper than Python's parser goes, with a bare
"There was an error parsing the body". :func:`explain` scans the raw bytes (no parsing, no recursion) to
the bad byte or the too-deep point and names the field there, as every other 4xx names its field.

>>> explain(b'{"identifier": "a\\xffz", "granted": true}', bad_byte=17)
'identifier: the text is not valid UTF-8 (byte 17); send the body as UTF-8'
>>> explain(b'{"purposes": ' + b'[' * 2000 + b']' * 2000 + b'}', bad_byte=None)
'purposes[0]: nested more than 64 levels deep; send a flat value'
"""

from __future__ import annotations

MAX_DEPTH = 64  # what the collector allows too (collect/body.py)


def _path(stack: list[list[object]]) -> str:
    parts: list[str] = []
    for kind, where in stack[:2]:  # the field and the item in it: enough to find it, short to read
        if kind == "obj" and isinstance(where, str):
            parts.append(("." if parts else "") + where)
        elif kind == "arr" and isinstance(where, int):
            parts.append(f"[{where}]")
    return "".join(parts) or "body"


def locate(body: bytes, stop: int | None) -> tuple[str, bool]:
    """The path at byte ``stop`` (or where nesting passes :data:`MAX_DEPTH`), and whether it went too deep."""
    stack: list[list[object]] = []  # [kind, key or index]
    i, n = 0, len(body)
    end = n if stop is None else min(stop, n)
    expect_key = False
    while i < end:
        c = body[i]
        if c == 0x22:  # a string: skip to its closing quote; in an object awaiting a key, it is the key
            j = i + 1
            while j < n and body[j] != 0x22:
                j += 2 if body[j] == 0x5C else 1
            if stop is not None and i < stop <= j:
                return _path(stack), False
            if expect_key and stack and stack[-1][0] == "obj":
                stack[-1][1] = body[i + 1 : j].decode("utf-8", "replace")
                expect_key = False
            i = j + 1
            continue
        if c in (0x7B, 0x5B):  # { [
            stack.append(["obj", None] if c == 0x7B else ["arr", 0])
            expect_key = c == 0x7B
            if len(stack) > MAX_DEPTH:
                return _path(stack[:-1]), True
        elif c in (0x7D, 0x5D) and stack:  # } ]
            stack.pop()
        elif c == 0x2C and stack:  # ,
            if stack[-1][0] == "arr":
                stack[-1][1] = int(stack[-1][1]) + 1  # type: ignore[call-overload]
            else:
                expect_key = True
        i += 1
    return _path(stack), False


def explain(body: bytes, bad_byte: int | None) -> str:
    """A message for a body that could not be parsed: not UTF-8 at ``bad_byte``, or (None) too deep."""
    where, deep = locate(body, bad_byte)
    if bad_byte is not None and not deep:
        return f"{where}: the text is not valid UTF-8 (byte {bad_byte}); send the body as UTF-8"
    if deep:
        return f"{where}: nested more than {MAX_DEPTH} levels deep; send a flat value"
    return f"{where}: the body could not be parsed as JSON; send one JSON object"
