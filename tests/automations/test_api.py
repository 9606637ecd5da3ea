"""Automations over HTTP: key scopes, the same workflow as the CLI, and the RFC 8058 unsubscribe endpoint
(a one-click POST records it; a GET only shows the button, so link scanners unsubscribe no one)."""

from __future__ import annotations

from pathlib import Path

from starlette.testclient import TestClient

from touchpoint import keys
from touchpoint.api.app import create_app
from touchpoint.automations import consent, workflow
from touchpoint.warehouse import Warehouse

from .shop import SIGNING_KEY, WELCOME, open_shop, profile_of, settings, track


def test_automations_and_unsubscribe_over_http(tmp_path: Path) -> None:
    wh = open_shop(tmp_path, 3)
    tokens = {scope: keys.create_api_key(wh, f"{scope}-key", scope) for scope in ("read", "admin")}
    pid = profile_of(wh, 1)
    wh.close()
    s = settings(tmp_path)
    read, admin = ({"Authorization": f"Bearer {tokens[k]}"} for k in ("read", "admin"))
    with TestClient(create_app(s, run_jobs=False)) as c:
        assert c.post("/v1/automations", json={"definition": WELCOME}).status_code == 401
        r = c.post("/v1/automations", json={"definition": WELCOME}, headers=read)
        assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden"
        r = c.post("/v1/automations", json={"definition": WELCOME}, headers=admin)
        assert r.status_code == 201, r.text
        bad = {**WELCOME, "name": "w2", "holdout": 0}
        r = c.post("/v1/automations", json={"definition": bad}, headers=admin)
        assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_definition"
        assert "$.holdout" in r.json()["error"]["message"]
        assert [a["name"] for a in c.get("/v1/automations", headers=read).json()["automations"]] == ["welcome"]
        assert c.post("/v1/automations/welcome/pause", headers=admin).json()["status"] == "paused"
        assert c.post("/v1/automations/welcome/resume", headers=admin).json()["status"] == "active"
        assert c.get("/v1/automations/nope", headers=read).status_code == 404
        shown = c.get("/v1/automations/welcome", headers=read).json()
        assert shown["status"] == "active" and shown["entries"] == {}
        assert c.get("/v1/automations/welcome/outbox", params={"failed": True}, headers=read).json() == {"outbox": []}
        lift = c.get("/v1/automations/welcome/lift", headers=read).json()
        assert lift["status"] == "insufficient_data"

        token = consent.make_token(SIGNING_KEY.encode(), pid, "marketing_email")
        page = c.get("/v1/unsubscribe", params={"token": token})
        assert page.status_code == 200 and "<form method='post'" in page.text
        assert _unsubscribes(c, read) == 0  # the GET changed nothing
        r = c.post(
            "/v1/unsubscribe",
            params={"token": token},
            content="List-Unsubscribe=One-Click",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        assert r.status_code == 200 and r.json()["unsubscribed"] is True
        assert _unsubscribes(c, read) == 1
        c.post("/v1/unsubscribe", params={"token": token})  # the same link again records nothing new
        assert _unsubscribes(c, read) == 1
        forged = token[:-3] + ("AAA" if not token.endswith("AAA") else "BBB")
        r = c.post("/v1/unsubscribe", params={"token": forged})
        assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_input"
    wh = Warehouse.open(s.resolved_warehouse_url())
    try:
        from touchpoint.privacy.consent import history

        rows = wh.to_arrow(history(wh)).to_pylist()
        denials = [(r["profile_id"], r["purpose"], r["source"]) for r in rows if not r["granted"]]
        assert denials == [(pid, "marketing_email", "unsubscribe")]
        track(wh, "Signed Up", [0, 1, 2])
        decided = workflow.evaluate(wh)[0]
        assert decided["suppressed"] == (0 if profile_in_holdout(wh, 1) else 1)  # excluded in the selecting query
    finally:
        wh.close()


def _unsubscribes(c: TestClient, read: dict[str, str]) -> int:
    r = c.post(
        "/v1/query",
        json={"sql": "SELECT count(*) AS n FROM consent_history WHERE source = 'unsubscribe'"},
        headers=read,
    )
    assert r.status_code == 200, r.text
    return int(r.json()["rows"][0]["n"])


def profile_in_holdout(wh: Warehouse, i: int) -> bool:
    from touchpoint.automations import store, triggers

    return triggers.in_holdout(store.load(wh, "welcome"), profile_of(wh, i))
