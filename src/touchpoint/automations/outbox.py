"""The outbox: one row per (automation, step, profile, occurrence), and its life from pending to sent.

============  ===========================================================================
status        meaning
============  ===========================================================================
pending       decided, waiting for ``due_at`` (the waits before the step)
held          quiet hours in the recipient's time zone: due again at ``held_until`` (``pacing`` says why)
sending       claimed by a sender; one found by the next sender belonged to a sender that died mid-send
retry         a transient failure (SMTP 4xx, HTTP 5xx/429, a timeout); due again at ``due_at``
sent          the channel accepted it (``sent_at``)
dead          a permanent failure (SMTP 5xx, HTTP 4xx) or too many attempts: ``replay`` re-queues it
capped        a frequency cap was reached (``pacing`` names it); never sent
suppressed    no consent for the purpose (at decision or at send time), no address, or the global control group
exited        the profile reached the automation's goal before the step was due
============  ===========================================================================

``outbox_id`` is a hash of the key; the email's ``Message-ID`` and the webhook's ``Idempotency-Key``
are made from it, so a resend of the same row carries the same identity.

>>> outbox_id("welcome", 0, "p-1", "once")
'12644f6f6433a4268c6fb7b5'
>>> backoff(1, rand=lambda: 1.0), backoff(20, rand=lambda: 1.0)
(30.0, 3600.0)
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import ibis
import ibis.expr.types as ir
import pyarrow as pa

from touchpoint.automations.definition import Automation
from touchpoint.errors import InvalidInput
from touchpoint.warehouse import Warehouse, schema

TABLE = schema.AUTOMATION_OUTBOX.name
STATUSES = ("pending", "held", "sending", "retry", "sent", "dead", "capped", "suppressed", "exited")
WAITING = ("pending", "held", "retry")  # due at due_at
FAILED = ("dead",)
RETRY_BASE = 30.0  # seconds before the first retry; doubles each attempt
RETRY_CAP = 3600.0  # never longer than this between attempts (a Retry-After may ask for longer, up to a day)
MAX_ATTEMPTS = 8  # then dead


def outbox_id(automation: str, step: int, profile_id: str, occurrence: str) -> str:
    key = f"{automation}\x1f{step}\x1f{profile_id}\x1f{occurrence}"
    return hashlib.sha256(key.encode()).hexdigest()[:24]


def backoff(attempts: int, *, rand: Callable[[], float] = random.random) -> float:
    """Seconds before attempt ``attempts + 1``: capped exponential with "equal jitter" (half fixed, half random)."""
    full = min(RETRY_CAP, RETRY_BASE * 2 ** max(0, attempts - 1))
    return full / 2 + full / 2 * rand()


def rows_for(auto: Automation, entry: dict[str, Any], consents: dict[str, bool], at: datetime) -> list[dict[str, Any]]:
    """The outbox rows of a treated entry: each action step, due after the waits before it."""
    out = []
    for index, step, delay in auto.actions():
        ok = consents.get(step.purpose or "", True) if step.purpose != "transactional" else True
        out.append(
            {
                "automation": auto.name,
                "step": index,
                "profile_id": entry["profile_id"],
                "occurrence": entry["occurrence"],
                "outbox_id": outbox_id(auto.name, index, entry["profile_id"], entry["occurrence"]),
                "channel": "email" if step.kind == "send_email" else "webhook",
                "purpose": step.purpose,
                "status": "pending" if ok else "suppressed",
                "due_at": at + timedelta(seconds=delay),
                "attempts": 0,
                "last_error": None if ok else f"no consent for {step.purpose} when the contact entered",
                "payload": None,
                "entered_at": entry["entered_at"],
                "created_at": at,
                "updated_at": at,
                "sent_at": None,
                "held_until": None,
                "pacing": None,
            }
        )
    return out


def to_arrow(rows: list[dict[str, Any]]) -> pa.Table:
    return pa.Table.from_pylist(rows, schema=schema.AUTOMATION_OUTBOX.schema.to_pyarrow())


KEY = ["automation", "step", "profile_id", "occurrence"]


def claim(
    wh: Warehouse,
    now: datetime,
    *,
    limit: int = 500,
    automations: list[str] | None = None,
    orphans: bool = True,
) -> list[dict[str, Any]]:
    """Take up to ``limit`` due rows and mark them ``sending``: pending and retry rows that are due, and, with
    ``orphans``, rows left ``sending`` by a sender that died (the caller holds the deliveries section, and one
    process writes the embedded warehouse, so no live sender holds them). A run's later claims pass
    ``orphans=False``: the ``sending`` rows then are its own, still in flight."""
    with wh.write() as tx:
        names = None if automations is None else tuple(automations or [""])
        rows = wh.prepared(_due, now.isoformat(), key=(names, limit, orphans)).to_pylist()
        if rows:
            for r in rows:
                r["status"], r["updated_at"], r["attempts"] = "sending", now, int(r["attempts"] or 0) + 1
            tx.upsert(TABLE, to_arrow(rows), key=KEY)
    return rows


def _due(wh: Warehouse, key: tuple[tuple[str, ...] | None, int, bool], now: str) -> ir.Table:
    """The claim's read (compiled once per process and set of automations): due rows, oldest first."""
    automations, limit, orphans = key
    t = wh.table(TABLE)
    lit = ibis.literal(now, "string").cast("timestamp")
    due = t.status.isin(list(WAITING)) & (t.due_at <= lit)
    if orphans:
        due = due | (t.status == "sending")
    if automations is not None:
        due = due & t.automation.isin(list(automations))
    return t.filter(due).order_by(["due_at", "outbox_id"]).limit(limit)


