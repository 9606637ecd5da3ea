"""A real ``touchpoint serve`` on a small simulated shop, shared by the dashboard's tests.

The shop is the demo's simulator at a small size (300 customers, 40 weeks) with identities, journeys,
predictions and the experiment analysed as ``touchpoint demo`` does; the marketing-mix model is fitted
with few draws (its numbers are not under test here), then a plan and an investment case (with its PDF)
are written. Three users (admin, analyst, viewer) are created, one bad event is sent so the quarantine
has a record, and the fixture waits until the dashboard's background refresh has computed every page.
"""

from __future__ import annotations

import json
import re
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.conftest import Server, free_port

PASSWORDS = {
    "ada": "admin password 1",
    "ann": "analyst password 1",
    "vic": "viewer password 1",
    "rita": "rate limited 1",  # the rate-limit test locks this one out
}
ROLES = {"ada": "admin", "ann": "analyst", "vic": "viewer", "rita": "viewer"}
PAGES = (
    "/",
    "/customers",
    "/experiments",
    "/journeys",
    "/mmm",
    "/audiences",
    "/automations",
    "/plan",
    "/data",
    "/datamap",
    "/users",
)
PLAN = {  # the example of docs/plan.md, measured by the demo's email experiment
    "id": "grow-2027",
    "name": "Repeat revenue 2027",
    "goal": {"metric": "revenue", "baseline": 1200000, "change": 0.15, "deadline": "2027Q2"},
    "behaviour_changes": [
        {
            "id": "repeat",
            "audience": "first-time buyers",
            "behaviour": "repeat purchase within 90 days",
            "from": 0.18,
            "to": 0.24,
            "people": 20000,
            "value_per_unit": 95.0,
        }
    ],
    "tactics": [
        {
            "id": "winback-email",
            "name": "Win-back email",
            "kind": "experiment",
            "behaviour_change": "repeat",
            "experiment": "email-winback-2026",
            "expected": {"effect": 0.03, "low": 0.01, "high": 0.05, "source": "last year's test"},
            "cost": 4000,
        }
    ],
}


@dataclass
class Dashboard:
    server: Server
    keys: dict[str, str]
    email: str  # a customer's email, to search for

    @property
    def url(self) -> str:
        return self.server.url


def _build(data: Path) -> dict[str, str]:
    from touchpoint import users
    from touchpoint.config import Settings
    from touchpoint.demo.run import run_demo
    from touchpoint.demo.simulator import DemoConfig
    from touchpoint.demo.steps.experiments import define
    from touchpoint.mmm import workflow
    from touchpoint.mmm.config import MMMConfig
    from touchpoint.mmm.dataset import from_warehouse
    from touchpoint.plan import workflow as plan_workflow
    from touchpoint.warehouse import open_warehouse

    settings = Settings(data_dir=data)
    steps = ("identity", "predict", "audiences")  # the dashboard analyses journeys and the experiment itself
    with warnings.catch_warnings():  # numpy's overflow/NaN warnings of a tiny shop's fits are not under test here
        warnings.simplefilter("ignore", RuntimeWarning)
        summary = run_demo(settings, DemoConfig(customers=300, weeks=40, seed=3), say=lambda _m: None, steps=steps)
    failed = {k: v["error"] for k, v in summary["steps"].items() if v["status"] != "ok"}
    assert not failed, failed
    wh = open_warehouse(settings)
    try:
        truth = json.loads((data / "demo" / "truth.json").read_text())
        define(wh, truth)  # the demo's randomized email campaign, as an experiment definition
        plan_workflow.create(wh, PLAN)
        plan_workflow.review(wh, PLAN["id"], quarter="2026Q4")
        folder = workflow.model_dir(data)
        config = MMMConfig(draws=250, warmup=250, chains=2, seed=0)  # enough to pass its diagnostics here
        workflow.fit_and_save(from_warehouse(wh, kpi="new_customer_revenue"), config, folder)
        result = workflow.load(folder)
        plan = workflow.make_plan(result, folder, budget=float(result.data.spend[-20:].sum()), weeks=20)
        workflow.make_case(result, plan, folder, horizon_months=12)
        _welcome_flow(wh)
        for name, password in PASSWORDS.items():
            users.create_user(wh, name, password, ROLES[name])
    finally:
        wh.close()
    keys: dict[str, str] = summary["keys"]
    return keys


