"""File import in the engine: a JSONL file's events judged by set-based expressions, not line by line.

The engine's own reader stages the file's lines as text (:meth:`~touchpoint.warehouse.Warehouse.stage_lines`),
so a bad line is kept, not lost. One Ibis expression then applies the rules of
:mod:`touchpoint.collect.normalize` (limits and field lists from :mod:`touchpoint.collect.rules`) to
every line at once and returns the ``events`` row of each line it can **accept exactly**. A line it
cannot decide exactly (anything the rules refuse, and rare shapes: escapes, duplicate keys, numbers
the engine would print differently, times outside the plain ISO forms, non-ASCII text that must be
case-folded) is judged by the Python path, :meth:`~touchpoint.collect.normalize.EventRows.add_raw`,
for that line only, so every quarantine reason comes from the one judge the HTTP collector uses.

The acceptance test is conservative by construction: a line is accepted only if its text is
already the engine's canonical JSON (``json(line) = line``), which makes the stored JSON objects
byte for byte those the Python path stores. ``tests/collect/test_engine_import.py`` proves the
equivalence on random valid, invalid and hostile items.

Each chunk of lines commits in one transaction through
:func:`~touchpoint.collect.store.write_table` (suppression, consent, dedup by messageId), so a
killed import re-run stores each event once.
"""

from __future__ import annotations

import mmap
import time
from bisect import bisect_left
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import ibis
import ibis.expr.datatypes as dt
import pyarrow as pa
import pyarrow.compute as pc

from touchpoint.collect import rules
from touchpoint.collect.normalize import EVENT_COLUMNS, EVENTS_ARROW, EventRows, content_message_id, utcnow
from touchpoint.collect.readers import Progress

if TYPE_CHECKING:
    import ibis.expr.types as ir

    from touchpoint.collect.files import ImportReport
    from touchpoint.warehouse import Warehouse

# -- the engine functions the rules use (declared, compiled by Ibis for the engine) ---------------------
# Ibis reads only the signatures: the bodies never run (mypy: empty-body), and Ibis types such as
# dt.Array(dt.string) are annotations mypy cannot read as types (valid-type).


@ibis.udf.scalar.builtin(name="json_valid")
def _json_valid(doc: str) -> bool: ...  # type: ignore[empty-body]


@ibis.udf.scalar.builtin(name="json")
def _json_text(doc: str) -> str: ...  # type: ignore[empty-body]


@ibis.udf.scalar.builtin(name="json_extract")
def _json_paths(doc: str, paths: dt.Array(dt.string)) -> dt.Array(dt.string): ...  # type: ignore[valid-type]


@ibis.udf.scalar.builtin(name="json_type")
def _json_type(doc: str) -> str: ...  # type: ignore[empty-body]


@ibis.udf.scalar.builtin(name="json_extract_string")
def _json_string(doc: str, path: str) -> str: ...  # type: ignore[empty-body]


@ibis.udf.scalar.builtin(name="json_keys")
def _json_keys(doc: str) -> dt.Array(dt.string): ...  # type: ignore[valid-type]


@ibis.udf.scalar.builtin(name="regexp_extract_all")
def _extract_all(text: str, pattern: str, group: int) -> dt.Array(dt.string): ...  # type: ignore[valid-type]


@ibis.udf.scalar.builtin(name="regexp_extract")
def _extract(text: str, pattern: str, group: int) -> str: ...  # type: ignore[empty-body]


@ibis.udf.scalar.builtin(name="strlen")
def _octets(text: str) -> int: ...  # type: ignore[empty-body]


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
_BLANK = " \t\x0b\x0c"  # what bytes.strip() removes from a line besides CR/LF (a staged line has neither)
_KEY = r'"([^"]*)":'  # a key, in text with no backslash (so no string holds a quote)
_NOT_FINITE = r"[:\[,]-?(?i:nan|inf)"  # the engine's parser takes NaN/Infinity; the rules do not
# numbers that may be out of range (decode._maybe_huge's bound): the engine keeps such text as it is
_MAYBE_HUGE = r"\d{20}|[eE][-+]?\d{3}"
_ISO = (
    r"^(\d{4}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12]\d|3[01]))"
    r"(?:[T ]((?:[01]\d|2[0-3]):[0-5]\d)(?::([0-5]\d)(?:\.(\d{1,6}))?)?(Z|[+-](?:[01]\d|2[0-3]):[0-5]\d)?)?$"
)
_ASCII = r"^[\x20-\x7e]*$"
_INTEGER = ("BIGINT", "UBIGINT")


