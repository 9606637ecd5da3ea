"""Consent enforced where people are acted on: an automation over real SMTP and an audience export never
reach a person who denied the purpose, also when the denial arrives between selection and send; the
unsubscribes of before migration 9 become denials; events whose analytics consent is denied are dropped
or excluded as configured."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from tests.automations.channels import smtp_sink
from tests.automations.shop import WELCOME, email_of, profile_of, settings, track

from touchpoint.audiences import workflow as audiences
from touchpoint.automations import workflow as automations
from touchpoint.collect.store import write_messages
from touchpoint.config import override_settings
from touchpoint.errors import InvalidDefinition, InvalidInput
from touchpoint.privacy import consent
from touchpoint.profiles.workflow import update
from touchpoint.warehouse import Warehouse, schema
from touchpoint.warehouse.migrations import migrate

N = 8
LATER = datetime(2099, 1, 1)


def _said(i: int, granted: bool, **extra: Any) -> dict[str, Any]:
    props = {"purpose": "marketing_email", "granted": granted}
    return {"type": "track", "userId": f"u{i}", "event": "Consent Updated", "properties": props, **extra}


def _shop(tmp_path: Path) -> Warehouse:
    """u0..u7 with an email and a country; their marketing_email consent given through every path."""
    wh = Warehouse.open(f"duckdb://{tmp_path / 'warehouse.duckdb'}")
    people = [
        {
            "type": "identify",
            "userId": f"u{i}",
            "traits": {"email": email_of(i), "first_name": f"N{i}", "country": "SE"},
        }
        for i in range(N)
    ]
    write_messages(wh, people)
    update(wh)
    write_messages(
        wh,
        [
            _said(0, True),  # the documented event
            {"type": "page", "userId": "u1", "context": {"consent": {"categoryPreferences": {"Email": True}}}},
            _said(3, True),
            _said(5, True),
            _said(6, True),
            _said(7, True),
            # u4 never said: marketing_email is opt-in
        ],
    )
    consent.set_consent(wh, "u2", "marketing_email", True)  # the API's path
    consent.set_consent(wh, email_of(3), "marketing_email", False, source="cli")  # u3 withdrew (by email)
    consent.set_consent(wh, "u6", "marketing_email", False, valid_from=LATER)  # u6's denial holds only from 2099
    return wh  # no profile rebuild needed: consent counts once its identifier is known


def test_an_automation_never_emails_a_person_who_denied_even_between_selection_and_send(tmp_path: Path) -> None:
    wh = _shop(tmp_path)
    automations.create(wh, WELCOME | {"holdout": 0, "allow_no_holdout": True})
    track(wh, "Signed Up", list(range(N)))
    decided = automations.evaluate(wh)[0]
    assert decided["entered"] == N and decided["suppressed"] == 2  # u3 withdrew, u4 never granted (opt-in)
    # Between selection and send: u5 withdraws by an event (no profile rebuild yet), u7 through the API.
    write_messages(wh, [_said(5, False)])
    consent.set_consent(wh, "u7", ["marketing_email"], False)
    with smtp_sink() as sink:
        out = automations.deliver(wh, settings(tmp_path, sink.port))
        got = {i for i in range(N) if sink.to(email_of(i))}
    assert got == {0, 1, 2, 6}, out
    assert out == {"sent": 4, "suppressed": 2}
    suppressed = automations.outbox_rows(wh, status="suppressed")
    late = {r["profile_id"] for r in suppressed if "at send time" in (r["last_error"] or "")}
    assert late == {profile_of(wh, 5), profile_of(wh, 7)}
    wh.close()


def test_an_audience_export_never_hands_over_a_person_who_denied(tmp_path: Path) -> None:
    wh = _shop(tmp_path)
    audiences.create(wh, "swedes", {"trait": "country", "eq": "SE"})
    audiences.create(wh, "mailable", {"all": [{"trait": "country", "eq": "SE"}, {"consent": "marketing_email"}]})

    def exported(name: str, purpose: str) -> set[str]:
        lines = list(audiences.export(wh, name, "csv", purpose=purpose))[1:]
        return {line.split(",")[1] for line in lines}

    consenting = {"u0", "u1", "u2", "u5", "u6", "u7"}
    assert exported("swedes", "marketing_email") == consenting
    assert exported("swedes", "analytics") == {f"u{i}" for i in range(N)}  # opt-out: nobody denied
    members = audiences.members(wh, "mailable")["members"]
    assert {m["user_id"] for m in members} == consenting  # the audience condition is the same rule
    consent.set_consent(wh, "u1", "marketing_email", False)  # after the audience was selected
    assert exported("swedes", "marketing_email") == consenting - {"u1"}  # no refresh needed
    assert exported("mailable", "marketing_email") == consenting - {"u1"}
    audiences.refresh(wh)  # incremental: the new consent row marks u1 as a candidate
    assert {m["user_id"] for m in audiences.members(wh, "mailable")["members"]} == consenting - {"u1"}
    with pytest.raises(InvalidInput, match="purpose: an export needs the purpose"):
        list(audiences.export(wh, "swedes", "csv"))
    with pytest.raises(InvalidInput, match="'newsletter' is not a consent purpose"):
        list(audiences.export(wh, "swedes", "csv", purpose="newsletter"))
    with pytest.raises(InvalidDefinition, match=r"\$.consent: 'newsletter' is not a consent purpose"):
        audiences.create(wh, "bad", {"consent": "newsletter"})
    with pytest.raises(InvalidDefinition, match="'newsletter' is not a consent purpose"):
        step = {"send_email": {"subject": "s", "text": "t", "purpose": "newsletter"}}
        automations.create(wh, WELCOME | {"name": "w2", "steps": [step]})
    wh.close()


def test_migration_9_turns_the_old_unsubscribes_into_denials(tmp_path: Path) -> None:
    wh = Warehouse.open(f"duckdb://{tmp_path / 'warehouse.duckdb'}")
    write_messages(wh, [{"type": "identify", "userId": "u1", "traits": {"consent_marketing_email": True}}])
    update(wh)
    pid = profile_of(wh, 1)
    old = [
        {"profile_id": pid, "purpose": "marketing_email", "source": "link", "unsubscribed_at": consent.now()},
        {"profile_id": "prf_gone", "purpose": "marketing_email", "source": "link", "unsubscribed_at": consent.now()},
    ]
    with wh.write() as tx:  # a warehouse as migration 8 left it, with two unsubscribes
        tx.append("unsubscribes", pa.Table.from_pylist(old, schema.UNSUBSCRIBES.schema.to_pyarrow()))
        tx.delete("consent_history", "source", ["unsubscribe"])
        tx.delete("schema_migrations", "version", [9])
    assert [m.version for m in migrate(wh)] == [9]
    rows = wh.to_arrow(consent.history(wh)).to_pylist()
    denials = sorted(
        (r["profile_id"], r["identifier_type"], r["granted"]) for r in rows if r["source"] == "unsubscribe"
    )
    assert denials == sorted([(pid, "user_id", False), ("prf_gone", "profile_id", False)])
    state = {p["purpose"]: p["granted"] for p in consent.show(wh, "u1")["purposes"]}
    assert state["marketing_email"] is False  # the unsubscribe is later than the identify's grant
    wh.close()


@pytest.mark.parametrize("mode", ["drop", "exclude"])
def test_events_whose_analytics_consent_is_denied_are_dropped_or_excluded(tmp_path: Path, mode: str) -> None:
    override_settings(analytics_denied=mode)
    wh = Warehouse.open(f"duckdb://{tmp_path / 'warehouse.duckdb'}")
    no = {"consent": {"categoryPreferences": {"Analytics": False}}}
    result = write_messages(
        wh,
        [
            {"type": "page", "messageId": "m1", "userId": "u1", "context": no},
            {"type": "page", "messageId": "m2", "userId": "u1"},
            {"type": "page", "messageId": "m3", "userId": "u2"},
        ],
    )
    assert result.consent_recorded == 1  # the denial itself is recorded either way
    stored = set(wh.to_arrow(wh.table("events").message_id).to_pylist())
    if mode == "drop":
        assert result.consent_dropped == 1 and result.to_dict()["consent_dropped"] == 1
        assert stored == {"m2", "m3"} and result.duplicates == 0
    else:
        assert result.consent_dropped == 0 and stored == {"m1", "m2", "m3"}
    update(wh)  # u1's profile now carries the denial: all of u1's events leave analytics
    kept = set(wh.to_arrow(consent.analytics_events(wh).message_id).to_pylist())
    assert kept == {"m3"}
    again = {"type": "identify", "messageId": "m4", "userId": "u1", "traits": {"consent_analytics": True}}
    write_messages(wh, [again])
    kept = set(wh.to_arrow(consent.analytics_events(wh).message_id).to_pylist())
    assert kept == {"m2", "m3", "m4"}  # u1 allows analytics again; m1 itself said no
    wh.close()
