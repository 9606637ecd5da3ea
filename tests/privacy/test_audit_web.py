"""The dashboard records what its signed-in users look at (a customer's page, the quarantine) and the user
changes they make, as ``user:<name>`` through surface ``web``."""

from __future__ import annotations

from pathlib import Path

import httpx
from tests.conftest import Server, free_port
from tests.web.conftest import csrf_of, sign_in

from touchpoint import keys, users
from touchpoint.collect.store import write_messages
from touchpoint.privacy import audit
from touchpoint.profiles import workflow as profiles
from touchpoint.warehouse import Warehouse

EMAIL = "web.person@example.com"


def test_dashboard_pages_of_personal_data_are_recorded(tmp_path: Path) -> None:
    data = tmp_path / "data"
    wh = Warehouse.open(f"duckdb://{data / 'warehouse.duckdb'}")
    write_key = keys.create_source(wh, "web")
    write_messages(wh, [{"type": "identify", "userId": "w1", "traits": {"email": EMAIL}}])
    profiles.rebuild(wh)
    users.create_user(wh, "ada", "admin password 1", "admin")
    wh.close()
    server = Server(data, free_port(), write_key)
    server.start(timeout=180)
    try:
        with httpx.Client(base_url=server.url, timeout=60, follow_redirects=False) as c:
            assert sign_in(c, "ada", "admin password 1").status_code == 303
            found = c.get("/customers", params={"q": EMAIL})
            assert found.status_code == 303, found.text  # one match: straight to the customer's page
            page = c.get(found.headers["location"])
            assert page.status_code == 200
            profile_id = found.headers["location"].rsplit("/", 1)[1]
            assert c.get("/data").status_code == 200
            form = {"csrf": csrf_of(c.get("/users").text), "name": "newbie", "password": "a long password 1"}
            assert c.post("/users", data=form).status_code == 303
    finally:
        server.stop()
    with Warehouse.open(f"duckdb://{data / 'warehouse.duckdb'}") as wh:
        log = [(e.actor, e.surface, e.action, e.subject, e.rows) for e in reversed(audit.entries(wh))]
        assert audit.verify(wh).ok
    assert log == [
        ("user:ada", "web", "profiles.search", None, 1),
        ("user:ada", "web", "profiles.read", profile_id, 1),
        ("user:ada", "web", "quarantine.list", None, 0),
        ("user:ada", "web", "users.create", "newbie", None),
    ]
    assert EMAIL not in str(log)
