"""From raw input to rows of the ``events`` table, or to a quarantine record with its reason.

This is the one place where an incoming event is judged. The HTTP collector, the file importers
and quarantine replay all call :func:`normalize_raw` or :func:`normalize_message`, so the same
input gets the same verdict whichever way it arrives.

>>> from datetime import datetime
>>> rows = EventRows()
>>> rows.add_raw(b'{"type":"track","userId":"u1","event":"Signed Up"}',
...              received_at=datetime(2026, 1, 1), source="docs")
True
>>> rows.to_arrow().column("event").to_pylist()
['Signed Up']
"""

from __future__ import annotations

import hashlib
import logging
import math
import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import unquote_plus

import msgspec
import pyarrow as pa

from touchpoint.collect.decode import EventError, _may_be_deep, check_depth, check_text, decode_event, top_fields
from touchpoint.collect.rules import (
    CAMPAIGN_KEYS,
    CONTROL_CLASS,
    EARLIEST,
    EVENT_TYPES,
    LATEST,
    MAX_AMOUNT,
    MAX_ID_CHARS,
    MAX_NAME_CHARS,
    MAX_SEND_DELAY,
    SEND_DELAY_TOLERANCE,
    UTM_KEYS,
)
from touchpoint.collect.spec import Common, Message, Typed
from touchpoint.warehouse.clock import utcnow as utcnow
from touchpoint.warehouse.schema import EVENTS, QUARANTINE

log = logging.getLogger(__name__)
_decode_typed = msgspec.json.Decoder(Typed).decode
_decode_common = msgspec.json.Decoder(Common).decode
_encode = msgspec.json.Encoder().encode
_convert = msgspec.convert

EVENT_COLUMNS = tuple(EVENTS.schema.names)
EVENTS_ARROW = EVENTS.schema.to_pyarrow()
QUARANTINE_ARROW = QUARANTINE.schema.to_pyarrow()

QUARANTINE_DEDUP_WINDOW = timedelta(hours=24)  # the same HTTP reject within it is recorded once
_CONTROL = re.compile(CONTROL_CLASS)
_UTM = UTM_KEYS
_UTM_INDEX = {key: i for i, key in enumerate(UTM_KEYS)}
_CAMPAIGN_KEYS = CAMPAIGN_KEYS


_TYPE_WORDS = (
    ("`int | float | str | null`", "a string or a number"),
    ("`str | null`", "a string"),
    ("`object | null`", "a JSON object"),
    ("`array`", "an array"),
    ("`object`", "an object"),
    ("`bool`", "a boolean"),
    ("`int`", "a number"),
    ("`float`", "a number"),
    ("`str`", "a string"),
    ("`null`", "null"),
)


@dataclass(slots=True)
class Rejected:
    """An input kept in quarantine instead of the event log."""

    reason: str
    field: str | None
    payload: str
    message_id: str | None = None
    origin: str | None = None


def parse_time(value: str | None, field: str) -> datetime | None:
    """ISO 8601 to naive UTC; a time without zone is taken as UTC. Only 1970 to 2200 is accepted."""
    if value is None or value == "":
        return None
    shown = value[:40] + "..." if len(value) > 40 else value
    try:
        parsed = datetime.fromisoformat(value.strip())
    except (ValueError, TypeError, AttributeError):
        raise EventError(
            f"field '{field}': {shown!r} is not an ISO 8601 date-time; send e.g. '2026-01-31T12:00:00Z'",
            field,
        ) from None
    if parsed.tzinfo is not None:
        try:
            parsed = parsed.astimezone(UTC).replace(tzinfo=None)
        except (OverflowError, ValueError):  # e.g. 0001-01-01T00:00:00+01:00 is before year 1 in UTC
            parsed = datetime.min if parsed.year < 1970 else datetime.max
    if not (EARLIEST <= parsed <= LATEST):
        raise EventError(f"field '{field}': {shown!r} is outside the years 1970 to 2200 (UTC)", field)
    return parsed


