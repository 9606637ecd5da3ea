"""The dashboard's parts without a server: users and sessions, the CLI, the rate limit, charts, templates."""

from __future__ import annotations

import dataclasses
import io
import json
import math
import re
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.conftest import run_cli

from touchpoint import users
from touchpoint.errors import AlreadyExists, InvalidInput, NotFound, TooManyAttempts
from touchpoint.warehouse import Warehouse
from touchpoint.web import charts
from touchpoint.web.auth import RateLimit
from touchpoint.web.render import TEMPLATES, environment


def test_passwords_are_slow_salted_hashes(warehouse: Warehouse) -> None:
    user = users.create_user(warehouse, "ada", "a long password", "analyst")
    assert user.role == "analyst" and user.status == "active"
    stored = warehouse.to_arrow(warehouse.table("users")).to_pylist()[0]["password_hash"]
    assert stored.startswith("scrypt$32768$8$1$") and "a long password" not in stored
    assert users.hash_password("same") != users.hash_password("same")  # salted
    assert users.verify_password("same", users.hash_password("same"))
    assert not users.verify_password("same", "garbage") and not users.verify_password("same", "md5$x$y$z$a$b")
    assert users.authenticate(warehouse, "ada", "wrong password") is None
    assert users.authenticate(warehouse, "nobody", "a long password") is None


def test_user_rules_name_the_problem(warehouse: Warehouse) -> None:
    with pytest.raises(InvalidInput, match="at least 10"):
        users.create_user(warehouse, "ada", "short", "viewer")
    with pytest.raises(InvalidInput, match="role 'root'"):
        users.create_user(warehouse, "ada", "a long password", "root")
    with pytest.raises(InvalidInput, match="not allowed"):
        users.create_user(warehouse, "../ada", "a long password", "viewer")
    users.create_user(warehouse, "ada", "a long password", "viewer")
    with pytest.raises(AlreadyExists):
        users.create_user(warehouse, "ada", "another password", "admin")
    with pytest.raises(NotFound, match="users list"):
        users.disable_user(warehouse, "nobody")


def test_sessions_end_on_sign_out_expiry_and_disable(warehouse: Warehouse) -> None:
    users.create_user(warehouse, "ada", "a long password", "admin")
    token, session = users.start_session(warehouse, "ada", "admin", via="password")
    assert users.session_for(warehouse, token) == session
    assert users.session_for(warehouse, token + "x") is None
    users.end_session(warehouse, token)
    assert users.session_for(warehouse, token) is None
    key_token, _ = users.start_session(warehouse, "key:demo-read", "viewer", via="api_key")
    token, _ = users.start_session(warehouse, "ada", "admin", via="password")
    users.disable_user(warehouse, "ada")
    assert users.session_for(warehouse, token) is None
    assert users.session_for(warehouse, key_token) is not None  # a key's session ends with the key's revocation
    stored = warehouse.to_arrow(warehouse.table("web_sessions")).column("token_hash").to_pylist()
    assert token not in stored and users.token_hash(token) in stored


def test_roles_are_ordered() -> None:
    assert users.allows("admin", "analyst") and users.allows("analyst", "analyst")
    assert not users.allows("viewer", "analyst") and not users.allows("unknown", "viewer")
    assert users.ROLE_FOR_SCOPE == {"read": "viewer", "admin": "admin"}


