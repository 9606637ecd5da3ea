"""``touchpoint import events``: Segment-shaped events from JSONL, CSV or Parquet files.

Same validation, deduplication and quarantine as the HTTP collector: each event goes through
:mod:`touchpoint.collect.normalize`, and rows are written by :func:`~touchpoint.collect.store.write_rows`.
Events without ``messageId`` get an id derived from their content, so importing the same file
again changes nothing. Parsing and writing overlap: while one chunk commits, the next is parsed.
Both paths, line by line here and set-based in :mod:`touchpoint.collect.engine_import`, take the same
stream of JSON lines (:func:`lines`), so a flat row becomes the same event either way.

Flat files (CSV, Parquet) map columns to fields: Segment names (``userId``), their snake_case
forms (``user_id``), JSON columns (``properties`` holding a JSON object), dotted columns
(``properties.revenue``, ``context.page.url``); any other column becomes a property.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable, Generator, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import msgspec

from touchpoint.collect.decode import EventError
from touchpoint.collect.normalize import EventRows, Rejected, failure, utcnow
from touchpoint.collect.readers import (
    Progress,
    Tally,
    apply_mapping,
    check_file,
    detect_format,
    iter_lines,
    iter_records,
)
from touchpoint.collect.store import WriteResult, write_rows
from touchpoint.warehouse import Warehouse

TOP_LEVEL = {
    "type",
    "messageId",
    "userId",
    "anonymousId",
    "event",
    "name",
    "category",
    "groupId",
    "previousId",
    "timestamp",
    "originalTimestamp",
    "sentAt",
}
JSON_FIELDS = ("properties", "traits", "context", "integrations")
_SNAKE = {re.sub(r"(?<!^)(?=[A-Z])", "_", f).lower(): f for f in TOP_LEVEL}
_NUMBER = re.compile(r"^-?(0|[1-9]\d{0,17})(\.\d+)?([eE][-+]?\d+)?$")
_NUMBER_STARTS = frozenset("-0123456789")  # the characters a text _NUMBER matches can start with
_encode = msgspec.json.Encoder().encode
T = TypeVar("T")
#: a numbered line of a file (stripped, not empty), or a record that could not become one, with its reason
Line = tuple[int, bytes] | Rejected
ENGINE_CHUNK_MIN = 500_000  # lines per transaction in the engine path (fewer, larger commits)
#: From this many events a file is judged in the engine unless told otherwise: below it the engine's fixed cost
#: (compiling its steps, about 2 s) makes it slower than the Python path (docs/decisions.md, 2026-12-04).
ENGINE_AUTO_EVENTS = 160_000


@dataclass
class ImportReport:
    """What an import did: counts, the first reasons for quarantine, and the speed."""

    file: str
    write: WriteResult = field(default_factory=WriteResult)
    seconds: float = 0.0
    sample_reasons: list[str] = field(default_factory=list)
    path: str = "python"  # "engine": judged by set-based expressions (collect.engine_import); "python": line by line
    engine_seconds: float = 0.0  # time the engine spent judging (engine path)
    python_judged: int = 0  # lines the engine path left to the Python judge (refused or rare shapes)

    def to_dict(self) -> dict[str, Any]:
        rate = self.write.received / self.seconds if self.seconds else 0.0
        return {
            "file": self.file,
            **self.write.to_dict(),
            "seconds": round(self.seconds, 3),
            "events_per_second": round(rate),
            "sample_reasons": self.sample_reasons,
            "path": self.path,
            "python_judged": self.python_judged,
        }


class ChunkWriter:
    """Writes chunks of rows on a background thread, one at a time, so parsing continues meanwhile."""

    def __init__(self, warehouse: Warehouse, report: ImportReport) -> None:
        self.warehouse = warehouse
        self.report = report
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="touchpoint-import")
        self._pending: Future[WriteResult] | None = None

    def _note(self, rows: EventRows) -> None:
        for rejected in rows.rejected:
            if len(self.report.sample_reasons) >= 10:
                break
            where = f"{rejected.origin}: " if rejected.origin else ""
            self.report.sample_reasons.append(where + rejected.reason)

    def submit(self, rows: EventRows) -> None:
        self._note(rows)
        self.wait()
        self._pending = self._pool.submit(write_rows, self.warehouse, rows)

    def wait(self) -> None:
        if self._pending is not None:
            self.report.write.add(self._pending.result())
            self._pending = None

    def close(self) -> None:
        try:
            self.wait()
        finally:
            self._pool.shutdown(wait=True)


def mapped_records(
    path: Path,
    fmt: str,
    *,
    prefix: str,
    mapping: dict[str, str] | None,
    progress: Progress | None,
    convert: Callable[[dict[str, Any]], T],
    reject: Callable[[Rejected], None],
) -> Iterator[tuple[str, T]]:
    """The read-map-quarantine loop every importer shares: ``(origin, convert(row))`` for each good row.

    A row that cannot be read, or that ``convert`` refuses (raising, best an
    :class:`~touchpoint.collect.decode.EventError` naming the field), goes to ``reject`` as a
    quarantine record with origin ``<prefix>:<file>:<line>``; nothing a row holds can stop the
    others.
    """
    for line, value in _mapped(path, fmt, prefix, mapping, progress, convert):
        if isinstance(value, Rejected):
            reject(value)
        else:
            yield f"{prefix}:{path.name}:{line}", value


def _mapped(
    path: Path,
    fmt: str,
    prefix: str,
    mapping: dict[str, str] | None,
    progress: Progress | None,
    convert: Callable[[dict[str, Any]], T],
) -> Iterator[tuple[int, T | Rejected]]:
    """:func:`mapped_records`' loop: ``(line, convert(row))``, or the row's quarantine record (its origin
    ``<prefix>:<file>:<line>``)."""
    name = path.name
    for record in iter_records(path, fmt, progress):
        if record.data is None:
            origin = f"{prefix}:{name}:{record.line}"
            yield record.line, Rejected(record.error or "unreadable", record.field, record.text, origin=origin)
            continue
        try:
            value = convert(apply_mapping(record.data, mapping or {}))
        except Exception as exc:  # the boundary: the row is quarantined with its reason
            if isinstance(exc, EventError):
                reason, where = exc.reason, exc.field
            elif isinstance(exc, ValueError | TypeError | OverflowError):
                reason, where = str(exc), None
            else:
                reason, where = failure(exc)
            text = record.text or _record_text(record.data)
            origin = f"{prefix}:{name}:{record.line}"
            yield record.line, Rejected(f"line {record.line}: {reason}", where, text, None, origin)
            continue
        yield record.line, value


def lines(path: Path, fmt: str, mapping: dict[str, str] | None, progress: Progress | None) -> Generator[Line]:
    """A file's events as both judges take them: JSON lines numbered as read (a JSONL file's own lines, a flat
    row or mapped record as :func:`flat_to_message` makes it), or the quarantine record of one that cannot be."""
    if fmt == "jsonl" and not mapping:  # each line straight to the judges
        yield from iter_lines(path, progress)
        return

    def to_raw(data: dict[str, Any]) -> bytes:
        return _encode(data if fmt == "jsonl" else flat_to_message(data))

    for number, raw in _mapped(path, fmt, "file", mapping, progress, to_raw):
        yield raw if isinstance(raw, Rejected) else (number, raw)


def _record_text(data: dict[str, Any]) -> str:
    """A row read from a binary file (Parquet), as text for its quarantine record."""
    try:
        return msgspec.json.encode(data, enc_hook=str).decode()
    except Exception:  # a value msgspec cannot encode: the row's repr still shows what it held
        return repr(data)[:10_000]


def flat_to_message(data: dict[str, Any]) -> dict[str, Any]:
    """A flat record (CSV/Parquet row) as a Segment message; raises ValueError naming the column."""
    message: dict[str, Any] = {}
    for key, value in data.items():
        if value is None or key is None:
            continue
        if isinstance(value, float) and not math.isfinite(value):  # JSON has no inf/nan: never store it as null
            raise EventError(f"column '{key}': {value!r} is not a finite number", str(key))
        kind, name, rest = _PLANS.get(key) or _plan(key)
        if kind is _TOP:
            message[name] = value
        elif kind is _OBJECT:
            if isinstance(value, str):
                try:
                    value = msgspec.json.decode(value)
                except msgspec.DecodeError:
                    raise ValueError(f"column '{key}': not valid JSON; send a JSON object or leave it empty") from None
            if not isinstance(value, dict):
                raise ValueError(f"column '{key}': expected a JSON object")
            message.setdefault(name, {}).update(value)
        elif kind is _DOTTED:
            target = message.setdefault(name, {})
            for part in rest[:-1]:
                target = target.setdefault(part, {})
                if not isinstance(target, dict):
                    raise ValueError(f"column '{key}': conflicts with another column")
            target[rest[-1]] = _cell(key, value) if isinstance(value, str) else value
        else:
            message.setdefault("properties", {})[name] = _cell(key, value) if isinstance(value, str) else value
    return message


_TOP, _OBJECT, _DOTTED, _PROPERTY = "top", "object", "dotted", "property"
#: a column's place in the message, by its name: (kind, field, the dotted path's parts after the field)
_PLANS: dict[str, tuple[str, str, tuple[str, ...]]] = {}


def _plan(key: str) -> tuple[str, str, tuple[str, ...]]:
    """Where column ``key`` goes (:func:`flat_to_message`), worked out once a name: a Segment field (either
    spelling), a JSON column, a dotted column into one (``context.page.url``), or a property."""
    name = _SNAKE.get(key, key)
    if name in TOP_LEVEL:
        plan: tuple[str, str, tuple[str, ...]] = (_TOP, name, ())
    elif name in JSON_FIELDS:
        plan = (_OBJECT, name, ())
    elif "." in name and name.split(".", 1)[0] in JSON_FIELDS:
        head, *rest = name.split(".")
        plan = (_DOTTED, head, tuple(rest))
    else:
        plan = (_PROPERTY, name, ())
    if len(_PLANS) >= 10_000:  # a file of ever new column names does not grow it without end
        _PLANS.clear()
    _PLANS[key] = plan
    return plan


def _cell(key: str, text: str) -> Any:
    """A text cell of a property or dotted column: a number when it is spelled as one, else the text."""
    if text[:1] not in _NUMBER_STARTS or not _NUMBER.match(text):  # (the first test spares most texts the second)
        return text
    number = float(text)
    if not math.isfinite(number):  # "1e400": out of range, refused rather than stored as null
        raise EventError(f"column '{key}': {text!r} is out of range (beyond a 64-bit double)", key)
    return int(text) if number.is_integer() and "." not in text and "e" not in text.lower() else number


def _engine_import(
    warehouse: Warehouse,
    path: Path,
    fmt: str,
    mapping: dict[str, str] | None,
    source: str,
    chunk_events: int,
    max_event_bytes: int | None,
    progress: Progress | None,
    report: ImportReport,
    received_at: datetime,
) -> bool:
    """Import through the engine when the warehouse can stage tables; False if not (nothing written then)."""
    from touchpoint.collect import engine_import

    read = Tally()  # the progress shows what is committed: each chunk's bytes once it is
    try:
        engine_import.import_lines(
            warehouse,
            lines(path, fmt, mapping, read),
            read,
            name=path.name,
            source=source,
            chunk_events=max(chunk_events, ENGINE_CHUNK_MIN),
            max_event_bytes=max_event_bytes,
            progress=progress,
            report=report,
            received_at=received_at,
        )
    except NotImplementedError:  # this engine cannot stage a file: nothing was written yet
        return False
    report.path = "engine"
    return True


def estimated_events(path: Path, fmt: str) -> int:
    """About how many events ``path`` holds: a Parquet file's rows (its footer says), a text file's lines (its
    size over the mean length of the lines in its first megabyte); 0 for a file that cannot be read."""
    try:
        if fmt == "parquet":
            import pyarrow.parquet as pq

            return int(pq.ParquetFile(path).metadata.num_rows)
        with path.open("rb") as handle:
            head = handle.read(1 << 20)
        return path.stat().st_size * max(head.count(b"\n"), 1) // len(head) if head else 0
    except Exception:  # unreadable: the line-by-line path says why
        return 0


def import_events(
    warehouse: Warehouse,
    path: Path,
    *,
    fmt: str | None = None,
    mapping: dict[str, str] | None = None,
    source: str = "import",
    chunk_events: int = 100_000,
    max_event_bytes: int | None = None,
    progress: Progress | None = None,
    engine: bool | None = None,
) -> ImportReport:
    """Import Segment-shaped events from ``path``; returns counts (stored, duplicates, quarantined).

    The file is judged in the engine (:mod:`touchpoint.collect.engine_import`) when the warehouse can stage
    tables and ``engine`` is True, or None (the default) and the file holds about :data:`ENGINE_AUTO_EVENTS`
    events or more (:func:`estimated_events`); otherwise line by line. Both take the same lines (:func:`lines`),
    apply the same rules and give the same result, so a killed import re-run either way stores each event once.
    """
    fmt = detect_format(path, fmt)
    check_file(path)  # a missing file is named, on every path
    report = ImportReport(file=str(path))
    started = time.perf_counter()
    received_at = utcnow()
    if engine is None:
        engine = estimated_events(path, fmt) >= ENGINE_AUTO_EVENTS
    if engine and _engine_import(
        warehouse, path, fmt, mapping, source, chunk_events, max_event_bytes, progress, report, received_at
    ):
        report.seconds = time.perf_counter() - started
        return report
    writer = ChunkWriter(warehouse, report)
    rows = EventRows()
    name = path.name
    try:
        for item in lines(path, fmt, mapping, progress):
            if isinstance(item, Rejected):
                rows.reject(item, received_at, source)
            else:
                number, line = item
                rows.add_raw(
                    line,
                    received_at=received_at,
                    source=source,
                    max_bytes=max_event_bytes,
                    deterministic_ids=True,
                    origin=f"file:{name}:{number}",
                )
            if len(rows) + len(rows.rejected) >= chunk_events:
                writer.submit(rows)
                rows = EventRows()
        if len(rows) or rows.rejected:
            writer.submit(rows)
    finally:
        writer.close()
    report.seconds = time.perf_counter() - started
    return report
