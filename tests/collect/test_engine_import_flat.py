"""CSV, Parquet and mapped JSONL files through the engine import: the same events and quarantine as line by line.

Random flat rows (Segment columns in both spellings, JSON columns, dotted columns, extra columns becoming
properties; numbers spelled every way, bad UTF-8, short rows, quoted newlines, values that conflict) are
written as a CSV file and as a Parquet file of typed columns, then imported with ``--engine`` and with
``--no-engine`` into two warehouses: what is stored and what is quarantined must be identical, field by field.
"""

from __future__ import annotations

import csv
import io
import itertools
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import hypothesis.strategies as st
import msgspec
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings

from touchpoint.collect import files
from touchpoint.collect.files import import_events
from touchpoint.warehouse import Warehouse

RECEIVED = datetime(2026, 11, 2, 9, 30)
_files = itertools.count()

# column -> the values a row may hold there (None: the cell is empty)
_TEXT = {
    "type": ["track", "page", "identify", "Track", "nope", "", None],
    "messageId": ["m1", "m2", " m3 ", "", None],
    "message_id": ["m4", None],
    "userId": ["u1", "u2", "007", "9223372036854775808", "", None],
    "anonymous_id": ["a1", "1e400", None],
    "event": ["Order Completed", " Signed Up ", "", "x" * 600, "a\u0001b", "É", None],
    "timestamp": ["2026-11-01T10:00:00Z", "2026-11-01", "2026-02-30T10:00:00Z", "yesterday", "", None],
    "properties": [
        '{"a":1}',
        '{"a":1,"a":2}',
        "[1]",
        "{not json",
        '{"revenue":"7.25"}',
        '{"n":1e400}',
        '{"n":123456789012345678901234567890}',
        '{"s":"a\\u0000b","t":"\\ud800"}',
        '{"deep":' + "[" * 40 + "]" * 40 + "}",
        '{"deep":' + "[" * 600 + "]" * 600 + "}",
        '{"é":"ü","url":"https://x.example/?utm_source=%C3%A9"}',
        "",
        None,
    ],
    "properties.revenue": ["12.5", "3", "-0", "1e400", "0.1", "1E5", "007", "12,5", "", None],
    "properties.order_id": ["o-1", "42", None],
    "context.page.url": ["https://s.example/p?utm_source=mail&utm_source=x", "s.example/q", "", None],
    "context.page": ['{"path":"/own"}', "home", None],
    "context": ['{"traits":{"email":"Ann@Example.COM"}}', None],
    "traits": ['{"email":" Bob@Example.com "}', "5", None],
    "plan": ["gold", "silver, with comma", 'say "hi"', "line\nbreak", "back\\slash", "9" * 30, "nan", None],
    "price": ["12.50", "-3", "2e-7", "inf", "00", None],
}
_BAD_UTF8 = b"\xff\xfe"


@st.composite
def _table(draw: st.DrawFn) -> tuple[list[str], list[dict[str, str | None]]]:
    columns = draw(st.lists(st.sampled_from(sorted(_TEXT)), min_size=1, max_size=9, unique=True))
    rows = [{c: draw(st.sampled_from(_TEXT[c])) for c in columns} for _ in range(draw(st.integers(0, 40)))]
    if rows and draw(st.booleans()):
        rows.append(dict(rows[0]))  # a repeated row: stored once
    return columns, rows


def _csv(path: Path, columns: list[str], rows: list[dict[str, str | None]], draw_bad: list[int]) -> None:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    for i, row in enumerate(rows):
        fields = ["" if row[c] is None else row[c] for c in columns]
        if i in draw_bad and fields:
            fields = fields[:-1] if len(fields) > 1 else [*fields, "extra"]  # the wrong number of fields
        writer.writerow(fields)
    data = out.getvalue().encode()
    if draw_bad:  # a row with bytes that are not UTF-8
        data += b",".join([b"bad" + _BAD_UTF8] * len(columns)) + b"\n"
    path.write_bytes(data)


def _typed(value: str | None) -> Any:
    """A Parquet cell: numbers and booleans typed where the text is one."""
    if value is None:
        return None
    for kind in (int, float):
        try:
            return kind(value)
        except ValueError:
            continue
    return value


def _parquet(path: Path, columns: list[str], rows: list[dict[str, str | None]]) -> None:
    arrays = {}
    for c in columns:
        values = [_typed(r[c]) for r in rows]
        kinds = {type(v) for v in values if v is not None}
        if kinds == {int} and all(v is None or -(2**63) <= v < 2**63 for v in values):
            arrays[c] = pa.array(values, pa.int64())
        elif kinds and kinds <= {int, float} and all(v is None or abs(v) < 1e300 or v != v for v in values):
            arrays[c] = pa.array([None if v is None else float(v) for v in values], pa.float64())
        else:
            arrays[c] = pa.array([r[c] for r in rows], pa.string())
    table = pa.table(arrays) if columns else pa.table({})
    if rows:  # columns a database export has: a timestamp, a list, a struct
        table = table.append_column("sent_at", pa.array([datetime(2026, 11, 1, 10, tzinfo=UTC)] * len(rows)))
        table = table.append_column("tags", pa.array([["a", "b"]] * len(rows)))
        table = table.append_column("properties.size", pa.array([{"w": 1.5, "h": None}] * len(rows)))
    pq.write_table(table, path)


