"""Request bodies of the Segment HTTP tracking API, turned into event rows.

Framework-free: the HTTP layer hands over bytes and gets :class:`EventRows` back, or an
error that says which limit or field was wrong.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import msgspec

from touchpoint.collect.normalize import (
    EventError,
    EventRows,
    Rejected,
    message_id_of,
    normalize_message,
    validation_reason,
)
from touchpoint.collect.spec import Batch, BatchEnvelope, Message
from touchpoint.errors import InvalidInput, PayloadTooLarge

_decode_batch = msgspec.json.Decoder(Batch).decode
_decode_envelope = msgspec.json.Decoder(BatchEnvelope).decode
_decode_message = msgspec.json.Decoder(Message).decode
_encode = msgspec.json.Encoder().encode


@dataclass(frozen=True)
class Limits:
    """Segment's documented limits: 32 KB per event, 500 KB and 2,500 events per batch."""

    max_event_bytes: int = 32 * 1024
    max_batch_bytes: int = 500 * 1024
    max_batch_events: int = 2500


def decompress(body: bytes, encoding: str | None, limit: int) -> bytes:
    """Undo ``Content-Encoding: gzip`` (or deflate), refusing output larger than ``limit``."""
    if not encoding or encoding.strip().lower() in ("identity", ""):
        return body
    enc = encoding.strip().lower()
    if enc not in ("gzip", "x-gzip", "deflate"):
        raise InvalidInput(
            f"Content-Encoding {encoding!r} is not supported", hint="send the body plain or gzip-compressed"
        )
    wbits = 16 + zlib.MAX_WBITS if enc != "deflate" else zlib.MAX_WBITS
    inflater = zlib.decompressobj(wbits)
    try:
        out = inflater.decompress(body, limit + 1)
    except zlib.error as exc:
        raise InvalidInput(f"the body is not valid {enc} data ({exc})", hint="compress the body with gzip") from None
    if len(out) > limit:
        raise PayloadTooLarge(
            f"the uncompressed body is over the limit of {limit:,} bytes per request",
            hint="send fewer events per batch",
        )
    return out


def write_key_in(body: bytes, kind: str) -> str | None:
    """The ``writeKey`` field of a body, when a client authenticates that way."""
    try:
        decoded: Any = _decode_envelope(body) if kind == "batch" else _decode_message(body)
    except (msgspec.ValidationError, msgspec.DecodeError):
        return None
    key = decoded.writeKey
    return key if isinstance(key, str) and key else None


def _not_json(exc: Exception) -> InvalidInput:
    return InvalidInput(f"the body is not valid JSON ({exc})", hint="send a JSON object in the Segment spec")


def rows_from_body(
    body: bytes, kind: str, *, received_at: datetime, source: str | None, limits: Limits
) -> tuple[EventRows, list[dict[str, Any]]]:
    """Validate a request body for endpoint ``kind`` (``batch`` or an event type).

    Returns the rows (valid events and rejects) and, for rejects, ``{"index", "field", "reason"}``
    for the response. Raises :class:`InvalidInput` when the body as a whole is unusable.
    """
    rows = EventRows()
    problems: list[dict[str, Any]] = []
    if kind != "batch":
        if len(body) > limits.max_event_bytes:
            raise PayloadTooLarge(
                f"the event is {len(body):,} bytes, over the limit of {limits.max_event_bytes:,} bytes per event",
                hint="send less data in properties, or raise max_event_bytes",
            )
        try:
            msg = _decode_message(body)
        except msgspec.ValidationError as exc:
            reason, field = validation_reason(exc)
            if field is None:
                raise InvalidInput(reason, hint="send a JSON object in the Segment spec") from None
            rows.reject(
                Rejected(
                    reason,
                    field,
                    body.decode("utf-8", "backslashreplace"),
                    message_id_of(body),
                    f"http:{kind}",
                ),
                received_at,
                source,
            )
            problems.append({"index": 0, "field": field, "reason": reason})
            return rows, problems
        except msgspec.DecodeError as exc:
            raise _not_json(exc) from None
        if not rows.add_message(
            msg, body, received_at=received_at, source=source, default_type=kind, origin=f"http:{kind}"
        ):
            last = rows.rejected[-1]
            problems.append({"index": 0, "field": last.field, "reason": last.reason})
        return rows, problems

    try:
        batch = _decode_batch(body)
    except msgspec.ValidationError as exc:
        reason, _ = validation_reason(exc)
        raise InvalidInput(f"the batch body is not usable: {reason}", hint='send {"batch": [event, ...]}') from None
    except msgspec.DecodeError as exc:
        raise _not_json(exc) from None
    if len(batch.batch) > limits.max_batch_events:
        raise InvalidInput(
            f"the batch has {len(batch.batch):,} events, over the limit of {limits.max_batch_events:,} per batch",
            hint="split it into smaller batches",
        )
    for index, raw in enumerate(batch.batch):
        item = bytes(raw)
        before = len(rows.rejected)
        if len(item) > limits.max_event_bytes:
            rows.add_raw(
                item,
                received_at=received_at,
                source=source,
                max_bytes=limits.max_event_bytes,
                origin="http:batch",
            )
        else:
            try:
                msg = _decode_message(item)
            except msgspec.ValidationError as exc:
                reason, field = validation_reason(exc)
                rows.reject(
                    Rejected(
                        reason,
                        field,
                        item.decode("utf-8", "backslashreplace"),
                        message_id_of(item),
                        "http:batch",
                    ),
                    received_at,
                    source,
                )
            else:
                inherited = _inherit(msg, batch)
                try:
                    rows.add_row(normalize_message(msg, received_at=received_at, source=source))
                except EventError as exc:
                    # Keep what the item meant, batch-level context included, so a replay is faithful.
                    payload = _encode(msg).decode() if inherited else item.decode("utf-8", "backslashreplace")
                    mid = msg.messageId if isinstance(msg.messageId, str) else None
                    rows.reject(Rejected(exc.reason, exc.field, payload, mid, "http:batch"), received_at, source)
        if len(rows.rejected) > before and len(problems) < 100:
            last = rows.rejected[-1]
            problems.append({"index": index, "field": last.field, "reason": last.reason})
    return rows, problems


def _merged(shared: dict[str, Any], own: msgspec.Raw) -> msgspec.Raw:
    """``shared`` (from the batch) overlaid by the item's own object; a non-object is left to validation."""
    try:
        mine = msgspec.json.decode(bytes(own))
    except msgspec.DecodeError:
        return own
    if mine is None:
        mine = {}
    if not isinstance(mine, dict):
        return own
    return msgspec.Raw(_encode({**shared, **mine}))


def _inherit(msg: Message, batch: Batch) -> bool:
    """Top-level ``context``, ``integrations`` and ``sentAt`` of a batch apply to each item."""
    inherited = bool(batch.context or batch.integrations or batch.sentAt)
    if batch.context:
        msg.context = _merged(batch.context, msg.context)
    if batch.integrations:
        msg.integrations = _merged(batch.integrations, msg.integrations)
    if msg.sentAt is None and batch.sentAt is not None:
        msg.sentAt = batch.sentAt
    return inherited
