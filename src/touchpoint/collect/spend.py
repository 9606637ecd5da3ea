"""``touchpoint import spend``: marketing spend per date, channel and campaign.

Rows are keyed by (date, channel, campaign); importing a corrected file replaces the stored
amounts for the same keys, and importing the same file again changes nothing. A row that
cannot be read is kept in quarantine with its reason (replay it by importing a fixed file).

Fields (rename with ``mapping``): date, channel, amount; optional campaign, currency,
impressions, clicks.
"""

from __future__ import annotations

import time
from datetime import date, datetime
from pathlib import Path
from typing import Any

import msgspec
import pyarrow as pa

from touchpoint.collect.files import ImportReport
from touchpoint.collect.normalize import Rejected, quarantine_table, utcnow
from touchpoint.collect.readers import Progress, apply_mapping, detect_format, iter_records
from touchpoint.warehouse import Warehouse
from touchpoint.warehouse.schema import SPEND

_encode = msgspec.json.Encoder().encode
VALUE_COLUMNS = ("amount", "currency", "impressions", "clicks")


def _date(value: Any) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value).strip()[:10])
    except ValueError:
        raise ValueError(f"field 'date': {value!r} is not a date; use YYYY-MM-DD") from None


def _count(value: Any, field: str) -> int | None:
    if value in (None, ""):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"field '{field}': {value!r} is not a number") from None
    if number < 0 or not number.is_integer():
        raise ValueError(f"field '{field}': {value!r} is not a whole number >= 0")
    return int(number)


def spend_row(data: dict[str, Any], *, source: str, imported_at: datetime) -> dict[str, Any]:
    """Validate one spend record; raises ValueError naming the field."""
    channel = data.get("channel")
    if channel in (None, "") or not str(channel).strip():
        raise ValueError("field 'channel' is empty; every spend row needs its channel")
    if data.get("amount") in (None, ""):
        raise ValueError("field 'amount' is empty")
    try:
        amount = float(data["amount"])
    except (TypeError, ValueError):
        raise ValueError(f"field 'amount': {data['amount']!r} is not a number") from None
    if amount != amount or amount in (float("inf"), float("-inf")):
        raise ValueError(f"field 'amount': {data['amount']!r} is not a finite number")
    if amount < 0:
        raise ValueError(f"field 'amount': {amount} is negative; record refunds as a correction of the day's amount")
    currency = data.get("currency")
    return {
        "date": _date(data.get("date")),
        "channel": str(channel).strip(),
        "campaign": str(data.get("campaign") or "").strip(),
        "amount": amount,
        "currency": str(currency).strip().upper() if currency else None,
        "impressions": _count(data.get("impressions"), "impressions"),
        "clicks": _count(data.get("clicks"), "clicks"),
        "source": source,
        "imported_at": imported_at,
    }


def import_spend(
    warehouse: Warehouse,
    path: Path,
    *,
    fmt: str | None = None,
    mapping: dict[str, str] | None = None,
    source: str = "spend-import",
    progress: Progress | None = None,
) -> ImportReport:
    """Import spend rows (upsert by date, channel, campaign); bad rows go to quarantine."""
    fmt = detect_format(path, fmt)
    report = ImportReport(file=str(path))
    started = time.perf_counter()
    now = utcnow()
    good: dict[tuple[Any, ...], dict[str, Any]] = {}
    rejected: list[Rejected] = []
    for record in iter_records(path, fmt, progress):
        origin = f"spend:{path.name}:{record.line}"
        if record.data is None:
            rejected.append(Rejected(record.error or "unreadable", None, record.raw, origin=origin))
            continue
        try:
            row = spend_row(apply_mapping(record.data, mapping or {}), source=source, imported_at=now)
        except ValueError as exc:
            payload = record.raw or msgspec.json.encode(record.data, enc_hook=str).decode()
            rejected.append(Rejected(f"line {record.line}: {exc}", None, payload, origin=origin))
            continue
        good[(row["date"], row["channel"], row["campaign"])] = row  # a later row for the same key wins
    table = pa.Table.from_pylist(list(good.values()), schema=SPEND.schema.to_pyarrow())
    with warehouse.write() as tx:
        written = tx.upsert("spend", table, SPEND.key, compare=VALUE_COLUMNS)
        tx.insert_new("quarantine", quarantine_table(rejected, [now] * len(rejected), [source] * len(rejected)))
    report.write.received = len(good) + len(rejected)
    report.write.stored = written
    report.write.quarantined = len(rejected)
    report.sample_reasons = [f"{r.origin}: {r.reason}" for r in rejected[:10]]
    report.seconds = time.perf_counter() - started
    return report
