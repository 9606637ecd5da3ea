"""The automations step of ``touchpoint demo``: a replenishment reminder and a hot-lead hand-off, sent for
real to a local SMTP sink and a local CRM webhook that the step starts, with the reminder's lift measured by
its holdout and printed next to the simulator's true lift.

* **replenish**: an email five days before each customer's predicted next purchase (``next_purchase_at``
  from the CLV step), with a holdout of 30%, its goal an order within 14 days;
* **hot-lead-handoff**: a lead who enters the lead score's ``hot`` band is handed to sales: a signed JSON
  webhook to the CRM and an email to the owner with the score's explanation and the timeline. Sales
  hand-offs are operational, not marketing: it runs without a holdout (``allow_no_holdout``).

Both are saved a day before the end of the simulated period and run as the server's jobs would, every four
simulated days (the jobs run every minute; a reminder due five days ahead is never missed at that stride),
for the four weeks after it. What a reminder does is the simulator's: a customer still alive
orders within 14 days with the chance their purchase process gives (``1 - exp(-14 lambda)``), and a reminder
makes one who would not have ordered order anyway with the chance :data:`REMINDER_EFFECT`, if it reaches them
(their ``marketing_email`` consent holds; the others are entered, and not emailed). Each entrant's two
potential outcomes are drawn, the one of their arm is written to the event log as an ``Order Completed``, and
the true lift is the mean of the entrants' potential outcomes: so the measured lift has a truth to cover. The
lift is the fixed-horizon (frequentist) analysis after the last entrant's goal window, over everyone who
entered (intention to treat).

Both are paused at the end of the step, since the SMTP sink and the CRM webhook stop with it: `touchpoint serve`
after the demo does not try to send to them (`touchpoint automations resume NAME` with ``smtp_url`` set).
"""

from __future__ import annotations

import datetime as dt
import json
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq

from touchpoint.warehouse import Warehouse

REMINDER_EFFECT = 0.3  # the share of alive customers who would not have ordered and do after the reminder
GOAL_DAYS = 14
RUN_DAYS = 28
STRIDE_DAYS = 4  # the jobs run every minute; the demo strides, and the 5-day lead means nobody is missed
HOLDOUT = 0.3
SEED = 7
SENDER = "shop@demo.example"
OWNER = "sales@demo.example"


def definitions(crm_url: str) -> list[dict[str, Any]]:
    return [
        {
            "name": "replenish",
            "description": "the demo shop's reminder, five days before the predicted next purchase",
            "trigger": {"before": "next_purchase_at", "days": 5},
            "holdout": HOLDOUT,
            "goal": {"event": "Order Completed", "within_days": GOAL_DAYS},
            "steps": [
                {
                    "send_email": {
                        "subject": "Running low? Your next order is one click away",
                        "text": "Hello {{ traits.first_name or 'there' }},\n\nit is nearly time to reorder.",
                        "purpose": "marketing_email",
                    }
                }
            ],
        },
        {
            "name": "hot-lead-handoff",
            "description": "hot leads handed to sales: the CRM's webhook and an email to the owner",
            "trigger": {"score": "lead", "band": "hot"},
            "holdout": 0,
            "allow_no_holdout": True,
            "steps": [{"hand_off": {"url": crm_url, "owner": OWNER, "score": "lead", "timeline_days": 30}}],
        },
    ]


class _Sink:
    """An SMTP server on 127.0.0.1 that keeps each message's recipients, subject and Message-ID."""

    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []
        self._lock = threading.Lock()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        from email import message_from_bytes

        msg = message_from_bytes(envelope.original_content or envelope.content)
        with self._lock:
            self.messages.append(
                {"to": list(envelope.rcpt_tos), "subject": msg["Subject"], "message_id": msg["Message-ID"]}
            )
        return "250 OK"


@contextmanager
def _smtp_sink() -> Iterator[tuple[str, _Sink]]:
    from aiosmtpd.controller import Controller

    with socket.socket() as probe:  # a free port (aiosmtpd checks its own start by connecting to it)
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    sink = _Sink()
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield f"smtp://127.0.0.1:{port}", sink
    finally:
        controller.stop()


