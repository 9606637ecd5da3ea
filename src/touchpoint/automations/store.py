"""Saved automations: create (or replace, a new version), read, list, pause and resume.

>>> from touchpoint.warehouse import Warehouse
>>> wh = Warehouse.open("duckdb://:memory:")
>>> d = {"name": "welcome", "trigger": {"event": "Signed Up"},
...      "steps": [{"send_email": {"subject": "Hi", "text": "Hello!", "purpose": "marketing_email"}}]}
>>> save(wh, d)["status"], set_status(wh, "welcome", "paused")["status"]
('active', 'paused')
>>> [a["name"] for a in list_all(wh)]
['welcome']
"""

from __future__ import annotations

import functools
import json
from datetime import datetime
from typing import Any

import ibis
import ibis.expr.types as ir
import pyarrow as pa

from touchpoint.automations import definition as d
from touchpoint.errors import AlreadyExists, InvalidInput, NotFound
from touchpoint.warehouse import Warehouse, schema
from touchpoint.warehouse.clock import utcnow

TABLE = schema.AUTOMATIONS.name
STATUSES = ("active", "paused")


now = utcnow  # the warehouse's clock (touchpoint.warehouse.clock)


def _named(wh: Warehouse, name: str) -> ir.Table:
    t = wh.table(TABLE)
    return t.filter(t.name == name)


def _listed(wh: Warehouse, key: tuple[str | None]) -> ir.Table:
    t = wh.table(TABLE)
    (status,) = key
    if status is not None:
        t = t.filter(t.status == ibis.literal(status, "string"))
    return t.order_by("name")


def _row(wh: Warehouse, name: str) -> dict[str, Any] | None:
    rows = wh.prepared(_named, name).to_pylist()  # read by every run of the jobs: compiled once
    return rows[0] if rows else None


def _out(row: dict[str, Any]) -> dict[str, Any]:
    return {**row, "definition": json.loads(row["definition"])}


def get(wh: Warehouse, name: str) -> dict[str, Any]:
    row = _row(wh, name)
    if row is None:
        raise NotFound(f"no automation named {name!r}", hint="list them with `touchpoint automations list`")
    return _out(row)


def read(wh: Warehouse, name: str) -> tuple[dict[str, Any], d.Automation]:
    """The saved row (:func:`get`) and its definition parsed, from one read: the jobs' hot path."""
    row = _row(wh, name)
    if row is None:
        raise NotFound(f"no automation named {name!r}", hint="list them with `touchpoint automations list`")
    return _out(row), parsed(row["definition"])


def load(wh: Warehouse, name: str) -> d.Automation:
    return read(wh, name)[1]


@functools.lru_cache(maxsize=256)
def parsed(text: str) -> d.Automation:
    """A stored definition (its canonical JSON text) parsed; the same text gives the same (frozen) object,
    so the jobs that read every definition several times a second parse each version once."""
    return d.parse(json.loads(text))


def of(row: dict[str, Any]) -> d.Automation:
    """The definition of a row :func:`list_all` or :func:`get` gave, parsed (:func:`parsed`)."""
    return parsed(json.dumps(row["definition"], sort_keys=True))


def list_all(wh: Warehouse, *, status: str | None = None) -> list[dict[str, Any]]:
    return [_out(r) for r in wh.prepared(_listed, key=(status,)).to_pylist()]


def save(wh: Warehouse, definition: Any, *, replace: bool = False, at: datetime | None = None) -> dict[str, Any]:
    """Validate and save ``definition``; with ``replace`` an existing one gets a new version (its status,
    entries and outbox stay: who entered once does not enter again under the same occurrence). ``at``
    (default: now) is when it was saved: it acts on triggers after that instant."""
    auto = d.parse(definition)
    text = json.dumps(auto.to_dict(), sort_keys=True)
    at = at or now()
    with wh.write() as tx:
        old = _row(wh, auto.name)
        if old is not None and not replace:
            raise AlreadyExists(
                f"an automation named {auto.name!r} exists (version {old['version']})",
                hint="change it with `touchpoint automations create --definition FILE --replace`",
            )
        row = {
            "name": auto.name,
            "definition": text,
            "version": 1 if old is None else int(old["version"]) + 1,
            "status": "active" if old is None else old["status"],
            "created_at": at if old is None else old["created_at"],
            "updated_at": at,
        }
        tx.upsert(TABLE, pa.Table.from_pylist([row], schema=schema.AUTOMATIONS.schema.to_pyarrow()), key=["name"])
    return get(wh, auto.name)


def set_status(wh: Warehouse, name: str, status: str) -> dict[str, Any]:
    """Pause (no new entries, nothing sent) or resume (entries and sends go on from where they were)."""
    if status not in STATUSES:
        raise InvalidInput(f"status {status!r} is not known", hint=f"use one of: {', '.join(STATUSES)}")
    get(wh, name)
    with wh.write() as tx:
        tx.update(TABLE, {"status": status, "updated_at": now()}, key="name", value=name)
    return get(wh, name)