def test_users_cli_create_list_disable(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    data = str(tmp_path / "data")
    monkeypatch.setattr(sys, "stdin", io.StringIO("a long password\n"))
    code, out, _ = run_cli(
        capsys, "users", "create", "ada", "--role", "admin", "--password-stdin", "--data", data, "--json"
    )
    assert code == 0 and json.loads(out)["role"] == "admin"
    monkeypatch.setattr(sys, "stdin", io.StringIO("\n"))
    code, out, _ = run_cli(capsys, "users", "create", "bob", "--password-stdin", "--data", data, "--json")
    assert code == 1 and json.loads(out)["error"]["code"] == "invalid_input"
    monkeypatch.setattr(sys, "stdin", io.StringIO("a long password\n"))
    code, out, _ = run_cli(capsys, "users", "create", "bob", "--role", "owner", "--password-stdin", "--data", data)
    assert code == 1
    code, out, _ = run_cli(capsys, "users", "list", "--data", data, "--json")
    assert [u["name"] for u in json.loads(out)] == ["ada"] and "password" not in out
    code, out, _ = run_cli(capsys, "users", "disable", "ada", "--data", data, "--json")
    assert code == 0 and json.loads(out)["status"] == "disabled"
    code, out, _ = run_cli(capsys, "users", "disable", "nobody", "--data", data, "--json")
    assert code == 1 and json.loads(out)["error"]["code"] == "not_found"


def test_rate_limit_counts_per_user_and_per_address() -> None:
    limit = RateLimit(per_user=2, per_address=3, window=60)
    limit.failed("ip:a", "user:x")
    limit.failed("ip:a", "user:x")
    with pytest.raises(TooManyAttempts) as caught:
        limit.check("ip:a", "user:x")
    assert 0 < caught.value.retry_after <= 61
    limit.check("ip:a", "user:y")  # another user from the same address
    limit.failed("ip:a", "user:y")
    with pytest.raises(TooManyAttempts):
        limit.check("ip:a", "user:z")  # the address is now over its limit
    assert RateLimit(per_user=1, window=0.0)._limit("user:q") == 1


def test_every_template_compiles_and_ships_in_the_package() -> None:
    env = environment()
    names = sorted(p.name for p in TEMPLATES.glob("*.html"))
    assert {"base.html", "overview.html", "signin.html", "profile.html"} <= set(names)
    for name in names:
        env.get_template(name)
    assert (TEMPLATES.parent / "static" / "style.css").stat().st_size > 1000


numbers = st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=True, width=32), st.integers(-(10**9), 10**9))


@settings(max_examples=60, deadline=None)
@given(
    labels=st.lists(st.text(max_size=30), min_size=0, max_size=30),
    values=st.lists(numbers, min_size=30, max_size=30),
    lows=st.lists(numbers, min_size=30, max_size=30),
)
def test_charts_draw_any_numbers_and_escape_any_label(labels: list[str], values: list, lows: list) -> None:
    svg = charts.bars(labels, values[: len(labels)], lows=lows[: len(labels)], highs=values[: len(labels)], title="<t>")
    assert svg.startswith("<svg") and svg.endswith("</svg>") and "<t>" not in svg and "nan" not in svg.lower()
    line = charts.lines([str(i) for i in range(len(labels))], {"<s>": values[: len(labels)]}, title="x")
    assert "<s>" not in line and "inf" not in line.lower()
    assert charts.spark(values, title="s").count("<svg") <= 1


def _page(template: str, data: dict, **extra: object) -> str:
    from datetime import UTC, datetime

    from touchpoint.web.snapshot import Entry

    entry = Entry(data, None, datetime.now(UTC), 0.1, ())
    ctx = {"title": "t", "entry": entry, "section": "s", "session": None, "nav": [], "path": "/", "csrf": "", **extra}
    return environment().get_template(template).render(can=lambda _role: False, **ctx)


def test_a_model_that_failed_its_diagnostics_shows_why_not_numbers() -> None:
    problems = ["chains disagree: R-hat 1.2 for roi[video] (limit 1.05)", "too few effective draws: ESS 34"]
    html = _page("mmm.html", {"status": "failed", "reliable": False, "problems": problems, "tables": {}})
    assert "The model failed its diagnostics" in html and all(p in html for p in problems)
    assert "ROMI per channel" not in html and "case.pdf" not in html
    weekly = {"columns": ["week", "revenue", "new_customers", "spend"], "rows": [["2026-01-05", 10.0, 1, 5.0]]}
    overview = {
        "customers": 1,
        "weeks": ["2026-01-05"],
        "revenue_total": 10.0,
        "spend_total": 5.0,
        "tables": {"weekly": weekly},
        "predictions": {"failed": "ABNORMAL_TERMINATION_IN_LNSRCH", "runs": []},
        "mmm": {"status": "failed", "reliable": False, "problems": ["too few effective draws"]},
    }
    html = _page("overview.html", overview)
    assert html.count("Model failed:</strong> ABNORMAL_TERMINATION_IN_LNSRCH") == 2  # active customers and equity
    assert "Model failed its diagnostics:</strong> too few effective draws" in html and "ROMI <strong>" not in html


