"""Reading records from JSONL, CSV and Parquet files, row by row, without losing malformed ones.

Every record carries its line (or row) number and, when it cannot be read, the reason and the
raw text, so the importers can quarantine it instead of dropping it or failing the whole file.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from touchpoint.collect.decode import EventError, decode_record
from touchpoint.errors import InvalidInput

FORMATS = ("jsonl", "csv", "parquet")
_SUFFIXES = {
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "jsonl",
    ".csv": "csv",
    ".parquet": "parquet",
    ".pq": "parquet",
}

Progress = Callable[[int], None]


class Tally:
    """A :data:`Progress` that counts: the bytes read so far, in :attr:`total`."""

    __slots__ = ("total",)

    def __init__(self) -> None:
        self.total = 0

    def __call__(self, size: int) -> None:
        self.total += size


@dataclass(slots=True)
class Record:
    """One input record: ``data`` when readable, else ``error`` (and the ``field`` at fault); ``raw`` as read
    (:attr:`text`)."""

    line: int
    data: dict[str, Any] | None
    raw: str
    error: str | None = None
    field: str | None = None
    fields: list[str] | None = None  # a CSV row's fields: ``raw`` is written from them when it is asked for

    @property
    def text(self) -> str:
        """The record as read: its line, or a CSV row's fields written back as CSV."""
        return _shown(_csv_text(self.fields)) if self.fields is not None else self.raw


def detect_format(path: Path, fmt: str | None = None) -> str:
    if fmt:
        if fmt not in FORMATS:
            raise InvalidInput(
                f"format {fmt!r} is not one of {', '.join(FORMATS)}", hint="use --format jsonl|csv|parquet"
            )
        return fmt
    found = _SUFFIXES.get(path.suffix.lower())
    if found is None:
        raise InvalidInput(
            f"cannot tell the format of {path.name!r} from its extension",
            hint="name it .jsonl, .csv or .parquet, or pass --format",
        )
    return found


def check_file(path: Path) -> None:
    if not path.exists():
        raise InvalidInput(f"file {str(path)!r} does not exist", hint="check the path")
    if not path.is_file():
        raise InvalidInput(f"{str(path)!r} is not a file", hint="pass a file, not a directory")


def iter_lines(path: Path, progress: Progress | None = None) -> Iterator[tuple[int, bytes]]:
    """Non-empty lines of a binary file with their 1-based numbers (newline stripped)."""
    with path.open("rb") as handle:
        for number, line in enumerate(handle, start=1):
            if progress is not None:
                progress(len(line))
            stripped = line.strip()
            if stripped:
                yield number, stripped


def iter_jsonl(path: Path, progress: Progress | None = None) -> Iterator[Record]:
    """JSONL records, decoded by the collector's one decoder (:func:`touchpoint.collect.decode.decode_record`)."""
    for number, line in iter_lines(path, progress):
        text = line.decode("utf-8", "backslashreplace")
        try:
            data = decode_record(line)
        except EventError as exc:
            yield Record(number, None, text, f"line {number}: {exc.reason}", exc.field)
            continue
        yield Record(number, data, text)


