"""Bounces and spam complaints: over a real SMTP server, a complaint or a hard bounce stops the next marketing
email to the address, a soft bounce does not; the HTTP endpoint and the CLI take the documented shape, a
report delivered twice records once, bad input names the field, and every call is audited with counts only."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from tests.automations.channels import smtp_sink
from tests.automations.shop import WELCOME, email_of, open_shop, profile_of, settings, track
from tests.conftest import run_cli

from touchpoint import keys
from touchpoint.api.app import create_app
from touchpoint.automations import workflow as automations
from touchpoint.errors import InvalidInput
from touchpoint.privacy import bounces, consent
from touchpoint.warehouse import Warehouse


def _round(wh: Warehouse, tmp_path: Path, n: int) -> tuple[set[int], dict[int, str]]:
    """Everybody signs up (again); the welcome automation selects and sends: who got it, and the Message-IDs."""
    track(wh, "Signed Up", list(range(n)))
    automations.evaluate(wh)
    with smtp_sink() as sink:
        automations.deliver(wh, settings(tmp_path, sink.port))
    got = {i: str(sink.to(email_of(i))[0]["Message-ID"]) for i in range(n) if sink.to(email_of(i))}
    return set(got), got


def test_a_complaint_or_a_hard_bounce_stops_the_next_email_and_a_soft_bounce_does_not(tmp_path: Path) -> None:
    wh = open_shop(tmp_path, 4)
    automations.create(wh, WELCOME | {"holdout": 0, "allow_no_holdout": True, "reentry": "every_time"})
    first, ids = _round(wh, tmp_path, 4)
    assert first == {0, 1, 2, 3}
    out = bounces.record(
        wh,
        [
            {"type": "complaint", "email": email_of(0).upper(), "message_id": ids[0]},  # marked as spam
            {"type": "hard_bounce", "email": email_of(1), "message_id": ids[1], "reason": "550 no such user"},
            {"type": "soft_bounce", "email": email_of(2), "message_id": ids[2], "reason": "452 mailbox full"},
        ],
    )
    assert out["counts"] == {"hard_bounce": 1, "soft_bounce": 1, "complaint": 1} and out["recorded"] == 2
    second, _ = _round(wh, tmp_path, 4)
    assert second == {2, 3}  # the automation's own consent check, at selection and at send
    suppressed = automations.outbox_rows(wh, status="suppressed")
    assert {r["profile_id"] for r in suppressed} == {profile_of(wh, 0), profile_of(wh, 1)}
    shown = {p["purpose"]: p for p in consent.show(wh, "u0")["purposes"]}
    assert shown["marketing_email"]["granted"] is False and shown["marketing_email"]["source"] == "complaint"
    assert {p["purpose"]: p for p in consent.show(wh, "u1")["purposes"]}["marketing_email"]["source"] == "bounce"
    # the person signs up again with consent: a later grant lifts the bounce's denial
    consent.set_consent(wh, "u1", "marketing_email", True, source="api")
    third, _ = _round(wh, tmp_path, 4)
    assert third == {1, 2, 3}
    wh.close()


def test_the_endpoint_and_the_cli_take_the_documented_shape(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    wh = open_shop(tmp_path, 2)
    admin = keys.create_api_key(wh, "ops", "admin")
    read = keys.create_api_key(wh, "reader", "read")
    wh.close()
    events: list[dict[str, Any]] = [
        {"type": "complaint", "email": email_of(0), "message_id": "<m1@shop.test>", "time": "2026-03-01T10:00:00Z"},
        {"type": "soft_bounce", "email": email_of(1), "message_id": "<m2@shop.test>"},
    ]
    with TestClient(create_app(settings(tmp_path))) as client:
        h = {"Authorization": f"Bearer {admin}"}
        r = client.post("/v1/email/events", json={"events": events}, headers=h)
        assert r.status_code == 200, r.text
        assert r.json()["counts"] == {"hard_bounce": 0, "soft_bounce": 1, "complaint": 1}
        assert r.json()["recorded"] == 1
        again = client.post("/v1/email/events", json={"events": events}, headers=h)  # the provider retries
        assert again.json()["recorded"] == 0
        bad = client.post("/v1/email/events", json={"events": [{"type": "bounce", "email": "a@b.c"}]}, headers=h)
        assert bad.status_code == 400 and "events[0].type" in bad.json()["error"]["message"]
        refused = client.post("/v1/email/events", json={"events": events}, headers={"Authorization": f"Bearer {read}"})
        assert refused.status_code == 403
        log = client.get("/v1/audit", params={"action": "consent.email_events"}, headers=h).json()["entries"]
    assert [e["outcome"] for e in log] == ["forbidden", "invalid_input", "ok", "ok"]
    assert log[-1]["detail"] == {"complaint": 1, "hard_bounce": 0, "soft_bounce": 1} and log[-1]["rows"] == 1
    assert email_of(0) not in json.dumps(log)  # counts, never addresses

    csv_file = tmp_path / "bounces.csv"
    csv_file.write_text(f"type,email,message_id,time\nhard_bounce,{email_of(1)},<m3@shop.test>,2026-03-02T00:00:00Z\n")
    code, out, err = run_cli(capsys, "privacy", "bounces", "import", str(csv_file), "--data", str(tmp_path), "--json")
    assert code == 0, err
    assert json.loads(out)["counts"]["hard_bounce"] == 1 and json.loads(out)["recorded"] == 1
    with Warehouse.open(f"duckdb://{tmp_path / 'warehouse.duckdb'}") as wh:
        rows = wh.to_arrow(consent.history(wh)).to_pylist()
        denials = sorted((r["source"], r["identifier"], r["proof"]) for r in rows if not r["granted"])
        assert denials == [
            ("bounce", email_of(1), "hard_bounce:<m3@shop.test>"),
            ("complaint", email_of(0), "complaint:<m1@shop.test>"),
        ]


@pytest.mark.parametrize(
    ("item", "field"),
    [
        ({"type": "complaint"}, "events[0].email"),
        ({"type": "complaint", "email": "not-an-address"}, "events[0].email"),
        ({"type": "complaint", "email": "a@b.c", "time": "yesterday"}, "events[0].time"),
        ({"type": "complaint", "email": "a@b.c", "extra": 1}, "unknown field 'extra'"),
    ],
)
def test_bad_reports_name_the_field(item: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidInput, match=field.replace("[", r"\[").replace("]", r"\]")):
        bounces.check([item])