def test_the_journeys_section_of_a_shop_without_page_views(warehouse: Warehouse, tmp_path: Path) -> None:
    from touchpoint.collect.store import write_messages
    from touchpoint.web.sections import journeys

    write_messages(
        warehouse, [{"type": "track", "event": "Order Completed", "userId": "u1", "properties": {"revenue": 5}}]
    )
    funnel = journeys(warehouse, tmp_path)["tables"]["funnel"]
    first = dict(zip(funnel["columns"], funnel["rows"][0], strict=True))
    assert first["people"] == 0 and first["overall_low"] is None and first["overall_high"] is None


labels = st.text(max_size=20)


@settings(max_examples=60, deadline=None)
@given(
    names=st.lists(st.tuples(st.integers(0, 4), labels), min_size=1, max_size=15),
    links=st.lists(st.tuples(st.integers(0, 14), st.integers(0, 14), st.one_of(st.integers(-3, 10**6), numbers))),
    backwards=st.booleans(),
)
def test_sankey_draws_any_paths_and_escapes_any_label(names: list, links: list, backwards: bool) -> None:
    nodes = [f"{step}. {label}" for step, label in names]
    drawn = [{"source": a, "target": b, "value": v} for a, b, v in links if a < len(nodes) and b < len(nodes)]
    ok = [lk for lk in drawn if lk["value"] is not None and math.isfinite(float(lk["value"])) and lk["value"] > 0]
    svg = charts.sankey(nodes, ok, title="<paths>", backwards=backwards)
    assert svg.startswith("<svg") and svg.endswith("</svg>") and 'aria-label="&lt;paths&gt;"' in svg
    geometry = " ".join(re.findall(r' (?:d|x|y|width|height)="([^"]*)"', svg)).lower()
    assert "nan" not in geometry and "inf" not in geometry
    assert svg.count('class="flow"') == len(ok)
    for _, label in names:
        if "<" in label:
            assert label not in svg


def test_a_failed_sample_ratio_check_shows_why_not_lifts() -> None:
    srm = {"ok": False, "p_value": 1e-9, "observed": [900, 1100], "expected": [1000.0, 1000.0]}
    lifts = {"columns": ["metric", "variant", "estimate", "ci_low", "ci_high"], "rows": [["buy", "b", 0.5, 0.1, 0.9]]}
    arms = {"columns": ["metric", "variant", "units", "mean"], "rows": [["buy", "a", 900, 0.1]]}
    exp = {
        "key": "cta", "name": "CTA", "kind": "experiment", "status": "running", "verdict": "No verdict: split",
        "result_status": "srm_failed", "srm": srm, "notes": [], "relative": True, "engine": "frequentist",
        "labels": ["buy: b"], "tables": {"cta-lifts": lifts, "cta-arms": arms},
    }  # fmt: skip
    html = _page("experiments.html", {"experiments": [exp], "tables": {}, "metrics": []}, planner=_planner())
    assert "Lifts not shown" in html and "FAILED" in html and "900 / 1100" in html
    assert "cta-lifts.csv" not in html and "<svg" not in html and "cta-arms.csv" in html
    exp["srm"] = {**srm, "ok": True, "p_value": 0.4}
    html = _page("experiments.html", {"experiments": [exp], "tables": {}, "metrics": []}, planner=_planner())
    assert "Lifts not shown" not in html and "cta-lifts.csv" in html and "<svg" in html


