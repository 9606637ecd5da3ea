"""``touchpoint import spend``: marketing spend per date, channel and campaign.

Rows are keyed by (date, channel, campaign); importing a corrected file replaces the stored
amounts for the same keys, and importing the same file again changes nothing. A row that
cannot be read is kept in quarantine with its reason (replay it by importing a fixed file).

Fields (rename with ``mapping``): date, channel, amount; optional campaign, currency,
impressions, clicks.
"""

from __future__ import annotations

import math
import time
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa

from touchpoint.collect.decode import EventError
from touchpoint.collect.files import ImportReport, mapped_records
from touchpoint.collect.normalize import EARLIEST, LATEST, MAX_AMOUNT, EventRows, Rejected, check_name, utcnow
from touchpoint.collect.readers import Progress, detect_format
from touchpoint.warehouse import Warehouse
from touchpoint.warehouse.schema import SPEND

VALUE_COLUMNS = ("amount", "currency", "impressions", "clicks")
MAX_COUNT = 2**63 - 1


def _date(value: Any) -> date:
    if isinstance(value, datetime):
        day = value.date()
    elif isinstance(value, date):
        day = value
    else:
        try:
            day = date.fromisoformat(str(value).strip()[:10])
        except ValueError:
            raise EventError(f"field 'date': {str(value)[:40]!r} is not a date; use YYYY-MM-DD", "date") from None
    if not (EARLIEST.date() <= day <= LATEST.date()):
        raise EventError(f"field 'date': {day.isoformat()} is outside the years 1970 to 2200", "date")
    return day


def _count(value: Any, field: str) -> int | None:
    if value in (None, ""):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        raise EventError(f"field '{field}': {str(value)[:40]!r} is not a number", field) from None
    if not math.isfinite(number) or number < 0 or not number.is_integer() or number > MAX_COUNT:
        raise EventError(f"field '{field}': {str(value)[:40]!r} is not a whole number from 0 to 2**63-1", field)
    return int(number)


def spend_row(data: dict[str, Any], *, source: str, imported_at: datetime) -> dict[str, Any]:
    """Validate one spend record; raises ValueError naming the field."""
    channel = data.get("channel")
    if channel in (None, "") or not str(channel).strip():
        raise EventError("field 'channel' is empty; every spend row needs its channel", "channel")
    if data.get("amount") in (None, ""):
        raise EventError("field 'amount' is empty", "amount")
    try:
        amount = float(data["amount"])
    except (TypeError, ValueError, OverflowError):
        raise EventError(f"field 'amount': {str(data['amount'])[:40]!r} is not a number", "amount") from None
    if not math.isfinite(amount) or amount > MAX_AMOUNT:
        raise EventError(
            f"field 'amount': {str(data['amount'])[:40]!r} is out of range (0 to {MAX_AMOUNT:,.0f})", "amount"
        )
    if amount < 0:
        raise EventError(
            f"field 'amount': {amount} is negative; record refunds as a correction of the day's amount", "amount"
        )
    currency = data.get("currency")
    return {
        "date": _date(data.get("date")),
        "channel": check_name(str(channel), "channel"),
        "campaign": check_name(str(data.get("campaign") or ""), "campaign"),
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
    bad = EventRows()

    def reject(rejected: Rejected) -> None:
        bad.reject(rejected, now, source)

    def convert(data: dict[str, Any]) -> dict[str, Any]:
        return spend_row(data, source=source, imported_at=now)

    for _origin, row in mapped_records(
        path, fmt, prefix="spend", mapping=mapping, progress=progress, convert=convert, reject=reject
    ):
        good[(row["date"], row["channel"], row["campaign"])] = row  # a later row for the same key wins
    table = pa.Table.from_pylist(list(good.values()), schema=SPEND.schema.to_pyarrow())
    with warehouse.write() as tx:
        written = tx.upsert("spend", table, SPEND.key, compare=VALUE_COLUMNS)
        new_rejects = tx.insert_new("quarantine", bad.quarantine_arrow())
    rejected = bad.rejected
    report.write.received = len(good) + len(rejected)
    report.write.stored = written
    report.write.quarantined = new_rejects
    report.write.already_quarantined = len(rejected) - new_rejects
    report.sample_reasons = [f"{r.origin}: {r.reason}" for r in rejected[:10]]
    report.seconds = time.perf_counter() - started
    return report
