"""The sender: claim due outbox rows, check them again, render, send, record what happened.

One delivery run, under ``Warehouse.exclusive("automations:deliveries")`` (the job's and a command's
runs take turns):

1. **Claim** due rows of active automations (``sending``, attempts + 1), in one transaction.
2. **Check again**, in one query per purpose: consent (a withdrawn ``consent_P`` trait or an unsubscribe
   since the decision suppresses the row), and the goal (a profile that reached it since entering exits).
3. **Render** the step with the profile's traits and predictions (the first attempt's rendering is kept in
   ``payload``, so a retry sends the same thing), **send**, and **record** the outcome: ``sent``; ``retry``
   after capped exponential backoff with jitter, or after the receiver's ``Retry-After``; ``dead`` for a
   permanent refusal or after :data:`~touchpoint.automations.outbox.MAX_ATTEMPTS`.

Messages go out in groups of :data:`RECORD_EVERY` over ``smtp_connections`` SMTP connections side by side
(webhooks likewise), and each group's outcomes are recorded in one transaction before the next group is sent.

Exactly once: a row is decided once (its unique key) and sent by one sender at a time (the claim), and
outcomes are recorded every :data:`RECORD_EVERY` messages. A sender killed after the provider accepted
messages and before their outcomes were recorded leaves those rows ``sending``; the next sender (after a
restart) sends them again with the same ``Message-ID`` / ``Idempotency-Key``, so they arrive once where the
receiver deduplicates by that key (webhooks that honour the key do; most SMTP relays do not). That window is
at most :data:`RECORD_EVERY` messages per crash (a commit per message would shrink it to one, at ~10 ms a
message). Rows claimed but not yet tried when the sender died are simply sent by the next one.
"""

from __future__ import annotations

import json
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import ibis
import pyarrow as pa

from touchpoint.automations import actions, channels, consent, outbox, pacing, store, template
from touchpoint.automations.definition import Automation
from touchpoint.errors import ConfigError, TouchpointError
from touchpoint.warehouse import Warehouse

if TYPE_CHECKING:
    from touchpoint.config import Settings

BATCH = 500  # rows claimed at once
RECORD_EVERY = 20  # outcomes recorded per transaction: the most a crash can re-send (a commit costs ~10 ms)


def _consents(wh: Warehouse, rows: list[dict[str, Any]]) -> dict[tuple[str, str], bool]:
    """``(profile_id, purpose) -> may we`` for the claimed rows, one query per purpose."""
    by_purpose: dict[str, set[str]] = defaultdict(set)
    for r in rows:
        by_purpose[r["purpose"] or ""].add(r["profile_id"])
    out: dict[tuple[str, str], bool] = {}
    for purpose, ids in by_purpose.items():
        people = ibis.memtable(pa.table({"profile_id": pa.array(sorted(ids), pa.string())}))
        checked = wh.to_arrow(consent.with_consent(wh, people, purpose or None)).to_pylist()
        out.update({(c["profile_id"], purpose): bool(c["consent"]) for c in checked})
    return out


def _goal_reached(wh: Warehouse, auto: Automation, rows: list[dict[str, Any]], now: datetime) -> set[str]:
    """The outbox ids whose profile reached the goal after entering (within the goal's window)."""
    if auto.goal is None or not rows:
        return set()
    from touchpoint.identity.people import customer_events

    ids = sorted({r["profile_id"] for r in rows})
    first = min(r["entered_at"] for r in rows)
    e = wh.table("events")
    e = e.filter((e.type == "track") & (e.event == auto.goal.event) & (e.timestamp > ibis.literal(first, "timestamp")))
    ce = customer_events(wh, e, name="profile_id")
    ce = ce.filter(ce.profile_id.isin(ids) & (ce.timestamp <= ibis.literal(now, "timestamp")))
    seen: dict[str, list[datetime]] = defaultdict(list)
    for g in wh.to_arrow(ce.select("profile_id", "timestamp")).to_pylist():
        seen[g["profile_id"]].append(g["timestamp"])
    window = timedelta(days=auto.goal.within_days)
    return {
        r["outbox_id"]
        for r in rows
        if any(r["entered_at"] < t <= r["entered_at"] + window for t in seen.get(r["profile_id"], []))
    }


