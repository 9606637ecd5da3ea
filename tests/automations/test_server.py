"""Exactly once through the running system: a burst of sign-ups posted to `touchpoint serve`, the server
SIGKILLed while its job sends, restarted; the SMTP sink is the witness. Every treated contact's message
arrives under one Message-ID (a resend after the crash carries the same one, and the journal leaves at most
one message per connection to resend); held-out contacts get nothing."""

from __future__ import annotations

import time
from collections import defaultdict
from pathlib import Path

import httpx
import pytest
from tests.conftest import Server, free_port

from touchpoint import keys
from touchpoint.automations import store, triggers, workflow
from touchpoint.config import Settings
from touchpoint.warehouse import Warehouse

from .channels import smtp_sink
from .shop import WELCOME, email_of

pytestmark = pytest.mark.slow


def _wait(condition: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def test_sigkill_during_a_burst_then_restart_sends_each_message_once(tmp_path: Path) -> None:
    n = 600
    with smtp_sink(delay=0.02) as sink:  # ~10 s to send them all: the kill lands mid-burst, however busy
        cwd = tmp_path / "cwd"
        cwd.mkdir()
        (cwd / "touchpoint.toml").write_text(
            f'smtp_url = "smtp://127.0.0.1:{sink.port}"\nsmtp_sender = "Shop <news@shop.test>"\n'
        )
        data = tmp_path / "data"
        wh = Warehouse.open(f"duckdb://{data / 'warehouse.duckdb'}")
        write_key = keys.create_source(wh, "web")
        read = {"Authorization": f"Bearer {keys.create_api_key(wh, 'reader', 'read')}"}
        workflow.create(wh, WELCOME | {"holdout": 0.2})
        wh.close()
        server = Server(data, free_port(), write_key, cwd=cwd, jobs=("profiles", "automations", "deliveries"))
        server.start()
        try:
            with httpx.Client(base_url=server.url, auth=(write_key, ""), timeout=60) as c:
                for lo in range(0, n, 100):
                    batch = []
                    for i in range(lo, lo + 100):
                        traits = {"email": email_of(i), "first_name": f"N{i}", "consent_marketing_email": True}
                        batch.append({"type": "identify", "userId": f"u{i}", "traits": traits})
                        batch.append({"type": "track", "userId": f"u{i}", "event": "Signed Up"})
                    assert c.post("/v1/batch", json={"batch": batch}).status_code == 200
            _wait(lambda: len(sink.messages) >= 30, 180, "the first messages")
            server.kill()
            at_kill = len(sink.messages)
            server.start()

            def settled() -> bool:
                r = httpx.get(f"{server.url}/v1/automations/welcome", headers=read, timeout=30)
                shown = r.json()
                waiting = sum(shown["outbox"].get(s, 0) for s in ("pending", "sending", "retry"))
                return sum(shown["entries"].values()) == n and waiting == 0

            _wait(settled, 240, "every entry to be decided and sent")
        finally:
            server.stop()
    wh = Warehouse.open(f"duckdb://{data / 'warehouse.duckdb'}", read_only=True)
    try:
        auto = store.load(wh, "welcome")
        p = wh.table("profiles")
        ids = {r["user_id"]: r["profile_id"] for r in wh.to_arrow(p.select("user_id", "profile_id")).to_pylist()}
        counts = workflow.show(wh, "welcome")["outbox"]
    finally:
        wh.close()
    held = {i for i in range(n) if triggers.in_holdout(auto, ids[f"u{i}"])}
    assert 0 < len(held) < n // 2
    ids_per_to: dict[str, set[str]] = defaultdict(set)
    raw: dict[str, int] = defaultdict(int)
    for m in sink.messages:
        ids_per_to[m["To"]].add(m["Message-ID"])
        raw[m["To"]] += 1
    for i in range(n):
        if i in held:
            assert email_of(i) not in raw, f"u{i} is held out and was contacted"
        else:
            assert len(ids_per_to[email_of(i)]) == 1, f"u{i} got {len(ids_per_to[email_of(i)])} distinct messages"
    resent = sum(raw.values()) - len(raw)  # only one accepted in the instant before the kill, per connection
    assert resent <= Settings().smtp_connections, f"{resent} messages were resent after one crash"
    assert counts == {"sent": n - len(held)}
    assert at_kill < len(sink.messages), "the restarted server sent the rest"
