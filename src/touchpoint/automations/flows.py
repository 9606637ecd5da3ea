"""Flows with state: a contact moves through waits, branches and splits, one decided step at a time.

A flow of only sends and plain waits is decided whole when a contact enters (every outbox row at once,
due after the waits before it). Any other flow (``wait_until``, ``wait_for``, ``branch``, ``split``,
``hand_off``, ``set_trait``, audience steps) keeps each treated entry's place in ``automation_flows``:
the step it is at, until when it waits, and the path it took. A step after a branch or a wait is decided
only when the contact reaches it, at the automation's evaluation (the decision side), and the outbox
rows of the actions it passes are written in the same transaction that records its new place:

* an action writes its outbox row (keyed, as always, by automation, step, profile and occurrence), due
  now; without consent for its purpose the row is ``suppressed``. A ``hand_off`` writes two: the CRM's
  webhook (its step number) and the owner's email (its number + 1). A ``set_trait`` writes an ``event``
  row the sender turns into an ``identify`` event (source ``automation``, messageId from the outbox id);
  ``add_to_audience``/``remove_from_audience`` change a manual audience's membership in this transaction.
* ``wait`` ends a duration after the contact reached it; ``wait_until`` at the next ``HH:MM`` in the
  contact's time zone (:mod:`touchpoint.automations.zones`: the trait ``timezone``, else the latest event's
  ``context.timezone``, else the ``default_timezone`` setting); ``wait_for`` ends at
  the event (then the ``on_event`` path) or after ``timeout_days`` (the ``on_timeout`` path). Either way
  the flow then goes on with the steps after the wait.
* ``branch`` evaluates its audiences-language condition for the contact at that moment (``then`` or
  ``else``); ``split`` puts the contact in an arm by the experiments' hash of
  ``automation:NAME:split:STEP`` and the profile id (sticky: the same profile, the same arm).
* a contact who reached the automation's goal leaves the flow (``exited``).

Each step's number is reached once per entry: positions only move forward through the tree.
"""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any

import ibis
import pyarrow as pa

from touchpoint.automations import outbox
from touchpoint.automations.definition import ACTIONS, Automation, Step
from touchpoint.automations.zones import default_zone, recipient_zones
from touchpoint.warehouse import Warehouse, schema

TABLE = schema.AUTOMATION_FLOWS.name
KEY = ["automation", "profile_id", "occurrence"]
OPEN = ("active", "waiting")
WAITS = ("wait", "wait_until", "wait_for")
MAX_FLOWS = 50_000  # advanced per evaluation; the rest in the next one


def next_local_time(after: datetime, hhmm: str, tz: tzinfo) -> datetime:
    """The first instant strictly after ``after`` (naive UTC) when the clock in ``tz`` shows ``hhmm``, as
    naive UTC. On a day the clock skips that time (spring forward), the instant it would have been.

    >>> from zoneinfo import ZoneInfo
    >>> next_local_time(datetime(2026, 3, 28, 12), "09:00", ZoneInfo("Europe/Stockholm"))
    datetime.datetime(2026, 3, 29, 7, 0)
    >>> next_local_time(datetime(2026, 3, 27, 12), "09:00", ZoneInfo("Europe/Stockholm"))
    datetime.datetime(2026, 3, 28, 8, 0)
    """
    hour, minute = (int(x) for x in hhmm.split(":"))
    local = after.replace(tzinfo=UTC).astimezone(tz)
    for days in range(3):
        day = local.date() + timedelta(days=days)
        candidate = datetime(day.year, day.month, day.day, hour, minute, tzinfo=tz)
        at = candidate.astimezone(UTC).replace(tzinfo=None)
        if at > after:
            return at
    raise AssertionError("unreachable: a local time recurs within three days")  # pragma: no cover


def start_rows(entries: list[dict[str, Any]], at: datetime) -> list[dict[str, Any]]:
    """The flow rows of new treated entries: at the first step (number 0), to be advanced now."""
    return [
        {
            "automation": e["automation"],
            "profile_id": e["profile_id"],
            "occurrence": e["occurrence"],
            "status": "active",
            "position": 0,
            "due_at": e["entered_at"],
            "waiting_since": None,
            "path": "[]",
            "entered_at": e["entered_at"],
            "updated_at": at,
        }
        for e in entries
        if e["arm"] == "treated"
    ]