class _Line:
    """The JSON values of one line at :data:`PATHS`, with typed readers: from the parsed list
    (``values``), or from the columns :func:`fields` made of it (``table``)."""

    def __init__(self, values: ir.ArrayValue | None = None, table: ir.Table | None = None) -> None:
        self.values = values
        self.table = table

    def raw(self, path: str) -> ir.StringValue:
        if self.table is not None:
            return self.table[f"r{_INDEX[path]}"]
        assert self.values is not None
        value: ir.StringValue = self.values[_INDEX[path]]
        return value

    def kind(self, path: str) -> ir.StringValue:
        """The JSON type (VARCHAR, BIGINT, UBIGINT, DOUBLE, BOOLEAN, OBJECT, ARRAY, NULL); 'ABSENT' if not there."""
        if self.table is not None:
            return self.table[f"k{_INDEX[path]}"]
        raw = self.raw(path)
        return raw.isnull().ifelse("ABSENT", _json_type(raw))

    def text(self, path: str) -> ir.StringValue:
        """The string value (NULL when not a string)."""
        if self.table is not None:
            return self.table[f"s{_INDEX[path]}"]
        return (self.kind(path) == "VARCHAR").ifelse(_json_string(self.raw(path), "$"), ibis.null(dt.string))

    def absent(self, path: str) -> ir.BooleanValue:
        return self.kind(path).isin(("ABSENT", "NULL"))


def _strip(text: ir.StringValue) -> ir.StringValue:
    return _trim(text, rules.WHITESPACE)


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
        (kind == "VARCHAR", (text.length() <= rules.MAX_ID_CHARS) & ~text.re_search(rules.CONTROL_CLASS)),
        else_=False,  # a float (its text follows Python's repr) or a wrong type: the Python path decides
    )
    return value, fine


def _name(line: _Line, field: str) -> tuple[ir.StringValue, ir.BooleanValue]:
    """``normalize.check_name``: stripped text; refused (here: not decided) when too long or holding controls."""
    kind = line.kind(field)
    text = _strip(line.text(field))
    fine = ibis.cases(
        (kind.isin(("ABSENT", "NULL")), True),
        (kind == "VARCHAR", (text.length() <= rules.MAX_NAME_CHARS) & ~text.re_search(rules.CONTROL_CLASS)),
        else_=False,
    )
    return text, fine


def _time(line: _Line, field: str) -> tuple[ir.TimestampValue, ir.BooleanValue, ir.BooleanValue]:
    """``normalize.parse_time``: (UTC time, present, decided and acceptable). Plain ISO forms only."""
    kind = line.kind(field)
    text = line.text(field)
    date = _extract(text, _ISO, 1)
    clock = _extract(text, _ISO, 2)
    seconds = _extract(text, _ISO, 3)
    fraction = _extract(text, _ISO, 4)
    zone = _extract(text, _ISO, 5)
    iso = (
        date
        + " "
        + (clock == "").ifelse("00:00", clock)
        + ":"
        + (seconds == "").ifelse("00", seconds)
        + (fraction == "").ifelse("", "." + fraction)
        + ((zone == "") | (zone == "Z")).ifelse("+00:00", zone)
    )
    parsed = _in_zone("UTC", iso.try_cast(dt.Timestamp(timezone="UTC")))
    present = (kind == "VARCHAR") & (text != "")
    in_range = parsed.between(ibis.literal(rules.EARLIEST), ibis.literal(rules.LATEST))
    fine = ibis.cases(
        (kind.isin(("ABSENT", "NULL")), True),
        (kind != "VARCHAR", False),
        (text == "", True),
        else_=text.re_search(_ISO) & parsed.notnull() & in_range,
    )
    return parsed, present, fine


