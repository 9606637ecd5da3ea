"""Webhook automations against a real HTTP receiver: signed JSON with a stable idempotency key; 5xx retried,
429 honours Retry-After, 400 dead-lettered and replayed; sent once however often the sender runs."""

from __future__ import annotations

import hashlib
import hmac
from datetime import timedelta
from pathlib import Path
from typing import Any

from touchpoint.automations import outbox, store, workflow
from touchpoint.automations.channels import SIGNATURE_HEADER

from .channels import WebhookReceiver
from .shop import SIGNING_KEY, open_shop, profile_of, settings, track


def _hook(url: str, **extra: Any) -> dict[str, Any]:
    return {
        "name": "handoff",
        "trigger": {"event": "Demo Requested"},
        "holdout": 0,
        "allow_no_holdout": True,
        "steps": [{"webhook": {"url": url, "purpose": "transactional", **extra}}],
    }


def _verify(received: Any) -> None:
    t, v1 = (part.split("=", 1)[1] for part in received.headers[SIGNATURE_HEADER].split(","))
    expected = hmac.new(SIGNING_KEY.encode(), f"{t}.".encode() + received.body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(v1, expected)


def test_a_signed_post_with_an_idempotency_key_arrives_once_and_5xx_is_retried(tmp_path: Path) -> None:
    wh = open_shop(tmp_path, 2)
    with WebhookReceiver() as hook:
        hook.script["/lead"] = [(503, {}), (500, {})]
        body = {"lead": "{{ traits.email }}", "name": "{{ traits.first_name }}", "tags": ["hot", "{{ automation }}"]}
        workflow.create(wh, _hook(f"{hook.url}/lead", body=body))
        track(wh, "Demo Requested", [1])
        s = settings(tmp_path)
        now = store.now()
        assert workflow.run(wh, s, now=now)["delivered"] == {"retry": 1}
        assert workflow.deliver(wh, s, now=now) == {}  # not due yet: backoff
        assert workflow.deliver(wh, s, now=now + timedelta(minutes=2)) == {"retry": 1}
        assert workflow.deliver(wh, s, now=now + timedelta(minutes=5)) == {"sent": 1}
        for _ in range(2):
            assert workflow.run(wh, s, now=now + timedelta(minutes=6))["delivered"] == {}
        got = hook.at("/lead")
    assert len(got) == 3
    keys = {r.headers["Idempotency-Key"] for r in got}
    assert keys == {outbox.outbox_id("handoff", 0, profile_of(wh, 1), "once")}
    assert {r.body for r in got} == {got[0].body}  # a retry sends what the first attempt rendered
    for r in got:
        _verify(r)
        assert r.headers["Content-Type"] == "application/json"
    assert hook.bodies("/lead")[0] == {"lead": "u1@people.test", "name": "Name1", "tags": ["hot", "handoff"]}


def test_429_waits_for_retry_after(tmp_path: Path) -> None:
    wh = open_shop(tmp_path, 1)
    with WebhookReceiver() as hook:
        hook.script["/busy"] = [(429, {"Retry-After": "600"})]
        workflow.create(wh, _hook(f"{hook.url}/busy"))
        track(wh, "Demo Requested", [0])
        s = settings(tmp_path)
        now = store.now()
        assert workflow.run(wh, s, now=now)["delivered"] == {"retry": 1}
        row = workflow.outbox_rows(wh)[0]
        assert row["due_at"] == now + timedelta(seconds=600) and "429" in row["last_error"]
        assert workflow.deliver(wh, s, now=now + timedelta(seconds=599)) == {}
        assert workflow.deliver(wh, s, now=now + timedelta(seconds=600)) == {"sent": 1}
        body = hook.bodies("/busy")[-1]
    assert body["automation"] == "handoff" and body["traits"]["email"] == "u0@people.test"


def test_400_is_dead_lettered_listed_and_replayed(tmp_path: Path, capsys: Any) -> None:
    from tests.conftest import run_cli

    wh = open_shop(tmp_path, 1)
    with WebhookReceiver() as hook:
        hook.script["/strict"] = [(400, {})]
        workflow.create(wh, _hook(f"{hook.url}/strict"))
        track(wh, "Demo Requested", [0])
        s = settings(tmp_path)
        assert workflow.run(wh, s)["delivered"] == {"dead": 1}
        assert workflow.deliver(wh, s, now=store.now() + timedelta(days=1)) == {}  # dead stays dead
        wh.close()
        code, out, _ = run_cli(capsys, "automations", "outbox", "--failed", "--data", str(tmp_path), "--json")
        assert code == 0
        import json

        failed = json.loads(out)["outbox"]
        assert len(failed) == 1 and "HTTP 400" in failed[0]["last_error"]
        code, out, _ = run_cli(
            capsys, "automations", "replay", "--id", failed[0]["outbox_id"], "--data", str(tmp_path), "--json"
        )
        assert code == 0 and json.loads(out) == {"replayed": 1}
        code, out, err = run_cli(capsys, "automations", "run", "--data", str(tmp_path), "--json")
        assert code == 0, err
        assert json.loads(out)["delivered"] == {"sent": 1}
        assert len(hook.at("/strict")) == 2
