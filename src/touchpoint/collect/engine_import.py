"""File import in the engine: a file's events judged by set-based expressions, not line by line.

The lines are those the Python path judges too (:func:`touchpoint.collect.files.lines`: a JSONL file's own, or
each CSV or Parquet row, or mapped record, as its JSON line; a row that cannot be one comes as its quarantine
record). A Python pre-pass (:func:`chunks`) keeps the lines msgspec finds canonical as *candidates*, as one Arrow
column. One statement then applies the rules of :mod:`touchpoint.collect.normalize` (limits and field lists
from :mod:`touchpoint.collect.rules`) to every candidate of a chunk at once, reading the Arrow batches in
place: :func:`parsed` (each JSON level the rules read parsed with the engine's ``from_json``), :func:`fields`,
:func:`typed`, :func:`url_parts` and :func:`judged`, which gives the ``events`` row of each line it can
**accept exactly**. A line it cannot decide exactly (anything the rules refuse, and rare shapes: escapes,
duplicate keys, numbers the engine would print differently, times outside the plain ISO forms, non-ASCII
text that must be case-folded) is judged by the Python path, :meth:`~touchpoint.collect.normalize.EventRows.add_raw`,
for that line only, so every quarantine reason comes from the one judge the HTTP collector uses.

The acceptance test is conservative by construction: a line is accepted only if its text is
already the engine's canonical JSON (``json(line) = line``), which makes the stored JSON objects
byte for byte those the Python path stores. ``tests/collect/test_engine_import.py`` proves the
equivalence on random valid, invalid and hostile items.

Three threads work one chunk apart: the reading (the pre-pass), the judging (:func:`judge_file`, on its own
engine cursor) and the commit (:func:`commit`). Each chunk commits in one transaction with
:func:`~touchpoint.collect.store.write_table`'s rules (suppression, consent, dedup by messageId), so a killed
import re-run stores each event once.
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import operator
import queue
import sys
import threading
import time
from collections.abc import Callable, Generator, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, TypeVar

import ibis
import ibis.expr.datatypes as dt
import msgspec
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from touchpoint.collect import rules
from touchpoint.collect.consent import Extracted
from touchpoint.collect.decode import _may_be_deep, _maybe_huge
from touchpoint.collect.normalize import EVENT_COLUMNS, EVENTS_ARROW, EventRows, Rejected, content_message_id, utcnow
from touchpoint.collect.readers import Progress, Tally
from touchpoint.collect.store import WriteResult, _consent, write_table

if TYPE_CHECKING:
    import ibis.expr.types as ir

    from touchpoint.collect.files import ImportReport, Line
    from touchpoint.warehouse import Warehouse

# -- the engine functions the rules use (declared, compiled by Ibis for the engine) ---------------------
# Ibis reads only the signatures: the bodies never run (mypy: empty-body), and Ibis types such as
# dt.Array(dt.string) are annotations mypy cannot read as types (valid-type).


@ibis.udf.scalar.builtin(name="json")
def _json_text(doc: str) -> str: ...  # type: ignore[empty-body]


@ibis.udf.scalar.builtin(name="regexp_extract")
def _extract(text: str, pattern: str, group: int) -> str: ...  # type: ignore[empty-body]


_ISO_PARTS = ("date", "clock", "seconds", "fraction", "zone")


@ibis.udf.scalar.builtin(name="regexp_extract")
def _extract_parts(
    text: str,
    pattern: str,
    names: dt.Array(dt.string),  # type: ignore[valid-type]
) -> dt.Struct(dict.fromkeys(_ISO_PARTS, dt.string)): ...  # type: ignore[valid-type]


@ibis.udf.scalar.builtin(name="trim")
def _trim(text: str, chars: str) -> str: ...  # type: ignore[empty-body]


@ibis.udf.scalar.builtin(name="timezone")
def _in_zone(zone: str, ts: dt.Timestamp(timezone="UTC")) -> dt.Timestamp(): ...  # type: ignore[valid-type]


# -- what the expression reads from each line -------------------------------------------------------------

_TOP = (*rules.STRING_FIELDS, *rules.ID_FIELDS, *rules.NAME_FIELDS, *rules.TIME_FIELDS, *rules.OBJECT_FIELDS)
_NESTED = (
    *(f"properties.{p}" for p in ("revenue", "total", "value", "currency", "order_id", "orderId")),
    *(f"properties.{p}" for p in rules.PAGE_FIELDS),
    *(f"context.page.{p}" for p in rules.PAGE_FIELDS),
    "context.page",
    "context.campaign",
    *(f"context.campaign.{k}" for k in rules.CAMPAIGN_KEYS),
    "context.traits",
    *rules.EMAIL_PATHS,
)
PATHS = (*_TOP, *_NESTED)
_INDEX = {name: i for i, name in enumerate(PATHS)}
#: paths whose string the rules read stripped (names, the typed columns' strings)
_STRIPPED = frozenset(
    (
        "type",
        *rules.NAME_FIELDS,
        *(f"properties.{p}" for p in ("currency", "order_id", "orderId", *rules.PAGE_FIELDS)),
        *(f"context.page.{p}" for p in rules.PAGE_FIELDS),
        *(f"context.campaign.{k}" for k in rules.CAMPAIGN_KEYS),
        *rules.EMAIL_PATHS,
    )
)
_ISO = (
    r"^(\d{4}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12]\d|3[01]))"
    r"(?:[T ]((?:[01]\d|2[0-3]):[0-5]\d)(?::([0-5]\d)(?:\.(\d{1,6}))?)?(Z|[+-](?:[01]\d|2[0-3]):[0-5]\d)?)?$"
)
_ASCII = r"^[\x20-\x7e]*$"
_INTEGER = ("BIGINT", "UBIGINT")


class _Line:
    """The JSON values of one line at :data:`PATHS`, with typed readers: from the columns of the
    parsed step (``raws``: ``r<i>``, the value's JSON text), or from the columns :func:`fields`
    made of them (``table``)."""

    def __init__(self, raws: ir.Table | None = None, table: ir.Table | None = None) -> None:
        self.raws = raws
        self.table = table

    def raw(self, path: str) -> ir.StringValue:
        source = self.table if self.table is not None else self.raws
        assert source is not None
        return source[f"r{_INDEX[path]}"]

    def kind(self, path: str) -> ir.StringValue:
        """The JSON type (VARCHAR, BIGINT, DOUBLE, BOOLEAN, OBJECT, ARRAY, NULL); 'ABSENT' if not there.

        Read from the value's text, which is the engine's serialisation (a decidable line is): its
        first character, and for a number whether the engine wrote it as a double (with ``.`` or
        an exponent, as it always writes one)."""
        if self.table is not None:
            return self.table[f"k{_INDEX[path]}"]
        raw = self.raw(path)
        first = raw.substr(0, 1)
        return ibis.cases(
            (raw.isnull(), "ABSENT"),
            (first == '"', "VARCHAR"),
            (first == "{", "OBJECT"),
            (first == "[", "ARRAY"),
            (first.isin(("t", "f")), "BOOLEAN"),
            (first == "n", "NULL"),
            (raw.contains(".") | raw.contains("e") | raw.contains("E"), "DOUBLE"),
            else_="BIGINT",
        )

    def text(self, path: str) -> ir.StringValue:
        """The string value (NULL when not a string): the text between the quotes, since a decidable
        line has no backslash, so no string in it holds an escape."""
        if self.table is not None:
            return self.table[f"s{_INDEX[path]}"]
        raw = self.raw(path)
        return (raw.substr(0, 1) == '"').ifelse(raw.substr(1, raw.length() - 2), ibis.null(dt.string))

    def stripped(self, path: str) -> ir.StringValue:
        """The string value stripped as ``str.strip()`` does (a column of :func:`fields` for :data:`_STRIPPED`)."""
        if self.table is not None and path in _STRIPPED:
            return self.table[f"t{_INDEX[path]}"]
        return _strip(self.text(path))

    def no_control(self, text: ir.StringValue) -> ir.BooleanValue:
        """``text`` holds no control character (:data:`rules.CONTROL_CLASS`). Without a regular expression on
        a *plain* line (:func:`chunks`): its bytes are printable ASCII, and with no backslash none is escaped."""
        assert self.table is not None
        return self.table.plain.ifelse(True, ~text.re_search(rules.CONTROL_CLASS))

    def printable(self, text: ir.StringValue) -> ir.BooleanValue:
        """``text`` is printable ASCII only (``_ASCII``); on a plain line every string is."""
        assert self.table is not None
        return self.table.plain.ifelse(True, text.re_search(_ASCII))

    def absent(self, path: str) -> ir.BooleanValue:
        return self.kind(path).isin(("ABSENT", "NULL"))


def _strip(text: ir.StringValue) -> ir.StringValue:
    """``str.strip()``; the engine's trim with a set of characters is slow, so only where an end is blank."""
    blank = ibis.literal(rules.WHITESPACE)
    ends = blank.contains(text.substr(0, 1)) | blank.contains(text.right(1))
    return ends.ifelse(_trim(text, rules.WHITESPACE), text)


def _identifier(line: _Line, field: str) -> tuple[ir.StringValue, ir.BooleanValue]:
    """``normalize._id``: (the text, whether the engine can decide it exactly and it is acceptable)."""
    kind = line.kind(field)
    text = line.text(field)
    value = ibis.cases(
        (kind == "VARCHAR", text.nullif("")),
        (kind.isin(_INTEGER), line.raw(field)),
        else_=ibis.null(dt.string),
    )
    fine = ibis.cases(
        (kind.isin(("ABSENT", "NULL", *_INTEGER)), True),
        (kind == "VARCHAR", (text.length() <= rules.MAX_ID_CHARS) & line.no_control(text)),
        else_=False,  # a float (its text follows Python's repr) or a wrong type: the Python path decides
    )
    return value, fine


def _name(line: _Line, field: str) -> tuple[ir.StringValue, ir.BooleanValue]:
    """``normalize.check_name``: stripped text; refused (here: not decided) when too long or holding controls."""
    kind = line.kind(field)
    text = line.stripped(field)
    fine = ibis.cases(
        (kind.isin(("ABSENT", "NULL")), True),
        (kind == "VARCHAR", (text.length() <= rules.MAX_NAME_CHARS) & line.no_control(text)),
        else_=False,
    )
    return text, fine


def _iso_time(text: ir.StringValue) -> tuple[ir.TimestampValue, ir.BooleanValue]:
    """``datetime.fromisoformat`` of the plain ISO forms, as UTC: (the time or NULL, whether it matched)."""
    parts = _extract_parts(text, _ISO, ibis.literal(list(_ISO_PARTS), type=dt.Array(dt.string)))
    date, clock, seconds, fraction, zone = (parts[name] for name in _ISO_PARTS)
    iso = (
        date
        + " "
        + (clock == "").ifelse("00:00", clock)
        + ":"
        + (seconds == "").ifelse("00", seconds)
        + (fraction == "").ifelse("", "." + fraction)
        + ((zone == "") | (zone == "Z")).ifelse("+00:00", zone)
    )
    return _in_zone("UTC", iso.try_cast(dt.Timestamp(timezone="UTC"))), date != ""


def _time(line: _Line, field: str) -> tuple[ir.TimestampValue, ir.BooleanValue, ir.BooleanValue]:
    """``normalize.parse_time``: (UTC time, present, decided and acceptable). Plain ISO forms only.

    Reads the time :func:`fields` parsed (``<field>_ts``, ``<field>_dated``: the date matched)."""
    assert line.table is not None
    kind = line.kind(field)
    text = line.text(field)
    parsed, dated = line.table[f"{field}_ts"], line.table[f"{field}_dated"]
    present = (kind == "VARCHAR") & (text != "")
    in_range = parsed.between(ibis.literal(rules.EARLIEST), ibis.literal(rules.LATEST))
    fine = ibis.cases(
        (kind.isin(("ABSENT", "NULL")), True),
        (kind != "VARCHAR", False),
        (text == "", True),
        else_=dated & parsed.notnull() & in_range,  # (the date is part of every match)
    )
    return parsed, present, fine


def _plain_string(line: _Line, path: str) -> tuple[ir.StringValue, ir.BooleanValue]:
    """``normalize._str``: stripped text or an integer's digits; other types give NULL; floats undecided."""
    kind = line.kind(path)
    value = ibis.cases(
        (kind == "VARCHAR", line.stripped(path).nullif("")),
        (kind.isin(_INTEGER), line.raw(path)),
        else_=ibis.null(dt.string),
    )
    return value, kind != "DOUBLE"


def _amount(line: _Line, path: str) -> tuple[ir.FloatingValue, ir.BooleanValue]:
    """``normalize._number``: a number or numeric text as a double; out of range or odd text undecided."""
    kind = line.kind(path)
    text = line.text(path)
    numeric_text = text.re_search(r"^-?\d{1,15}(\.\d{1,15})?$")
    value = ibis.cases(
        (kind.isin((*_INTEGER, "DOUBLE")), line.raw(path).cast(dt.float64)),
        ((kind == "VARCHAR") & numeric_text, text.cast(dt.float64)),
        else_=ibis.null(dt.float64),
    )
    fine = ibis.cases(
        (kind.isin((*_INTEGER, "DOUBLE")), value.abs() <= rules.MAX_AMOUNT),
        (kind == "VARCHAR", numeric_text & (value.abs() <= rules.MAX_AMOUNT)),
        else_=True,  # booleans, objects, arrays, null: not an amount
    )
    return value, fine


def _first(*values: ir.Value) -> ir.Value:
    return ibis.coalesce(*values)


def _from_json(doc: ir.StringValue, children: tuple[str, ...]) -> ir.StructValue:
    """The engine's ``from_json(doc, shape)``: ``doc`` parsed once, the JSON text of each of its keys
    ``children`` (NULL when absent, JSON null, or ``doc`` is not an object), as a struct."""
    shape = dt.Struct(dict.fromkeys(children, dt.JSON))
    spec = msgspec.json.encode(dict.fromkeys(children, "JSON")).decode()
    call = ibis.udf.scalar.builtin(name="from_json", signature=((dt.string, dt.string), shape))(_declared)
    value: ir.StructValue = call(doc, spec)
    return value


def _declared(doc: object, shape: object) -> None:
    """The body of an engine builtin declared by signature: Ibis compiles the call, never runs it."""


def _children(parent: str) -> tuple[str, ...]:
    """The keys of :data:`PATHS` directly under ``parent`` ("" for the line's top level)."""
    depth = parent.count(".") + 1 if parent else 0
    prefix = f"{parent}." if parent else ""
    names = (p[len(prefix) :] for p in PATHS if p.startswith(prefix) and p.count(".") == depth)
    return tuple(dict.fromkeys(names))


def parsed(lines: ir.Table) -> ir.Table:
    """Step 1 (materialised, so each JSON document is parsed once): each candidate line with
    ``decidable`` (the engine's own serialisation of the line is the line itself) and ``r<i>``, the
    JSON text of its value at each of :data:`PATHS` (NULL when absent or JSON null).

    ``lines`` has ``n``, ``text`` and ``fallback`` (see :func:`chunks`): lines msgspec already
    found canonical. Requiring the engine's serialisation to equal them too means every JSON object
    the engine extracts is byte for byte what the Python judge stores (the two serialisers differ on
    some numbers, e.g. doubles from 1e16 to 1e21, which this sends to the Python judge).

    Each level is parsed with one ``from_json`` of its parent's text, naming only the keys the rules
    read (the engine evaluates a repeated call once); a nested path under a value that is not an
    object is NULL, as ``json_extract`` reads it.
    """
    t = lines.text
    decidable = (_json_text(t) == t).fill_null(False)
    texts: dict[str, ir.StringValue] = {}

    def value(path: str) -> ir.StringValue:
        if path not in texts:
            parent, _, key = path.rpartition(".")
            doc = value(parent) if parent else t
            texts[path] = _from_json(doc, _children(parent))[key].cast(dt.string)
        return texts[path]

    columns = {f"r{i}": value(path) for path, i in _INDEX.items()}  # read only where decidable
    return lines.select("n", "fallback", "plain", decidable=decidable, **columns)


def fields(staged: ir.Table) -> ir.Table:
    """Step 2 (not materialised: :func:`typed` reads it in the same statement): the type, text and JSON
    of each path as columns, the strings the rules read stripped, and the three times parsed (one regular
    expression each, evaluated once)."""
    line = _Line(staged)
    columns: dict[str, ir.Value] = {}
    for path, i in _INDEX.items():
        columns[f"k{i}"] = line.kind(path)
        columns[f"s{i}"] = line.text(path)
        columns[f"r{i}"] = line.raw(path)
        if path in _STRIPPED:
            columns[f"t{i}"] = _strip(line.text(path))
    for field in rules.TIME_FIELDS:
        columns[f"{field}_ts"], columns[f"{field}_dated"] = _iso_time(line.text(field))
    return staged.select("n", "fallback", "plain", "decidable", **columns)


def typed(staged: ir.Table, *, received_at: datetime, source: str) -> ir.Table:
    """Step 3 (materialised): each line of :func:`fields` with ``ok`` (every rule but the page URL's
    passes, exactly) and its ``events`` row, whose page path and UTM tags :func:`judged` completes."""
    checks: list[ir.BooleanValue] = [staged.decidable]
    line = _Line(table=staged)

    raw_type = line.text("type")
    plain_type = raw_type.isin(rules.EVENT_TYPES)
    folded = line.printable(raw_type).ifelse(line.stripped("type").lower(), ibis.null(dt.string))
    etype = plain_type.ifelse(raw_type, folded)
    checks += [line.kind("type") == "VARCHAR", etype.isin(rules.EVENT_TYPES)]
    checks += [line.absent("writeKey") | (line.kind("writeKey") == "VARCHAR")]

    ids = {field: _identifier(line, field) for field in rules.ID_FIELDS}
    checks += [fine for _, fine in ids.values()]
    user_id, anonymous_id = ids["userId"][0], ids["anonymousId"][0]
    group_id, previous_id = ids["groupId"][0], ids["previousId"][0]
    checks += [user_id.notnull() | anonymous_id.notnull()]

    names = {field: _name(line, field) for field in rules.NAME_FIELDS}
    checks += [fine for _, fine in names.values()]
    event, name = names["event"][0], names["name"][0]
    checks += [(etype != "track") | (event.notnull() & (event != ""))]
    checks += [(etype != "group") | group_id.notnull()]
    checks += [(etype != "alias") | previous_id.notnull()]

    ts, ts_present, ts_fine = _time(line, "timestamp")
    ots, ots_present, ots_fine = _time(line, "originalTimestamp")
    sent, sent_present, sent_fine = _time(line, "sentAt")
    # originalTimestamp is read only without a timestamp, but its type is checked always (spec.Message: a string)
    checks += [ts_fine, ts_present | ots_fine, line.kind("originalTimestamp").isin(("ABSENT", "NULL", "VARCHAR"))]
    checks += [sent_fine]
    original = ts_present.ifelse(ts, ots_present.ifelse(ots, ibis.null(dt.timestamp)))
    sent_at = sent_present.ifelse(sent, ibis.null(dt.timestamp))
    received = ibis.literal(received_at, type=dt.timestamp)
    delay = sent_at.delta(original, unit="microsecond")
    tolerance = int(rules.SEND_DELAY_TOLERANCE.total_seconds() * 1_000_000)
    longest = int(rules.MAX_SEND_DELAY.total_seconds() * 1_000_000)
    checks += [original.isnull() | sent_at.isnull() | delay.between(-tolerance, longest)]
    corrected = ibis.cases(
        (original.isnull(), received),
        (sent_at.isnull(), original),
        else_=received - ibis.greatest(delay, 0).as_interval("us"),
    )
    checks += [corrected.between(ibis.literal(rules.EARLIEST), ibis.literal(rules.LATEST))]

    for field in rules.OBJECT_FIELDS:
        checks += [line.kind(field).isin(("ABSENT", "NULL", "OBJECT"))]
    objects = {
        field: (line.kind(field) == "OBJECT").ifelse(line.raw(field), ibis.null(dt.string))
        for field in rules.OBJECT_FIELDS
    }
    has_props = line.kind("properties") == "OBJECT"

    # typed columns
    amounts = [_amount(line, f"properties.{p}") for p in rules.AMOUNT_PATHS]
    revenue = has_props.ifelse(_first(*(value for value, _ in amounts)), ibis.null(dt.float64))
    # an amount is read only while the ones before it gave nothing (as normalize does)
    before: ir.BooleanValue = ibis.literal(True)
    for value, fine in amounts:
        checks += [~has_props | ~before | fine]
        before = before & value.isnull()

    currency, currency_fine = _plain_string(line, "properties.currency")
    checks += [currency_fine, currency.isnull() | line.printable(currency)]
    currency = has_props.ifelse(currency.upper(), ibis.null(dt.string))
    order_a, fine_a = _plain_string(line, "properties.order_id")
    order_b, fine_b = _plain_string(line, "properties.orderId")
    checks += [fine_a, fine_b]
    order_id = has_props.ifelse(_first(order_a, order_b), ibis.null(dt.string))

    emails, stripped = [], []
    for path in rules.EMAIL_PATHS:
        candidate = line.text(path)
        emails.append(candidate.contains("@").ifelse(candidate, ibis.null(dt.string)))
        stripped.append(candidate.contains("@").ifelse(line.stripped(path), ibis.null(dt.string)))
    chosen = _first(*emails)
    checks += [chosen.isnull() | line.printable(chosen)]
    email = _first(*stripped).lower()

    is_page = etype == "page"
    page_is_object = line.kind("context.page") == "OBJECT"
    page: dict[str, ir.StringValue] = {}
    for field in rules.PAGE_FIELDS:
        own, own_fine = _plain_string(line, f"properties.{field}")
        ctx, ctx_fine = _plain_string(line, f"context.page.{field}")
        checks += [~(is_page & has_props) | own_fine, ~page_is_object | ctx_fine]
        none = ibis.null(dt.string)
        page[field] = _first((is_page & has_props).ifelse(own, none), page_is_object.ifelse(ctx, none))

    campaign_used = (line.kind("context.campaign") == "OBJECT") & (line.raw("context.campaign") != "{}")
    utm: list[ir.StringValue] = []
    for key in rules.CAMPAIGN_KEYS:
        value, fine = _plain_string(line, f"context.campaign.{key}")
        checks += [~campaign_used | fine]
        utm.append(campaign_used.ifelse(value, ibis.null(dt.string)))
    message_id = ibis.coalesce(ids["messageId"][0], staged.fallback)  # none sent: the line's hash (chunks)
    checks += [message_id.notnull()]
    row = {
        "message_id": message_id,
        "type": etype,
        "event": event,
        "name": name,
        "user_id": user_id,
        "anonymous_id": anonymous_id,
        "group_id": group_id,
        "previous_id": previous_id,
        "timestamp": corrected,
        "original_timestamp": original,
        "sent_at": sent_at,
        "received_at": received,
        "source": ibis.literal(source, type=dt.string),
        "properties": objects["properties"],
        "traits": objects["traits"],
        "context": objects["context"],
        "integrations": objects["integrations"],
        "email": email,
        "revenue": revenue,
        "currency": currency,
        "order_id": order_id,
        "url": page["url"],
        "path": page["path"],
        "referrer": page["referrer"],
        **dict(zip(rules.UTM_KEYS, utm, strict=True)),
    }
    return staged.select(staged.n, ok=ibis.and_(*checks).fill_null(False), **row)


# the first non-empty value of the key in the query; the group is lazy (??): a greedy one skipped to the last
_UTM_IN_QUERY = r"^[^#?]*\?(?:[^#]*?&)??{key}=([^&#]+)"


def url_parts(typed: ir.Table) -> ir.Table:
    """Step 4 (in the statement of :func:`judged`): the rows of :func:`typed` with what
    ``normalize._utm_from_url`` reads from the page URL of an event without campaign tags, each regular
    expression run at most once, and only for a key the URL holds: the first non-empty ``utm_*`` values
    of the query (``q_<key>``) and the path after the host."""
    url = typed.url
    from_url = url.notnull() & url.contains("utm_") & ibis.and_(*(typed[key].isnull() for key in rules.UTM_KEYS))
    none = ibis.null(dt.string)
    parts: dict[str, ir.Value] = {  # "" as regexp_extract gives when the key is not in the URL at all
        f"q_{key}": from_url.ifelse(
            url.contains(f"{key}=").ifelse(_extract(url, _UTM_IN_QUERY.format(key=key), 1), ""), none
        )
        for key in rules.UTM_KEYS
    }
    # "//" before any "#" or "?" (the regular expression ^[^#?]*//, by plain searches)
    at, hash_at, query_at = url.find("//"), url.find("#"), url.find("?")
    has_host = (at >= 0) & ((hash_at < 0) | (at < hash_at)) & ((query_at < 0) | (at < query_at))
    after_host = _extract(url, r"^[^#?]*?//[^/#?]*(/[^#?]*)", 1)  # the path after "//host"
    from_slash = _extract(url, r"^[^/#?]*(/[^#?]*)", 1)  # the path from the first "/"
    parts["host_path"] = (from_url & has_host).ifelse(after_host, none)
    parts["plain_path"] = (from_url & ~has_host).ifelse(from_slash, none)
    return typed.mutate(from_url=from_url, has_host=has_host, **parts)


def judged(parts: ir.Table) -> ir.Table:
    """Step 5 (materialised with step 4): each line with ``ok`` (accepted exactly) and its ``events`` row,
    UTM tags and path taken from the URL parts of :func:`url_parts` where the rules read them from the URL."""
    from_url = parts.from_url
    checks = [parts.ok]
    utm = {}
    for key in rules.UTM_KEYS:
        first = parts[f"q_{key}"]
        checks += [~from_url | ~(first.contains("%") | first.contains("+"))]  # unquoting: the Python judge
        utm[key] = from_url.ifelse(_strip(first).nullif(""), parts[key])
    url_path = parts.has_host.ifelse(parts.host_path, parts.plain_path).nullif("")
    path = (from_url & parts.path.isnull()).ifelse(url_path, parts.path)
    values = {"path": path, **utm}
    kept = [c for c in EVENT_COLUMNS if c not in values]
    return parts.select("n", *kept, ok=ibis.and_(*checks).fill_null(False), **values)


# -- the import -----------------------------------------------------------------------------------------

_decode = msgspec.json.decode
_encode = msgspec.json.Encoder().encode
_CONSENT_IN = ("traits", "context", "properties")  # where consent.extract looks (its candidates)
T = TypeVar("T")
_STAGE = "__tp_import"  # this connection's temporary tables (<_STAGE>_judged...) and the lines' view
#: rows in each Arrow batch of a chunk's candidates: the engine's unit of parallel work in the judging statement
BATCH_ROWS = 16_384
LINES_SCHEMA = pa.schema(
    [("n", pa.int64()), ("text", pa.large_string()), ("fallback", pa.string()), ("plain", pa.bool_())]
)


@dataclass
class Chunk:
    """A chunk of a file's lines as the Python pre-pass (:func:`chunks`) split them."""

    numbers: list[int] = dataclasses.field(default_factory=list)  # candidates for the engine: line numbers,
    texts: list[bytes] = dataclasses.field(default_factory=list)  # the lines (stripped),
    fallbacks: list[str | None] = dataclasses.field(default_factory=list)  # the id of a line without messageId
    plain: list[bool] = dataclasses.field(default_factory=list)  # printable ASCII only (see chunks)
    pending: list[tuple[int, bytes]] = dataclasses.field(default_factory=list)  # for the Python judge: (number, line)
    rejected: list[Rejected] = dataclasses.field(default_factory=list)  # records that could not become a line
    size: int = 0  # bytes of the file read

    def __len__(self) -> int:
        return len(self.numbers) + len(self.pending) + len(self.rejected)

    def lines(self) -> pa.Table:
        """The candidates as Arrow (``n``, ``text``, ``fallback``); msgspec decoded each, so each is UTF-8.

        The texts are one buffer (the lines joined) with their offsets, not one Python object each."""
        count = len(self.texts)
        offsets = np.zeros(count + 1, np.int64)
        np.cumsum(np.fromiter(map(len, self.texts), np.int64, count), out=offsets[1:])
        data = pa.py_buffer(b"".join(self.texts))
        texts = pa.LargeStringArray.from_buffers(count, pa.py_buffer(offsets), data)
        return pa.table(
            [
                pa.array(self.numbers, pa.int64()),
                texts,
                pa.array(self.fallbacks, pa.string()),
                pa.array(self.plain, pa.bool_()),
            ],
            LINES_SCHEMA,
        )


def chunks(lines: Iterable[Line], read: Tally, lines_per_chunk: int, max_event_bytes: int | None) -> Iterator[Chunk]:
    """The file's lines (:func:`touchpoint.collect.files.lines`: numbered, stripped, non-empty), each either an
    engine candidate or left to the Python judge, and the records that could not become a line; ``read`` counts
    the bytes read, each chunk's :attr:`Chunk.size`.

    A candidate is a JSON object that msgspec decodes and encodes back to the very same bytes: its
    text is then what the Python judge would store for it (no repeated key, no escape, no number
    spelled otherwise, valid UTF-8), within the size and nesting limits, with no backslash and no
    number that may be out of range (:func:`~touchpoint.collect.decode.check_text`'s bounds). The
    engine still judges it against every rule; the pre-pass only keeps shapes it cannot decide
    exactly away from it. A candidate without messageId gets the id the Python judge gives it.

    A candidate is *plain* when its bytes are ASCII without DEL: msgspec refuses a raw control character
    in a string and a canonical line has no whitespace outside one, so with no backslash (no escape)
    every string in a plain line is printable ASCII, and the engine skips those regular expressions.

    The lines are tested :data:`BLOCK_LINES` at a time (:func:`_sort_block`), each on its own only in a block
    where one of them fails.
    """
    limit = max_event_bytes if max_event_bytes is not None else sys.maxsize
    chunk = Chunk()
    block: list[tuple[int, bytes]] = []
    counted = 0
    for item in lines:
        if isinstance(item, Rejected):
            chunk.rejected.append(item)
        else:
            block.append(item)
            if len(block) == BLOCK_LINES:
                _sort_block(block, chunk, limit)
                block = []
        if len(chunk) + len(block) >= lines_per_chunk:
            _sort_block(block, chunk, limit)
            block = []
            chunk.size, counted = read.total - counted, read.total
            yield chunk
            chunk = Chunk()
    _sort_block(block, chunk, limit)
    chunk.size = read.total - counted
    if len(chunk) or chunk.size:
        yield chunk


#: lines the pre-pass decodes in one call (:func:`_sort_block`): few enough that their objects, alive together, stay
#: below the garbage collector's threshold of young objects (700) for events of a few objects each; a block of
#: 1,024 cost more than a decode a line, in collections (docs/decisions.md, 2026-12-05 "The pre-pass a block at a time")
BLOCK_LINES = 128


def _fallback(value: dict[str, object], line: bytes) -> str | None:
    """The id the Python judge gives a candidate sent without messageId (None when it has one)."""
    mid = value.get("messageId")
    return content_message_id(line) if mid is None or mid == "" else None


def _plain(line: bytes) -> bool:
    """Printable ASCII only, for a candidate (see :func:`chunks`)."""
    return line.isascii() and b"\x7f" not in line


def _sort_block(block: list[tuple[int, bytes]], chunk: Chunk, limit: int) -> None:
    """Add ``block``'s lines to ``chunk``: as candidates when every one of them is (one decode of the block as a
    JSON array, the text tests over its text), else each as :func:`_sort_line` decides.

    Exact: the tests over the joined text bound those of each line (a line follows ``[`` or ``,``, where the
    number test starts, as in :func:`~touchpoint.collect.decode.clean_text`; a backslash in a line is one in the
    join), and a line whose value encodes back to the line itself is a JSON object on its own, whatever the
    array's other items, so its decode alone gives that value. A block costs a quarter to a third less than a
    decode a line (docs/decisions.md, 2026-12-05 "The pre-pass a block at a time")."""
    if not block:
        return
    texts = [line for _, line in block]
    # a line over the limit goes to the Python judge, with its block line by line: no copy of the block for it
    joined = b"[" + b",".join(texts) + b"]" if max(map(len, texts)) <= limit else b""
    values = None
    if joined and b"\\" not in joined and not any(map(_may_be_deep, texts)) and not _maybe_huge(joined):
        try:
            values = _decode(joined)
        except Exception:  # one line is not JSON, or not UTF-8...: each line on its own says which
            values = None
    if (
        type(values) is not list
        or len(values) != len(texts)
        or not all(type(value) is dict for value in values)
        or not all(map(operator.eq, map(_encode, values), texts))
    ):
        for number, line in block:
            _sort_line(number, line, chunk, limit)
        return
    chunk.numbers.extend(number for number, _ in block)
    chunk.texts.extend(texts)
    chunk.fallbacks.extend(map(_fallback, values, texts))
    chunk.plain.extend(itertools.repeat(True, len(texts)) if _plain(joined) else map(_plain, texts))


def _sort_line(number: int, line: bytes, chunk: Chunk, limit: int) -> None:
    """One line to ``chunk``: a candidate (see :func:`chunks`) or pending for the Python judge."""
    value = None
    if len(line) <= limit and b"\\" not in line and not _may_be_deep(line) and not _maybe_huge(line):
        try:
            value = _decode(line)
        except Exception:  # not JSON, not UTF-8, too deep...: the Python judge says why
            value = None
    if type(value) is dict and _encode(value) == line:
        chunk.numbers.append(number)
        chunk.texts.append(line)
        chunk.fallbacks.append(_fallback(value, line))
        chunk.plain.append(_plain(line))
    else:
        chunk.pending.append((number, line))


class _Judge:
    """The judging steps as one expression, built once per import over this connection's tables (``received_at``
    and ``source`` are literals of it), then run over each chunk's candidates.

    The candidates are read where they are, an Arrow view in batches of :data:`BATCH_ROWS` (the engine's
    threads share a chunk's batches), and the verdicts materialised once: the refused lines, the counts, the
    consent and the insert all read them. (Materialising each step instead, so that each JSON document is
    parsed once, measured a fifth more CPU, and one thread a statement over a chunk of one row group.)"""

    def __init__(self, warehouse: Warehouse, *, received_at: datetime, source: str) -> None:
        self.warehouse = warehouse
        lines = warehouse.temp_table(f"{_STAGE}_lines", ibis.schema(LINES_SCHEMA))
        self.judged = judged(url_parts(typed(fields(parsed(lines)), received_at=received_at, source=source)))
        warehouse.stage_table(  # NotImplementedError: not here (before anything is read or written)
            f"{_STAGE}_judged", self.judged, inputs={f"{_STAGE}_lines": LINES_SCHEMA.empty_table()}
        )
        self.verdicts = warehouse.table(f"{_STAGE}_judged")

    def run(self, lines: pa.Table) -> None:
        """Judge ``lines``: :attr:`verdicts` then holds this chunk's."""
        batches = pa.Table.from_batches(lines.to_batches(max_chunksize=BATCH_ROWS), LINES_SCHEMA)
        self.warehouse.stage_table(f"{_STAGE}_judged", self.judged, inputs={f"{_STAGE}_lines": batches})


def _in_thread(items: Callable[[], Generator[T]], name: str) -> Generator[T]:
    """The items of ``items()``, made one ahead on a thread of its own: the generator runs, and is closed,
    on that thread (so the engine cursor it uses is that thread's), while the consumer works on the item
    before. An exception it raises is raised to the consumer; a consumer that stops early stops it."""
    ready: queue.Queue[tuple[T] | BaseException | None] = queue.Queue(maxsize=1)
    stop = threading.Event()

    def hand(item: tuple[T] | BaseException | None) -> bool:
        """Put ``item`` in the queue unless the consumer stopped; False once it has."""
        while not stop.is_set():
            try:
                ready.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            with contextlib.closing(items()) as made:
                for item in made:
                    if not hand((item,)):
                        return
            hand(None)
        except BaseException as exc:  # handed to the consumer, which raises it
            hand(exc)

    thread = threading.Thread(target=produce, name=name, daemon=True)
    thread.start()
    try:
        while (item := ready.get()) is not None:
            if isinstance(item, BaseException):
                raise item
            yield item[0]
    finally:
        stop.set()
        thread.join()


def _read(
    lines: Generator[Line], read: Tally, lines_per_chunk: int, max_event_bytes: int | None
) -> Generator[tuple[Chunk, pa.Table | None]]:
    """:func:`chunks` with each chunk's candidates as Arrow."""
    with contextlib.closing(lines):  # closed on this thread, which reads it
        for chunk in chunks(lines, read, lines_per_chunk, max_event_bytes):
            candidates = chunk.lines() if chunk.numbers else None
            chunk.texts = []  # the Arrow column holds them now
            yield chunk, candidates


@dataclass
class Judged:
    """A chunk judged (:func:`judge_file`), ready to commit (:func:`commit`)."""

    size: int  # bytes of the file read
    events: pa.Table  # the accepted lines (EVENTS_ARROW), in line order: a messageId's repeats too (see commit)
    rows: EventRows  # the rejects
    python_judged: int  # lines the Python judge decided
    seconds: float  # the engine's time on the chunk
    #: the consent of every accepted line, in line order (as write_rows reads it from its events), and how many
    #: events it keeps out; None: :func:`~touchpoint.collect.store.write_table` reads it from ``events``
    consent: tuple[Extracted | None, int] | None = None


def judge_file(
    warehouse: Warehouse,
    lines: Generator[Line],
    read: Tally,
    *,
    name: str,
    source: str,
    chunk_events: int,
    max_event_bytes: int | None,
    received_at: datetime,
) -> Generator[Judged]:
    """Each chunk of the file judged: the engine's verdicts on its candidates, the Python judge on the rest.

    Runs on its own thread in :func:`import_lines` (the reading one more ahead, on another): the engine
    judges chunk k+1 on this thread's cursor while the committer inserts chunk k on its own, so the two
    cores are busy when one statement over a chunk of one row group would use one.
    """
    from touchpoint.collect import suppression

    judge = _Judge(warehouse, received_at=received_at, source=source)  # NotImplementedError: not here
    try:
        reading = _in_thread(lambda: _read(lines, read, chunk_events, max_event_bytes), "touchpoint-import-read")
        with contextlib.closing(reading):
            for chunk, candidates in reading:
                started = time.perf_counter()
                if candidates is not None:
                    judge.run(candidates)
                    verdicts = judge.verdicts
                    refused = warehouse.to_arrow(verdicts.filter(~verdicts.ok).select("n")).column("n")
                    undecided = candidates.filter(pc.is_in(candidates.column("n"), refused))
                    python = zip(undecided.column("n").to_pylist(), undecided.column("text").to_pylist(), strict=True)
                    pending = sorted([*chunk.pending, *((n, text.encode("utf-8")) for n, text in python)])
                else:
                    pending = chunk.pending
                rows = EventRows()
                for rejected in chunk.rejected:
                    rows.reject(rejected, received_at, source)
                python_n: list[int] = []
                for number, raw in pending:
                    if rows.add_raw(
                        raw,
                        received_at=received_at,
                        source=source,
                        max_bytes=max_event_bytes,
                        deterministic_ids=True,
                        origin=f"file:{name}:{number}",
                    ):
                        python_n.append(number)
                python_rows = rows.to_arrow().append_column("n", pa.array(python_n, pa.int64()))
                rows.rows.clear()  # rows holds the rejects; the events go as Arrow
                if candidates is None:
                    events, consent = python_rows.drop_columns(["n"]), None
                else:
                    suppressing = bool(suppression.hashes(warehouse))
                    events, consent = _accepted(warehouse, judge.verdicts, python_rows, suppressing)
                seconds = time.perf_counter() - started
                yield Judged(chunk.size, events, rows, len(pending), seconds, consent)
    finally:
        for step in ("judged", "python", "rows"):
            warehouse.drop_staged(f"{_STAGE}_{step}")


def _accepted(
    warehouse: Warehouse, verdicts: ir.Table, python_rows: pa.Table, suppressing: bool
) -> tuple[pa.Table, tuple[Extracted | None, int] | None]:
    """A chunk's accepted lines, the engine's and the Python judge's (with ``n``), as Arrow in line order, and,
    unless erased people are on the suppression list (then write_table checks each event, and reads the consent
    too), the consent of every accepted line."""
    staged = verdicts.filter(verdicts.ok).select("n", *EVENT_COLUMNS)
    if python_rows.num_rows:  # one table of the chunk's rows, which the steps below read several times
        warehouse.stage_table(f"{_STAGE}_python", python_rows)
        warehouse.stage_table(
            f"{_STAGE}_rows", staged.union(warehouse.table(f"{_STAGE}_python").select(*staged.columns))
        )
        staged = warehouse.table(f"{_STAGE}_rows")
    ordered = warehouse.to_arrow(staged.order_by("n"))
    events = ordered.drop_columns(["n"]).cast(EVENTS_ARROW)
    if suppressing:
        return events, None
    mentions = [staged.event == "Consent Updated", *(staged[c].contains("consent") for c in _CONSENT_IN)]
    candidates = warehouse.to_arrow(staged.filter(ibis.or_(*mentions).fill_null(False)).order_by("n"))
    found, dropped = _consent(candidates.drop_columns(["n"]).cast(EVENTS_ARROW))
    if found is not None and found.analytics_denied:  # their positions among the candidates, as among the events
        lines = candidates.column("n").to_numpy()[found.analytics_denied]
        found.analytics_denied = np.searchsorted(ordered.column("n").to_numpy(), lines).tolist()
    return events, (found, dropped)


def commit(warehouse: Warehouse, judged: Judged) -> WriteResult:
    """Commit a judged chunk in one transaction with :func:`~touchpoint.collect.store.write_table`'s rules, in
    the HTTP path's order: suppression, the events' consent, then dedup by messageId (a messageId's first line
    left wins in the chunk; one stored already wins over all)."""
    return write_table(warehouse, judged.events, judged.rows, consent=judged.consent)


def import_lines(
    warehouse: Warehouse,
    lines: Generator[Line],
    read: Tally,
    *,
    name: str,
    source: str,
    chunk_events: int,
    max_event_bytes: int | None,
    progress: Progress | None,
    report: ImportReport,
    received_at: datetime | None = None,
) -> None:
    """Import a file's lines (:func:`touchpoint.collect.files.lines`) through the engine (see the module's
    doc); fills ``report``. ``read`` counts the bytes of the file read, ``name`` names it in the rejects' origin.

    Three threads, one chunk apart: the reading (the Python pre-pass), the judging (:func:`judge_file`) and
    the commit (this one). Raises ``NotImplementedError`` before writing anything when the warehouse cannot
    stage tables.
    """
    received_at = received_at or utcnow()
    judging = _in_thread(
        lambda: judge_file(
            warehouse,
            lines,
            read,
            name=name,
            source=source,
            chunk_events=chunk_events,
            max_event_bytes=max_event_bytes,
            received_at=received_at,
        ),
        "touchpoint-import-judge",
    )
    with contextlib.closing(judging):
        for judged in judging:
            report.engine_seconds += judged.seconds
            report.python_judged += judged.python_judged
            report.write.add(commit(warehouse, judged))
            for rejected in judged.rows.rejected:
                if len(report.sample_reasons) >= 10:
                    break
                report.sample_reasons.append(f"{rejected.origin}: {rejected.reason}")
            if progress is not None:
                progress(judged.size)


__all__ = ["PATHS", "Judged", "chunks", "commit", "import_lines", "judge_file", "judged"]
