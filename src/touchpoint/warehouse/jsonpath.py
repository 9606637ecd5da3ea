"""Which JSON keys can be read by name (``properties.<key>``) through Ibis on every engine.

Ibis writes ``properties['key']`` as a JSON path inside a SQL string; a key with a quote or a control
character cannot be written there (sqlglot fails to tokenize it, DuckDB fails to parse it), and the
user would see a 500. Such keys are refused up front, naming the key and the character.

>>> check_json_key("plan_tier", "breakdown")
'plan_tier'
>>> check_json_key('a"b', "breakdown")  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
touchpoint.errors.InvalidInput: breakdown 'properties.a"b': the key contains '"', which cannot be read by name ...
"""

from __future__ import annotations

from touchpoint.errors import InvalidInput


def check_json_key(key: str, what: str, *, prefix: str = "properties.") -> str:
    """Return ``key`` when it can be read by name; else raise :class:`InvalidInput` naming ``what``."""
    if not key:
        raise InvalidInput(f"{what} {prefix!r} names no key", hint=f"use {prefix}<key>, e.g. {prefix}plan")
    bad = next((c for c in key if c in "\"'" or ord(c) < 0x20 or ord(c) == 0x7F), None)
    if bad is not None:
        raise InvalidInput(
            f"{what} {prefix + key!r}: the key contains {bad!r}, which cannot be read by name",
            hint="use a key without quotes or control characters",
        )
    return key
