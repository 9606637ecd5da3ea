"""What the CLI, the HTTP API, the job runner and the demo share: every audience operation once.

>>> from touchpoint.warehouse import Warehouse
>>> wh = Warehouse.open("duckdb://:memory:")
>>> create(wh, "swedes", {"trait": "country", "eq": "SE"})["refresh"]["members"]
0
>>> preview(wh, {"trait": "country", "eq": "SE"})["count"]
0
>>> refresh(wh)  # the job runner's entry point: entries + exits recorded
0
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from touchpoint.audiences import definition as d
from touchpoint.audiences import membership, store
from touchpoint.audiences.compile import compile_members, explain
from touchpoint.audiences.refresh import refresh_one
from touchpoint.errors import InvalidInput
from touchpoint.warehouse import Warehouse

EXPORT_FORMATS = ("csv", "jsonl")


def load_definition(text: str, source: str = "the definition") -> Any:
    """JSON text as a definition object, with an error naming ``source`` when it is not JSON."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidInput(f"{source} is not valid JSON: {exc}", hint="see docs/audiences.md for examples") from None
    except RecursionError:
        raise InvalidInput(f"{source} is nested too deeply to read", hint="flatten it") from None


def create(
    wh: Warehouse,
    name: str,
    definition: Any,
    *,
    description: str | None = None,
    replace: bool = False,
    evaluate: bool = True,
    now: datetime | None = None,
) -> dict[str, Any]:
    """Save an audience (a new version with ``replace``) and, with ``evaluate``, compute its members."""
    saved = store.save(wh, name, definition, description=description, replace=replace)
    out: dict[str, Any] = {"audience": saved}
    if evaluate:
        out["refresh"] = refresh_one(wh, name, now=now, full=True)
    return out


def preview(
    wh: Warehouse, definition: Any, *, now: datetime | None = None, sample: int = 10, sql: bool = False
) -> dict[str, Any]:
    """Count and a sample of who a definition selects, without saving it (``sql``: the SQL too)."""
    node = d.parse(definition)
    at = now or store.now()
    expr, _ = compile_members(wh, node, now=at, lookup=store.lookup(wh))
    count = int(wh.to_arrow(expr.count()).as_py())
    p = wh.table("profiles").select(tp_pid="profile_id", user_id="user_id", email="email")
    s = expr.left_join(p, expr.profile_id == p.tp_pid).select("profile_id", "user_id", "email")
    rows = wh.to_arrow(s.order_by("profile_id").limit(max(0, sample))).to_pylist()
    out: dict[str, Any] = {"count": count, "sample": rows, "now": at}
    if sql:
        out["sql"] = explain(expr)
    return out


def explain_audience(wh: Warehouse, name: str, *, now: datetime | None = None) -> str:
    """The SQL a saved audience's full evaluation runs (``--explain``)."""
    node = d.parse(store.get(wh, name)["definition"])
    expr, _ = compile_members(wh, node, now=now or store.now(), lookup=store.lookup(wh), name=name)
    return explain(expr)


def refresh_audiences(
    wh: Warehouse, names: list[str] | None = None, *, now: datetime | None = None, full: bool = False
) -> list[dict[str, Any]]:
    """Refresh the named audiences (default: all), each incrementally when it can."""
    todo = names if names is not None else [a["name"] for a in store.list_all(wh)]
    at = now or store.now()
    return [refresh_one(wh, name, now=at, full=full) for name in todo]


def refresh(wh: Warehouse, *, now: datetime | None = None) -> int:
    """The job runner's entry point: refresh every audience; returns how many entries and exits it recorded."""
    return sum(r["entered"] + r["exited"] for r in refresh_audiences(wh, now=now))


def show(wh: Warehouse, name: str) -> dict[str, Any]:
    """A saved audience with its last evaluation and its versions."""
    from touchpoint.audiences.refresh import _state

    out = store.get(wh, name)
    out["state"] = _state(wh, name)
    out["size"] = membership.members(wh, name, limit=0)["count"]
    out["versions"] = [{k: v for k, v in r.items() if k != "name"} for r in store.versions(wh, name)]
    out["used_by"] = store.referrers(wh, name)
    return out


def list_audiences(wh: Warehouse) -> list[dict[str, Any]]:
    from touchpoint.audiences.refresh import _state

    out = []
    for a in store.list_all(wh):
        state = _state(wh, a["name"]) or {}
        out.append(
            {
                "name": a["name"],
                "description": a["description"],
                "version": a["version"],
                "members": state.get("members"),
                "evaluated_at": state.get("evaluated_at"),
                "updated_at": a["updated_at"],
            }
        )
    return out


def members(
    wh: Warehouse, name: str, *, at: datetime | None = None, limit: int | None = 100, offset: int = 0
) -> dict[str, Any]:
    store.get(wh, name)
    return membership.members(wh, name, at=at, limit=limit, offset=offset)


def history(wh: Warehouse, name: str, *, days: int = 30) -> dict[str, Any]:
    store.get(wh, name)
    if not 1 <= days <= 3660:
        raise InvalidInput(f"days must be from 1 to 3660, got {days}")
    return {"audience": name, "days": membership.history(wh, name, days=days)}


def export(
    wh: Warehouse, name: str, fmt: str = "csv", *, purpose: str | None = None, at: datetime | None = None
) -> Iterator[str]:
    """The members whose consent for ``purpose`` holds, as CSV or JSON lines, one string per line.

    An export hands people to another system, so it needs a purpose (``marketing_email``,
    ``advertising``...; ``transactional`` for messages that need none): the members and their consent
    are one query (:func:`touchpoint.privacy.consent.consenting`).
    """
    from touchpoint.privacy import consent, purposes

    if fmt not in EXPORT_FORMATS:
        raise InvalidInput(f"export format {fmt!r} is not known", hint="use csv or jsonl")
    if not purpose:
        raise InvalidInput(
            "purpose: an export needs the purpose it is for",
            hint=f"name it (--purpose, ?purpose=): one of {', '.join(sorted(purposes.purposes()))}, or transactional",
        )
    if purpose != purposes.TRANSACTIONAL:
        purposes.check(purpose, "purpose")
    store.get(wh, name)
    members = membership.members_expr(wh, name, at)
    expr = consent.consenting(wh, members, purpose, at=at).order_by(["entered_at", "profile_id"])
    columns = ["profile_id", "user_id", "email", "entered_at"]
    if fmt == "csv":
        buf = io.StringIO()
        csv.writer(buf).writerow(columns)
        yield buf.getvalue()
    # one Arrow result (a million members is ~100 MB); ibis' batch reader warns through duckdb's deprecated API
    for batch in wh.to_arrow(expr).to_batches(max_chunksize=50_000):
        for row in batch.to_pylist():
            row["entered_at"] = row["entered_at"].isoformat() if row["entered_at"] else None
            if fmt == "jsonl":
                yield json.dumps(row) + "\n"
            else:
                buf = io.StringIO()
                csv.writer(buf).writerow([_csv_cell(row[c]) for c in columns])
                yield buf.getvalue()


def _csv_cell(value: Any) -> Any:
    """Neutralise spreadsheet formulas in exported text (a cell starting with = + - @)."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return "" if value is None else value


def delete(wh: Warehouse, name: str) -> dict[str, Any]:
    return store.delete(wh, name)


def changes(wh: Warehouse, since: datetime, *, audience: str | None = None) -> list[dict[str, Any]]:
    """Entries and exits recorded after ``since`` (see :func:`touchpoint.audiences.membership.changes`)."""
    return membership.changes(wh, since, audience=audience)
