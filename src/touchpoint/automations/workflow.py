"""What the CLI, the HTTP API and the job runner share: every automation operation once.

>>> from touchpoint.warehouse import Warehouse
>>> from touchpoint.config import Settings
>>> wh = Warehouse.open("duckdb://:memory:")
>>> d = {"name": "welcome", "trigger": {"event": "Signed Up"}, "holdout": 0.1,
...      "goal": {"event": "Order Completed", "within_days": 14},
...      "steps": [{"send_email": {"subject": "Welcome {{ traits.first_name }}", "text": "Hello!",
...                                "purpose": "marketing_email"}}]}
>>> create(wh, d)["automation"]["version"]
1
>>> run(wh, Settings(automations_signing_key="k" * 16))["decided"][0]["entered"]
0
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from touchpoint.automations import consent, delivery, outbox, pacing, store, triggers
from touchpoint.automations.lift import lift, split
from touchpoint.automations.lift import programme_lift as _programme_lift
from touchpoint.automations.runs import runs
from touchpoint.errors import InvalidInput
from touchpoint.warehouse import Warehouse

if TYPE_CHECKING:
    from touchpoint.config import Settings

__all__ = [
    "create",
    "deliver",
    "evaluate",
    "lift",
    "list_automations",
    "pause",
    "resume",
    "run",
    "runs",
    "show",
    "split",
]
MAX_DEFINITION_BYTES = 256 * 1024


def load_definition(text: str, source: str = "the definition") -> Any:
    """JSON text as a definition object, with an error naming ``source`` when it is not JSON."""
    if len(text.encode()) > MAX_DEFINITION_BYTES:
        raise InvalidInput(f"{source} is larger than {MAX_DEFINITION_BYTES // 1024} KB", hint="shorten the templates")
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidInput(f"{source} is not valid JSON: {exc}", hint="see docs/automations.md for examples") from None
    except RecursionError:
        raise InvalidInput(f"{source} is nested too deeply to read", hint="flatten it") from None


def create(wh: Warehouse, definition: Any, *, replace: bool = False, now: datetime | None = None) -> dict[str, Any]:
    """Save an automation (a new version with ``replace``); it acts on triggers received from ``now`` (default:
    the present) on."""
    return {"automation": store.save(wh, definition, replace=replace, at=now)}


def list_automations(wh: Warehouse) -> list[dict[str, Any]]:
    out = []
    for a in store.list_all(wh):
        c = outbox.counts(wh, a["name"])
        d = a["definition"]
        trigger = d["trigger"]
        out.append(
            {
                "name": a["name"],
                "status": a["status"],
                "version": a["version"],
                "trigger": describe_trigger(trigger),
                "steps": len(d["steps"]),
                "holdout": d.get("holdout", 0.1),
                "sent": c.get("sent", 0),
                "pending": c.get("pending", 0) + c.get("held", 0) + c.get("retry", 0) + c.get("sending", 0),
                "dead": c.get("dead", 0),
            }
        )
    return out


def describe_trigger(trigger: dict[str, Any]) -> str:
    """A trigger in a few words (the list's column).

    >>> describe_trigger({"before": "next_purchase_at", "days": 5})
    '5 days before next_purchase_at'
    """
    if "event" in trigger:
        return str(trigger["event"])
    if "score" in trigger:
        return f"score {trigger['score']} enters {trigger['band']}"
    if "schedule" in trigger:
        s = trigger["schedule"]
        return f"every {s['every']}" if "every" in s else f"cron {s['cron']}" + f" to audience {s['audience']}"
    for direction in ("before", "after"):
        if direction in trigger:
            return f"{trigger['days']} days {direction} {trigger[direction]}"
    return f"audience {trigger.get('audience')} ({trigger.get('on', 'enter')})"


def show(wh: Warehouse, name: str) -> dict[str, Any]:
    """A saved automation with its trigger watermark, entries per arm and outbox counts per status."""
    from touchpoint.warehouse import schema

    out = store.get(wh, name)
    out["state"] = triggers._state(wh, name)
    t = wh.table(schema.AUTOMATION_ENTRIES.name)
    t = t.filter(t.automation == name)
    arms = wh.to_arrow(t.group_by("arm").agg(n=t.count())).to_pylist()
    out["entries"] = {r["arm"]: int(r["n"]) for r in arms}
    out["outbox"] = outbox.counts(wh, name)
    return out


def pause(wh: Warehouse, name: str) -> dict[str, Any]:
    return store.set_status(wh, name, "paused")


def resume(wh: Warehouse, name: str) -> dict[str, Any]:
    return store.set_status(wh, name, "active")


def evaluate(
    wh: Warehouse,
    *,
    now: datetime | None = None,
    settings: Settings | None = None,
    clock: bool = False,
    events_only: bool = False,
) -> list[dict[str, Any]]:
    """Evaluate every automation's trigger since its watermark (entries and outbox rows), and advance the
    flows that wait, branch or split; ``clock``: only the automations the clock moves (date and schedule
    triggers, flows with state), what the ``flows`` job does between events; ``events_only``: only those with
    an event trigger (what a commit of events alone can move: the fast lane). The settings give the default
    time zone and the global control group's share (``automations_global_control``)."""
    tz = settings.default_timezone if settings is not None else "UTC"
    control = pacing.control_share(settings)
    return triggers.evaluate_all(
        wh, now=now, default_timezone=tz, clock=clock, control=control, events_only=events_only
    )


def deliver(
    wh: Warehouse,
    settings: Settings,
    *,
    now: datetime | None = None,
    acknowledged: Callable[[], bool] | None = None,
) -> dict[str, int]:
    """Send every due outbox row; counts by the outcome recorded (``acknowledged``: see
    :func:`touchpoint.automations.delivery.deliver`)."""
    return delivery.deliver(wh, settings, now=now, acknowledged=acknowledged)


def run(wh: Warehouse, settings: Settings, *, now: datetime | None = None, events_only: bool = False) -> dict[str, Any]:
    """Decide, then send what is due (``touchpoint automations run``; in the server the ``automations`` job
    decides and the ``deliveries`` job sends; ``events_only``: see :func:`evaluate`). ``timing``: each step's
    wall seconds and this thread's CPU seconds (in the server, the difference is mostly the wait for the
    interpreter lock the other threads hold)."""
    wall, cpu = time.perf_counter(), time.thread_time()
    decided = evaluate(wh, now=now, settings=settings, events_only=events_only)
    decide_wall, decide_cpu = time.perf_counter() - wall, time.thread_time() - cpu
    delivered = deliver(wh, settings, now=now)
    timing = {
        "decide_s": round(decide_wall, 3),
        "decide_cpu_s": round(decide_cpu, 3),
        "send_s": round(time.perf_counter() - wall - decide_wall, 3),
        "send_cpu_s": round(time.thread_time() - cpu - decide_cpu, 3),
    }
    return {"decided": decided, "delivered": delivered, "timing": timing}


def programme_lift(
    wh: Warehouse,
    settings: Settings,
    *,
    goal: str | None = None,
    within_days: int | None = None,
    now: datetime | None = None,
    engine: str = "sequential",
    alpha: float = 0.05,
    relative: bool = True,
) -> dict[str, Any]:
    """The whole programme's lift: the global control group versus everyone else who entered an automation."""
    return _programme_lift(
        wh,
        pacing.control_share(settings),
        goal=goal,
        within_days=within_days,
        now=now,
        engine=engine,
        alpha=alpha,
        relative=relative,
    )


def outbox_rows(
    wh: Warehouse, *, automation: str | None = None, failed: bool = False, status: str | None = None, limit: int = 100
) -> list[dict[str, Any]]:
    if automation is not None:
        store.get(wh, automation)
    return outbox.listing(wh, automation=automation, status="dead" if failed else status, limit=limit)


def replay(
    wh: Warehouse, *, automation: str | None = None, outbox_ids: list[str] | None = None, now: datetime | None = None
) -> dict[str, Any]:
    """Put dead-lettered rows back in the queue; the next delivery sends them (with their original key)."""
    if automation is not None:
        store.get(wh, automation)
    return {"replayed": outbox.replay(wh, now or store.now(), automation=automation, outbox_ids=outbox_ids)}


def test(wh: Warehouse, settings: Settings, name: str, profile_id: str, *, to: str | None = None) -> dict[str, Any]:
    """Render every step for one profile; with ``to``, send the emails there (nothing is recorded)."""
    if to is not None and "@" not in to:
        raise InvalidInput(f"--to {to!r} is not an email address", hint="e.g. --to me@example.com")
    return delivery.preview(wh, settings, store.load(wh, name), profile_id, to=to)


def unsubscribe(wh: Warehouse, settings: Settings, token: str) -> dict[str, Any]:
    """Record the unsubscribe an email's link carries (the HTTP endpoint's one call)."""
    return consent.unsubscribe(wh, consent.signing_key(settings), token)