def corrected_timestamp(original: datetime | None, sent_at: datetime | None, received_at: datetime) -> datetime:
    """The event's time with the client's clock corrected by the delay it reports.

    ``received_at - (sentAt - timestamp)``: the delay between event and send is trusted, the client's
    clock is not. A delay a little negative (up to 5 minutes) counts as zero; a delay that is more
    negative, or longer than 366 days, means the two times come from different clocks, and the
    event is refused naming ``sentAt`` instead of being stored at an absurd date.
    """
    if original is None:
        return received_at
    if sent_at is None:
        return original
    delay = sent_at - original
    if delay < -SEND_DELAY_TOLERANCE or delay > MAX_SEND_DELAY:
        raise EventError(
            f"field 'sentAt': {sent_at.isoformat()} is {_span(delay)} the event's timestamp "
            f"{original.isoformat()}; the clock correction accepts sentAt from 5 minutes before to 366 days "
            "after it: send both from the same clock, or leave sentAt out",
            "sentAt",
        )
    corrected = received_at - max(delay, timedelta(0))
    if not (EARLIEST <= corrected <= LATEST):
        raise EventError(f"field 'timestamp': corrected for clock skew it is {corrected}, before 1970", "timestamp")
    return corrected


def _span(delay: timedelta) -> str:
    days = abs(delay).total_seconds() / 86400
    return f"{days:,.1f} days {'after' if delay > timedelta(0) else 'before'}"


def check_name(value: Any, field: str) -> str | None:
    """An event name, page name or category: a string without control characters, at most 512 characters."""
    if not isinstance(value, str):
        return None
    text = value.strip()
    if len(text) > MAX_NAME_CHARS:
        raise EventError(f"field '{field}': {len(text):,} characters, over the limit of {MAX_NAME_CHARS}", field)
    if _CONTROL.search(text):
        raise EventError(f"field '{field}': contains a control character (such as NUL); send plain text", field)
    return text


def _id(value: Any, field: str) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        raise EventError(f"field '{field}': expected a string or a number, got a boolean", field)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise EventError(f"field '{field}': {value!r} is not a usable identifier", field)
        text = str(int(value)) if value.is_integer() else repr(value)
    else:
        text = str(value)
    if text == "":
        return None
    if len(text) > MAX_ID_CHARS:
        raise EventError(f"field '{field}': longer than {MAX_ID_CHARS} characters", field)
    if _CONTROL.search(text):
        raise EventError(f"field '{field}': contains a control character (such as NUL); send plain text", field)
    return text