def _plain_string(line: _Line, path: str) -> tuple[ir.StringValue, ir.BooleanValue]:
    """``normalize._str``: stripped text or an integer's digits; other types give NULL; floats undecided."""
    kind = line.kind(path)
    value = ibis.cases(
        (kind == "VARCHAR", _strip(line.text(path)).nullif("")),
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


def parsed(lines: ir.Table, *, max_event_bytes: int | None) -> ir.Table:
    """Step 1 (materialised, so its JSON is parsed once): every non-empty staged line with
    ``decidable`` (a shape the engine can judge exactly) and ``values`` (its JSON at :data:`PATHS`).

    ``lines`` has ``n`` and ``line`` (:class:`~touchpoint.warehouse.base.StagedLines`). Lines that are
    empty once stripped are left out (they are not events, as in the Python path).
    """
    text = _trim(lines.line, _BLANK)
    lines = lines.select("n", text=text)
    lines = lines.filter(lines.text.notnull() & (lines.text != ""))
    t = lines.text
    shape_ok = (
        t.startswith("{")
        & ~t.contains("\\")
        & ((t.length() - t.replace("{", "").length() + t.length() - t.replace("[", "").length()) <= rules.MAX_DEPTH)
        & ~t.re_search(_NOT_FINITE)
        & ~t.re_search(_MAYBE_HUGE)
    )
    if max_event_bytes is not None:
        shape_ok &= _octets(t) <= max_event_bytes
    canonical = _json_valid(t).ifelse(_json_text(t) == t, False)
    keys = _extract_all(t, _KEY, 1)
    decidable = (shape_ok & canonical & (keys.length() == keys.unique().length())).fill_null(False)
    paths = ibis.literal([f"$.{p}" for p in PATHS], type=dt.Array(dt.string))
    return lines.select(
        "n", "text", decidable=decidable, values=decidable.ifelse(_json_paths(t, paths), ibis.null(dt.Array(dt.string)))
    )


def fields(staged: ir.Table) -> ir.Table:
    """Step 2 (materialised): the type, text and JSON of each path as columns, and the three times parsed."""
    line = _Line(staged["values"])
    columns: dict[str, ir.Value] = {}
    for path, i in _INDEX.items():
        columns[f"k{i}"] = line.kind(path)
        columns[f"s{i}"] = line.text(path)
        columns[f"r{i}"] = line.raw(path)
    for field in rules.TIME_FIELDS:
        value, present, fine = _time(line, field)
        columns[f"{field}_value"] = value
        columns[f"{field}_present"] = present
        columns[f"{field}_fine"] = fine
    return staged.select("n", "text", "decidable", **columns)


def judged(staged: ir.Table, *, received_at: datetime, source: str) -> ir.Table:
    """Step 3: each line of :func:`parsed` with ``ok`` (accepted exactly) and its ``events`` row.

    The row's columns are meaningful only where ``ok``; ``line`` is kept for the lines not
    accepted, and for accepted lines without messageId (their id is a hash of the line).
    """
    checks: list[ir.BooleanValue] = [staged.decidable]
    line = _Line(table=staged)

    raw_type = line.text("type")
    plain_type = raw_type.isin(rules.EVENT_TYPES)
    folded = raw_type.re_search(_ASCII).ifelse(_strip(raw_type).lower(), ibis.null(dt.string))
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

    ts, ts_present, ts_fine = (staged[f"timestamp_{x}"] for x in ("value", "present", "fine"))
    ots, ots_present, ots_fine = (staged[f"originalTimestamp_{x}"] for x in ("value", "present", "fine"))
    sent, sent_present, sent_fine = (staged[f"sentAt_{x}"] for x in ("value", "present", "fine"))
    checks += [ts_fine, ts_present | ots_fine, sent_fine]
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
    checks += [currency_fine, currency.isnull() | currency.re_search(_ASCII)]
    currency = has_props.ifelse(currency.upper(), ibis.null(dt.string))
    order_a, fine_a = _plain_string(line, "properties.order_id")
    order_b, fine_b = _plain_string(line, "properties.orderId")
    checks += [fine_a, fine_b]
    order_id = has_props.ifelse(_first(order_a, order_b), ibis.null(dt.string))

    emails = []
    for path in rules.EMAIL_PATHS:
        candidate = line.text(path)
        emails.append(candidate.contains("@").ifelse(candidate, ibis.null(dt.string)))
    chosen = _first(*emails)
    checks += [chosen.isnull() | chosen.re_search(_ASCII)]
    email = _strip(chosen).lower()

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
    url = page["url"]
    from_url = url.notnull() & url.contains("utm_") & ibis.and_(*(u.isnull() for u in utm))
    # normalize._utm_from_url: the query's first non-empty utm_* values, and the path after the host
    for i, key in enumerate(rules.UTM_KEYS):
        first = _extract(url, r"^[^#?]*\?(?:[^#]*?&)?" + key + r"=([^&#]+)", 1)
        checks += [~from_url | ~(first.contains("%") | first.contains("+"))]
        utm[i] = from_url.ifelse(_strip(first).nullif(""), utm[i])
    base = _extract(url, r"^[^#?]*", 0)
    url_path = (
        base.contains("//")
        .ifelse(_extract(base, r"^.*?//[^/]*(/.*)$", 1), _extract(base, r"^[^/]*(/.*)$", 1))
        .nullif("")
    )
    path = (from_url & page["path"].isnull()).ifelse(url_path, page["path"])

    message_id = ids["messageId"][0]
    ok = ibis.and_(*checks).fill_null(False)
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
        "url": url,
        "path": path,
        "referrer": page["referrer"],
        **dict(zip(rules.UTM_KEYS, utm, strict=True)),
    }
    keep_line = ~ok | message_id.isnull()
    return staged.select(
        staged.n,
        ok=ok,
        line=keep_line.ifelse(staged.text, ibis.null(dt.string)),
        **row,
    )