WELCOME = {
    "name": "welcome",
    "description": "Welcome new sign-ups",
    "trigger": {"event": "Signed Up"},
    "holdout": 0.5,
    "goal": {"event": "Order Completed", "within_days": 14},
    "steps": [
        {"wait": {"hours": 1}},
        {"send_email": {"subject": "Welcome", "text": "Hi", "purpose": "marketing_email"}},
    ],
}


def _welcome_flow(wh: Any) -> None:
    """A welcome automation entered by 80 new sign-ups (half held out), 30 of whom ordered since."""
    from touchpoint.automations import workflow as automations
    from touchpoint.collect.store import write_messages
    from touchpoint.profiles.workflow import update

    automations.create(wh, WELCOME)
    people = [f"new-{i}" for i in range(80)]
    write_messages(wh, [{"type": "track", "userId": u, "event": "Signed Up"} for u in people], source="test")
    update(wh)
    automations.evaluate(wh)
    orders = [{"type": "track", "userId": u, "event": "Order Completed", "properties": {"revenue": 20}} for u in people]
    write_messages(wh, orders[:30], source="test")


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]*)"', html)
    assert found, "the page has no CSRF field"
    return found.group(1)


def sign_in(client: httpx.Client, username: str, password: str) -> httpx.Response:
    token = csrf_of(client.get("/signin").text)
    return client.post("/signin", data={"csrf": token, "username": username, "password": password, "next": "/"})


@contextmanager
def client_for(dash: Dashboard, user: str | None = None) -> Iterator[httpx.Client]:
    """An HTTP client, signed in as ``user`` with the password form."""
    with httpx.Client(base_url=dash.url, timeout=60.0) as client:
        if user is not None:
            response = sign_in(client, user, PASSWORDS[user])
            assert response.status_code == 303, response.text
        yield client


@pytest.fixture(scope="session")
def dashboard(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dashboard]:
    data = tmp_path_factory.mktemp("dashboard") / "data"
    keys = _build(data)
    server = Server(data, free_port(), keys["write_key"])
    server.start(timeout=600)  # a busy CI machine can take minutes to import and migrate
    try:
        bad = {"batch": [{"type": "track", "userId": "u-bad", "messageId": "bad-event-1"}]}  # no event name
        httpx.post(f"{server.url}/v1/batch", json=bad, auth=(keys["write_key"], ""), timeout=30).raise_for_status()
        dash = Dashboard(server, keys, "")
        with client_for(dash, "ada") as client:
            deadline = time.monotonic() + 300
            pending = list(PAGES)
            while pending and time.monotonic() < deadline:
                pending = [p for p in pending if "data-computing" in client.get(p).text]
                time.sleep(1.0)
            assert not pending, f"pages still computing after 5 minutes: {pending}"
            assert "1 record(s) quarantined" in client.get("/data").text
        dash.email = _an_email(dash)
        yield dash
    finally:
        server.stop()


def _an_email(dash: Dashboard) -> str:
    """A customer's email, read through the API as a client would."""
    headers = {"Authorization": f"Bearer {dash.keys['read_key']}"}
    top = httpx.get(f"{dash.url}/v1/predictions", params={"limit": 1}, headers=headers, timeout=30).json()
    profile = httpx.get(f"{dash.url}/v1/profiles/{top['rows'][0]['customer_id']}", headers=headers, timeout=30)
    email = profile.json()["computed"]["email"]
    assert email, json.dumps(profile.json())[:500]
    return str(email)