def iter_csv(path: Path, progress: Progress | None = None) -> Iterator[Record]:
    """CSV rows. The file must be UTF-8: a row with invalid bytes is refused naming its column,
    never stored with the bytes turned into text."""
    invalid = 0  # lines read that are not UTF-8: a row read since the last one may hold such bytes

    def lines() -> Iterator[str]:
        nonlocal invalid
        with path.open("rb") as handle:
            for number, raw in enumerate(handle):
                if progress is not None:
                    progress(len(raw))
                encoding = "utf-8-sig" if number == 0 else "utf-8"
                try:
                    yield raw.decode(encoding)
                except UnicodeDecodeError:  # surrogateescape keeps the bytes recognisable: the row is refused below
                    invalid += 1
                    yield raw.decode(encoding, "surrogateescape")

    reader = csv.reader(lines())
    try:
        header = next(reader)
    except StopIteration:
        return
    header = [h.strip() for h in header]
    for name in header:
        if _invalid_utf8(name):
            raise InvalidInput(
                f"the CSV header has a column name that is not valid UTF-8 ({_shown(name)!r})",
                hint="save the file as UTF-8",
            )
    if len(set(header)) != len(header):
        dupes = sorted({h for h in header if header.count(h) > 1})
        raise InvalidInput(f"the CSV header repeats column(s) {dupes}", hint="give every column a unique name")
    width = len(header)
    checked = invalid
    while True:
        try:
            fields = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            number = reader.line_num
            yield Record(number, None, "", f"line {number}: unreadable CSV ({exc})")
            checked = invalid
            continue
        number = reader.line_num
        if not fields or all(f == "" for f in fields):
            checked = invalid
            continue
        if len(fields) != width:
            yield Record(number, None, "", f"line {number}: expected {width} fields, got {len(fields)}", fields=fields)
            checked = invalid
            continue
        if checked != invalid:  # this row's lines were not all UTF-8
            checked = invalid
            bad = next((i for i, f in enumerate(fields) if _invalid_utf8(f)), None)
            if bad is not None:
                column = header[bad]
                yield Record(
                    number,
                    None,
                    "",
                    f"line {number}: column '{column}' is not valid UTF-8 ({_shown(fields[bad])[:60]!r}); "
                    "save the file as UTF-8",
                    column,
                    fields,
                )
                continue
        yield Record(
            number, {k: (v if v != "" else None) for k, v in zip(header, fields, strict=True)}, "", fields=fields
        )


def _invalid_utf8(text: str) -> bool:
    """True when ``text`` holds bytes that were not UTF-8 (decoded with surrogateescape)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _shown(text: str) -> str:
    """``text`` with invalid bytes as ``\\xff`` escapes: safe to store and to print."""
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def _csv_text(fields: list[str]) -> str:
    out = io.StringIO()
    csv.writer(out).writerow(fields)
    return out.getvalue().rstrip("\r\n")


def iter_parquet(path: Path, progress: Progress | None = None) -> Iterator[Record]:
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(path)
    except Exception as exc:
        raise InvalidInput(f"{path.name!r} is not a readable Parquet file ({exc})", hint="check the file") from None
    total_rows = parquet.metadata.num_rows or 1
    size = path.stat().st_size
    number = 0
    for batch in parquet.iter_batches(batch_size=65_536):
        rows = batch.to_pylist()
        if progress is not None:
            progress(int(size * len(rows) / total_rows))
        for row in rows:
            number += 1
            yield Record(number, row, "")


def iter_records(path: Path, fmt: str, progress: Progress | None = None) -> Iterator[Record]:
    check_file(path)
    if fmt == "jsonl":
        return iter_jsonl(path, progress)
    if fmt == "csv":
        return iter_csv(path, progress)
    return iter_parquet(path, progress)


def apply_mapping(data: dict[str, Any], mapping: dict[str, str]) -> dict[str, Any]:
    """Rename columns: ``mapping`` is {our field: the file's column}."""
    if not mapping:
        return data
    out = dict(data)
    for ours, theirs in mapping.items():
        if theirs in data:
            out[ours] = out.pop(theirs) if theirs != ours else data[theirs]
    return out


def parse_mapping(pairs: list[str] | None) -> dict[str, str]:
    """``["userId=customer", ...]`` to ``{"userId": "customer"}``, with a clear error on bad input."""
    mapping: dict[str, str] = {}
    for pair in pairs or []:
        ours, sep, theirs = pair.partition("=")
        if not sep or not ours.strip() or not theirs.strip():
            raise InvalidInput(f"--map {pair!r} is not FIELD=COLUMN", hint="e.g. --map userId=customer_id")
        mapping[ours.strip()] = theirs.strip()
    return mapping