# -- the import -----------------------------------------------------------------------------------------


def file_is_plain(path: Path) -> bool:
    """Whether the reader's line split matches the Python path's: no CR and no \\x01 anywhere."""
    if path.stat().st_size == 0:
        return True
    with path.open("rb") as handle, mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as data:
        return data.find(b"\r") < 0 and data.find(b"\x01") < 0


def _unreadable_lines(path: Path, offsets: list[int]) -> list[tuple[int, bytes]]:
    """(line number, bytes) of the lines the engine's reader skipped, found from its byte offsets."""
    found: dict[int, bytes] = {}
    with path.open("rb") as handle, mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as data:
        for pos in offsets:
            starts = [data.rfind(b"\n", 0, pos) + 1]
            if data[pos : pos + 1] == b"\n":
                starts.insert(0, pos + 1)
            for start in starts:
                end = data.find(b"\n", start)
                raw = data[start : end if end >= 0 else len(data)]
                try:
                    raw.decode("utf-8")
                except UnicodeDecodeError:
                    found[start] = raw
                    break
        numbered = []
        for start in sorted(found):
            numbered.append((data[:start].count(b"\n") + 1, found[start]))
    return numbered


def _line_numbers(ordinals: list[int], skipped: list[int]) -> list[int]:
    """The file's line numbers of staged lines (ordinals among what the reader kept), given the
    sorted line numbers it ``skipped``: the reader left out each skipped line, shifting the rest."""
    gaps = [number - i - 1 for i, number in enumerate(skipped)]  # kept lines before each skipped one
    return [n + bisect_left(gaps, n) for n in ordinals]


def _events_table(accepted: pa.Table, hashes: list[str] | None) -> pa.Table:
    table = accepted.select(list(EVENT_COLUMNS))
    if hashes is not None:
        ids = table.column("message_id").to_pylist()
        it = iter(hashes)
        table = table.set_column(0, "message_id", pa.array([i if i is not None else next(it) for i in ids]))
    return table.cast(EVENTS_ARROW)


