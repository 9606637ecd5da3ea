"""The customer page's lead scores, audiences, messages and predictions agree with the API's answers for the
same profile; the experiments planner and the paths Sankey answer as the library does; on a real server."""

from __future__ import annotations

import csv
import html
import io
import math
import re

import httpx
import pytest
from tests.web.conftest import Dashboard, client_for, csrf_of

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1500)]


def _api(dash: Dashboard, path: str, **params: object) -> dict:
    headers = {"Authorization": f"Bearer {dash.keys['read_key']}"}
    response = httpx.get(f"{dash.url}{path}", params=params, headers=headers, timeout=120)
    assert response.status_code == 200, response.text
    return response.json()


def _section(page: str, heading_id: str) -> str:
    start = page.index(f'id="{heading_id}"')
    end = page.find("<section", start)
    return page[start : end if end > 0 else len(page)]


def _profile_of(dash: Dashboard, identifier: str) -> str:
    return str(_api(dash, f"/v1/profiles/{identifier}")["profile_id"])


def test_profile_shows_scores_audiences_and_predictions_as_the_api_gives_them(dashboard: Dashboard) -> None:
    pid = _profile_of(dashboard, dashboard.email)
    with client_for(dashboard, "vic") as client:
        page = client.get(f"/customers/{pid}")
    assert page.status_code == 200, page.text
    text = page.text
    # predictions: the API's P(alive) and CLV for this customer
    clv = _api(dashboard, f"/v1/predictions/{pid}")["clv"]
    assert f"{clv['p_alive'] * 100:.1f}%" in text and f"{clv['clv']:,.2f}" in text
    # lead scores: the API's explanation (points, band, stage, each rule's points)
    names = [s["name"] for s in _api(dashboard, "/v1/scores")["scores"]]
    assert names, "the demo defines a lead score"
    scores = _section(text, "scores")
    for name in names:
        explained = _api(dashboard, f"/v1/scores/{name}/explain/{pid}")
        shown = re.search(
            r'score-points">([0-9.,]+)</strong> points.*?score-band">([^<]*)</strong>, stage <strong '
            r'class="score-stage">([^<]*)</strong>',
            scores,
            re.S,
        )
        assert shown, scores[:800]
        assert float(shown.group(1).replace(",", "")) == pytest.approx(explained["points"], abs=0.06)
        assert shown.group(2) == (explained["band"] or "none") and shown.group(3) == (explained["stage"] or "none")
        for rule in explained["rules"]:
            assert f"<td>{html.escape(rule['rule'])}</td>" in scores
    # audiences: those whose current members (API) include the profile, and no other
    member_of = {
        a["name"]
        for a in _api(dashboard, "/v1/audiences")["audiences"]
        if pid
        in {m["profile_id"] for m in _api(dashboard, f"/v1/audiences/{a['name']}/members", limit=10_000)["members"]}
    }
    audiences = _section(text, "audiences")
    shown_now = re.search(r"In (?:\d+ audiences? now: (.*?)\.|no audience now\.)</p>", audiences, re.S)
    assert shown_now, audiences[:500]
    listed = set(re.findall(r">([^<]+)</a>", shown_now.group(1) or ""))
    assert listed == member_of


def test_profile_lists_the_messages_the_automations_outbox_holds_for_it(dashboard: Dashboard) -> None:
    outbox = _api(dashboard, "/v1/automations/welcome/outbox", limit=1000)["outbox"]
    assert outbox, "the welcome flow decided messages for its treated sign-ups"
    row = outbox[0]
    with client_for(dashboard, "vic") as client:
        page = client.get(f"/customers/{row['profile_id']}")
    assert page.status_code == 200, page.text
    messages = _section(page.text, "messages")
    mine = [r for r in outbox if r["profile_id"] == row["profile_id"]]
    cells = re.findall(r"<tr><td>welcome</td><td>(\d+): (.*?)</td><td>(\w+)</td><td>(.*?)</td><td>(\w+)</td>", messages)
    assert len(cells) == len(mine)
    for (step, words, channel, _subject, status), api in zip(cells, mine, strict=True):
        assert int(step) == api["step"] + 1 and channel == api["channel"] and status == api["status"]
        assert "Welcome" in html.unescape(words)


