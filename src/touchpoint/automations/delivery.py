"""The sender: claim due outbox rows, check them again, render, send, record what happened.

One delivery run, under ``Warehouse.exclusive("automations:deliveries")`` (the job's and a command's
runs take turns):

1. **Claim** due rows of active automations (``sending``, attempts + 1), in one transaction with the outcomes
   recorded so far. The run claims again while its messages are in flight; on the live clock each claim takes
   the rows due by then (up to :data:`FRESH_S` after the run started), so a row decided during a run goes out
   with it instead of waiting for the run's end and the next run's first reads.
2. **Check again**, in one query per purpose: consent (a withdrawn ``consent_P`` trait or an unsubscribe
   since the decision suppresses the row), and the goal (a profile that reached it since entering exits).
3. **Render** the step with the profile's traits and predictions (the first attempt's rendering is kept in
   ``payload``, so a retry sends the same thing), **send**, and **record** the outcome: ``sent``; ``retry``
   after capped exponential backoff with jitter, or after the receiver's ``Retry-After``; ``dead`` for a
   permanent refusal or after :data:`~touchpoint.automations.outbox.MAX_ATTEMPTS`.

Messages go out over ``smtp_connections`` threads, each with its own SMTP connection kept for the run (webhooks
likewise), while this thread renders the next ones and records outcomes :data:`RECORD_EVERY` at a time.

Exactly once: a row is decided once (its unique key) and sent by one sender at a time (the claim). A lane
that reads the server's acceptance appends the row to the sender's journal (:mod:`~touchpoint.automations.journal`)
before anything else, and the next run starts by recording the rows the journal names as ``sent``: a sender
killed between the acceptance and the outbox's record re-sends nothing. What a SIGKILL can still re-send is a
message the server accepted in the instant before the kill, before its journal line (at most one per
connection), with the same ``Message-ID`` / ``Idempotency-Key``. Rows claimed but not yet tried when the
sender died are simply sent by the next run. Every claimed row is recorded before the next claim (a claim
takes rows left ``sending``).
"""

from __future__ import annotations

import json
import queue
import threading
from collections import defaultdict
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import ibis
import pyarrow as pa

from touchpoint.automations import actions, channels, consent, journal, outbox, pacing, store, template
from touchpoint.automations.definition import Automation
from touchpoint.errors import ConfigError, TouchpointError, WarehouseError
from touchpoint.warehouse import Warehouse
from touchpoint.warehouse.prepared import joined, listed

if TYPE_CHECKING:
    import ibis.expr.types as ir

    from touchpoint.config import Settings

BATCH = 1000  # rows claimed at once: one claim, one consent query per purpose, one profile read per batch
RECORD_EVERY = 200  # outcomes recorded per transaction (~10 ms whatever its size); the journal covers them meanwhile
IN_FLIGHT = 32  # messages handed to the lanes without an outcome yet
FRESH_S = 2.0  # a run on the live clock also claims the rows decided in its first seconds (see deliver)


def _who(ids: str | ir.Table) -> ir.Table:
    """A builder's profile ids as a one-column table ``tp_pid``: a bound list (:func:`joined`), or (when an id
    holds the separator) the in-memory table of them."""
    return listed(ids, "tp_pid") if isinstance(ids, str) else ids


def _ids(ids: list[str], column: str = "tp_pid") -> ir.Table:
    """``ids`` as a one-column in-memory table to join with: an ``isin`` of hundreds of literals costs Ibis
    ~50 ms to compile, a join with this ~10 ms."""
    return ibis.memtable(pa.table({column: pa.array(ids, pa.string())}))


def _consents(wh: Warehouse, rows: list[dict[str, Any]]) -> dict[tuple[str, str], bool]:
    """``(profile_id, purpose) -> may we`` for the claimed rows, one query per purpose (compiled once per
    process and purpose: :func:`_consent_read`)."""
    by_purpose: dict[str, set[str]] = defaultdict(set)
    for r in rows:
        by_purpose[r["purpose"] or ""].add(r["profile_id"])
    out: dict[tuple[str, str], bool] = {}
    for purpose, ids in by_purpose.items():
        listed_ids = joined(sorted(ids))
        if listed_ids is not None:
            key = (purpose or None, consent.shape(purpose or None))
            table = wh.prepared(_consent_read, listed_ids, consent.now().isoformat(), key=key)
        else:  # an identifier holding the separator: the same check over an in-memory list
            people = ibis.memtable(pa.table({"profile_id": pa.array(sorted(ids), pa.string())}))
            table = wh.to_arrow(consent.with_consent(wh, people, purpose or None))
        out.update({(c["profile_id"], purpose): bool(c["consent"]) for c in table.to_pylist()})
    return out