def import_jsonl(
    warehouse: Warehouse,
    path: Path,
    *,
    source: str,
    chunk_events: int,
    max_event_bytes: int | None,
    progress: Progress | None,
    report: ImportReport,
    received_at: datetime | None = None,
) -> None:
    """Import a JSONL file through the engine (see the module's doc); fills ``report``."""
    from touchpoint.collect.store import write_table

    received_at = received_at or utcnow()
    name = path.name
    size = path.stat().st_size
    with warehouse.stage_lines(str(path)) as staged:
        skipped = _unreadable_lines(path, staged.unreadable) if staged.unreadable else []
        skipped_numbers = [number for number, _ in skipped]
        backend = warehouse.ibis
        total = staged.rows + len(skipped)
        for start in range(1, max(staged.rows, 1) + 1, chunk_events):
            started = time.perf_counter()
            chunk = staged.table.filter(staged.table.n.between(start, start + chunk_events - 1))
            step = f"__tp_parsed_{start}"
            parts = backend.create_table(step, parsed(chunk, max_event_bytes=max_event_bytes), temp=True)
            try:
                columns = backend.create_table(step + "_f", fields(parts), temp=True)
                verdicts = judged(columns, received_at=received_at, source=source)
                result = warehouse.to_arrow(verdicts.order_by("n"))
            finally:
                backend.drop_table(step + "_f", force=True)
                backend.drop_table(step, force=True)
            engine_seconds = time.perf_counter() - started
            rows = EventRows()
            ok = result.column("ok")
            undecided = result.filter(pc.invert(ok))
            numbers = _line_numbers(undecided.column("n").to_pylist(), skipped_numbers)
            pending = list(
                zip(undecided.column("n").to_pylist(), numbers, undecided.column("line").to_pylist(), strict=True)
            )
            if start == 1:  # the lines the reader could not decode, once (ordinal 0: they sort first)
                pending += [(0, number, raw) for number, raw in skipped]
            python_n: list[int] = []
            for ordinal, number, text in pending:
                raw = (text.encode("utf-8") if isinstance(text, str) else text).strip()
                if rows.add_raw(
                    raw,
                    received_at=received_at,
                    source=source,
                    max_bytes=max_event_bytes,
                    deterministic_ids=True,
                    origin=f"file:{name}:{number}",
                ):
                    python_n.append(ordinal)
            accepted = result.filter(ok)
            missing = accepted.filter(pc.is_null(accepted.column("message_id")))
            hashes = (
                [content_message_id(t.encode("utf-8")) for t in missing.column("line").to_pylist()]
                if missing.num_rows
                else None
            )
            events = _events_table(accepted, hashes)
            if rows.rows:  # lines the Python path accepted: merged in line order, the first of an id wins
                events = _merge(events, accepted.column("n"), rows.to_arrow(), python_n)
                rows.rows.clear()
            report.write.add(write_table(warehouse, events, rows))
            report.engine_seconds += engine_seconds
            report.python_judged += len(pending)
            for rejected in rows.rejected:
                if len(report.sample_reasons) >= 10:
                    break
                report.sample_reasons.append(f"{rejected.origin}: {rejected.reason}")
            if progress is not None:
                progress(int(size * result.num_rows / max(total, 1)))


def _merge(events: pa.Table, events_n: pa.ChunkedArray, python_rows: pa.Table, python_n: list[int]) -> pa.Table:
    """Engine-accepted and Python-accepted rows in line order, a later row of the same messageId dropped."""
    merged = pa.concat_tables([events, python_rows.cast(EVENTS_ARROW)])
    order = pa.concat_arrays([events_n.combine_chunks(), pa.array(python_n, type=events_n.type)])
    merged = merged.take(pc.sort_indices(order))
    seen: set[str] = set()
    keep = []
    for value in merged.column("message_id").to_pylist():
        keep.append(value not in seen)
        seen.add(value)
    return merged.filter(pa.array(keep))


__all__ = ["PATHS", "file_is_plain", "import_jsonl", "judged"]
