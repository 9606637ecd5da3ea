"""Retention: how long each table's rows are kept, enforced by the ``retention`` job and logged in the audit log.

A rule names a table and a number of days (the setting ``retention``, merged over :data:`DEFAULTS`); the rows
whose time column (:data:`TIME_COLUMNS`) is older than ``now - days`` are deleted. Only tables with a time
column can have a rule: a rule for an unknown table, or for a table without one, is refused when the
server starts (:func:`rules`, a :class:`~touchpoint.errors.ConfigError` naming the setting).

What each deletion removed (table, column, cut-off, rows) is one ``retention.delete`` entry in the audit
log, written in the same transaction as the delete. Derived tables (profiles, identities, predictions) are
rebuilt from events and are not cut here: see docs/privacy.md, "Retention".

>>> from touchpoint.config import Settings
>>> [(r.table, r.column, r.days) for r in rules(Settings(retention={"quarantine": 7}))]
[('events', 'received_at', 761), ('quarantine', 'received_at', 7)]
>>> rules(Settings(retention={"profiles": 30}))  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
touchpoint.errors.ConfigError: retention.profiles: the table 'profiles' has no time column ... (...)
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from touchpoint.errors import ConfigError
from touchpoint.privacy import audit
from touchpoint.warehouse import schema
from touchpoint.warehouse.clock import utcnow

if TYPE_CHECKING:
    from touchpoint.config import Settings
    from touchpoint.warehouse import Warehouse

#: The rules in force unless the setting ``retention`` says otherwise (docs/privacy.md, "Retention").
DEFAULTS: dict[str, int | str] = {
    "events": 761,  # 25 months (25 x 30.44 days): two full years of seasonality plus a month to compare
    "quarantine": 30,  # long enough to notice, fix and replay a broken source
    "audit_log": "never",  # the evidence of who saw what; prune it only by an explicit rule
}

#: The column each table's age is measured by. Collected data counts from when it was collected.
TIME_COLUMNS: dict[str, str] = {
    "events": "received_at",
    "quarantine": "received_at",
    "audit_log": "at",
    "job_runs": "started_at",
    "identity_merge_log": "logged_at",
    "automation_outbox": "created_at",
    "automation_entries": "entered_at",
    "score_stages": "changed_at",
    "web_sessions": "expires_at",
}


def _declared() -> set[str]:
    return {v.name for v in vars(schema).values() if isinstance(v, schema.TableSpec)}


@dataclass(frozen=True)
class Rule:
    table: str
    column: str
    days: int

    def cutoff(self, now: datetime) -> datetime:
        return now - timedelta(days=self.days)


def rules(settings: Settings) -> list[Rule]:
    """The rules in force, checked: :data:`DEFAULTS` with the setting ``retention`` over them ('never' drops
    one). A table that does not exist or has no time column raises :class:`ConfigError` naming the setting."""
    merged = {**DEFAULTS, **settings.retention}
    declared = _declared()
    out = []
    for table, days in merged.items():
        if table not in declared:
            raise ConfigError(
                f"retention.{table}: there is no table {table!r}",
                hint=f"tables a rule can name: {', '.join(sorted(TIME_COLUMNS))} (docs/privacy.md, Retention)",
            )
        if table not in TIME_COLUMNS:
            raise ConfigError(
                f"retention.{table}: the table {table!r} has no time column a retention rule can use",
                hint=f"tables a rule can name: {', '.join(sorted(TIME_COLUMNS))}; derived tables follow the events "
                "they are rebuilt from (docs/privacy.md, Retention)",
            )
        if days != "never":
            out.append(Rule(table, TIME_COLUMNS[table], int(days)))
    return out


_now = utcnow  # the warehouse's clock (touchpoint.warehouse.clock)


def apply(wh: Warehouse, rule: Rule, *, now: datetime | None = None, actor: str = "job:retention") -> int:
    """Delete ``rule.table``'s rows older than the cut-off and log it; returns how many rows went.

    The delete and its audit entry commit together. On ``audit_log`` the newest entry is always kept (the
    chain goes on from it) and the entry records where the kept log starts, so verify still passes."""
    cutoff = rule.cutoff(now or _now())
    with audit.appending(wh), wh.write() as tx:
        t = wh.table(rule.table)
        old = t.filter(t[rule.column] < cutoff)
        detail: dict[str, Any] = {"column": rule.column, "days": rule.days, "cutoff": cutoff.isoformat()}
        if rule.table == audit.TABLE:
            last = wh.to_arrow(t.seq.max()).as_py()
            old = old.filter(old.seq < last) if last is not None else old
        deleted = int(wh.to_arrow(old.count()).as_py())
        if deleted == 0:
            return 0
        tx.delete(rule.table, rule.column, old[rule.column])
        if rule.table == audit.TABLE:
            t = wh.table(rule.table)
            first = wh.to_arrow(t.order_by("seq").limit(1).select("seq", "prev_hash")).to_pylist()[0]
            detail |= {"first_kept_seq": int(first["seq"]), "anchor": first["prev_hash"]}
        audit.record(wh, actor=actor, surface="job", action="retention.delete", subject=rule.table, rows=deleted,
                     detail=detail)  # fmt: skip
    return deleted


def enforce(wh: Warehouse, settings: Settings, *, now: datetime | None = None) -> dict[str, Any]:
    """Apply every rule in force; ``{"rows": total, "deleted": {table: rows}}`` (the retention job's summary)."""
    at = now or _now()
    deleted = {r.table: apply(wh, r, now=at) for r in rules(settings) if wh.has_table(r.table)}
    return {"rows": sum(deleted.values()), "deleted": deleted, "at": at.isoformat()}


def describe(settings: Settings) -> list[dict[str, Any]]:
    """Every table a rule can name, with its column and the days in force (None: kept)."""
    by_table = {r.table: r for r in rules(settings)}
    return [
        {"table": t, "column": c, "days": by_table[t].days if t in by_table else None}
        for t, c in sorted(TIME_COLUMNS.items())
    ]