def to_arrow(rows: list[dict[str, Any]]) -> pa.Table:
    return pa.Table.from_pylist(rows, schema=schema.AUTOMATION_FLOWS.schema.to_pyarrow())


def _open(wh: Warehouse, auto: Automation, now: datetime) -> list[dict[str, Any]]:
    """The flows to look at: active ones, waits that came due, and every wait for an event."""
    t = wh.table(TABLE)
    event_waits = [s.index for s in auto.walk() if s.kind == "wait_for"]
    due = (t.status == "active") | (t.due_at <= ibis.literal(now, "timestamp"))
    if event_waits:
        due = due | t.position.isin(event_waits)
    cond = (t.automation == auto.name) & t.status.isin(list(OPEN)) & due
    return wh.to_arrow(t.filter(cond).order_by(["entered_at", "profile_id"]).limit(MAX_FLOWS)).to_pylist()


class _Pass:
    """One advance of one automation's flows at ``now``: what to write when it is done."""

    def __init__(self, wh: Warehouse, auto: Automation, now: datetime, default_timezone: str) -> None:
        self.wh, self.auto, self.now, self.default_timezone = wh, auto, now, default_timezone
        self.next = auto.successors()
        self.outbox: list[dict[str, Any]] = []
        self.memberships: list[tuple[str, str, str]] = []  # (audience, profile_id, add|remove)
        self.clock: dict[tuple[str, str], datetime] = {}  # each flow's own instant: when it reached its step

    def log(self, row: dict[str, Any], step: Step, **what: Any) -> None:
        path = json.loads(row["path"])
        path.append({"step": step.index, "kind": step.kind, "at": self.at(row).isoformat(), **what})
        row["path"] = json.dumps(path, default=str)

    def at(self, row: dict[str, Any]) -> datetime:
        return self.clock.get((row["profile_id"], row["occurrence"]), self.now)

    def move(self, row: dict[str, Any], position: int | None, at: datetime | None = None) -> None:
        row["position"], row["waiting_since"] = position, None
        row["status"] = "done" if position is None else "active"
        if at is not None:
            self.clock[(row["profile_id"], row["occurrence"])] = min(at, self.now)

    def block(self, row: dict[str, Any], since: datetime, until: datetime) -> None:
        row["status"], row["waiting_since"], row["due_at"] = "waiting", since, until

    # -- steps -------------------------------------------------------------------------------------------
    def actions(self, step: Step, rows: list[dict[str, Any]]) -> None:
        from touchpoint.automations.delivery import _consents

        purpose = step.purpose if step.kind in ("send_email", "webhook", "hand_off") else None
        allowed = _consents(self.wh, [{"profile_id": r["profile_id"], "purpose": purpose} for r in rows])
        for r in rows:
            ok = allowed.get((r["profile_id"], purpose or ""), False)
            if step.kind in ("add_to_audience", "remove_from_audience"):
                from touchpoint.automations import manual

                why = manual.problem(self.wh, step.options["audience"])
                if why is None:
                    change = "add" if step.kind == "add_to_audience" else "remove"
                    self.memberships.append((step.options["audience"], r["profile_id"], change))
                self.log(r, step, outcome="done" if why is None else "skipped", reason=why)
            else:
                channels = {"send_email": ["email"], "webhook": ["webhook"], "hand_off": ["webhook", "email"]}
                for offset, channel in enumerate(channels.get(step.kind, ["event"])):
                    self.outbox.append(self._outbox_row(step, step.index + offset, channel, r, ok, purpose))
                self.log(r, step, outcome="queued" if ok else "suppressed")
            self.move(r, self.next[step.index])

    def _outbox_row(
        self, step: Step, index: int, channel: str, r: dict[str, Any], ok: bool, purpose: str | None
    ) -> dict[str, Any]:
        return {
            "automation": self.auto.name,
            "step": index,
            "profile_id": r["profile_id"],
            "occurrence": r["occurrence"],
            "outbox_id": outbox.outbox_id(self.auto.name, index, r["profile_id"], r["occurrence"]),
            "channel": channel,
            "purpose": purpose,
            "status": "pending" if ok else "suppressed",
            "due_at": self.at(r),
            "attempts": 0,
            "last_error": None if ok else f"no consent for {purpose} when the contact reached step {step.index}",
            "payload": None,
            "entered_at": r["entered_at"],
            "created_at": self.now,
            "updated_at": self.now,
            "sent_at": None,
        }

    def timed_wait(self, step: Step, rows: list[dict[str, Any]]) -> None:
        ids = [r["profile_id"] for r in rows]
        zones = recipient_zones(self.wh, ids, default_zone(self.default_timezone)) if step.kind == "wait_until" else {}
        for r in rows:
            since = r["waiting_since"] or self.at(r)
            if r["waiting_since"] is not None:
                until = r["due_at"]
            elif step.kind == "wait":
                until = since + timedelta(seconds=step.seconds)
            else:
                tz = zones[r["profile_id"]]
                until = next_local_time(since, step.options["time"], tz)
            if until <= self.now:
                self.clock[(r["profile_id"], r["occurrence"])] = until
                self.log(r, step, outcome="waited", until=until.isoformat())
                self.move(r, self.next[step.index], until)
            else:
                self.block(r, since, until)

    def wait_for(self, step: Step, rows: list[dict[str, Any]]) -> None:
        from touchpoint.automations.triggers import _matches, _props
        from touchpoint.identity.people import customer_events

        timeout = timedelta(days=int(step.options["timeout_days"]))
        since = {id(r): r["waiting_since"] or self.at(r) for r in rows}
        first = min(since.values())
        e = self.wh.table("events")
        e = e.filter((e.type == "track") & (e.event == step.options["event"]) & (e.timestamp > first))
        ce = customer_events(self.wh, e, name="profile_id")
        ids = sorted({r["profile_id"] for r in rows})
        ce = ce.filter(ce.profile_id.isin(ids) & (ce.timestamp <= ibis.literal(self.now, "timestamp")))
        cols = ce.select("profile_id", "timestamp", properties=ce.properties.cast("string"))
        seen: dict[str, list[datetime]] = defaultdict(list)
        for ev in self.wh.to_arrow(cols.order_by("timestamp")).to_pylist():
            if _matches(_props(ev["properties"]), step.options.get("where") or {}):
                seen[ev["profile_id"]].append(ev["timestamp"])
        for r in rows:
            begun, deadline = since[id(r)], since[id(r)] + timeout
            hit = next((t for t in seen.get(r["profile_id"], []) if begun < t <= deadline), None)
            if hit is not None:
                self.clock[(r["profile_id"], r["occurrence"])] = hit
                self.log(r, step, outcome="event", until=hit.isoformat())
                self.move(r, self.auto.path_start(step, "on_event"), hit)
            elif deadline <= self.now:
                self.clock[(r["profile_id"], r["occurrence"])] = deadline
                self.log(r, step, outcome="timeout", until=deadline.isoformat())
                self.move(r, self.auto.path_start(step, "on_timeout"), deadline)
            else:
                self.block(r, begun, deadline)

    def branch(self, step: Step, rows: list[dict[str, Any]]) -> None:
        from touchpoint.audiences import store as audience_store
        from touchpoint.audiences.compile import compile_members

        restrict = ibis.memtable(
            pa.table({"profile_id": pa.array(sorted({r["profile_id"] for r in rows}), pa.string())})
        )
        expr, _ = compile_members(
            self.wh, step.condition, now=self.now, lookup=audience_store.lookup(self.wh), restrict=restrict
        )
        members = set(self.wh.to_arrow(expr).column("profile_id").to_pylist())
        for r in rows:
            taken = "then" if r["profile_id"] in members else "else"
            self.log(r, step, taken=taken)
            self.move(r, self.auto.path_start(step, taken))

    def split(self, step: Step, rows: list[dict[str, Any]]) -> None:
        for r in rows:
            taken = split_arm(self.auto.name, step, r["profile_id"])
            self.log(r, step, taken=taken)
            self.move(r, self.auto.path_start(step, taken))

    def goal(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Flows whose contact reached the goal leave; the others go on."""
        from touchpoint.automations.delivery import _goal_reached

        if self.auto.goal is None or not rows:
            return rows
        probe = [{**r, "outbox_id": f"{r['profile_id']}\x1f{r['occurrence']}"} for r in rows]
        reached = _goal_reached(self.wh, self.auto, probe, self.now)
        going = []
        for r, p in zip(rows, probe, strict=True):
            if p["outbox_id"] in reached:
                r["status"], r["waiting_since"] = "exited", None
                path = json.loads(r["path"])
                path.append({"step": r["position"], "kind": "goal", "at": self.now.isoformat(), "outcome": "exited"})
                r["path"] = json.dumps(path)
            else:
                going.append(r)
        return going

    def run(self, rows: list[dict[str, Any]]) -> None:
        by_index = {s.index: s for s in self.auto.walk()}
        active = self.goal(rows)
        for _ in range(len(by_index) + 2):
            active = [r for r in active if r["status"] == "active" or r["waiting_since"] is not None]
            groups: dict[int, list[dict[str, Any]]] = defaultdict(list)
            for r in active:
                if r["position"] is not None:
                    groups[int(r["position"])].append(r)
            if not groups:
                return
            before = {id(r): (r["position"], r["status"], r["waiting_since"]) for r in active}
            for index, group in sorted(groups.items()):
                if index not in by_index:  # the definition was replaced and this step is gone: the flow ends
                    for r in group:
                        self.log(r, Step("gone", {}, index=index), outcome="ended: the step no longer exists")
                        self.move(r, None)
                    continue
                step = by_index[index]
                if step.kind in ACTIONS:
                    self.actions(step, group)
                elif step.kind in ("wait", "wait_until"):
                    self.timed_wait(step, group)
                elif step.kind == "wait_for":
                    self.wait_for(step, group)
                elif step.kind == "branch":
                    self.branch(step, group)
                else:
                    self.split(step, group)
            # a flow that is blocked (waiting, unchanged) is done for this pass
            active = [r for r in active if (r["position"], r["status"], r["waiting_since"]) != before[id(r)]]
            active = [r for r in active if r["status"] == "active"]


def split_arm(name: str, step: Step, profile_id: str) -> str:
    """The split arm of a profile: the experiments' sticky hash assignment by the arms' weights."""
    from touchpoint.experiments.assignment import bucket, choose_variant

    return choose_variant(
        bucket(f"automation:{name}:split:{step.index}", profile_id), step.options["arms"], step.options["weights"]
    )


def advance(wh: Warehouse, auto: Automation, now: datetime, *, default_timezone: str = "UTC") -> dict[str, int]:
    """Move every open flow of ``auto`` as far as it can go at ``now``; one transaction records the new
    places, the outbox rows of the actions passed and the audience changes."""
    from touchpoint.automations import manual

    if auto.linear:
        return {}
    rows = _open(wh, auto, now)
    if not rows:
        return {}
    original = {(r["profile_id"], r["occurrence"]): dict(r) for r in rows}
    p = _Pass(wh, auto, now, default_timezone)
    p.run(rows)
    changed = [r for r in rows if r != original[(r["profile_id"], r["occurrence"])]]
    for r in changed:
        r["updated_at"] = now
    with wh.write() as tx:
        if changed:
            tx.upsert(TABLE, to_arrow(changed), key=KEY)
        if p.outbox:
            tx.insert_new(outbox.TABLE, outbox.to_arrow(p.outbox))
        if p.memberships:
            manual.apply(wh, tx, p.memberships, now)
    out: dict[str, int] = defaultdict(int)
    for r in changed:
        out[r["status"]] += 1
    out["outbox"] = sum(1 for r in p.outbox if r["status"] == "pending")
    out["suppressed"] = sum(1 for r in p.outbox if r["status"] == "suppressed")
    return dict(out)