def _consent_read(wh: Warehouse, key: tuple[str | None, Any], ids: str, at: str) -> ir.Table:
    """``profile_id, consent`` for the profiles ``ids`` (:func:`joined`) and the purpose in ``key``, at ``at``."""
    people = listed(ids, "profile_id")
    when = ibis.literal(at, "string").cast("timestamp")
    return consent.with_consent(wh, people, key[0], at=when)


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
    who = _ids(ids)
    ce = ce.filter(ce.timestamp <= ibis.literal(now, "timestamp"))
    ce = ce.semi_join(who, ce.profile_id == who.tp_pid)
    seen: dict[str, list[datetime]] = defaultdict(list)
    for g in wh.to_arrow(ce.select("profile_id", "timestamp")).to_pylist():
        seen[g["profile_id"]].append(g["timestamp"])
    window = timedelta(days=auto.goal.within_days)
    return {
        r["outbox_id"]
        for r in rows
        if any(r["entered_at"] < t <= r["entered_at"] + window for t in seen.get(r["profile_id"], []))
    }


def _profile_rows(wh: Warehouse, ids: str | ir.Table) -> ir.Table:
    p = wh.table("profiles")
    who = _who(ids)
    return p.semi_join(who, p.profile_id == who.tp_pid)


def _trait_rows(wh: Warehouse, ids: str | ir.Table) -> ir.Table:
    tr = wh.table("profile_traits")
    who = _who(ids)
    return tr.semi_join(who, tr.profile_id == who.tp_pid).select("profile_id", "trait", "value")


def _prediction_rows(wh: Warehouse, ids: str | ir.Table) -> ir.Table:
    pr = wh.table("predictions")
    who = _who(ids)
    return pr.semi_join(who, pr.customer_id == who.tp_pid)


def _profiles(wh: Warehouse, ids: list[str]) -> dict[str, dict[str, Any]]:
    """Each profile's template context: ``traits`` (traits and profile columns) and ``predictions`` (three
    reads, each compiled once per process: the list of ids is one bound value)."""
    out: dict[str, dict[str, Any]] = {i: {"traits": {}, "predictions": {}} for i in ids}
    listed_ids = joined(ids)

    def read(build: Any) -> list[dict[str, Any]]:
        if listed_ids is not None:
            return list(wh.prepared(build, listed_ids).to_pylist())
        return list(wh.to_arrow(build(wh, _ids(ids))).to_pylist())  # an id holding the separator

    for row in read(_profile_rows):
        out[row["profile_id"]]["traits"].update({k: v for k, v in row.items() if v is not None})
    for row in read(_trait_rows):
        try:
            value = json.loads(row["value"]) if row["value"] is not None else None
        except json.JSONDecodeError:
            value = row["value"]
        out[row["profile_id"]]["traits"][row["trait"]] = value
    for row in read(_prediction_rows):
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


