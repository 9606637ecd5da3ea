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

from touchpoint.collect.decode import (
    EventError,
    NotJson,
    clean_text,
    decode_event,
    decode_object,
    split_batch,
    top_level,
)
from touchpoint.collect.normalize import (
    EventRows,
    Rejected,
    failure,
    message_id_of,
    normalize_common,
    payload_text,
    validation_reason,
)
from touchpoint.collect.spec import Batch, BatchEnvelope, Message
from touchpoint.errors import InvalidBatch, InvalidInput, PayloadTooLarge

#: Events of the common shape take :func:`~touchpoint.collect.normalize.normalize_common` (one C decode, the
#: rules' common cases inline); False: every event goes through the full rules (tests compare the two).
COMMON_PATH = True
_decode_batch = msgspec.json.Decoder(Batch).decode
_decode_envelope = msgspec.json.Decoder(BatchEnvelope).decode
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
    # Strict: exactly one complete stream, its checksum and length verified (zlib checks them at
    # the end of the stream), and nothing after it: a second member or trailing bytes are refused.
    if not inflater.eof:
        raise InvalidInput(
            f"the {enc} body is truncated (its end and checksum are missing)", hint="send the complete compressed body"
        )
    if inflater.unused_data:
        raise InvalidInput(
            f"the {enc} body has {len(inflater.unused_data):,} bytes after the end of its compressed data "
            "(a second gzip member or trailing garbage)",
            hint="send exactly one compressed stream",
        )
    return out


def write_key_in(body: bytes) -> str | None:
    """The ``writeKey`` field of a body (a single event's or a batch's), when a client authenticates that way:
    only the key is decoded (the body is judged afterwards, once its source is known)."""
    try:
        key: Any = _decode_envelope(body).writeKey
    except Exception:  # nested too deeply for the decoder, or malformed somewhere: read the top level alone
        found = top_level(body)
        try:
            key = msgspec.json.decode(found[1]["writeKey"]) if found and "writeKey" in found[1] else None
        except msgspec.DecodeError:  # any body: an unreadable key is no key
            return None
    return key if isinstance(key, str) and key else None


def _not_json(exc: Exception) -> InvalidInput:
    return InvalidInput(f"the body is not valid JSON ({exc})", hint="send a JSON object in the Segment spec")


def rows_from_body(
    body: bytes, kind: str, *, received_at: datetime, source: str | None, limits: Limits
) -> tuple[EventRows, list[dict[str, Any]]]:
    """Validate a request body for endpoint ``kind`` (``batch`` or an event type).

    Returns the rows (valid events and rejects) and, for rejects, ``{"index", "field", "reason"}``
    for the response. Raises :class:`InvalidInput` when the body as a whole is unusable (not JSON,
    not an object, a batch over its event limit); raises :class:`InvalidBatch`, with the body
    kept for quarantine, when a batch's shared ``context``, ``integrations`` or ``sentAt`` breaks a limit.
    """
    rows = EventRows()
    problems: list[dict[str, Any]] = []
    if kind != "batch":
        if len(body) > limits.max_event_bytes:
            raise PayloadTooLarge(
                f"the event is {len(body):,} bytes, over the limit of {limits.max_event_bytes:,} bytes per event",
                hint="send less data in properties, or raise max_event_bytes",
            )
        row = normalize_common(body, received_at=received_at, source=source, default_type=kind) if COMMON_PATH else None
        if row is not None:
            rows.add_row(row)
            return rows, problems
        try:
            msg = decode_event(body)
        except NotJson as exc:
            raise _not_json(exc) from None
        except msgspec.ValidationError as exc:
            reason, field = validation_reason(exc)
            if field is None:
                raise InvalidInput(reason, hint="send a JSON object in the Segment spec") from None
            rows.reject(
                Rejected(reason, field, payload_text(body), message_id_of(body), f"http:{kind}"), received_at, source
            )
        except Exception as exc:  # the boundary: a limit, or anything unforeseen, quarantines the event
            reason, field = failure(exc)
            rows.reject(
                Rejected(reason, field, payload_text(body), message_id_of(body), f"http:{kind}"), received_at, source
            )
        else:
            rows.add_message(
                msg, body, received_at=received_at, source=source, default_type=kind, origin=f"http:{kind}"
            )
        if rows.rejected:
            last = rows.rejected[-1]
            problems.append({"index": 0, "field": last.field, "reason": last.reason})
        return rows, problems

    items, shared = _split_batch(body)
    if len(items) > limits.max_batch_events:
        raise InvalidInput(
            f"the batch has {len(items):,} events, over the limit of {limits.max_batch_events:,} per batch",
            hint="split it into smaller batches",
        )
    clean = COMMON_PATH and clean_text(body)  # the limits on the text, checked once for every item
    for index, item in enumerate(items):
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
            row = (
                normalize_common(
                    item,
                    received_at=received_at,
                    source=source,
                    shared_context=shared.context,
                    shared_integrations=shared.integrations,
                    shared_sent_at=shared.sent_at,
                    clean=clean,
                )
                if COMMON_PATH
                else None
            )
            if row is not None:
                rows.add_row(row)
            else:
                _add_item(rows, item, shared, received_at=received_at, source=source)
        if len(rows.rejected) > before and len(problems) < 100:
            last = rows.rejected[-1]
            problems.append({"index": index, "field": last.field, "reason": last.reason})
    return rows, problems