def _profiles(wh: Warehouse, ids: list[str]) -> dict[str, dict[str, Any]]:
    """Each profile's template context: ``traits`` (traits and profile columns) and ``predictions``."""
    out: dict[str, dict[str, Any]] = {i: {"traits": {}, "predictions": {}} for i in ids}
    p = wh.table("profiles")
    for row in wh.to_arrow(p.filter(p.profile_id.isin(ids))).to_pylist():
        out[row["profile_id"]]["traits"].update({k: v for k, v in row.items() if v is not None})
    tr = wh.table("profile_traits")
    for row in wh.to_arrow(tr.filter(tr.profile_id.isin(ids)).select("profile_id", "trait", "value")).to_pylist():
        try:
            value = json.loads(row["value"]) if row["value"] is not None else None
        except json.JSONDecodeError:
            value = row["value"]
        out[row["profile_id"]]["traits"][row["trait"]] = value
    pr = wh.table("predictions")
    for row in wh.to_arrow(pr.filter(pr.customer_id.isin(ids))).to_pylist():
        out[row["customer_id"]]["predictions"] = {k: v for k, v in row.items() if k != "customer_id"}
    return out


def _render(
    auto: Automation,
    row: dict[str, Any],
    ctx: dict[str, Any],
    unsubscribe_url: str,
    wh: Warehouse | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    step = auto.step(int(row["step"]))
    context = {
        **ctx,
        "profile_id": row["profile_id"],
        "automation": auto.name,
        "unsubscribe_url": unsubscribe_url,
    }
    if step.kind in ("hand_off", "set_trait"):  # the newer actions (automations.actions)
        assert wh is not None
        return actions.render(wh, auto, step, {"outbox_id": "preview", **row}, ctx, context, now or store.now())
    if step.kind == "send_email":
        to = ctx["traits"].get("email")
        html = step.options.get("html")
        return {
            "to": to if isinstance(to, str) and "@" in to else None,
            "subject": template.render(step.options["subject"], context),
            "text": template.render(step.options["text"], context) + f"\n\nUnsubscribe: {unsubscribe_url}\n",
            "html": None if html is None else template.render(html, context, html=True),
            "unsubscribe_url": unsubscribe_url,
        }
    body = step.options.get("body")
    payload = (
        template.render_tree(body, context)
        if body is not None
        else {
            "automation": auto.name,
            "step": int(row["step"]),
            "profile_id": row["profile_id"],
            "occurrence": row["occurrence"],
            "entered_at": row["entered_at"],
            "traits": ctx["traits"],
            "predictions": ctx["predictions"],
        }
    )
    return {"url": step.options["url"], "body": json.loads(json.dumps(payload, default=str))}


def _after(outcome: channels.Outcome, row: dict[str, Any], now: datetime) -> dict[str, Any]:
    attempts = int(row["attempts"])
    if outcome.status == "sent":
        return {"status": "sent", "sent_at": now, "last_error": None}
    if outcome.status == "retry" and attempts < outbox.MAX_ATTEMPTS:
        wait = outcome.retry_after if outcome.retry_after is not None else outbox.backoff(attempts)
        return {"status": "retry", "due_at": now + timedelta(seconds=wait), "last_error": outcome.error}
    why = outcome.error if outcome.status == "dead" else f"gave up after {attempts} attempts: {outcome.error}"
    return {"status": "dead", "last_error": why}


def deliver(wh: Warehouse, settings: Settings, *, now: datetime | None = None, limit: int = 10_000) -> dict[str, int]:
    """Send every due outbox row (up to ``limit``); returns counts by the outcome recorded."""
    at = now or store.now()
    totals: dict[str, int] = defaultdict(int)
    active = {a["name"]: store.load(wh, a["name"]) for a in store.list_all(wh, status="active")}
    if not active:
        return {}
    key = consent.signing_key(settings)
    base = settings.resolved_public_url()
    pacer = pacing.Pacer(wh, settings, at)
    lanes = _Lanes(settings)
    with wh.exclusive("automations:deliveries"):
        try:
            done = 0
            while done < limit:
                rows = outbox.claim(wh, at, limit=min(BATCH, limit - done), automations=sorted(active))
                if not rows:
                    break
                done += len(rows)
                allowed = _consents(wh, rows)
                exited: set[str] = set()
                for name, auto in active.items():
                    exited |= _goal_reached(wh, auto, [r for r in rows if r["automation"] == name], at)
                contexts = _profiles(wh, sorted({r["profile_id"] for r in rows}))
                if pacer.active:
                    pacer.prepare(rows, contexts)
                for lo in range(0, len(rows), RECORD_EVERY):  # a crash re-sends at most these (same Message-ID)
                    chunk = rows[lo : lo + RECORD_EVERY]
                    sends: list[tuple[dict[str, Any], Any]] = []
                    for row in chunk:
                        row["updated_at"] = at
                        if not allowed.get((row["profile_id"], row["purpose"] or ""), False):
                            row.update(status="suppressed", last_error=f"no consent for {row['purpose']} at send time")
                        elif row["outbox_id"] in exited:
                            row.update(status="exited", last_error="reached the goal before this step")
                        elif pacer.active and (paced := pacer.check(row)) is not None:  # held, capped, control
                            row.update(paced)
                        else:
                            auto, ctx = active[row["automation"]], contexts[row["profile_id"]]
                            ready = _prepare(auto, row, ctx, lanes, key, base, wh, at)
                            if isinstance(ready, dict) and "retry" in ready:
                                row.update(_after(channels.Outcome("retry", ready["retry"]), row, at))
                            elif isinstance(ready, dict):
                                row.update(ready)
                            else:
                                sends.append((row, ready))
                                pacer.note_sent(row)  # counted towards the caps of the rows after it
                    for row, outcome in lanes.send(sends, key):
                        row.update(_after(outcome, row, at))
                        if row["status"] != "sent":
                            pacer.unnote_sent(row)
                    for row in chunk:
                        totals[row["status"]] += 1
                    outbox.record(wh, chunk)
        finally:
            lanes.close()
    if lanes.config_error is not None:  # the job run fails loudly; the rows wait in 'retry' with the reason
        raise ConfigError(lanes.config_error.message, hint=lanes.config_error.hint)
    return dict(totals)


class _Lanes:
    """``smtp_connections`` SMTP connections sending side by side (each a thread while it waits for the server),
    and webhooks likewise: a group of messages costs the slowest lane's round trips, not the sum of them."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.width = max(1, int(settings.smtp_connections))
        self.smtp: list[channels.SMTPSender] = []
        self.config: channels.SMTPConfig | None = None
        self.config_error: ConfigError | None = None
        self.pool: ThreadPoolExecutor | None = None

    def email_config(self) -> channels.SMTPConfig | None:
        if self.config is None and self.config_error is None:
            try:
                self.config = channels.SMTPConfig.from_settings(self.settings)
            except ConfigError as exc:  # recorded on the rows, retried, raised after the run
                self.config_error = exc
        return self.config

    def send(self, sends: list[tuple[dict[str, Any], Any]], key: bytes) -> list[tuple[dict[str, Any], Any]]:
        """Send each prepared message; ``(row, Outcome)`` in the order given."""
        if not sends:
            return []
        if self.pool is None:
            self.pool = ThreadPoolExecutor(self.width, thread_name_prefix="touchpoint-send")
        emails = [(i, m) for i, (_, m) in enumerate(sends) if not isinstance(m, tuple)]
        hooks = [(i, m) for i, (_, m) in enumerate(sends) if isinstance(m, tuple)]
        assert self.config is not None or not emails
        while len(self.smtp) < min(self.width, len(emails)):
            assert self.config is not None
            self.smtp.append(channels.SMTPSender(self.config))
        outcomes: dict[int, channels.Outcome] = {}

        def lane(j: int) -> None:
            for i, msg in emails[j :: len(self.smtp)]:
                outcomes[i] = self.smtp[j].send(msg)

        def hook(i: int, job: tuple[str, Any, str]) -> None:
            url, body, idempotency_key = job
            outcomes[i] = channels.post_webhook(url, body, key=key, idempotency_key=idempotency_key)

        futures = [self.pool.submit(lane, j) for j in range(len(self.smtp) if emails else 0)]
        futures += [self.pool.submit(hook, i, job) for i, job in hooks]
        for f in futures:
            f.result()
        return [(row, outcomes[i]) for i, (row, _) in enumerate(sends)]

    def close(self) -> None:
        for smtp in self.smtp:
            smtp.close()
        if self.pool is not None:
            self.pool.shutdown()


def _prepare(
    auto: Automation,
    row: dict[str, Any],
    ctx: dict[str, Any],
    lanes: _Lanes,
    key: bytes,
    base: str,
    wh: Warehouse,
    now: datetime,
) -> Any:
    """What to send for ``row``: an email message or ``(url, body, idempotency key)``; or a dict of the row's
    new fields when there is nothing to send (``{"retry": why}`` when email is not configured; a ``set_trait``
    step's event, written to the event log here)."""
    if row["channel"] == "email" and lanes.email_config() is None:
        return {"retry": lanes.config_error.message if lanes.config_error else "no SMTP server"}
    try:
        if row["payload"] is None:
            token = consent.make_token(key, row["profile_id"], row["purpose"] or "transactional")
            payload = _render(auto, row, ctx, f"{base}/v1/unsubscribe?token={token}", wh, now)
            row["payload"] = json.dumps(payload, sort_keys=True)
        else:
            payload = json.loads(row["payload"])
    except TouchpointError as exc:
        return {"status": "dead", "last_error": f"cannot render step {row['step']}: {exc.message}"}
    if row["channel"] == "event":  # a set_trait step: an identify event in the event log
        return _after(actions.write_event(wh, payload), row, now)
    if row["channel"] != "email":
        return (payload["url"], payload["body"], row["outbox_id"])
    if not payload.get("to"):
        return {"status": "suppressed", "last_error": "the profile has no email address"}
    assert lanes.config is not None
    return channels.build_email(
        lanes.config,
        to=payload["to"],
        subject=payload["subject"],
        text=payload["text"],
        html=payload["html"],
        outbox_id=row["outbox_id"],
        unsubscribe_url=payload["unsubscribe_url"],
    )


def preview(
    wh: Warehouse, settings: Settings, auto: Automation, profile_id: str, *, to: str | None = None
) -> dict[str, Any]:
    """Every action step rendered for one profile, as it would be sent (``touchpoint automations test``).

    With ``to``, the email steps are sent to that address (subject prefixed ``[test]``), outside the outbox:
    nothing is recorded, consent is not checked, and webhooks are rendered but never called.
    """
    contexts = _profiles(wh, [profile_id])
    if not contexts[profile_id]["traits"]:
        from touchpoint.errors import NotFound

        raise NotFound(f"no profile {profile_id!r}", hint="find one with `touchpoint profiles list`")
    key = consent.signing_key(settings)
    steps = []
    smtp: channels.SMTPSender | None = None
    try:
        for index, step, delay in auto.actions():
            row = {"step": index, "profile_id": profile_id, "occurrence": "test", "entered_at": store.now()}
            token = consent.make_token(key, profile_id, step.purpose or "transactional")
            payload = _render(
                auto,
                row,
                contexts[profile_id],
                f"{settings.resolved_public_url()}/v1/unsubscribe?token={token}",
                wh,
            )
            out: dict[str, Any] = {"step": index, "kind": step.kind, "after_seconds": delay, "rendered": payload}
            if to is not None and step.kind == "send_email":
                smtp = smtp or channels.SMTPSender(channels.SMTPConfig.from_settings(settings))
                msg = channels.build_email(
                    smtp.config,
                    to=to,
                    subject="[test] " + payload["subject"],
                    text=payload["text"],
                    html=payload["html"],
                    outbox_id=outbox.outbox_id(auto.name, index, profile_id, f"test-{store.now().isoformat()}"),
                    unsubscribe_url=payload["unsubscribe_url"],
                )
                result = smtp.send(msg)
                out["sent_to"], out["outcome"] = to, {"status": result.status, "error": result.error}
            steps.append(out)
    finally:
        if smtp is not None:
            smtp.close()
    return {"automation": auto.name, "profile_id": profile_id, "steps": steps}