def test_only_an_admin_moves_a_lead_back_a_stage(dashboard: Dashboard) -> None:
    pid = _profile_of(dashboard, dashboard.email)
    before = _api(dashboard, f"/v1/scores/lead/explain/{pid}")["stage"]
    assert before == "customer"  # the demo's customers earned the last stage
    with client_for(dashboard, "vic") as client:
        page = client.get(f"/customers/{pid}").text
        assert "/demote" not in page and "needs the admin role" in page
        refused = client.post(
            f"/customers/{pid}/scores/lead/demote", data={"csrf": csrf_of(page), "to": "lead", "reason": "x"}
        )
        assert refused.status_code == 403
    with client_for(dashboard, "ada") as client:
        page = client.get(f"/customers/{pid}").text
        assert f'action="/customers/{pid}/scores/lead/demote"' in page
        token = csrf_of(page)
        assert (
            client.post(f"/customers/{pid}/scores/lead/demote", data={"to": "lead", "reason": "x"}).status_code == 403
        )
        empty = client.post(f"/customers/{pid}/scores/lead/demote", data={"csrf": token, "to": "lead", "reason": ""})
        assert empty.status_code == 400 and "reason" in empty.text
        moved = client.post(
            f"/customers/{pid}/scores/lead/demote", data={"csrf": token, "to": "lead", "reason": "sales: no budget"}
        )
        assert moved.status_code == 303 and moved.headers["location"].endswith("?demoted=lead#scores")
        assert 'score-stage">lead</strong>' in client.get(f"/customers/{pid}").text
    assert _api(dashboard, f"/v1/scores/lead/explain/{pid}")["stage"] == "lead"


def test_planner_gives_the_workflows_units_and_names_the_field_of_a_mistake(dashboard: Dashboard) -> None:
    api = _api(dashboard, "/v1/experiments/plan/sample-size", baseline=0.1, mde=0.05)
    with client_for(dashboard, "vic") as client:
        page = client.get("/experiments", params={"baseline": "0.1", "mde": "0.05"})
        assert page.status_code == 200, page.text
        total = 2 * math.ceil(api["units_control"])
        assert f'id="plan-total">{total:,}</strong>' in page.text and "Duration:" in page.text
        wrong = client.get("/experiments", params={"baseline": "ten", "mde": "0.05"})
        assert wrong.status_code == 400 and "baseline: &#39;ten&#39; is not a number" in wrong.text
        assert re.search(r'id="plan-baseline"[^>]*aria-invalid="true"', wrong.text)
        out_of_range = client.get("/experiments", params={"baseline": "1.5", "mde": "0.05"})
        assert out_of_range.status_code == 400 and "baseline rate 1.5 must be between 0 and 1" in out_of_range.text
        assert re.search(r'id="plan-baseline"[^>]*aria-invalid="true"', out_of_range.text)
        both = client.get("/experiments", params={"baseline": "0.1", "mde": "0.05", "units": "100"})
        assert both.status_code == 400 and re.search(r'id="plan-mde"[^>]*aria-invalid="true"', both.text)
        # from a metric of the analysed experiment: its control arm's rate is the baseline
        options = re.findall(r'<option value="([^"]+)"[^>]*>([^<]+)</option>', page.text)
        metric = next(value for value, _ in options if value)
        chosen = client.get("/experiments", params={"metric": metric, "mde": "0.1"})
    assert chosen.status_code == 200, chosen.text
    key, name = metric.split(":", 1)
    headers = {"Authorization": f"Bearer {dashboard.keys['read_key']}"}
    analysed = httpx.post(f"{dashboard.url}/v1/experiments/{key}/analysis", headers=headers, timeout=300).json()
    control = next(
        a for m in analysed["metrics"] if m["metric"] == name for a in m["arms"] if a["variant"] == analysed["control"]
    )
    baseline = re.search(r'id="plan-baseline" name="baseline" type="text" value="([^"]+)"', chosen.text)
    assert baseline and float(baseline.group(1)) == pytest.approx(control["mean"], rel=1e-5)


def test_paths_sankey_adds_up_to_the_people_the_api_counts(dashboard: Dashboard) -> None:
    api = _api(dashboard, "/v1/journeys/paths", anchor="Order Completed", direction="to", depth=3, top=10)
    with client_for(dashboard, "vic") as client:
        page = client.get("/journeys").text
        rows = list(csv.DictReader(io.StringIO(client.get("/csv/journeys/sankey.csv").text)))
    assert '<svg class="chart sankey"' in page and 'aria-label="Paths to an order' in page
    out_of_anchor = sum(int(r["people"]) for r in rows if r["from"] == "0. Order Completed")
    assert out_of_anchor == api["people"] > 0
    ends = sum(int(r["people"]) for r in rows if r["to"].endswith("(start)"))
    assert ends == api["people"]  # every path reaches the session's start: folding into "(other)" drops nobody
    assert page.count('class="flow"') == len(rows)