def deliver(
    wh: Warehouse,
    settings: Settings,
    *,
    now: datetime | None = None,
    limit: int = 10_000,
    acknowledged: Callable[[], bool] | None = None,
) -> dict[str, int]:
    """Send every due outbox row (up to ``limit``); returns counts by the outcome recorded.

    ``acknowledged`` (the server's collector): called before each batch's consent check, it waits until every
    event acknowledged so far that may carry consent is in the warehouse, so a consent denial acknowledged
    before the check stops the message as with the group commit, where a 200 means committed (the collector
    log acknowledges before its load). When it cannot (False) the run stops; its claimed rows are taken again
    by the next run."""
    at = now or store.now()
    active = {a["name"]: store.of(a) for a in store.list_all(wh, status="active")}
    if not active:
        return {}
    key = consent.signing_key(settings)
    base = settings.resolved_public_url()
    pacer = pacing.Pacer(wh, settings, at)
    with wh.exclusive("automations:deliveries"):
        path = journal.path_for(settings.data_dir, wh.url)
        journal.settle(wh, path, at)  # a run killed after sending and before recording: those were sent
        lanes = _Lanes(settings, key, journal.Journal(path), at)
        book = _Book(wh, lanes, pacer, at)
        try:
            done, first = 0, True
            while done < limit:
                # The next batch is claimed while the previous one is still being sent, so the lanes do not wait
                # for its reads and writes. Only the run's first claim takes rows left 'sending' (by a run that
                # died); the later ones leave this run's own in flight alone. On the live clock a claim also
                # takes the rows decided since the run started (up to FRESH_S after it): a row decided a moment
                # after the start is sent by this run, not after it and the next run's first reads.
                due = at if now is not None else min(store.now(), at + timedelta(seconds=FRESH_S))
                with wh.write():  # the outcomes in so far and the next claim: one turn of the main lane, one commit
                    book.record_ready()
                    rows = outbox.claim(
                        wh, due, limit=min(BATCH, limit - done), automations=sorted(active), orphans=first
                    )
                first = False
                if not rows and book.in_flight:  # nothing new yet: finish what is in flight, then look again
                    book.drain()
                    continue
                if not rows:
                    break
                done += len(rows)
                if acknowledged is not None and not acknowledged():
                    raise WarehouseError(
                        "the events acknowledged before this delivery run are not all loaded, so consent "
                        "cannot be checked against them",
                        hint="the run is retried; the collector log's loader is behind (see /v1/metrics)",
                    )
                allowed = _consents(wh, rows)
                exited: set[str] = set()
                for name, auto in active.items():
                    exited |= _goal_reached(wh, auto, [r for r in rows if r["automation"] == name], at)
                contexts = _profiles(wh, sorted({r["profile_id"] for r in rows}))
                if pacer.active:
                    pacer.prepare(rows, contexts)
                for row in rows:
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
                            pacer.note_sent(row)  # counted towards the caps of the rows after it
                            book.send(row, ready)
                            continue
                    book.settle(row)
            book.drain()
        except BaseException:
            lanes.stopping = True  # what was handed over and not sent stays 'sending', for the next run
            raise
        finally:
            lanes.close()
    if lanes.config_error is not None:  # the job run fails loudly; the rows wait in 'retry' with the reason
        raise ConfigError(lanes.config_error.message, hint=lanes.config_error.hint)
    return dict(book.totals)


class _Book:
    """The sender's bookkeeping: hands messages to the lanes (at most :data:`IN_FLIGHT` at a time, so caps
    see the outcomes of the messages before), takes their outcomes as they come, and records them in the
    outbox :data:`RECORD_EVERY` at a time; the journal has each accepted message meanwhile."""

    def __init__(self, wh: Warehouse, lanes: _Lanes, pacer: pacing.Pacer, at: datetime) -> None:
        self.wh, self.lanes, self.pacer, self.at = wh, lanes, pacer, at
        self.in_flight = 0  # handed to a lane, no outcome yet
        self.ready: list[dict[str, Any]] = []  # rows with their outcome, to record
        self.totals: dict[str, int] = defaultdict(int)

    def send(self, row: dict[str, Any], message: Any) -> None:
        self._collect(wait_for=self.in_flight - IN_FLIGHT + 1)
        self.lanes.submit(row, message)
        self.in_flight += 1
        if len(self.ready) >= RECORD_EVERY:
            self._record()

    def settle(self, row: dict[str, Any]) -> None:
        """A row decided without sending (suppressed, exited, held, capped, waiting): recorded with the next group."""
        self.ready.append(row)
        if len(self.ready) >= RECORD_EVERY:
            self._record()

    def drain(self) -> None:
        """Wait for every message handed over, record every outcome, and empty the journal."""
        self._collect(wait_for=self.in_flight)
        self._record()
        self.lanes.journal.clear()

    def record_ready(self) -> None:
        """Record the outcomes in so far, without waiting for the messages still in flight (the journal keeps
        every accepted message until :meth:`drain` empties it, with nothing in flight)."""
        self._record()

    def _collect(self, wait_for: int) -> None:
        for row, outcome in self.lanes.outcomes(max(0, wait_for)):
            self.in_flight -= 1
            row.update(_after(outcome, row, self.at))
            if row["status"] != "sent":
                self.pacer.unnote_sent(row)
            self.ready.append(row)

    def _record(self) -> None:
        self._collect(wait_for=0)
        if not self.ready:
            return
        for row in self.ready:
            self.totals[row["status"]] += 1
        outbox.record(self.wh, self.ready)
        for row in self.ready:
            if row["status"] == "sent":
                self.pacer.recorded(row)  # now counted by the pacer's reads of the outbox
        self.ready = []


