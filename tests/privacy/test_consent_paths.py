"""Where consent comes from, on a real server: an HTTP batch and the same items from a file import store
the same history; the API records and shows it; the CLI relays to the running server; bad input gets a
clear error, and an event whose consent cannot be read is still stored."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.conftest import Server, free_port, run_cli

from touchpoint import keys
from touchpoint.collect.files import import_events
from touchpoint.collect.store import write_messages
from touchpoint.config import override_settings
from touchpoint.errors import ConfigError
from touchpoint.identity import rebuild
from touchpoint.privacy import consent
from touchpoint.warehouse import Warehouse

T = "2026-02-01T10:00:0{}Z"
ITEMS: list[dict[str, Any]] = [
    {  # Segment's consent object on any event: categories mapped to purposes, the others passed over
        "type": "page",
        "messageId": "m-page",
        "anonymousId": "anon-1",
        "timestamp": T.format(1),
        "context": {
            "consent": {"categoryPreferences": {"Analytics": True, "Advertising": False, "Email": True, "C0001": True}}
        },
    },
    {  # identify traits
        "type": "identify",
        "messageId": "m-identify",
        "userId": "u-1",
        "anonymousId": "anon-1",
        "timestamp": T.format(2),
        "traits": {"email": "Ann@Shop.test", "consent_marketing_sms": True},
    },
    {  # the documented event, with a list of purposes
        "type": "track",
        "messageId": "m-updated",
        "userId": "u-1",
        "event": "Consent Updated",
        "timestamp": T.format(3),
        "properties": {"purpose": ["marketing_email", "sharing"], "granted": False},
    },
    {  # the documented event carrying categoryPreferences
        "type": "track",
        "messageId": "m-prefs",
        "userId": "u-2",
        "event": "Consent Updated",
        "timestamp": T.format(4),
        "properties": {"categoryPreferences": {"personalization": False}},
    },
]
EXPECTED = {
    ("m-page", "anonymous_id", "anon-1", "analytics", True),
    ("m-page", "anonymous_id", "anon-1", "advertising", False),
    ("m-page", "anonymous_id", "anon-1", "marketing_email", True),
    ("m-identify", "user_id", "u-1", "marketing_sms", True),
    ("m-updated", "user_id", "u-1", "marketing_email", False),
    ("m-updated", "user_id", "u-1", "sharing", False),
    ("m-prefs", "user_id", "u-2", "personalisation", False),
}
HOSTILE: list[dict[str, Any]] = [
    {"type": "track", "messageId": "bad-1", "userId": "u-3", "event": "Consent Updated",
     "properties": {"purpose": "newsletter", "granted": True}},
    {"type": "track", "messageId": "bad-2", "userId": "u-3", "event": "Consent Updated",
     "properties": {"purpose": "marketing_email", "granted": "yes"}},
    {"type": "identify", "messageId": "bad-3", "userId": "u-3",
     "traits": {"consent_marketing_email": {"nested": [1, 2]}, "consent_" + "x" * 5000: True}},
    {"type": "page", "messageId": "bad-4", "anonymousId": "a-3",
     "context": {"consent": {"categoryPreferences": ["Analytics", True]}}},
    {"type": "track", "messageId": "bad-5", "userId": "u-3", "event": "Consent Updated",
     "properties": {"purpose": "\u0000'; DROP TABLE consent_history; --", "granted": False}},
]  # fmt: skip


def _key(r: dict[str, Any]) -> tuple[Any, ...]:
    return (r["proof"], r["identifier_type"], r["identifier"], r["purpose"], r["granted"])


def _history(wh: Warehouse) -> list[dict[str, Any]]:
    rows = wh.to_arrow(wh.table("consent_history")).to_pylist()
    return sorted(({k: v for k, v in r.items() if k != "recorded_at"} for r in rows), key=lambda r: r["consent_id"])


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, str]]:
    data = tmp_path_factory.mktemp("consent-api") / "data"
    wh = Warehouse.open(f"duckdb://{data / 'warehouse.duckdb'}")
    write_key = keys.create_source(wh, "web")
    admin = keys.create_api_key(wh, "admin-key", "admin")
    wh.close()
    srv = Server(data, free_port(), write_key)
    srv.start()
    try:
        yield srv, admin
    finally:
        srv.stop()


def test_an_http_batch_and_a_file_import_store_the_same_history(
    server: tuple[Server, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    srv, _admin = server
    with httpx.Client(base_url=srv.url, auth=(srv.write_key, ""), timeout=30) as c:
        r = c.post("/v1/batch", json={"batch": [*ITEMS, *HOSTILE]})
        assert r.status_code == 200, r.text
    data = ("--json", "--data", str(srv.data_dir))
    over_http = json.loads(run_cli(capsys, "query", "SELECT * FROM consent_history", *data)[1])
    assert {_key(r) for r in over_http} == EXPECTED  # the hostile items recorded nothing
    stored = json.loads(run_cli(capsys, "query", "SELECT message_id FROM events", *data)[1])
    assert {r["message_id"] for r in stored} >= {m["messageId"] for m in [*ITEMS, *HOSTILE]}  # all kept

    imported = Warehouse.open(f"duckdb://{tmp_path / 'wh.duckdb'}")
    path = tmp_path / "events.jsonl"
    path.write_text("".join(json.dumps(m) + "\n" for m in [*ITEMS, *HOSTILE]))
    report = import_events(imported, path)
    assert report.write.stored == len(ITEMS) + len(HOSTILE)
    from_file = _history(imported)
    assert {_key(r) for r in from_file} == EXPECTED
    by_id = {r["consent_id"]: r for r in over_http}
    for row in from_file:  # the same rows, key and all (recorded_at is when each path received them)
        http_row = by_id[row["consent_id"]]
        assert {k: http_row[k] for k in row if k not in ("valid_from", "valid_until")} == {
            k: v for k, v in row.items() if k not in ("valid_from", "valid_until")
        }
        assert http_row["valid_from"].startswith(row["valid_from"].isoformat())
    again = import_events(imported, path)  # a re-import records nothing new
    assert again.write.stored == 0 and len(_history(imported)) == len(from_file)
    imported.close()


def test_unreadable_consent_is_reported_by_field_and_costs_no_event(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    wh = Warehouse.open(f"duckdb://{tmp_path / 'wh.duckdb'}")
    with caplog.at_level(logging.WARNING, logger="touchpoint.collect.store"):
        result = write_messages(wh, HOSTILE)
    assert result.stored == len(HOSTILE) and result.consent_recorded == 0
    problems = "\n".join(result.consent_problems)
    assert "field 'properties.purpose': 'newsletter' is not a consent purpose" in problems
    assert "field 'properties.granted': 'yes' is not true or false" in problems
    assert "field 'traits.consent_marketing_email': {'nested': [1, 2]} is not true or false" in problems
    assert "field 'context.consent.categoryPreferences'" in problems
    assert "event 'bad-5'" in problems and len(max(result.consent_problems, key=len)) < 400  # values are cut short
    assert "consent not recorded: event 'bad-1'" in caplog.text
    assert wh.to_arrow(wh.table("consent_history").count()).as_py() == 0
    wh.close()


def test_the_api_records_and_shows_consent_and_refuses_what_it_cannot_read(server: tuple[Server, str]) -> None:
    srv, admin = server
    auth = {"Authorization": f"Bearer {admin}"}
    with httpx.Client(base_url=srv.url, timeout=30) as c:
        c.post("/v1/batch", json={"batch": ITEMS}, auth=(srv.write_key, ""))
        r = c.post("/v1/profiles/rebuild", headers=auth)
        assert r.status_code == 200, r.text
        body = {"identifier": "ann@shop.test", "purposes": ["marketing_email"], "granted": True, "proof": "form-7"}
        r = c.post("/v1/consent", json=body, headers=auth)
        assert r.status_code == 200, r.text
        assert r.json()["recorded"][0]["identifier_type"] == "email" and r.json()["recorded"][0]["source"] == "api"
        shown = c.get("/v1/profiles/u-1/consent", headers=auth).json()
        state = {p["purpose"]: (p["granted"], p["stated"]) for p in shown["purposes"]}
        assert state["marketing_email"] == (True, True)  # the API's grant is later than the event's denial
        assert state["advertising"] == (False, True) and state["analytics"] == (True, True)  # merged via anon-1
        assert state["personalisation"] == (True, False)  # opt-out, never said
        assert {h["proof"] for h in shown["history"]} >= {"form-7", "m-page", "m-updated"}
        for bad, field, words in [
            ({**body, "purposes": ["newsletter"]}, "purpose", "'newsletter' is not a consent purpose"),
            ({**body, "purposes": ["marketing_email", 7]}, "purposes[1]", "7 is not a consent purpose"),
            ({**body, "granted": "yes"}, "granted", "'yes' is not true or false"),
            ({**body, "granted": 1}, "granted", "1 is not true or false"),
            ({**body, "purposes": []}, "purposes", "none given"),
        ]:
            r = c.post("/v1/consent", json=bad, headers=auth)
            assert r.status_code == 400, r.text
            assert r.json()["error"]["message"].startswith(f"{field}: ") and words in r.json()["error"]["message"]
        r = c.post("/v1/consent", json={**body, "identifier": "nobody@shop.test"}, headers=auth)
        assert r.status_code == 404
        purposes = c.get("/v1/consent/purposes", headers=auth).json()["purposes"]
        assert {p["purpose"]: p["default"] for p in purposes}["marketing_sms"] == "opt_in"


def test_the_cli_sets_and_shows_consent_through_the_running_server(
    server: tuple[Server, str], capsys: pytest.CaptureFixture[str]
) -> None:
    srv, admin = server
    with httpx.Client(base_url=srv.url, timeout=30) as c:
        c.post("/v1/batch", json={"batch": ITEMS}, auth=(srv.write_key, ""))
        c.post("/v1/profiles/rebuild", headers={"Authorization": f"Bearer {admin}"})
    data = ("--data", str(srv.data_dir))
    code, out, err = run_cli(capsys, "privacy", "consent", "set", "u-2", "marketing_sms", "granted", "--json", *data)
    assert code == 0, err
    assert json.loads(out)["recorded"][0]["source"] == "cli"
    code, out, err = run_cli(capsys, "privacy", "consent", "show", "u-2", "--json", *data)
    shown = json.loads(out)
    state = {p["purpose"]: p["granted"] for p in shown["purposes"]}
    assert state["marketing_sms"] is True and state["personalisation"] is False  # the event's denial
    code, out, err = run_cli(capsys, "privacy", "consent", "set", "u-2", "sms", "granted", "--json", *data)
    assert code != 0 and "'sms' is not a consent purpose" in json.loads(out)["error"]["message"]
    code, out, err = run_cli(capsys, "privacy", "consent", "set", "u-2", "marketing_sms", "maybe", "--json", *data)
    assert code != 0 and json.loads(out)["error"]["message"].startswith("decision: 'maybe'")
    code, out, err = run_cli(capsys, "privacy", "consent", "show", "u-2", *data)
    assert code == 0 and "marketing_sms" in out and "personalisation" in out


def test_show_without_a_server(tmp_path: Path) -> None:
    wh = Warehouse.open(f"duckdb://{tmp_path / 'wh.duckdb'}")
    write_messages(wh, ITEMS)
    rebuild(wh)
    shown = consent.show(wh, "anon-1")
    assert {h["purpose"] for h in shown["history"]} >= {"analytics", "marketing_sms"}
    wh.close()


def test_categories_map_to_purposes_as_configured(tmp_path: Path) -> None:
    override_settings(consent_categories={"C0004": "advertising", "Marketing Cookies": "marketing_email"})
    wh = Warehouse.open(f"duckdb://{tmp_path / 'wh.duckdb'}")
    prefs = {"C0004": True, "marketing-cookies": False, "Targeting": True}  # Targeting: no longer mapped
    write_messages(
        wh, [{"type": "page", "messageId": "m", "userId": "u", "context": {"consent": {"categoryPreferences": prefs}}}]
    )
    rows = wh.to_arrow(wh.table("consent_history")).to_pylist()
    assert sorted((r["purpose"], r["granted"]) for r in rows) == [("advertising", True), ("marketing_email", False)]
    wh.close()
    with pytest.raises(ConfigError, match=r"consent_categories\.C0004 maps to 'ads', which is not in consent_purposes"):
        override_settings(consent_categories={"C0004": "ads"})
    with pytest.raises(ConfigError, match=r"consent_purposes\.email is 'maybe'; use 'opt_in' or 'opt_out'"):
        override_settings(consent_purposes={"email": "maybe"}, consent_categories={})
    with pytest.raises(ConfigError, match="'transactional' needs no consent"):
        override_settings(consent_purposes={"transactional": "opt_in"}, consent_categories={})