def _str(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        value = value.strip()
        return value or None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return None


def _number(value: Any, field: str) -> float | None:
    """A typed amount: None when it is not a number; refused when it is a number out of range."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        try:
            number = float(value)
        except OverflowError:
            number = math.inf
    elif isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            return None
    else:
        return None
    if not math.isfinite(number) or abs(number) > MAX_AMOUNT:
        shown = repr(value) if len(repr(value)) <= 40 else repr(value)[:40] + "..."
        raise EventError(
            f"field '{field}': {shown} is out of range (at most {MAX_AMOUNT:,.0f} either side of zero)", field
        )
    return number


def _email(*candidates: Any) -> str | None:
    for value in candidates:
        if isinstance(value, str):
            email = value.strip().lower()
            if "@" in email:
                return email
    return None


def _utm_from_url(url: str) -> tuple[list[str | None], str | None]:
    """The utm_* tags of a URL's query, in :data:`UTM_KEYS` order (the first of a repeated key wins), and its
    path: a lean stand-in for urlsplit + parse_qsl."""
    base, _, query = url.partition("#")[0].partition("?")
    tags: list[str | None] = [None] * len(_UTM)
    seen = 0
    for part in query.split("&"):
        if part.startswith("utm_"):
            key, _, value = part.partition("=")
            i = _UTM_INDEX.get(key)
            if i is not None and value and not seen >> i & 1:
                seen |= 1 << i
                tags[i] = _str(unquote_plus(value) if ("%" in value or "+" in value) else value)
    scheme_host = base.find("//")
    slash = base.find("/", scheme_host + 2) if scheme_host >= 0 else base.find("/")
    return tags, (base[slash:] or None) if slash >= 0 else None


def _object(raw: msgspec.Raw, field: str) -> str | None:
    """The raw JSON text of an object field, or None for null/absent; anything else is refused."""
    text = bytes(raw).strip()
    if text == b"null":
        return None
    if not text.startswith(b"{"):
        raise EventError(f"field '{field}': expected a JSON object", field)
    return text.decode()


def normalize_message(
    msg: Message,
    *,
    received_at: datetime,
    source: str | None,
    default_type: str | None = None,
    fallback_message_id: str | None = None,
) -> tuple[Any, ...]:
    """Validate one message and return its ``events`` row (in :data:`EVENT_COLUMNS` order).

    Raises :class:`EventError` naming the field when the message cannot be stored.
    """
    etype = default_type or msg.type
    if etype is None:
        raise EventError(f"field 'type': missing; send one of {', '.join(EVENT_TYPES)}", "type")
    if etype not in EVENT_TYPES:
        etype = etype.strip().lower()
        if etype not in EVENT_TYPES:
            raise EventError(f"field 'type': {msg.type!r} is not one of {', '.join(EVENT_TYPES)}", "type")

    user_id = _id(msg.userId, "userId")
    anonymous_id = _id(msg.anonymousId, "anonymousId")
    if user_id is None and anonymous_id is None:
        raise EventError("every event needs 'userId' or 'anonymousId'; neither was sent", "userId")
    group_id = _id(msg.groupId, "groupId") if msg.groupId is not None else None
    previous_id = _id(msg.previousId, "previousId") if msg.previousId is not None else None
    event = check_name(msg.event, "event")
    if etype == "track" and not event:
        raise EventError("field 'event': a track call needs the event name, e.g. 'Order Completed'", "event")
    if etype == "group" and group_id is None:
        raise EventError("field 'groupId': a group call needs the group's id", "groupId")
    if etype == "alias" and previous_id is None:
        raise EventError("field 'previousId': an alias call needs the previous id", "previousId")

    message_id = _id(msg.messageId, "messageId") or fallback_message_id or f"tp-{uuid.uuid4()}"

    original = parse_time(msg.timestamp, "timestamp") or parse_time(msg.originalTimestamp, "originalTimestamp")
    sent_at = parse_time(msg.sentAt, "sentAt")
    timestamp = corrected_timestamp(original, sent_at, received_at)
    name = check_name(msg.name, "name")
    check_name(msg.category, "category")

    properties = _object(msg.properties, "properties")
    traits = _object(msg.traits, "traits")
    context = _object(msg.context, "context")
    integrations = _object(msg.integrations, "integrations")
    typed = _decode_typed(
        b'{"properties":%s,"context":%s,"traits":%s}' % (bytes(msg.properties), bytes(msg.context), bytes(msg.traits))
    )
    return (
        message_id,
        etype,
        event,
        name,
        user_id,
        anonymous_id,
        group_id,
        previous_id,
        timestamp,
        original,
        sent_at,
        received_at,
        source,
        properties,
        traits,
        context,
        integrations,
        *_derived(etype, typed),
    )


def _derived(etype: str, typed: Typed) -> tuple[Any, ...]:
    """The typed columns after ``integrations`` (email ... the UTM tags), from the event's nested fields."""
    props = typed.properties
    ctx = typed.context
    page = ctx.page if ctx is not None and isinstance(ctx.page, dict) else None
    url = path = referrer = None
    if etype == "page" and props is not None:
        url, path, referrer = _str(props.url), _str(props.path), _str(props.referrer)
    if page is not None:
        url = url or _str(page.get("url"))
        path = path or _str(page.get("path"))
        referrer = referrer or _str(page.get("referrer"))

    campaign = ctx.campaign if ctx is not None and isinstance(ctx.campaign, dict) else None
    utm: list[str | None] = [_str(campaign.get(k)) for k in _CAMPAIGN_KEYS] if campaign else [None] * 5
    if url and "utm_" in url and not any(utm):
        utm, url_path = _utm_from_url(url)
        if path is None:
            path = url_path

    revenue = currency = order_id = None
    email_candidates: list[Any] = []
    if props is not None:  # (a call only for a property that was sent: most events send few of them)
        if (value := props.revenue) is not None:
            revenue = _number(value, "properties.revenue")
        if revenue is None and (value := props.total) is not None:
            revenue = _number(value, "properties.total")
        if revenue is None and (value := props.value) is not None:
            revenue = _number(value, "properties.value")
        if (value := props.currency) is not None:
            currency = _str(value)
        if (value := props.order_id) is not None:
            order_id = _str(value)
        if order_id is None and (value := props.orderId) is not None:
            order_id = _str(value)
        email_candidates.append(props.email)
    if typed.traits is not None:
        email_candidates.insert(0, typed.traits.email)
    if ctx is not None and isinstance(ctx.traits, dict):
        email_candidates.insert(1 if typed.traits is not None else 0, ctx.traits.get("email"))

    return (
        _email(*email_candidates),
        revenue,
        currency.upper() if currency else None,
        order_id,
        url,
        path,
        referrer,
        *utm,
    )


class _Unusual(Exception):
    """:func:`normalize_common` declines an event: the rules of :func:`normalize_message` judge it."""


_COMMON_TIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{1,6})?Z")