class _Lanes:
    """``smtp_connections`` threads, each with its own SMTP connection (the one an earlier run left open, or
    opened at its first email; reopened when the server hangs up; left open for the next run), taking messages
    and webhooks from one queue: a thread waits for the server while the others send and the caller renders
    and records."""

    def __init__(self, settings: Settings, key: bytes, journal_: journal.Journal, at: datetime) -> None:
        self.settings = settings
        self.key = key
        self.journal = journal_
        self.at = at
        self.width = max(1, int(settings.smtp_connections))
        self.config: channels.SMTPConfig | None = None
        self.config_error: ConfigError | None = None
        self.jobs: queue.SimpleQueue[tuple[dict[str, Any], Any] | None] = queue.SimpleQueue()
        self.done: queue.SimpleQueue[tuple[dict[str, Any], channels.Outcome]] = queue.SimpleQueue()
        self.threads: list[threading.Thread] = []
        self.stopping = False

    def email_config(self) -> channels.SMTPConfig | None:
        if self.config is None and self.config_error is None:
            try:
                self.config = channels.SMTPConfig.from_settings(self.settings)
            except ConfigError as exc:  # recorded on the rows, retried, raised after the run
                self.config_error = exc
        return self.config

    def submit(self, row: dict[str, Any], message: Any) -> None:
        """Hand over an email (a message or an envelope) or a webhook ``(url, body, idempotency key)``."""
        if not self.threads:
            for j in range(self.width):
                thread = threading.Thread(target=self._lane, name=f"touchpoint-send-{j}", daemon=True)
                thread.start()
                self.threads.append(thread)
        self.jobs.put((row, message))

    def finished(self) -> int:
        return self.done.qsize()

    def outcomes(self, wait_for: int) -> list[tuple[dict[str, Any], channels.Outcome]]:
        """The outcomes in: at least ``wait_for`` of them (waiting for the lanes), and all that are in."""
        out: list[tuple[dict[str, Any], channels.Outcome]] = []
        while len(out) < wait_for:
            try:
                out.append(self.done.get(timeout=1.0))
            except queue.Empty:
                if not any(t.is_alive() for t in self.threads):
                    raise RuntimeError("the sending threads stopped with messages outstanding") from None
        while True:
            try:
                out.append(self.done.get_nowait())
            except queue.Empty:
                return out

    def _lane(self) -> None:
        smtp: channels.SMTPSender | None = None
        try:
            while (job := self.jobs.get()) is not None:
                row, message = job
                if self.stopping:  # the run failed: what was not sent stays 'sending', for the next run
                    continue
                try:
                    if isinstance(message, tuple):
                        url, body, idempotency_key = message
                        outcome = channels.post_webhook(url, body, key=self.key, idempotency_key=idempotency_key)
                    else:
                        assert self.config is not None
                        smtp = smtp or channels.borrow(self.config)
                        outcome = smtp.send(message)
                except Exception as exc:  # a bug, not the receiver: retried later, and said on the row
                    outcome = channels.Outcome("retry", f"the sender failed: {type(exc).__name__}: {exc}"[:500])
                if outcome.status == "sent":
                    self.journal.accepted(row, self.at)  # before anything else: a SIGKILL now re-sends nothing
                self.done.put((row, outcome))
        finally:
            if smtp is not None and not self.stopping:
                channels.give_back(smtp)  # open for the next run
            elif smtp is not None:
                smtp.close()

    def close(self) -> None:
        """Stop the threads (after the messages handed over, unless the run failed) and close the connections."""
        for _ in self.threads:
            self.jobs.put(None)
        for thread in self.threads:
            thread.join()
        self.journal.close()


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
    """What to send for ``row``: an email (flattened: :func:`channels.envelope`) or ``(url, body, idempotency
    key)``; or a dict of the row's new fields when there is nothing to send (``{"retry": why}`` when email is
    not configured; a ``set_trait`` step's event, written to the event log here)."""
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
    msg = channels.build_email(
        lanes.config,
        to=payload["to"],
        subject=payload["subject"],
        text=payload["text"],
        html=payload["html"],
        outbox_id=row["outbox_id"],
        unsubscribe_url=payload["unsubscribe_url"],
    )
    return channels.envelope(msg)  # flattened here, so the lanes only talk to the server


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
