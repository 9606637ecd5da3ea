"""The Segment tracking spec as touchpoint accepts it: message shapes and the documented limits.

One definition serves three purposes: decoding and validating input (msgspec, in C, so the
collector keeps up with many thousands of events a second), the JSON Schema shown in the
OpenAPI docs, and the field names used in error messages.

Unknown top-level fields are ignored, as Segment's own API does; ``properties``, ``traits``,
``context`` and ``integrations`` are kept as sent, re-encoded (see :mod:`touchpoint.collect.decode`).
"""

from __future__ import annotations

from typing import Any

import msgspec

from touchpoint.collect.rules import EVENT_TYPES as EVENT_TYPES

# The short paths analytics.js uses.
SHORT_PATHS = {"i": "identify", "t": "track", "p": "page", "s": "screen", "g": "group", "a": "alias"}

Id = str | int | float | None
Json = dict[str, Any] | None
NULL = msgspec.Raw(b"null")


class Message(msgspec.Struct, kw_only=True, omit_defaults=True):
    """One event in the Segment tracking spec (identify, track, page, screen, group or alias)."""

    type: str | None = None
    messageId: Id = None
    userId: Id = None
    anonymousId: Id = None
    event: str | None = None  # track
    name: str | None = None  # page, screen
    category: str | None = None  # page
    groupId: Id = None  # group
    previousId: Id = None  # alias
    timestamp: str | None = None
    originalTimestamp: str | None = None
    sentAt: str | None = None
    # Raw JSON text; collect.decode checks it and re-encodes it (the last duplicate key wins).
    properties: msgspec.Raw = NULL
    traits: msgspec.Raw = NULL
    context: msgspec.Raw = NULL
    integrations: msgspec.Raw = NULL
    writeKey: str | None = None


class Common(msgspec.Struct, kw_only=True):
    """The common shape of an event, decoded in C in one call: ids as strings, the four JSON fields as objects.

    Narrower than :class:`Message` on purpose (an id sent as a number, ``"properties": 5``, and anything else it
    refuses go to the full rules, which judge them and word the reason); what it accepts, :class:`Message`
    accepts with the same values (:func:`touchpoint.collect.normalize.normalize_common`)."""

    type: str | None = None
    messageId: str | None = None
    userId: str | None = None
    anonymousId: str | None = None
    event: str | None = None
    name: str | None = None
    category: str | None = None
    groupId: str | None = None
    previousId: str | None = None
    timestamp: str | None = None
    originalTimestamp: str | None = None
    sentAt: str | None = None
    properties: dict[str, Any] | None = None
    traits: dict[str, Any] | None = None
    context: dict[str, Any] | None = None
    integrations: dict[str, Any] | None = None
    writeKey: str | None = None


class _Email(msgspec.Struct):
    email: Any = None


class _Context(msgspec.Struct):
    # Any, not nested Structs: a client may send e.g. "page": "home", which must not fail the event.
    page: Any = None
    campaign: Any = None
    traits: Any = None


class _Properties(msgspec.Struct):
    revenue: Any = None
    total: Any = None
    value: Any = None
    currency: Any = None
    order_id: Any = None
    orderId: Any = None
    url: Any = None
    path: Any = None
    referrer: Any = None
    email: Any = None


class Typed(msgspec.Struct):
    """The few nested fields that become typed columns, decoded in C without building dicts."""

    properties: _Properties | None = None
    context: _Context | None = None
    traits: _Email | None = None


class Batch(msgspec.Struct, kw_only=True):
    """A ``/v1/batch`` body: the items are kept raw so that one bad item cannot sink the others."""

    batch: list[msgspec.Raw]
    # Raw, checked with the same limits as the items' own objects before they are shared.
    context: msgspec.Raw = NULL
    integrations: msgspec.Raw = NULL
    sentAt: msgspec.Raw = NULL
    writeKey: str | None = None


class BatchEnvelope(msgspec.Struct, kw_only=True):
    """A body (a batch or a single event) of which only the write key is read."""

    writeKey: str | None = None


class MessageDoc(msgspec.Struct, kw_only=True):
    """One event in the Segment tracking spec (identify, track, page, screen, group or alias)."""

    type: str | None = None
    messageId: Id = None
    userId: Id = None
    anonymousId: Id = None
    event: str | None = None
    name: str | None = None
    category: str | None = None
    groupId: Id = None
    previousId: Id = None
    timestamp: str | None = None
    originalTimestamp: str | None = None
    sentAt: str | None = None
    properties: Json = None
    traits: Json = None
    context: Json = None
    integrations: Json = None
    writeKey: str | None = None


def message_json_schema() -> dict[str, Any]:
    """JSON Schema of one message, inlined (OpenAPI cannot follow msgspec's ``$defs`` references)."""
    schema: dict[str, Any] = msgspec.json.schema(MessageDoc)
    defs = schema.pop("$defs", {})
    if "$ref" in schema:
        schema = defs[schema["$ref"].rsplit("/", 1)[-1]]
    return schema


def batch_json_schema() -> dict[str, Any]:
    """JSON Schema of a batch body, for the OpenAPI docs."""
    return {
        "type": "object",
        "required": ["batch"],
        "properties": {
            "batch": {"type": "array", "items": message_json_schema(), "maxItems": 2500},
            "context": {"type": "object"},
            "integrations": {"type": "object"},
            "sentAt": {"type": "string", "format": "date-time"},
            "writeKey": {"type": "string"},
        },
    }