def _common_time(value: str | None) -> datetime | None:
    """:func:`parse_time` for the one form most clients send (``2026-01-31T12:00:00.123Z``)."""
    if not value:
        return None
    if _COMMON_TIME.fullmatch(value) is None:
        raise _Unusual
    parsed = datetime.fromisoformat(value[:-1])  # UTC already: no conversion to make
    if not (EARLIEST <= parsed <= LATEST):
        raise _Unusual
    return parsed


def _common_id(value: str | None) -> str | None:
    if not value:
        return None
    if len(value) > MAX_ID_CHARS or _CONTROL.search(value):
        raise _Unusual
    return value


def _common_name(value: str | None) -> str | None:
    if value is None:
        return None
    text = value.strip()
    if len(text) > MAX_NAME_CHARS or _CONTROL.search(text):
        raise _Unusual
    return text


def normalize_common(
    raw: bytes,
    *,
    received_at: datetime,
    source: str | None,
    default_type: str | None = None,
    shared_context: dict[str, Any] | None = None,
    shared_integrations: dict[str, Any] | None = None,
    shared_sent_at: str | None = None,
    clean: bool = False,
) -> tuple[Any, ...] | None:
    """The ``events`` row of an event of the common shape, or None: then :func:`normalize_message` judges it.

    The compiled path of the collector (docs/decisions.md, 2026-12-03, "A leaner HTTP path"): one C decode
    into :class:`~touchpoint.collect.spec.Common` (string ids, the JSON fields as objects), the limits of
    :func:`~touchpoint.collect.decode.check_text`, and the rules' common cases inline (string ids, names,
    ``...Z`` times, the event type as sent). Anything else (a number as an id, a time with an offset, a
    missing id, any refusal) returns None and the full rules decide, and word the reason; so the row is the one
    :func:`normalize_message` makes, field by field (tests/collect/test_common_path.py). ``shared_*``: a
    batch's top-level ``context``, ``integrations`` and ``sentAt``, inherited as :mod:`~touchpoint.collect.body`
    does for the full rules. ``clean``: ``raw`` is part of a text that
    :func:`~touchpoint.collect.decode.clean_text` passed (a batch body), so only its depth is checked here.
    """
    try:
        if clean:
            check_depth(raw)
        else:
            check_text(raw)
        msg = _decode_common(raw)
        etype = default_type or msg.type
        if etype not in EVENT_TYPES:
            raise _Unusual
        user_id = _common_id(msg.userId)
        anonymous_id = _common_id(msg.anonymousId)
        if user_id is None and anonymous_id is None:
            raise _Unusual
        # (a call only for a field that was sent: most events send few of them)
        group_id = _common_id(msg.groupId) if msg.groupId else None
        previous_id = _common_id(msg.previousId) if msg.previousId else None
        event = _common_name(msg.event)
        if (
            (etype == "track" and not event)
            or (etype == "group" and group_id is None)
            or (etype == "alias" and previous_id is None)
        ):
            raise _Unusual
        message_id = _common_id(msg.messageId)
        original = _common_time(msg.timestamp) or _common_time(msg.originalTimestamp)
        sent = msg.sentAt if msg.sentAt is not None or shared_sent_at is None else shared_sent_at
        sent_at = _common_time(sent) if sent else None
        timestamp = corrected_timestamp(original, sent_at, received_at)
        name = _common_name(msg.name) if msg.name is not None else None
        if msg.category is not None:
            _common_name(msg.category)
        context, integrations = msg.context, msg.integrations
        if shared_context:
            context = {**shared_context, **(context or {})}
        if shared_integrations:
            integrations = {**shared_integrations, **(integrations or {})}
        typed = _convert({"properties": msg.properties, "context": context, "traits": msg.traits}, Typed)
        derived = _derived(etype, typed)
    except Exception:  # _Unusual, a limit, a type msgspec refused: the full rules judge it and say why
        return None
    return (
        message_id or f"tp-{uuid.uuid4()}",  # drawn last, once per stored event, as the full rules do
        etype,
        event,
        name,
        user_id,
        anonymous_id,
        group_id,
        previous_id,
        timestamp,
        original,
        sent_at,
        received_at,
        source,
        None if msg.properties is None else _encode(msg.properties).decode(),
        None if msg.traits is None else _encode(msg.traits).decode(),
        None if context is None else _encode(context).decode(),
        None if integrations is None else _encode(integrations).decode(),
        *derived,
    )