def record(wh: Warehouse, rows: list[dict[str, Any]]) -> None:
    """Store the outcome of a batch of sends (each row carries its new status and fields)."""
    if rows:
        with wh.write() as tx:
            tx.upsert(TABLE, to_arrow(rows), key=KEY)


def listing(
    wh: Warehouse, *, automation: str | None = None, status: str | None = None, limit: int = 100
) -> list[dict[str, Any]]:
    if status is not None and status not in STATUSES:
        raise InvalidInput(f"outbox status {status!r} is not known", hint=f"use one of: {', '.join(STATUSES)}")
    t = wh.table(TABLE)
    if automation is not None:
        t = t.filter(t.automation == automation)
    if status is not None:
        t = t.filter(t.status == status)
    cols = ["automation", "step", "profile_id", "occurrence", "outbox_id", "channel", "purpose", "status"]
    cols += ["attempts", "due_at", "sent_at", "last_error", "held_until", "pacing"]
    return wh.to_arrow(t.select(*cols).order_by([ibis.desc("due_at"), "outbox_id"]).limit(limit)).to_pylist()


def _of_profile(wh: Warehouse, limit: int, profile_id: str) -> ir.Table:
    t = wh.table(TABLE)
    t = t.filter(t.profile_id == profile_id)
    cols = ["automation", "step", "channel", "purpose", "status", "due_at", "sent_at", "attempts", "payload"]
    when = ibis.coalesce(t.sent_at, t.due_at)
    return t.order_by([when.desc(), "automation", "step"]).select(*cols).limit(limit)


def for_profile(wh: Warehouse, profile_id: str, *, limit: int = 50) -> list[dict[str, Any]]:
    """The messages automations decided for one profile, latest first, with the email's subject when it
    was rendered (``payload``; a pending message has none yet). The rendered text is not returned."""
    import json

    rows = wh.prepared(_of_profile, profile_id, key=limit).to_pylist()
    for row in rows:
        payload = row.pop("payload")
        try:
            parsed = json.loads(payload) if payload else {}
        except ValueError:  # never written by this code; shown without a subject rather than failing the page
            parsed = {}
        row["subject"] = parsed.get("subject") if isinstance(parsed, dict) else None
    return rows


def counts(wh: Warehouse, automation: str) -> dict[str, int]:
    t = wh.table(TABLE)
    t = t.filter(t.automation == automation)
    rows = wh.to_arrow(t.group_by("status").agg(n=t.count())).to_pylist()
    return {r["status"]: int(r["n"]) for r in rows}


def replay(wh: Warehouse, now: datetime, *, automation: str | None = None, outbox_ids: list[str] | None = None) -> int:
    """Put dead rows back in the queue (due now, attempts reset); returns how many."""
    t = wh.table(TABLE)
    cond = t.status == "dead"
    if automation is not None:
        cond = cond & (t.automation == automation)
    if outbox_ids:
        cond = cond & t.outbox_id.isin(outbox_ids)
    with wh.write() as tx:
        rows = wh.to_arrow(t.filter(cond)).to_pylist()
        for r in rows:
            r.update(status="retry", due_at=now, attempts=0, updated_at=now, last_error=f"replayed: {r['last_error']}")
        if rows:
            tx.upsert(TABLE, to_arrow(rows), key=KEY)
    return len(rows)
