"""The Audiences, Automations, Plan and Data pages show what the library computed, on a real server."""

from __future__ import annotations

import csv
import io

import httpx
import pytest
from tests.web.conftest import PLAN, Dashboard, client_for

from touchpoint.jobs import JOBS

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1500)]


def test_audiences_page_lists_each_audience_with_its_size_and_the_score_bands(dashboard: Dashboard) -> None:
    with client_for(dashboard, "vic") as client:
        page = client.get("/audiences")
        assert page.status_code == 200, page.text
        sizes = list(csv.DictReader(io.StringIO(client.get("/csv/audiences/audiences.csv").text)))
        bands = list(csv.DictReader(io.StringIO(client.get("/csv/audiences/score-lead-bands.csv").text)))
    demo = {"at-risk-high-value", "browsed-not-bought", "replenishment-due"}
    assert demo <= {r["audience"] for r in sizes}  # and any the browser test saved
    for row in sizes:
        assert row["audience"] in page.text and f"{int(row['members']):,} members" in page.text
    assert [r["band"] for r in bands] == ["cold", "warm", "hot"]
    assert sum(int(r["profiles"]) for r in bands) > 0
    assert "Lead scores" in page.text and "How is this computed?" in page.text


def test_plan_page_shows_the_kpis_the_goals_probability_and_each_tactics_evidence(dashboard: Dashboard) -> None:
    with client_for(dashboard, "vic") as client:
        page = client.get("/plan")
        assert page.status_code == 200, page.text
        tactics = list(csv.DictReader(io.StringIO(client.get(f"/csv/plan/{PLAN['id']}-tactics.csv").text)))
        kpis = {r["kpi"]: r for r in csv.DictReader(io.StringIO(client.get("/csv/plan/kpis.csv").text))}
    assert PLAN["name"] in page.text and "P(goal) = " in page.text
    assert set(kpis) == {"customer_equity", "satisfaction", "relative_attractiveness"}
    assert float(kpis["customer_equity"]["low"]) < float(kpis["customer_equity"]["value"])
    assert f"{float(kpis['customer_equity']['value']):,.0f}" in page.text
    # the tactic's measured effect is the stored review's (the demo's email experiment), as the API gives it
    headers = {"Authorization": f"Bearer {dashboard.keys['read_key']}"}
    url = f"{dashboard.url}/v1/plans/{PLAN['id']}/review"
    review = httpx.get(url, params={"quarter": "2026Q4"}, headers=headers, timeout=120).json()
    measured = review["tactics"][0]["measured"]
    assert measured["available"] and tactics[0]["tactic"] == "Win-back email"
    assert float(tactics[0]["measured"]) == pytest.approx(measured["effect"])
    assert float(tactics[0]["measured_low"]) < float(tactics[0]["measured"]) < float(tactics[0]["measured_high"])
    assert tactics[0]["decision"] == review["tactics"][0]["decision"]
    assert "P(goal) = " in page.text


def test_data_map_page_draws_the_demo_shops_flows(dashboard: Dashboard) -> None:
    """Every table and job of the demo shop's server on the drawing, each table with who writes it."""
    from touchpoint.datamap import all_tables
    from touchpoint.jobs import JOBS

    with client_for(dashboard, "vic") as client:
        page = client.get("/datamap")
        api = httpx.get(
            f"{dashboard.url}/v1/map", headers={"Authorization": f"Bearer {dashboard.keys['read_key']}"}, timeout=60
        )
    assert page.status_code == 200, page.text
    html = page.text
    assert 'href="/datamap"' in html and "<svg" in html and "Where personal data leaves" in html
    for spec in all_tables():
        assert f'data-id="table:{spec.name}"' in html, spec.name
    for name in JOBS:
        assert f'data-id="job:{name}"' in html, name
    assert api.status_code == 200, api.text
    writes = {e["to"] for e in api.json()["edges"] if e["kind"] == "writes"}
    assert {f"table:{spec.name}" for spec in all_tables()} <= writes


def test_automations_page_shows_each_flow_its_sends_and_the_lift_the_api_measures(dashboard: Dashboard) -> None:
    with client_for(dashboard, "vic") as client:
        page = client.get("/automations")
        assert page.status_code == 200, page.text
        rows = list(csv.DictReader(io.StringIO(client.get("/csv/automations/automations.csv").text)))
    headers = {"Authorization": f"Bearer {dashboard.keys['read_key']}"}
    lift = httpx.get(f"{dashboard.url}/v1/automations/welcome/lift", headers=headers, timeout=30).json()
    (welcome,) = [r for r in rows if r["automation"] == "welcome"]
    assert int(welcome["entered"]) + int(welcome["held out"]) == 80  # every sign-up entered once
    assert 20 <= int(welcome["held out"]) <= 60  # half held out, by hash
    assert {int(welcome["entered"]), int(welcome["held out"])} == {int(n) for n in lift["entrants"].values()}
    text = page.text.replace("&nbsp;", " ")
    assert "When: Signed Up" in text and "wait 1 hours" in text
    assert "email \u201cWelcome\u201d (marketing_email)" in text
    assert "Goal: Order Completed within 14 days" in text
    treated = f"treated {lift['goal_rate']['treated'] * 100:.1f}%"
    held = f"held out {lift['goal_rate']['holdout'] * 100:.1f}%"
    assert treated in text and held in text, text[text.find("Goal rate") :][:300]
    interval = f"95% interval {lift['lift']['ci_low'] * 100:.1f}% to {lift['lift']['ci_high'] * 100:.1f}%"
    assert interval in text
    assert "Sample ratio check: passed" in text


def test_the_data_page_shows_the_jobs_and_to_admins_the_privacy_requests(dashboard: Dashboard) -> None:
    write, admin = (dashboard.keys["write_key"], ""), {"Authorization": f"Bearer {dashboard.keys['admin_key']}"}
    person = {"type": "identify", "userId": "to-be-forgotten", "traits": {"email": "gone@people.test"}}
    httpx.post(f"{dashboard.url}/v1/identify", json=person, auth=write, timeout=30).raise_for_status()
    erased = httpx.post(
        f"{dashboard.url}/v1/privacy/erase", json={"identifier": "to-be-forgotten"}, headers=admin, timeout=300
    )
    assert erased.status_code == 200, erased.text
    with client_for(dashboard, "ada") as client:
        page = client.get("/data").text
    for name in JOBS:
        assert f"<td>{name}</td><td>" in page
    assert "Jobs and freshness" in page and "runs no jobs" in page  # this server was started with --no-jobs
    assert "Privacy requests" in page and "gone@people.test" not in page and "to-be-forgotten" not in page
    assert f"<td>{sum(erased.json()['deleted'].values()):,}</td>" in page  # the rows deleted
    with client_for(dashboard, "vic") as client:
        assert "Privacy requests" not in client.get("/data").text  # who asked for an erasure is for admins