def validation_reason(exc: msgspec.ValidationError) -> tuple[str, str | None]:
    """Turn msgspec's message ("Expected `str`, got `int` - at `$.event`") into ours."""
    text = str(exc)
    field = None
    if " - at `$." in text:
        text, _, where = text.partition(" - at `$.")
        field = where.rstrip("`")
    for theirs, ours in _TYPE_WORDS:
        text = text.replace(theirs, ours)
    text = text.replace("`", "'").replace("Expected", "expected")
    if field:
        return f"field '{field}': {text}", field.split(".")[0].split("[")[0]
    return f"the event is not a JSON object ({text})", None


def message_id_of(raw: bytes) -> str | None:
    """The messageId of an event that failed validation, when it can still be read (for search).

    Text that may nest deeper than the limit is read a level at a time without recursion (a recursive decoder
    fails on it or not by how deep the caller's stack is: the HTTP path and the file import once disagreed)."""
    value: Any = None
    try:
        if _may_be_deep(raw):
            token = top_fields(raw).get("messageId")
            value = msgspec.json.decode(token) if token is not None and token[:1] == b'"' else None
        else:
            data = msgspec.json.decode(raw)
            value = data.get("messageId") if isinstance(data, dict) else None
    except (msgspec.DecodeError, msgspec.ValidationError, RecursionError, UnicodeDecodeError):
        return None
    return value if isinstance(value, str) and len(value) <= MAX_ID_CHARS else None


def failure(exc: BaseException) -> tuple[str, str | None]:
    """(reason, field) for any exception raised while judging one event.

    Expected refusals name their field; anything else is a bug in validation, logged with its
    traceback, and the event is still kept in quarantine rather than failing its neighbours.
    """
    if isinstance(exc, EventError):
        return exc.reason, exc.field
    if isinstance(exc, msgspec.ValidationError):
        return validation_reason(exc)
    if isinstance(exc, msgspec.DecodeError):
        return f"not valid JSON: {exc}", None
    log.error("validation failed unexpectedly; the event is quarantined", exc_info=exc)
    return f"the event could not be validated ({type(exc).__name__}: {str(exc)[:200]})", None


def content_message_id(raw: bytes) -> str:
    """A deterministic id for an event sent without messageId, so re-imports do not duplicate it."""
    return "tp-" + hashlib.blake2b(raw, digest_size=16).hexdigest()


