"""The sender claims its next batch while the previous one is still being sent: its own rows in flight are never
taken again (each message once), and a frequency cap still counts the messages in flight."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from touchpoint.automations import delivery, store, workflow

from .channels import smtp_sink
from .shop import WELCOME, email_of, open_shop, settings, track


def _email(subject: str) -> dict[str, object]:
    return {"send_email": {"subject": subject, "text": "Hi", "purpose": "marketing_email"}}


def test_rows_claimed_while_others_are_in_flight_are_each_sent_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(delivery, "BATCH", 1)  # a claim per row: every later claim happens with rows in flight
    wh = open_shop(tmp_path, 4)
    workflow.create(wh, WELCOME | {"holdout": 0, "allow_no_holdout": True})
    track(wh, "Signed Up", [0, 1, 2, 3])
    workflow.evaluate(wh)
    with smtp_sink(delay=0.3) as sink:  # a slow provider: each message is in flight for 0.3 s
        assert workflow.deliver(wh, settings(tmp_path, sink.port)) == {"sent": 4}
        assert [len(sink.to(email_of(i))) for i in range(4)] == [1, 1, 1, 1]
    assert {r["status"] for r in workflow.outbox_rows(wh)} == {"sent"}
    wh.close()


def test_a_frequency_cap_counts_the_messages_still_in_flight(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(delivery, "BATCH", 1)
    wh = open_shop(tmp_path, 1)
    steps = [_email("one"), _email("two"), _email("three")]
    workflow.create(wh, WELCOME | {"holdout": 0, "allow_no_holdout": True, "steps": steps})
    track(wh, "Signed Up", [0])
    workflow.evaluate(wh)
    with smtp_sink(delay=0.3) as sink:
        s = settings(tmp_path, sink.port).model_copy(update={"automations_frequency_caps": ["email:2/7d"]})
        assert workflow.deliver(wh, s) == {"sent": 2, "capped": 1}
        received = {m["Subject"] for m in sink.to(email_of(0))}
    capped = workflow.outbox_rows(wh, status="capped")
    assert len(received) == 2 and len(capped) == 1  # the steps are due at once: which two go is the claim's order
    assert {"one", "two", "three"} - received == {steps[capped[0]["step"]]["send_email"]["subject"]}  # type: ignore[index]
    wh.close()


def test_a_run_also_sends_the_rows_decided_in_its_first_seconds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On the live clock each claim takes the rows due by then (up to FRESH_S after the run started): a row decided
    a moment after the run began goes out with this run, not after it; one decided later waits for the next."""
    wh = open_shop(tmp_path, 3)
    workflow.create(wh, WELCOME | {"holdout": 0, "allow_no_holdout": True})
    base = datetime.now(UTC).replace(tzinfo=None) + timedelta(minutes=1)
    for i, later in enumerate([0.0, 1.0, delivery.FRESH_S + 1.0]):
        track(wh, "Signed Up", [i])
        workflow.evaluate(wh, now=base + timedelta(seconds=later))
    ticks = iter([base])  # the run starts at `base`; every later look at the clock is 1.5 s on
    monkeypatch.setattr(store, "now", lambda: next(ticks, base + timedelta(seconds=1.5)))
    with smtp_sink() as sink:
        assert workflow.deliver(wh, settings(tmp_path, sink.port)) == {"sent": 2}
        assert [len(sink.to(email_of(i))) for i in range(3)] == [1, 1, 0]
    assert sorted(r["status"] for r in workflow.outbox_rows(wh)) == ["pending", "sent", "sent"]
    wh.close()
