"""With the collector log a 200 comes before the load, so the sender's consent check first waits for what
was acknowledged (``deliver(acknowledged=...)``, the server's jobs get the log's flush): a denial acknowledged
before the check stops the message, as with the group commit."""

from __future__ import annotations

import json
from pathlib import Path

from touchpoint.automations import workflow
from touchpoint.collect.collector_log import CollectorLog
from touchpoint.collect.normalize import EventRows, utcnow

from .channels import smtp_sink
from .shop import WELCOME, email_of, open_shop, settings, track


def _denial(i: int) -> EventRows:
    rows = EventRows()
    message = {"type": "identify", "userId": f"u{i}", "traits": {"consent_marketing_email": False}}
    rows.add_raw(json.dumps(message).encode(), received_at=utcnow(), source="web", origin="http:identify")
    return rows


def test_a_denial_acknowledged_but_not_loaded_stops_the_message(tmp_path: Path) -> None:
    wh = open_shop(tmp_path, 2)
    workflow.create(wh, WELCOME | {"holdout": 0, "allow_no_holdout": True})
    track(wh, "Signed Up", [0, 1])
    workflow.evaluate(wh)
    with CollectorLog(wh, tmp_path / "log", load_ms=60_000) as log, smtp_sink() as sink:
        log.submit(_denial(9)).result(10)  # the log's first record loads at once, the next waits its interval
        assert log.flush(10)
        log.submit(_denial(0)).result(10)  # acknowledged; the next load is a minute away
        assert log.loaded_up_to == 1
        barrier = lambda: log.flush(10, consent=True)  # noqa: E731  (the server's, api/app.py _barrier)
        assert workflow.deliver(wh, settings(tmp_path, sink.port), acknowledged=barrier) == {"sent": 1, "suppressed": 1}
        assert sink.to(email_of(0)) == [] and len(sink.to(email_of(1))) == 1
    wh.close()


def test_a_sender_that_cannot_see_what_was_acknowledged_stops_and_the_next_run_sends(tmp_path: Path) -> None:
    wh = open_shop(tmp_path, 1)
    workflow.create(wh, WELCOME | {"holdout": 0, "allow_no_holdout": True})
    track(wh, "Signed Up", [0])
    workflow.evaluate(wh)
    with smtp_sink() as sink:
        s = settings(tmp_path, sink.port)
        try:
            workflow.deliver(wh, s, acknowledged=lambda: False)
        except Exception as exc:
            assert "not all loaded" in str(exc)
        else:
            raise AssertionError("the run went on without seeing what was acknowledged")
        assert sink.messages == [] and workflow.outbox_rows(wh, status="sending")
        assert workflow.deliver(wh, s) == {"sent": 1}  # the claimed row is taken again
    wh.close()


def _signed_up(i: int) -> EventRows:
    rows = EventRows()
    message = {"type": "track", "userId": f"u{i}", "event": "Signed Up", "properties": {"plan": "pro"}}
    rows.add_raw(json.dumps(message).encode(), received_at=utcnow(), source="web", origin="http:track")
    return rows


def test_the_sender_waits_for_acknowledged_consent_only(tmp_path: Path) -> None:
    # events that cannot carry consent (most of a stream) do not hold the sender up; a denial is loaded first
    wh = open_shop(tmp_path, 1)
    with CollectorLog(wh, tmp_path / "log", load_ms=60_000) as log:
        log.submit(_signed_up(8)).result(10)  # the log's first record loads at once, the next waits its interval
        assert log.flush(10)
        log.submit(_signed_up(9)).result(10)
        assert log.flush(10, consent=True)  # nothing unloaded says consent: at once, and nothing loaded
        assert log.loaded_up_to == 1
        log.submit(_denial(0)).result(10)
        log.submit(_signed_up(10)).result(10)
        assert log.flush(10, consent=True)  # the denial is loaded (and what was appended before it)
        assert log.loaded_up_to >= 3
    wh.close()
