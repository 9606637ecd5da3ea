"""Consent on a customer's page, on a real server: everyone signed in sees it per purpose with its source and
history; an admin changes it with a CSRF-checked form, recorded as the API records it (source dashboard,
the user as actor and proof) and audited; a viewer, a missing token or an unknown purpose change nothing."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest
from tests.conftest import Server, free_port
from tests.web.conftest import csrf_of, sign_in

from touchpoint import keys, users
from touchpoint.collect.store import write_messages
from touchpoint.profiles import workflow as profiles
from touchpoint.warehouse import Warehouse

PASSWORDS = {"ada": "admin password 1", "vic": "viewer password 1"}


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, str, str]]:
    data = tmp_path_factory.mktemp("dashboard-consent") / "data"
    wh = Warehouse.open(f"duckdb://{data / 'warehouse.duckdb'}")
    write_key = keys.create_source(wh, "web")
    write_messages(
        wh,
        [
            {"type": "identify", "userId": "u1", "timestamp": "2026-01-01T10:00:00Z",
             "traits": {"email": "ann@shop.example", "country": "SE", "consent_analytics": True}},
        ],
    )  # fmt: skip
    profiles.rebuild(wh, as_of="2026-01-10T00:00:00")
    admin = keys.create_api_key(wh, "ops", "admin")
    users.create_user(wh, "ada", PASSWORDS["ada"], "admin")
    users.create_user(wh, "vic", PASSWORDS["vic"], "viewer")
    wh.close()
    server = Server(data, free_port(), write_key)
    server.start()
    try:
        with httpx.Client(base_url=server.url, timeout=30) as c:
            pid = c.get("/v1/profiles/u1", headers={"Authorization": f"Bearer {admin}"}).json()["profile_id"]
        yield server, admin, pid
    finally:
        server.stop()


@contextmanager
def _client(server: Server, user: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=60) as client:
        assert sign_in(client, user, PASSWORDS[user]).status_code == 303
        yield client


def _row(html: str, purpose: str) -> str:
    found = re.search(rf"<tr><td>{purpose}</td>(.*?)</tr>", html, re.S)
    assert found, f"no consent row for {purpose}"
    return found.group(1)


def test_a_viewer_sees_consent_but_cannot_change_it(served: tuple[Server, str, str]) -> None:
    server, _, pid = served
    with _client(server, "vic") as vic:
        page = vic.get(f"/customers/{pid}").text
        assert '<h2 id="consent">Consent</h2>' in page and "(region EU)" in page
        assert "<td>yes</td><td>stated</td><td>event</td>" in _row(page, "analytics")
        assert "<td>no</td><td>default (opt-in)</td><td>default</td>" in _row(page, "marketing_email")
        assert "Grant marketing_email" not in page and "needs the admin role" in page
        form = {"csrf": csrf_of(page), "purpose": "marketing_email", "granted": "true"}
        assert vic.post(f"/customers/{pid}/consent", data=form).status_code == 403


def test_an_admin_grants_and_denies_through_the_same_workflow_as_the_api(served: tuple[Server, str, str]) -> None:
    server, admin_key, pid = served
    api = {"Authorization": f"Bearer {admin_key}"}
    with _client(server, "ada") as ada, httpx.Client(base_url=server.url, timeout=30) as c:
        page = ada.get(f"/customers/{pid}").text
        assert 'aria-label="Grant marketing_email"' in page
        form = {"purpose": "marketing_email", "granted": "true"}
        assert ada.post(f"/customers/{pid}/consent", data=form).status_code == 403  # no CSRF token
        assert ada.post(f"/customers/{pid}/consent", data={**form, "csrf": "forged"}).status_code == 403
        before = c.get("/v1/profiles/u1/consent", headers=api).json()
        assert len(before["history"]) == 1  # the forged and token-less posts recorded nothing

        done = ada.post(f"/customers/{pid}/consent", data={**form, "csrf": csrf_of(page)})
        assert done.status_code == 303 and done.headers["location"].endswith("#consent")
        page = ada.get(done.headers["location"]).text
        assert "<td>yes</td><td>stated</td><td>dashboard</td>" in _row(page, "marketing_email")
        assert "user:ada" in page  # the history names who
        deny = {"purpose": "marketing_email", "granted": "false", "csrf": csrf_of(page)}
        assert ada.post(f"/customers/{pid}/consent", data=deny).status_code == 303
        bad = ada.post(f"/customers/{pid}/consent", data={**deny, "purpose": "newsletter"})
        assert bad.status_code == 400 and "not a consent purpose" in bad.text

        shown = c.get("/v1/profiles/u1/consent", headers=api).json()
        state = {p["purpose"]: p for p in shown["purposes"]}
        assert state["marketing_email"]["granted"] is False and state["marketing_email"]["source"] == "dashboard"
        mine = [h for h in shown["history"] if h["source"] == "dashboard"]
        assert [h["granted"] for h in mine] == [False, True]  # newest first: two statements, both kept
        assert all(h["actor"] == "user:ada" and h["proof"].startswith("user:ada at ") for h in mine)
        log = c.get("/v1/audit", params={"action": "consent.set"}, headers=api).json()["entries"]
        assert [(e["actor"], e["surface"], e["subject"], e["outcome"]) for e in log][-1] == (
            "user:ada", "web", pid, "ok"
        )  # fmt: skip
        assert len([e for e in log if e["actor"] == "user:ada" and e["outcome"] == "ok"]) == 2
