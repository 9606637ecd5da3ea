"""A delivery run leaves its SMTP connections open for the next run (no handshake, STARTTLS or login before
the first message of each run), and reconnects when the server dropped one meanwhile."""

from __future__ import annotations

from pathlib import Path

import pytest

from touchpoint.automations import channels, workflow
from touchpoint.warehouse import Warehouse

from .channels import smtp_sink
from .shop import WELCOME, email_of, open_shop, settings, track


def _shop(tmp_path: Path, n: int) -> Warehouse:
    wh = open_shop(tmp_path, n)
    workflow.create(wh, WELCOME | {"holdout": 0, "allow_no_holdout": True})
    return wh


def test_the_next_run_reuses_the_connection_the_last_one_left_open(tmp_path: Path) -> None:
    wh, people = _shop(tmp_path, 3), [0, 1, 2]
    with smtp_sink() as sink:
        s = settings(tmp_path, sink.port).model_copy(update={"smtp_connections": 1})
        for i in people:  # three runs, one message each
            track(wh, "Signed Up", [i])
            workflow.evaluate(wh)
            assert workflow.deliver(wh, s) == {"sent": 1}
        assert [len(sink.to(email_of(i))) for i in people] == [1, 1, 1]
        assert sink.connections == 1
    wh.close()


def test_a_connection_idle_too_long_is_not_reused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(channels, "KEEP_IDLE", 0.0)
    wh, people = _shop(tmp_path, 2), [0, 1]
    with smtp_sink() as sink:
        s = settings(tmp_path, sink.port).model_copy(update={"smtp_connections": 1})
        for i in people:
            track(wh, "Signed Up", [i])
            workflow.evaluate(wh)
            assert workflow.deliver(wh, s) == {"sent": 1}
        assert sink.connections == 2
    wh.close()


def test_a_server_that_dropped_the_kept_connection_gets_a_new_one(tmp_path: Path) -> None:
    wh = _shop(tmp_path, 2)
    with smtp_sink() as first:
        port = first.port
        s = settings(tmp_path, port).model_copy(update={"smtp_connections": 1})
        track(wh, "Signed Up", [0])
        workflow.evaluate(wh)
        assert workflow.deliver(wh, s) == {"sent": 1}
    with smtp_sink(port=port) as second:  # the server restarted: the kept connection is dead
        track(wh, "Signed Up", [1])
        workflow.evaluate(wh)
        assert workflow.deliver(wh, s) == {"sent": 1}
        assert len(second.to(email_of(1))) == 1 and second.connections == 1
    wh.close()