def _rows(wh: Warehouse, table: str) -> list[str]:
    return sorted(msgspec.json.encode(r, enc_hook=str).decode() for r in wh.to_arrow(wh.table(table)).to_pylist())


def _both(path: Path, mapping: dict[str, str] | None = None) -> tuple[list[str], ...]:
    """``path`` imported with the engine and line by line: (events, quarantine) of each."""
    out: list[list[str]] = []
    for engine in (True, False):
        wh = Warehouse.open("duckdb://:memory:")
        try:
            report = import_events(wh, path, engine=engine, mapping=mapping)
            assert report.path == ("engine" if engine else "python")
            out += [_rows(wh, "events"), _rows(wh, "quarantine")]
            out.append([repr(report.write.to_dict())])
        finally:
            wh.close()
    return tuple(out)


@pytest.fixture(autouse=True)
def _one_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(files, "utcnow", lambda: RECEIVED)


@settings(
    max_examples=int(os.environ.get("TOUCHPOINT_TEST_FLAT_EXAMPLES", "6")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(table=_table(), bad=st.lists(st.integers(0, 40), max_size=3))
def test_csv_and_parquet_store_and_quarantine_the_same_either_way(
    tmp_path: Path, table: tuple[list[str], list[dict[str, str | None]]], bad: list[int]
) -> None:
    columns, rows = table
    n = next(_files)
    csv_path, parquet_path = tmp_path / f"rows-{n}.csv", tmp_path / f"rows-{n}.parquet"
    _csv(csv_path, columns, rows, bad)
    _parquet(parquet_path, columns, rows)
    for path in (csv_path, parquet_path):
        engine_events, engine_quarantine, engine_report, events, quarantine, report = _both(path)
        assert engine_events == events
        assert engine_quarantine == quarantine
        assert engine_report == report


def test_a_mapped_jsonl_file_takes_the_engine_too(tmp_path: Path) -> None:
    path = tmp_path / "mapped.jsonl"
    path.write_text(
        '{"type": "track", "customer": "c1", "event": "A", "messageId": "x1"}\n'
        "{not json\n"
        '{"type": "page", "customer": "c2"}\n'
        '{"type": "track", "customer": "c1", "event": "A", "messageId": "x1"}\n'
    )
    engine_events, engine_quarantine, engine_report, events, quarantine, report = _both(path, {"userId": "customer"})
    assert (engine_events, engine_quarantine, engine_report) == (events, quarantine, report)
    assert sorted(msgspec.json.decode(e)["user_id"] for e in events) == ["c1", "c2"]
    assert "'duplicates': 1" in report[0] and "'quarantined': 1" in report[0]


def test_a_flat_file_counts_its_bytes_once_committed(tmp_path: Path) -> None:
    """The progress bar's bytes: the whole file, reported chunk by chunk as each commits."""
    path = tmp_path / "progress.csv"
    path.write_text("type,userId,event\n" + "".join(f"track,u{i},E{i}\n" for i in range(50)))
    seen: list[int] = []
    wh = Warehouse.open("duckdb://:memory:")
    try:
        report = import_events(wh, path, engine=True, progress=seen.append)
    finally:
        wh.close()
    assert report.path == "engine" and report.write.stored == 50
    assert report.python_judged == 0  # each row's line decided by the engine
    assert sum(seen) == path.stat().st_size


def test_the_engine_is_the_default_from_about_as_many_events_in_every_format(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A Parquet file's rows come from its footer, a text file's from its size and its first lines' length."""
    rows = [{"type": "track", "userId": f"u{i}", "event": "E"} for i in range(300)]
    parquet_path, csv_path = tmp_path / "n.parquet", tmp_path / "n.csv"
    pq.write_table(pa.Table.from_pylist(rows), parquet_path)
    csv_path.write_text("type,userId,event\n" + "".join(f"track,u{i},E\n" for i in range(300)))
    assert files.estimated_events(parquet_path, "parquet") == 300
    assert 295 <= files.estimated_events(csv_path, "csv") <= 305
    assert files.estimated_events(tmp_path / "missing.parquet", "parquet") == 0
    monkeypatch.setattr(files, "ENGINE_AUTO_EVENTS", 300)
    wh = Warehouse.open("duckdb://:memory:")
    try:
        assert import_events(wh, parquet_path).path == "engine"
        monkeypatch.setattr(files, "ENGINE_AUTO_EVENTS", 301)
        assert import_events(wh, parquet_path).path == "python"
    finally:
        wh.close()