class EventRows:
    """Column-wise accumulator of valid rows and rejected inputs, ready to commit as Arrow."""

    __slots__ = ("rejected", "rejected_at", "rejected_source", "rows")

    def __init__(self) -> None:
        self.rows: list[tuple[Any, ...]] = []
        self.rejected: list[Rejected] = []
        self.rejected_at: list[datetime] = []
        self.rejected_source: list[str | None] = []

    def __len__(self) -> int:
        return len(self.rows)

    def add_row(self, row: tuple[Any, ...]) -> None:
        self.rows.append(row)

    def reject(self, rejected: Rejected, received_at: datetime, source: str | None) -> None:
        self.rejected.append(rejected)
        self.rejected_at.append(received_at)
        self.rejected_source.append(source)

    def add_message(
        self,
        msg: Message,
        payload: bytes | str,
        *,
        received_at: datetime,
        source: str | None,
        default_type: str | None = None,
        fallback_message_id: str | None = None,
        origin: str | None = None,
    ) -> bool:
        """Normalise ``msg``; store its row or, with ``payload``, its rejection. True if accepted."""
        try:
            row = normalize_message(
                msg,
                received_at=received_at,
                source=source,
                default_type=default_type,
                fallback_message_id=fallback_message_id,
            )
        except Exception as exc:  # the boundary: whatever goes wrong costs this event only, never the batch
            mid = msg.messageId if isinstance(msg.messageId, str) and len(msg.messageId) <= MAX_ID_CHARS else None
            reason, field = failure(exc)
            self.reject(Rejected(reason, field, payload_text(payload), mid, origin), received_at, source)
            return False
        self.add_row(row)
        return True

    def add_raw(
        self,
        raw: bytes,
        *,
        received_at: datetime,
        source: str | None,
        default_type: str | None = None,
        max_bytes: int | None = None,
        deterministic_ids: bool = False,
        origin: str | None = None,
    ) -> bool:
        """Decode and normalise one JSON event (a JSONL line, a batch item). True if accepted."""
        if max_bytes is not None and len(raw) > max_bytes:
            self.reject(
                Rejected(
                    f"the event is {len(raw):,} bytes, over the limit of {max_bytes:,} bytes per event; "
                    "send large data in fewer properties or raise max_event_bytes",
                    None,
                    payload_text(raw),
                    origin=origin,
                ),
                received_at,
                source,
            )
            return False
        try:
            msg = decode_event(raw)
        except Exception as exc:  # the boundary: see failure()
            reason, field = failure(exc)
            self.reject(Rejected(reason, field, payload_text(raw), message_id_of(raw), origin), received_at, source)
            return False
        fallback = content_message_id(raw) if deterministic_ids else None
        return self.add_message(
            msg,
            raw,
            received_at=received_at,
            source=source,
            default_type=default_type,
            fallback_message_id=fallback,
            origin=origin,
        )

    def to_arrow(self) -> pa.Table:
        columns = list(zip(*self.rows, strict=True)) if self.rows else [() for _ in EVENT_COLUMNS]
        arrays = [pa.array(col, type=EVENTS_ARROW.field(i).type) for i, col in enumerate(columns)]
        return pa.Table.from_arrays(arrays, schema=EVENTS_ARROW)

    def quarantine_arrow(self) -> pa.Table:
        return quarantine_table(self.rejected, self.rejected_at, self.rejected_source)

    def extend(self, other: EventRows) -> None:
        self.rows.extend(other.rows)
        self.extend_rejects(other)

    def extend_rejects(self, other: EventRows) -> None:
        """Add ``other``'s rejected inputs (not its rows)."""
        self.rejected.extend(other.rejected)
        self.rejected_at.extend(other.rejected_at)
        self.rejected_source.extend(other.rejected_source)


def quarantine_table(rejected: list[Rejected], received_at: list[datetime], sources: list[str | None]) -> pa.Table:
    n = len(rejected)
    columns: dict[str, list[Any]] = {
        "id": [_quarantine_id(r, at, src) for r, at, src in zip(rejected, received_at, sources, strict=True)],
        "received_at": received_at,
        "source": sources,
        "reason": [r.reason for r in rejected],
        "field": [r.field for r in rejected],
        "payload": [payload_text(r.payload) for r in rejected],
        "origin": [r.origin for r in rejected],
        "message_id": [r.message_id for r in rejected],
        "status": ["quarantined"] * n,
        "replayed_at": [None] * n,
    }
    return pa.table(columns, schema=QUARANTINE_ARROW)


def _quarantine_id(rejected: Rejected, received_at: datetime, source: str | None) -> str:
    """A record's id: derived from its content, so the same reject is recorded once.

    Records from files hash where they came from (file and line) with the payload, so re-imports
    add nothing. HTTP rejects hash the source and payload within a window of
    :data:`QUARANTINE_DEDUP_WINDOW`, so a client retrying the same bad batch makes one record.
    """
    origin = rejected.origin
    if origin and origin.startswith("http:") and isinstance(received_at, datetime):
        window = int((received_at - EARLIEST) / QUARANTINE_DEDUP_WINDOW)
        key = f"{origin}\x00{source}\x00{window}\x00{rejected.payload}"
    elif origin and origin != "replay":
        key = f"{origin}\x00{rejected.payload}"
    else:
        return "q-" + uuid.uuid4().hex
    return "q-" + hashlib.blake2b(key.encode(errors="surrogatepass"), digest_size=16).hexdigest()


def payload_text(payload: bytes | str) -> str:
    """Payload text that is always storable: invalid UTF-8 bytes and lone surrogates become escapes."""
    if isinstance(payload, str):
        return payload.encode("utf-8", "backslashreplace").decode("utf-8")
    return payload.decode("utf-8", errors="backslashreplace")


__all__ = [
    "EVENT_COLUMNS",
    "EventError",
    "EventRows",
    "Rejected",
    "failure",
    "normalize_common",
    "normalize_message",
    "parse_time",
    "utcnow",
]