def test_a_failed_holdout_split_and_a_failed_clv_fit_show_why_not_numbers() -> None:
    lift = {
        "status": "inconclusive", "verdict": "v", "goal_rate": {"treated": 0.2, "holdout": 0.1},
        "lift": {"estimate": 0.9, "ci_low": 0.1, "ci_high": 1.5, "relative": True, "engine": "sequential"},
        "matured": 10, "srm": {"ok": False, "p_value": 1e-6, "observed": [70, 10], "expected": [40.0, 40.0]},
    }  # fmt: skip
    auto = {
        "name": "welcome", "status": "active", "trigger": "Signed Up", "holdout": 0.5, "flow": [], "goal": None,
        "description": "", "entries": {"treated": 70, "holdout": 10}, "sent": 0, "pending": 0, "dead": 0, "lift": lift,
    }  # fmt: skip
    outbox = {"columns": ["status", "messages"], "rows": []}
    listing = {"columns": ["automation", "status", "trigger", "entered", "held out", "sent"], "rows": []}
    tables = {"welcome-outbox": outbox, "automations": listing}
    html = _page("automations.html", {"automations": [auto], "tables": tables})
    assert "Sample ratio check: FAILED" in html and "70 / 10" in html and "95% interval" not in html
    kpi = {"key": "customer_equity", "value": None, "failed": "ABNORMAL_TERMINATION_IN_LNSRCH", "method": "m"}
    others = [
        {"key": k, "value": None, "method": "none yet", "hint": ""} for k in ("satisfaction", "relative_attractiveness")
    ]
    html = _page("plan.html", {"kpis": [kpi, *others], "plans": [], "quarters": [], "tables": {}, "no_plan": "none"})
    assert "Model failed:</strong> ABNORMAL_TERMINATION_IN_LNSRCH" in html


def _planner() -> dict:
    from touchpoint.web.planner import FIELDS

    return {"form": dict(FIELDS), "metrics": []}


def test_the_planner_names_the_field_of_each_mistake(warehouse: Warehouse) -> None:
    from touchpoint.web.planner import plan

    cases = {
        "baseline": {"mde": "0.05"},
        "mde": {"baseline": "0.1"},
        "units": {"baseline": "0.1", "units": "1"},
        "alpha": {"baseline": "0.1", "mde": "0.05", "alpha": "2"},
        "power": {"baseline": "0.1", "mde": "0.05", "power": "1.5"},
        "share": {"baseline": "0.1", "mde": "0.05", "share": "nan"},
        "metric": {"metric": "nope:buy", "mde": "0.05"},
    }
    for field, params in cases.items():
        answer = plan(warehouse, params, [])
        assert answer["field"] == field, (field, answer.get("error"))
        assert field in answer["error"].message
    fine = plan(warehouse, {"baseline": "0.1", "mde": "0.1"}, [])
    assert fine["result"]["units_control"] == 14749 and fine["form"]["alpha"] == "0.05"
    metric = {"id": "cta:revenue", "label": "x", "kind": "mean", "baseline": 20.0, "sd": 5.0, "units": 100}
    chosen = plan(warehouse, {"metric": "cta:revenue", "units": "1000"}, [metric])
    assert chosen["result"]["kind"] == "mean" and chosen["form"]["baseline"] == "20" and chosen["form"]["sd"] == "5"


@settings(max_examples=80, deadline=None)
@given(
    counts=st.dictionaries(
        st.lists(st.sampled_from(["a", "b", "c", "d", "e", "f", "g"]), max_size=4).map(tuple),
        st.integers(1, 1000),
        max_size=30,
    ),
    keep=st.integers(1, 5),
)
def test_folding_a_sankey_keeps_every_person_at_every_step(counts: dict, keep: int) -> None:
    from touchpoint.journeys.paths import fold, sankey

    full = sankey("A", counts)
    small = fold(full, keep=keep)

    def per_step(sk: dict) -> dict[str, int]:
        out: dict[str, int] = {}
        for lk in sk["links"]:
            step = sk["nodes"][lk["source"]].split(". ")[0]
            out[step] = out.get(step, 0) + lk["value"]
        return out

    assert per_step(small) == per_step(full)
    steps: dict[str, int] = {}
    for name in small["nodes"]:
        steps[name.split(". ")[0]] = steps.get(name.split(". ")[0], 0) + 1
    assert all(n <= keep + 1 for n in steps.values())
    assert len(small["nodes"]) == len(set(small["nodes"]))