@contextmanager
def _crm() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """A CRM's webhook on 127.0.0.1: each POST's JSON and idempotency key."""
    received: list[dict[str, Any]] = []

    class Hook(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            received.append({"key": self.headers.get("Idempotency-Key"), "body": json.loads(body)})
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hooks/lead", received
    finally:
        server.shutdown()
        server.server_close()


def _outcomes(
    wh: Warehouse, entries: list[dict[str, Any]], out_dir: Path, rng: np.random.Generator
) -> tuple[list[dict[str, Any]], dict[str, float]]:
    """Each entrant's order (or none) from the arm they were in; the truth: mean potential outcomes."""
    customers = pq.read_table(out_dir / "customers.parquet", columns=["user_id", "lam", "alive_at_end"]).to_pylist()
    latent = {c["user_id"]: c for c in customers}
    from touchpoint.privacy.consent import with_consent

    people = wh.table("profiles").select("profile_id", "user_id")
    people = people.filter(people.profile_id.isin([e["profile_id"] for e in entries]))
    rows = wh.to_arrow(with_consent(wh, people, "marketing_email", column="reachable")).to_pylist()
    users = {r["profile_id"]: r["user_id"] for r in rows}
    reachable = {r["profile_id"] for r in rows if r["reachable"]}  # the reminder reaches only them
    orders: list[dict[str, Any]] = []
    p0s, p1s = [], []
    for e in entries:
        c = latent.get(users.get(e["profile_id"]) or "")
        if c is None:
            continue
        alive, lam = bool(c["alive_at_end"]), float(c["lam"])
        effect = REMINDER_EFFECT if e["profile_id"] in reachable else 0.0
        p0 = alive * (1 - np.exp(-GOAL_DAYS * lam))
        p1 = p0 + alive * np.exp(-GOAL_DAYS * lam) * effect
        p0s.append(p0)
        p1s.append(p1)
        wait = rng.exponential(1 / lam) if alive and lam > 0 else np.inf
        y0 = wait <= GOAL_DAYS
        y1 = y0 or (alive and rng.random() < effect)
        if not (y1 if e["arm"] == "treated" else y0):
            continue
        days = wait if y0 else rng.uniform(0.5, 7.0)
        at = e["entered_at"] + dt.timedelta(days=float(days))
        orders.append(
            {
                "type": "track",
                "event": "Order Completed",
                "userId": c["user_id"],
                "messageId": f"demo-replenish-{e['profile_id']}-{e['occurrence']}",
                "timestamp": at.isoformat() + "Z",
                "properties": {"order_id": f"rem-{e['profile_id'][-10:]}", "revenue": 42.0, "currency": "EUR"},
            }
        )
    m0, m1 = float(np.mean(p0s)) if p0s else 0.0, float(np.mean(p1s)) if p1s else 0.0
    relative = m1 / m0 - 1 if m0 else 0.0
    return orders, {"control_rate": m0, "treated_rate": m1, "lift_absolute": m1 - m0, "lift_relative": relative}


def run_demo(wh: Warehouse, truth: dict[str, Any], out_dir: Path) -> dict[str, Any]:
    from touchpoint import identity
    from touchpoint.automations import lift, workflow
    from touchpoint.collect.store import write_messages
    from touchpoint.config import Settings

    end = dt.datetime.fromisoformat(truth["period"]["end"]) - dt.timedelta(seconds=1)  # "end" is exclusive
    with _smtp_sink() as (smtp_url, sink), _crm() as (crm_url, crm):
        settings = Settings(data_dir=out_dir.parent, smtp_url=smtp_url, smtp_sender=SENDER)
        for definition in definitions(crm_url):
            workflow.create(wh, definition, replace=True, now=end - dt.timedelta(days=1))
        for day in range(STRIDE_DAYS, RUN_DAYS + 1, STRIDE_DAYS):  # as the jobs would: decide, then send
            workflow.run(wh, settings, now=end + dt.timedelta(days=day))
        entries = wh.query(
            "SELECT profile_id, occurrence, arm, entered_at FROM automation_entries WHERE automation = 'replenish'"
        ).to_pylist()
        orders, true = _outcomes(wh, entries, out_dir, np.random.default_rng(SEED))
        if orders:
            write_messages(wh, orders, source="demo-shop")
            identity.update(wh)
        last = max((e["entered_at"] for e in entries), default=end)
        measured = lift.lift(wh, "replenish", now=last + dt.timedelta(days=GOAL_DAYS, seconds=1), engine="frequentist")
        sent = wh.query(
            "SELECT automation, status, count(*) AS n FROM automation_outbox GROUP BY 1, 2 ORDER BY 1, 2"
        ).to_pylist()
        received = list(sink.messages)
        hooks = list(crm)
        for definition in definitions(crm_url):  # the sink and the CRM stop with this step: nothing more to send
            workflow.pause(wh, definition["name"])
        held_out = wh.query(
            "SELECT p.email FROM automation_entries e JOIN profiles p USING (profile_id) "
            "WHERE e.automation = 'replenish' AND e.arm = 'holdout' AND p.email IS NOT NULL"
        ).to_pylist()
        hot = wh.query(
            "SELECT count(*) AS n FROM automation_entries WHERE automation = 'hot-lead-handoff'"
        ).to_pylist()[0]["n"]
    arms = {a: sum(1 for e in entries if e["arm"] == a) for a in ("treated", "holdout")}
    to_customers = [m for m in received if OWNER not in m["to"]]
    held_out_addresses = {row["email"].lower() for row in held_out}
    return {
        "replenish": {
            "entered": arms,
            "emails_received": len(to_customers),
            "distinct_message_ids": len({m["message_id"] for m in to_customers}),
            "held_out_emailed": sum(1 for m in to_customers if {a.lower() for a in m["to"]} & held_out_addresses),
            "lift": measured,
            "true": true,
        },
        "hot_leads": {
            "entered": hot,
            "handed_off": len(hooks),
            "distinct_idempotency_keys": len({h["key"] for h in hooks}),
            "owner_emails": sum(1 for m in received if OWNER in m["to"]),
        },
        "outbox": sent,
    }


def headline(s: dict[str, Any]) -> str:
    """The line ``touchpoint demo`` prints for this step."""
    r, t, h = s["replenish"], s["replenish"]["true"], s["hot_leads"]
    est = r["lift"].get("lift") or {}
    shown = (
        f"{est['estimate']:+.0%} [{est['ci_low']:+.0%}, {est['ci_high']:+.0%}]"
        if est.get("estimate") is not None
        else r["lift"].get("verdict", "n/a")
    )
    return (
        f"automations: replenishment reminder to {r['entered']['treated']:,} ({r['entered']['holdout']:,} held "
        f"out), {r['emails_received']:,} emails at the SMTP sink; lift on reorders within {GOAL_DAYS} days "
        f"{shown} (true {t['lift_relative']:+.0%}); hot leads handed to sales: {h['handed_off']} (webhook and "
        "owner email)"
    )
