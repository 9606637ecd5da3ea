"""What the newer action steps send: a lead handed to sales, a trait set through the event log.

**hand_off** (``{"hand_off": {"url": ..., "owner": "sales@shop.example", "score": "lead"}}``) sends two
messages from one step: a JSON webhook shaped for a CRM (its step number) and an email to the owner
(number + 1) with the same facts. The lead document::

    {"lead": {"profile_id", "email", "user_id", "first_name", "last_name", "company", ...traits},
     "score": {"name", "points", "band", "stage", "rules": [{"rule", "kind", "points"}, ...]},
     "timeline": [{"timestamp", "type", "event", "properties"}, ...],   # the last `timeline_days`, newest first
     "automation", "handed_off_at"}

The score's explanation is the scores module's :func:`~touchpoint.audiences.scores.explain`; the timeline is
the profile's (:mod:`touchpoint.profiles.timeline`).

**set_trait** becomes an ``identify`` event written to the event log like any other (source ``automation``),
with ``messageId`` ``automation-<outbox id>``: the profiles job builds the trait from it, and writing it again
(a resend after a crash) stores nothing new, since the collector keeps one event per messageId.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

from touchpoint.automations import channels, template
from touchpoint.automations.definition import Automation, Step
from touchpoint.errors import TouchpointError
from touchpoint.warehouse import Warehouse

TIMELINE_LIMIT = 50


def lead(
    wh: Warehouse, auto: Automation, step: Step, row: dict[str, Any], ctx: dict[str, Any], now: datetime
) -> dict[str, Any]:
    """The lead document a hand-off sends (to the CRM and, as text, to the owner)."""
    from touchpoint.audiences import scores
    from touchpoint.profiles.timeline import timeline

    pid = row["profile_id"]
    try:
        explained = scores.explain(wh, step.options["score"], pid, now=now)
        score: dict[str, Any] = {
            "name": explained["score"],
            "points": explained["points"],
            "band": explained["band"],
            "stage": explained["stage"],
            "rules": [{k: r[k] for k in ("rule", "kind", "points")} for r in explained["rules"] if r["points"]],
        }
    except TouchpointError as exc:  # a score deleted since the automation was saved: say so, hand off anyway
        score = {"name": step.options["score"], "error": exc.message}
    since = now - timedelta(days=int(step.options.get("timeline_days", 30)))
    try:
        events = timeline(wh, pid, limit=TIMELINE_LIMIT)["events"]
    except TouchpointError:
        events = []
    recent = [
        {k: e.get(k) for k in ("timestamp", "type", "event", "properties")}
        for e in events
        if e.get("timestamp") is not None and e["timestamp"] >= since
    ]
    return json.loads(
        json.dumps(
            {
                "lead": {"profile_id": pid, **ctx["traits"]},
                "score": score,
                "timeline": recent,
                "automation": auto.name,
                "handed_off_at": now,
            },
            default=str,
        )
    )


def _lead_text(doc: dict[str, Any]) -> str:
    person = doc["lead"]
    score = doc["score"]
    lines = [
        f"A lead for you: {person.get('first_name') or ''} {person.get('last_name') or ''}".rstrip(),
        f"Email: {person.get('email') or '-'}   Profile: {person['profile_id']}",
        "",
    ]
    if "error" in score:
        lines.append(f"Score {score['name']}: {score['error']}")
    else:
        lines.append(f"Score {score['name']}: {score['points']:g} points, band {score['band']}, stage {score['stage']}")
        lines += [f"  {r['points']:+g}  {r['rule']} ({r['kind']})" for r in score["rules"]]
    lines += ["", f"Recent activity ({len(doc['timeline'])} events):"]
    for e in doc["timeline"]:
        lines.append(f"  {e['timestamp']}  {e['event'] or e['type']}")
    return "\n".join(lines) + "\n"


def render(
    wh: Warehouse,
    auto: Automation,
    step: Step,
    row: dict[str, Any],
    ctx: dict[str, Any],
    context: dict[str, Any],
    now: datetime,
) -> dict[str, Any]:
    """The payload of an outbox row of a hand-off or a set_trait step (kept in the row like every payload)."""
    if step.kind == "hand_off":
        doc = lead(wh, auto, step, row, ctx, now)
        if int(row["step"]) == step.index:  # the CRM's webhook
            return {"url": step.options["url"], "body": doc}
        name = doc["lead"].get("email") or row["profile_id"]
        return {
            "to": step.options["owner"],
            "subject": f"Lead: {name} ({doc['score'].get('band') or 'scored'})",
            "text": _lead_text(doc) + f"\nFull lead as JSON:\n{json.dumps(doc, indent=2, sort_keys=True)}\n",
            "html": None,
            "unsubscribe_url": context["unsubscribe_url"],
        }
    if step.kind == "set_trait":
        traits = {
            k: template.render(v, context) if isinstance(v, str) else v for k, v in step.options["traits"].items()
        }
        user_id = ctx["traits"].get("user_id")
        message: dict[str, Any] = {
            "type": "identify",
            "traits": traits,
            "messageId": f"automation-{row['outbox_id']}",
            "context": {"automation": {"name": auto.name, "step": int(row["step"]), "occurrence": row["occurrence"]}},
        }
        if user_id:
            message["userId"] = user_id
        else:
            message["anonymousId"] = _anonymous_id(wh, row["profile_id"])
        return {"event": message}
    raise ValueError(f"no payload for a {step.kind} step")  # pragma: no cover - the definition allows none


def _anonymous_id(wh: Warehouse, profile_id: str) -> str | None:
    n = wh.table("identity_nodes")
    rows = wh.to_arrow(
        n.filter((n.profile_id == profile_id) & (n.id_type == "anonymous_id")).select("id_value").limit(1)
    ).to_pylist()
    return rows[0]["id_value"] if rows else None


def write_event(wh: Warehouse, payload: dict[str, Any]) -> channels.Outcome:
    """Store a set_trait step's identify event in the event log (source ``automation``), once per messageId."""
    from touchpoint.collect.store import write_messages

    message = payload["event"]
    if not message.get("userId") and not message.get("anonymousId"):
        return channels.Outcome("dead", "the profile has no user id or anonymous id to set a trait on")
    result = write_messages(wh, [message], source="automation")
    if result.rejected:
        return channels.Outcome("dead", "the event log refused the identify event (see the quarantine)")
    return channels.Outcome("sent")