@dataclass
class _Shared:
    """What a batch's top level gives every item: ``context``, ``integrations``, ``sentAt``."""

    context: dict[str, Any] | None = None
    integrations: dict[str, Any] | None = None
    sent_at: str | None = None


def _split_batch(body: bytes) -> tuple[list[bytes], _Shared]:
    try:
        batch = _decode_batch(body)
        items = [bytes(raw) for raw in batch.batch]
        envelope = {"context": bytes(batch.context), "integrations": bytes(batch.integrations)}
        sent_raw = bytes(batch.sentAt)
    except msgspec.ValidationError as exc:  # (a subclass of DecodeError: first)
        reason, field = validation_reason(exc)
        if field is not None and field != "batch":
            return _split_slowly(body)
        raise InvalidInput(f"the batch body is not usable: {reason}", hint='send {"batch": [event, ...]}') from None
    except msgspec.DecodeError as exc:
        # One malformed item (a lone surrogate, a bad escape) must not sink the others: split the
        # body without decoding it, and judge each item alone. Only a body that is not a JSON
        # object with a batch array at all is refused as a whole.
        if split_batch(body) is None:
            raise _not_json(exc) from None
        return _split_slowly(body)
    except (RecursionError, UnicodeDecodeError):
        return _split_slowly(body)
    return items, _shared(envelope, sent_raw, body)


def _split_slowly(body: bytes) -> tuple[list[bytes], _Shared]:
    found = split_batch(body)
    if found is None:
        raise InvalidInput("the batch body is not usable", hint='send {"batch": [event, ...]}')
    items, envelope = found
    return items, _shared(envelope, envelope.get("sentAt", b"null"), body)


def _shared(envelope: dict[str, bytes], sent_raw: bytes, body: bytes) -> _Shared:
    shared = _Shared()
    for name in ("context", "integrations"):
        raw = envelope.get(name, b"null")
        try:
            value = decode_object(raw, name)
        except EventError as exc:
            raise InvalidBatch(f"the batch's {exc.reason}", field=exc.field, body=body) from None
        setattr(shared, name, value or None)
    try:
        sent_at = decode_object(b'{"sentAt":%s}' % sent_raw, "batch") or {}
    except EventError as exc:
        raise InvalidBatch(f"the batch's {exc.reason}", field="sentAt", body=body) from None
    value = sent_at.get("sentAt")
    if value is not None and not isinstance(value, str):
        raise InvalidBatch("the batch's field 'sentAt': expected a string", field="sentAt", body=body)
    shared.sent_at = value
    return shared


def _add_item(rows: EventRows, item: bytes, shared: _Shared, *, received_at: datetime, source: str | None) -> None:
    """Judge one batch item inside the boundary: stored, or quarantined naming its field."""
    try:
        msg = decode_event(item)
        inherited = _inherit(msg, shared)
        # Keep what the item meant, batch-level context included, so a replay is faithful.
        payload = _encode(msg) if inherited else item
    except Exception as exc:  # the boundary: any failure quarantines this item only
        reason, field = failure(exc)
        rows.reject(Rejected(reason, field, payload_text(item), message_id_of(item), "http:batch"), received_at, source)
        return
    rows.add_message(msg, payload, received_at=received_at, source=source, origin="http:batch")


def _merged(shared: dict[str, Any], own: msgspec.Raw) -> msgspec.Raw:
    """``shared`` (from the batch) overlaid by the item's own object; a non-object is left to validation."""
    mine = msgspec.json.decode(bytes(own))  # already checked by decode_event
    if mine is None:
        mine = {}
    if not isinstance(mine, dict):
        return own
    return msgspec.Raw(_encode({**shared, **mine}))


def _inherit(msg: Message, shared: _Shared) -> bool:
    """Top-level ``context``, ``integrations`` and ``sentAt`` of a batch apply to each item."""
    inherited = bool(shared.context or shared.integrations or shared.sent_at)
    if shared.context:
        msg.context = _merged(shared.context, msg.context)
    if shared.integrations:
        msg.integrations = _merged(shared.integrations, msg.integrations)
    if msg.sentAt is None and shared.sent_at is not None:
        msg.sentAt = shared.sent_at
    return inherited