def test_a_profiles_messages_carry_the_rendered_subject_not_the_text(warehouse: Warehouse) -> None:
    from datetime import datetime

    from touchpoint.automations import outbox

    at = datetime(2026, 3, 1, 12, 0)
    rows = [
        {
            "automation": "welcome", "step": step, "profile_id": pid, "occurrence": "once",
            "outbox_id": outbox.outbox_id("welcome", step, pid, "once"), "channel": "email",
            "purpose": "marketing_email", "status": status, "due_at": at, "attempts": 1, "last_error": None,
            "payload": payload, "entered_at": at, "created_at": at, "updated_at": at,
            "sent_at": at if status == "sent" else None,
        }
        for step, pid, status, payload in [
            (1, "p-1", "sent", json.dumps({"subject": "Welcome, Ann", "text": "secret body", "to": "a@x.test"})),
            (3, "p-1", "pending", None),
            (1, "p-2", "sent", json.dumps({"subject": "Not Ann's"})),
        ]
    ]  # fmt: skip
    outbox.record(warehouse, rows)
    mine = outbox.for_profile(warehouse, "p-1")
    assert [(m["step"], m["status"], m["subject"]) for m in mine] == [(1, "sent", "Welcome, Ann"), (3, "pending", None)]
    assert "secret body" not in json.dumps(mine, default=str) and "payload" not in mine[0]
    assert outbox.for_profile(warehouse, "nobody") == []


def test_the_planners_cached_traffic_gives_the_durations_of_the_query(warehouse: Warehouse) -> None:
    from datetime import datetime, timedelta

    from touchpoint.collect.store import write_messages
    from touchpoint.experiments.planner import expected_duration
    from touchpoint.web.planner import plan

    start = datetime(2026, 3, 1)
    visits = [
        {"type": "page", "anonymousId": f"v{i}", "timestamp": (start + timedelta(hours=7 * i)).isoformat() + "Z"}
        for i in range(120)
    ]
    write_messages(warehouse, visits)
    traffic = expected_duration(warehouse, 1).cumulative_units
    assert traffic[-1] > 0
    for params in ({"baseline": "0.1", "mde": "0.5"}, {"baseline": "0.1", "units": "30", "share": "0.5"}):
        queried, cached = plan(warehouse, params, []), plan(warehouse, params, [], traffic)
        assert cached["result"]["duration"] == queried["result"]["duration"]


def test_a_soft_request_waits_for_the_sections_min_age_and_a_hard_one_does_not(
    warehouse: Warehouse, tmp_path: Path
) -> None:
    """A job that runs every few seconds marks its sections stale (soft): recomputed once their min_age has
    passed, not after each run; a person's change (hard) recomputes at once."""
    from datetime import timedelta

    from touchpoint.web.snapshot import Refresher, Section, Snapshot

    calls: list[str] = []

    def compute(name: str) -> Any:
        return lambda wh, folder: calls.append(name) or {"n": len(calls)}

    sections = {n: Section(n, compute(n), ("spend",), min_age=60) for n in ("slow", "other")}
    snap = Snapshot(sections)
    refresher = Refresher(snap, warehouse, tmp_path)
    assert refresher.run_once() == ["slow", "other"]  # first computation
    assert refresher.run_once() == []  # nothing changed
    refresher.request("slow", soft=True)
    assert not refresher._wake.is_set()  # taken at the next regular turn: no turn of reads after every run
    assert refresher.run_once() == []  # computed less than 60 s ago: waits

    def age(name: str) -> None:
        entry = snap.entries[name]
        snap.entries[name] = dataclasses.replace(entry, computed_at=entry.computed_at - timedelta(seconds=61))

    age("slow")
    assert refresher.run_once() == ["slow"]  # its min_age passed: recomputed, once
    age("slow")
    assert refresher.run_once() == []  # the soft request was used up
    refresher.request("other")
    assert refresher._wake.is_set()  # hard: the thread is woken
    assert refresher.run_once() == ["other"]  # and recomputes at once
    assert calls == ["slow", "other", "slow", "other"]
