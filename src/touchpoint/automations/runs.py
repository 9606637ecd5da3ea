"""``touchpoint automations runs NAME``: each entry's path through the flow.

One row per entry (profile and occurrence), newest first: its arm, when it entered, the steps it reached
(with the branch or arm taken, how a wait ended, what each action's message did), where it is now and its
outcome: ``held_out`` (never contacted), ``waiting`` (at a wait, ``until`` when), ``sending`` (messages
decided, not all delivered yet), ``done``, or ``exited`` (reached the goal). A flow with state reads its
path from ``automation_flows``; a flow of sends and plain waits from its outbox rows, which hold it all.
"""

from __future__ import annotations

import json
from typing import Any

import ibis

from touchpoint.automations import flows, store
from touchpoint.automations.definition import Automation
from touchpoint.errors import InvalidInput
from touchpoint.warehouse import Warehouse, schema

FINAL = ("sent", "dead", "suppressed", "exited")
MAX_RUNS = 10_000


def _messages(wh: Warehouse, name: str, keys: list[tuple[str, str]]) -> dict[tuple[str, str], list[dict[str, Any]]]:
    t = wh.table(schema.AUTOMATION_OUTBOX.name)
    ids = sorted({p for p, _ in keys})
    cols = ["profile_id", "occurrence", "step", "channel", "status", "due_at", "sent_at", "last_error"]
    rows = wh.to_arrow(t.filter((t.automation == name) & t.profile_id.isin(ids)).select(*cols)).to_pylist()
    out: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in sorted(rows, key=lambda r: r["step"]):
        out.setdefault((r["profile_id"], r["occurrence"]), []).append(
            {k: r[k] for k in ("step", "channel", "status", "due_at", "sent_at", "last_error")}
        )
    return out


def _linear_path(auto: Automation, messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    by_step = {m["step"]: m for m in messages}
    path = []
    for s in auto.walk():
        if s.kind == "wait":
            path.append({"step": s.index, "kind": "wait", "seconds": s.seconds})
        elif s.index in by_step:
            m = by_step[s.index]
            path.append({"step": s.index, "kind": s.kind, "message": m["status"], "at": m["sent_at"] or m["due_at"]})
    return path


def runs(
    wh: Warehouse, name: str, *, profile_id: str | None = None, limit: int = 100, offset: int = 0
) -> dict[str, Any]:
    """The entries of automation ``name`` (newest first, one page) with their paths and outcomes."""
    if not 1 <= limit <= MAX_RUNS:
        raise InvalidInput(f"limit {limit} is outside 1..{MAX_RUNS}", hint="page with --offset instead")
    auto = store.load(wh, name)
    en = wh.table(schema.AUTOMATION_ENTRIES.name)
    en = en.filter(en.automation == name)
    if profile_id is not None:
        en = en.filter(en.profile_id == profile_id)
    total = int(wh.to_arrow(en.count()).as_py())
    page = en.order_by([ibis.desc("entered_at"), "profile_id", "occurrence"]).limit(limit, offset=offset)
    entries = wh.to_arrow(page).to_pylist()
    keys = [(e["profile_id"], e["occurrence"]) for e in entries]
    messages = _messages(wh, name, keys) if keys else {}
    state: dict[tuple[str, str], dict[str, Any]] = {}
    if not auto.linear and keys:
        f = wh.table(flows.TABLE)
        ids = sorted({p for p, _ in keys})
        for r in wh.to_arrow(f.filter((f.automation == name) & f.profile_id.isin(ids))).to_pylist():
            state[(r["profile_id"], r["occurrence"])] = r
    kinds = {s.index: s.kind for s in auto.walk()}
    out = []
    for e in entries:
        key = (e["profile_id"], e["occurrence"])
        mine = messages.get(key, [])
        item: dict[str, Any] = {
            "profile_id": e["profile_id"],
            "occurrence": e["occurrence"],
            "arm": e["arm"],
            "entered_at": e["entered_at"],
            "trigger": e["trigger"],
        }
        if e["arm"] == "holdout":
            item.update(outcome="held_out", path=[], at=None)
        elif auto.linear:
            pending = [m for m in mine if m["status"] not in FINAL]
            exited = any(m["status"] == "exited" for m in mine)
            item.update(
                path=_linear_path(auto, mine),
                outcome="exited" if exited else "sending" if pending else "done",
                at=None,
            )
        else:
            f_row = state.get(key)
            path = json.loads(f_row["path"]) if f_row else []
            status = {m["step"]: m["status"] for m in mine}
            for p in path:
                if p["kind"] in ("send_email", "webhook", "set_trait") and p["step"] in status:
                    p["message"] = status[p["step"]]
                if p["kind"] == "hand_off":
                    p["message"] = {"crm": status.get(p["step"]), "owner_email": status.get(p["step"] + 1)}
            if f_row is None or f_row["status"] == "waiting":
                outcome = "waiting"
            elif f_row["status"] == "exited":
                outcome = "exited"
            elif any(s not in FINAL for s in status.values()):
                outcome = "sending"
            else:
                outcome = "done" if f_row["status"] == "done" else "waiting"
            position = f_row["position"] if f_row else 0
            item.update(
                path=path,
                outcome=outcome,
                at={"step": position, "kind": kinds.get(position), "until": f_row["due_at"] if f_row else None}
                if outcome == "waiting"
                else None,
            )
        out.append(item)
    return {"automation": name, "total": total, "limit": limit, "offset": offset, "runs": out}
