"""``touchpoint import events``: Segment-shaped events from JSONL, CSV or Parquet files.

Same validation, deduplication and quarantine as the HTTP collector: each event goes through
:mod:`touchpoint.collect.normalize`, and rows are written by :func:`~touchpoint.collect.store.write_rows`.
Events without ``messageId`` get an id derived from their content, so importing the same file
again changes nothing. Parsing and writing overlap: while one chunk commits, the next is parsed.

Flat files (CSV, Parquet) map columns to fields: Segment names (``userId``), their snake_case
forms (``user_id``), JSON columns (``properties`` holding a JSON object), dotted columns
(``properties.revenue``, ``context.page.url``); any other column becomes a property.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import msgspec

from touchpoint.collect.decode import EventError
from touchpoint.collect.normalize import EventRows, Rejected, failure, utcnow
from touchpoint.collect.readers import Progress, apply_mapping, check_file, detect_format, iter_lines, iter_records
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
_encode = msgspec.json.Encoder().encode
T = TypeVar("T")
ENGINE_CHUNK_MIN = 500_000  # lines per transaction in the engine path (fewer, larger commits)
#: From this size a JSONL file is judged in the engine unless told otherwise: below it (about 160,000 events of
#: 400 bytes) the engine's fixed cost makes it slower than the Python path (docs/decisions.md, 2026-12-04).
ENGINE_AUTO_BYTES = 64 * 1024 * 1024


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
    name = path.name
    for record in iter_records(path, fmt, progress):
        origin = f"{prefix}:{name}:{record.line}"
        if record.data is None:
            reject(Rejected(record.error or "unreadable", record.field, record.raw, origin=origin))
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
            reject(
                Rejected(f"line {record.line}: {reason}", where, record.raw or _record_text(record.data), None, origin)
            )
            continue
        yield origin, value


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
        name = _SNAKE.get(key, key)
        if name in TOP_LEVEL:
            message[name] = value
        elif name in JSON_FIELDS:
            if isinstance(value, str):
                try:
                    value = msgspec.json.decode(value)
                except msgspec.DecodeError:
                    raise ValueError(f"column '{key}': not valid JSON; send a JSON object or leave it empty") from None
            if not isinstance(value, dict):
                raise ValueError(f"column '{key}': expected a JSON object")
            message.setdefault(name, {}).update(value)
        elif "." in name and name.split(".", 1)[0] in JSON_FIELDS:
            head, *rest = name.split(".")
            target = message.setdefault(head, {})
            for part in rest[:-1]:
                target = target.setdefault(part, {})
                if not isinstance(target, dict):
                    raise ValueError(f"column '{key}': conflicts with another column")
            target[rest[-1]] = _cell(key, value)
        else:
            message.setdefault("properties", {})[name] = _cell(key, value)
    return message


def _cell(key: str, value: Any) -> Any:
    try:
        return _scalar(value)
    except ValueError as exc:
        raise EventError(f"column '{key}': {exc}", key) from None


def _scalar(value: Any) -> Any:
    if isinstance(value, str) and _NUMBER.match(value):
        number = float(value)
        if not math.isfinite(number):  # "1e400": out of range, refused rather than stored as null
            raise ValueError(f"{value!r} is out of range (beyond a 64-bit double)")
        return int(value) if number.is_integer() and "." not in value and "e" not in value.lower() else number
    return value


def _engine_import(
    warehouse: Warehouse,
    path: Path,
    source: str,
    chunk_events: int,
    max_event_bytes: int | None,
    progress: Progress | None,
    report: ImportReport,
) -> bool:
    """Import through the engine when the warehouse can stage tables; False if not (nothing written then)."""
    from touchpoint.collect import engine_import

    try:
        engine_import.import_jsonl(
            warehouse,
            path,
            source=source,
            chunk_events=max(chunk_events, ENGINE_CHUNK_MIN),
            max_event_bytes=max_event_bytes,
            progress=progress,
            report=report,
        )
    except NotImplementedError:  # this engine cannot stage a file: nothing was written yet
        return False
    report.path = "engine"
    return True


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

    A JSONL file without a mapping is judged in the engine (:mod:`touchpoint.collect.engine_import`) when the
    warehouse can stage tables and ``engine`` is True, or None (the default) and the file holds at least
    :data:`ENGINE_AUTO_BYTES`; otherwise, and for other formats and mappings, line by line. Both apply the same
    rules and give the same result, so a killed import re-run either way stores each event once.
    """
    fmt = detect_format(path, fmt)
    check_file(path)  # a missing file is named, on every path
    report = ImportReport(file=str(path))
    started = time.perf_counter()
    received_at = utcnow()
    if engine is None:
        engine = fmt == "jsonl" and not mapping and path.stat().st_size >= ENGINE_AUTO_BYTES
    if (
        fmt == "jsonl"
        and not mapping
        and engine
        and _engine_import(warehouse, path, source, chunk_events, max_event_bytes, progress, report)
    ):
        report.seconds = time.perf_counter() - started
        return report
    writer = ChunkWriter(warehouse, report)
    rows = EventRows()
    name = path.name
    try:
        if fmt == "jsonl" and not mapping:  # the fast path: each line straight to the one decoder
            add = rows.add_raw
            for number, line in iter_lines(path, progress):
                add(
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
                    add = rows.add_raw
        else:

            def to_raw(data: dict[str, Any]) -> bytes:
                return _encode(data if fmt == "jsonl" else flat_to_message(data))

            def reject(rejected: Rejected) -> None:
                rows.reject(rejected, received_at, source)

            for origin, raw in mapped_records(
                path, fmt, prefix="file", mapping=mapping, progress=progress, convert=to_raw, reject=reject
            ):
                rows.add_raw(
                    raw,
                    received_at=received_at,
                    source=source,
                    max_bytes=max_event_bytes,
                    deterministic_ids=True,
                    origin=origin,
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
