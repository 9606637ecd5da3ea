"""The dashboard as an attacker sees it: sign-in, sessions, roles and CSRF, checked on a real server."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from tests.conftest import Server, free_port
from tests.web.conftest import PAGES, PASSWORDS, Dashboard, client_for, csrf_of, sign_in

# The shared server's set-up simulates, resolves, predicts and fits a small shop first (minutes on a busy machine).
pytestmark = [pytest.mark.slow, pytest.mark.timeout(1500)]


@pytest.mark.parametrize(
    "path", [*PAGES, "/customers/prf_x", "/csv/overview/weekly.csv", "/mmm/case.pdf", "/data/quarantine/x"]
)
def test_signed_out_requests_redirect_to_sign_in(dashboard: Dashboard, path: str) -> None:
    response = httpx.get(dashboard.url + path, timeout=30)
    assert response.status_code == 303
    assert response.headers["location"].startswith("/signin?next=")


def test_sign_in_sets_a_hardened_cookie_and_only_redirects_locally(dashboard: Dashboard) -> None:
    with httpx.Client(base_url=dashboard.url, timeout=30) as client:
        token = csrf_of(client.get("/signin").text)
        form = {"csrf": token, "username": "vic", "password": PASSWORDS["vic"], "next": "//evil.example/x"}
        response = client.post("/signin", data=form)
        assert response.status_code == 303 and response.headers["location"] == "/"
        cookie = response.headers["set-cookie"]
        assert "tp_session=" in cookie and "HttpOnly" in cookie and "SameSite=lax" in cookie
        assert "Secure" not in cookie  # plain http on loopback
        page = client.get("/")
        assert page.status_code == 200 and "vic · viewer" in page.text
        assert "default-src 'none'" in page.headers["content-security-policy"]
        assert page.headers["x-frame-options"] == "DENY"


def test_cookie_is_secure_when_served_over_tls(dashboard: Dashboard) -> None:
    # uvicorn trusts X-Forwarded-Proto from 127.0.0.1 (a TLS-terminating proxy on the same host). The client
    # here speaks plain http, so it would not send Secure cookies back: they are passed by hand.
    https = {"X-Forwarded-Proto": "https"}
    page = httpx.get(dashboard.url + "/signin", headers=https, timeout=30)
    assert "Secure" in page.headers["set-cookie"] and "SameSite=strict" in page.headers["set-cookie"]
    form = {"csrf": csrf_of(page.text), "username": "vic", "password": PASSWORDS["vic"]}
    cookie = {"Cookie": f"tp_signin={page.cookies['tp_signin']}"}
    response = httpx.post(dashboard.url + "/signin", data=form, headers={**https, **cookie}, timeout=30)
    assert response.status_code == 303 and "Secure" in response.headers["set-cookie"]


def test_wrong_passwords_are_refused_then_rate_limited(dashboard: Dashboard) -> None:
    with httpx.Client(base_url=dashboard.url, timeout=30) as client:
        codes = [sign_in(client, "rita", "not the password").status_code for _ in range(5)]
        assert codes == [401] * 5
        limited = sign_in(client, "rita", PASSWORDS["rita"])  # even the right password waits now
        assert limited.status_code == 429 and int(limited.headers["retry-after"]) > 0
        assert "too many failed sign-ins" in limited.text
        # another user from the same address is not locked out by rita's failures
        assert sign_in(client, "vic", PASSWORDS["vic"]).status_code == 303


def test_sign_in_form_without_its_csrf_token_is_refused(dashboard: Dashboard) -> None:
    with httpx.Client(base_url=dashboard.url, timeout=30) as client:
        client.get("/signin")
        response = client.post("/signin", data={"username": "vic", "password": PASSWORDS["vic"]})
        assert response.status_code == 403 and "CSRF" in response.text
        forged = client.post("/signin", data={"csrf": "forged", "username": "vic", "password": PASSWORDS["vic"]})
        assert forged.status_code == 403


def test_an_api_key_signs_in_with_the_role_of_its_scope(dashboard: Dashboard) -> None:
    for key, role in ((dashboard.keys["read_key"], "viewer"), (dashboard.keys["admin_key"], "admin")):
        with httpx.Client(base_url=dashboard.url, timeout=30) as client:
            assert sign_in(client, "", key).status_code == 303
            assert f"· {role}" in client.get("/").text
    with httpx.Client(base_url=dashboard.url, timeout=30) as client:
        assert sign_in(client, "", dashboard.keys["write_key"]).status_code == 401  # a write key only sends events
        assert sign_in(client, "", "tpk_a_not-a-key").status_code == 401


def test_forms_without_the_session_csrf_token_are_refused(dashboard: Dashboard) -> None:
    with client_for(dashboard, "ada") as client:
        for path, form in (
            ("/data/quarantine/replay", {"all": "1"}),
            ("/users", {"name": "mallory", "password": "a long password", "role": "admin"}),
            ("/signout", {}),
        ):
            assert client.post(path, data=form).status_code == 403
            assert client.post(path, data={**form, "csrf": "wrong"}).status_code == 403
        assert "mallory" not in client.get("/users").text
        assert client.get("/").status_code == 200  # still signed in


def test_a_viewer_cannot_do_what_needs_another_role(dashboard: Dashboard) -> None:
    with client_for(dashboard, "vic") as client:
        csrf = csrf_of(client.get("/data").text)
        assert "Replay all" not in client.get("/data").text
        assert client.get("/users").status_code == 403
        created = client.post("/users", data={"csrf": csrf, "name": "mallory", "password": "x" * 12, "role": "admin"})
        assert created.status_code == 403
        assert client.post("/users/ada/disable", data={"csrf": csrf}).status_code == 403
        assert client.post("/data/quarantine/replay", data={"csrf": csrf, "all": "1"}).status_code == 403
    with client_for(dashboard, "ann") as client:  # an analyst may replay, not manage users
        assert client.get("/users").status_code == 403
    with client_for(dashboard, "ada") as client:
        assert "mallory" not in client.get("/users").text and "1 record(s) quarantined" in client.get("/data").text


def test_admin_creates_and_disables_a_user_whose_session_then_stops(dashboard: Dashboard) -> None:
    with client_for(dashboard, "ada") as admin:
        csrf = csrf_of(admin.get("/users").text)
        made = admin.post("/users", data={"csrf": csrf, "name": "temp", "password": "temporary pass", "role": "viewer"})
        assert made.status_code == 303
        with httpx.Client(base_url=dashboard.url, timeout=30) as temp:
            assert sign_in(temp, "temp", "temporary pass").status_code == 303
            assert temp.get("/").status_code == 200
            assert admin.post("/users/temp/disable", data={"csrf": csrf}).status_code == 303
            time.sleep(5.5)  # session answers are cached for at most 5 s
            assert temp.get("/").status_code == 303
            assert sign_in(temp, "temp", "temporary pass").status_code == 401


def test_sign_out_ends_the_session_on_the_server(dashboard: Dashboard) -> None:
    with client_for(dashboard, "vic") as client:
        cookie = client.cookies.get("tp_session")
        csrf = csrf_of(client.get("/").text)
        assert client.post("/signout", data={"csrf": csrf}).status_code == 303
    with httpx.Client(base_url=dashboard.url, timeout=30, cookies={"tp_session": cookie or ""}) as replayed:
        assert replayed.get("/").status_code == 303  # the stolen cookie is dead


def test_hostile_searches_and_parallel_page_loads(dashboard: Dashboard) -> None:
    hostile = ["%", "_", "' OR 1=1 --", '"><script>alert(1)</script>', "a=b=c", "plan=", "🙂" * 50, "x" * 600, "\\"]
    with client_for(dashboard, "vic") as client:
        for q in hostile:
            response = client.get("/customers", params={"q": q})
            assert response.status_code in (200, 303), (q, response.status_code)
            assert "<script>alert(1)</script>" not in response.text
        cookies = dict(client.cookies)

    def load(path: str) -> int:
        return httpx.get(dashboard.url + path, cookies=cookies, timeout=60).status_code

    with ThreadPoolExecutor(8) as pool:
        codes = list(pool.map(load, [p for p in PAGES if p != "/users"] * 4))
    assert codes == [200] * len(codes)


def test_csv_cells_cannot_run_as_spreadsheet_formulas(dashboard: Dashboard) -> None:
    with client_for(dashboard, "vic") as client:
        response = client.get("/csv/journeys/paths.csv")
        assert response.status_code == 200 and response.headers["content-type"].startswith("text/csv")
        assert response.text.splitlines()[0] == "path,people"
        assert client.get("/csv/journeys/nope.csv").status_code == 404
        assert client.get("/csv/../etc/passwd.csv").status_code in (303, 404)


def test_a_new_empty_server_shows_every_page_with_what_to_do(tmp_path: Path) -> None:
    from touchpoint import keys
    from touchpoint.warehouse import Warehouse

    data = tmp_path / "empty"
    wh = Warehouse.open(f"duckdb://{data / 'warehouse.duckdb'}")
    admin_key = keys.create_api_key(wh, "admin", "admin")
    wh.close()
    server = Server(data, free_port(), "")
    server.start(timeout=600)
    try:
        with httpx.Client(base_url=server.url, timeout=60) as client:
            assert sign_in(client, "", admin_key).status_code == 303
            deadline = time.monotonic() + 120
            pages = {p: client.get(p) for p in PAGES}
            while any("data-computing" in r.text for r in pages.values()) and time.monotonic() < deadline:
                time.sleep(0.5)
                pages = {p: client.get(p) for p in PAGES}
            for path, response in pages.items():
                assert response.status_code == 200, (path, response.text[:300])
                assert "data-computing" not in response.text and "Failed:" not in response.text, path
            assert "No events yet" in pages["/"].text and "No events yet" in pages["/journeys"].text
            assert "no marketing-mix model yet" in pages["/mmm"].text
            assert "identities have not been resolved" in client.get("/customers", params={"q": "x"}).text
    finally:
        server.stop()
