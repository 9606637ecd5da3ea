"""Flows with state: waits for an event (either path), branches on an audience condition, random splits,
waits until a local time of day, and the actions that hand a lead to sales, set a trait or change a manual
audience; each step is decided when the contact reaches it, and reached at most once."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from touchpoint.audiences import scores
from touchpoint.audiences import workflow as audiences
from touchpoint.automations import actions, flows, store, triggers, workflow
from touchpoint.automations.definition import parse
from touchpoint.collect.store import write_messages
from touchpoint.errors import InvalidDefinition
from touchpoint.warehouse import Warehouse, schema

from .channels import WebhookReceiver, smtp_sink
from .shop import open_shop, profile_of, set_traits, track
from .shop import settings as shop_settings


def _hook(url: str, path: str) -> dict[str, Any]:
    return {"webhook": {"url": f"{url}/{path}", "purpose": "transactional"}}


def _auto(name: str, trigger: dict[str, Any], steps: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {"name": name, "trigger": trigger, "holdout": 0, "allow_no_holdout": True, "steps": steps, **extra}


def _flows(wh: Warehouse, name: str) -> dict[str, dict[str, Any]]:
    t = wh.table(flows.TABLE)
    rows = wh.to_arrow(t.filter(t.automation == name)).to_pylist()
    return {r["profile_id"]: {**r, "path": json.loads(r["path"])} for r in rows}


def _outbox(wh: Warehouse, name: str) -> list[tuple[str, int]]:
    t = wh.table(schema.AUTOMATION_OUTBOX.name)
    rows = wh.to_arrow(t.filter(t.automation == name).select("profile_id", "step")).to_pylist()
    return sorted((r["profile_id"], r["step"]) for r in rows)


def test_wait_for_an_event_continues_on_either_path_then_branches(tmp_path: Path) -> None:
    wh = open_shop(tmp_path, 4)
    set_traits(wh, {0: {"plan": "pro"}, 1: {"plan": "pro"}})
    s = shop_settings(tmp_path)
    with WebhookReceiver() as hook:
        steps = [
            _hook(hook.url, "hello"),
            {"wait_for": {"event": "Order Completed", "timeout_days": 3, "on_timeout": [_hook(hook.url, "nudge")]}},
            {"branch": {"if": {"trait": "plan", "eq": "pro"}, "then": [_hook(hook.url, "pro")]}},
            _hook(hook.url, "bye"),
        ]
        workflow.create(wh, _auto("onboard", {"event": "Signed Up"}, steps))
        track(wh, "Signed Up", [0, 1, 2, 3])
        t0 = store.now()
        out = workflow.run(wh, s, now=t0)
        assert out["decided"][0]["entered"] == 4 and out["delivered"] == {"sent": 4}
        track(wh, "Order Completed", [0, 2])  # two of them order within the wait
        out = workflow.run(wh, s, now=store.now() + timedelta(seconds=1))
        assert out["delivered"] == {"sent": 3}  # 0: pro + bye; 2: bye (not pro)
        assert workflow.run(wh, s, now=t0 + timedelta(days=1))["delivered"] == {}  # 1 and 3 still wait
        out = workflow.run(wh, s, now=t0 + timedelta(days=3, minutes=1))
        assert out["delivered"] == {"sent": 5}  # 1: nudge, pro, bye; 3: nudge, bye
        for _ in range(2):  # nothing more, however often it runs
            assert workflow.run(wh, s, now=t0 + timedelta(days=4))["delivered"] == {}
        got = {
            path: sorted(b["profile_id"] for b in hook.bodies(f"/{path}")) for path in ("hello", "nudge", "pro", "bye")
        }
    p = [profile_of(wh, i) for i in range(4)]
    assert got == {"hello": sorted(p), "nudge": sorted([p[1], p[3]]), "pro": sorted([p[0], p[1]]), "bye": sorted(p)}
    f = _flows(wh, "onboard")
    assert {pid: f[pid]["status"] for pid in p} == dict.fromkeys(p, "done")
    waits = {pid: next(e["outcome"] for e in f[pid]["path"] if e["kind"] == "wait_for") for pid in p}
    assert waits == {p[0]: "event", p[1]: "timeout", p[2]: "event", p[3]: "timeout"}
    assert [e["taken"] for e in f[p[3]]["path"] if e["kind"] == "branch"] == ["else"]


def test_wait_until_a_local_time_uses_the_timezone_trait_else_the_events_else_the_default(tmp_path: Path) -> None:
    wh = open_shop(tmp_path, 4)
    set_traits(wh, {0: {"timezone": "America/New_York"}, 1: {"timezone": "Not/AZone"}})
    # the recipient's zone is one rule (automations.zones), the same quiet hours read: a Segment library's
    # context.timezone counts when there is no trait
    tokyo = {"type": "track", "userId": "u3", "event": "Page Viewed", "context": {"timezone": "Asia/Tokyo"}}
    write_messages(wh, [tokyo])
    steps = [
        {"wait_until": {"time": "09:00"}},
        {"webhook": {"url": "http://127.0.0.1:9/x", "purpose": "transactional"}},
    ]
    workflow.create(wh, _auto("morning", {"event": "Signed Up"}, steps))
    track(wh, "Signed Up", [0, 1, 2, 3])
    at = datetime(2030, 3, 9, 15, 0)  # a Saturday; New York moves its clocks on Sunday the 10th
    assert triggers.evaluate(wh, "morning", now=at, default_timezone="Europe/Stockholm")["entered"] == 4
    f = _flows(wh, "morning")
    p = [profile_of(wh, i) for i in range(4)]
    assert f[p[0]]["due_at"] == datetime(2030, 3, 10, 13, 0)  # 09:00 EDT (UTC-4) after the change
    assert f[p[1]]["due_at"] == f[p[2]]["due_at"] == datetime(2030, 3, 10, 8, 0)  # 09:00 in Stockholm (UTC+1)
    assert f[p[3]]["due_at"] == datetime(2030, 3, 10, 0, 0)  # 09:00 in Tokyo (UTC+9)
    assert _outbox(wh, "morning") == []
    triggers.evaluate(wh, "morning", now=datetime(2030, 3, 10, 8, 30), default_timezone="Europe/Stockholm")
    assert _outbox(wh, "morning") == sorted([(p[1], 1), (p[2], 1), (p[3], 1)])
    triggers.evaluate(wh, "morning", now=datetime(2030, 3, 10, 13, 0), default_timezone="Europe/Stockholm")
    assert _outbox(wh, "morning") == sorted([(p[0], 1), (p[1], 1), (p[2], 1), (p[3], 1)])


SCORE = {
    "fit": [{"name": "pro plan", "when": {"trait": "plan", "eq": "pro"}, "points": 70}],
    "engagement": [{"name": "demo", "event": "Demo Requested", "points": 5, "half_life_days": 30}],
    "bands": [{"name": "cold", "min": 0}, {"name": "hot", "min": 60}],
}


def test_a_hot_lead_is_handed_to_sales_with_its_score_and_timeline(tmp_path: Path) -> None:
    wh = open_shop(tmp_path, 3)
    scores.save(wh, "lead", SCORE)
    with WebhookReceiver() as crm, smtp_sink() as sink:
        hand_off = {"hand_off": {"url": f"{crm.url}/leads", "owner": "sales@shop.test", "score": "lead"}}
        workflow.create(wh, _auto("handoff", {"score": "lead", "band": "hot"}, [hand_off]))
        track(wh, "Demo Requested", [1])
        set_traits(wh, {1: {"plan": "pro", "company": "Acme"}})
        scores.run(wh, "lead", now=store.now())
        out = workflow.run(wh, shop_settings(tmp_path, sink.port), now=store.now())
        assert out["decided"][0]["entered"] == 1 and out["delivered"] == {"sent": 2}
        body = crm.bodies("/leads")[0]
        mail = sink.to("sales@shop.test")
    pid = profile_of(wh, 1)
    assert body["lead"]["profile_id"] == pid and body["lead"]["company"] == "Acme"
    assert body["lead"]["email"] == "u1@people.test"
    assert body["score"]["band"] == "hot" and body["score"]["points"] >= 70
    assert {r["rule"] for r in body["score"]["rules"]} == {"pro plan", "demo"}
    assert "Demo Requested" in [e["event"] for e in body["timeline"]]
    assert len(mail) == 1 and "Lead: u1@people.test (hot)" in mail[0]["Subject"]
    text = mail[0].get_payload(decode=True).decode()
    assert "pro plan (fit)" in text and "Demo Requested" in text and '"company": "Acme"' in text


def test_set_trait_goes_through_the_event_log_once(tmp_path: Path) -> None:
    from touchpoint.profiles.workflow import update

    wh = open_shop(tmp_path, 2)
    steps = [{"set_trait": {"traits": {"nurtured": True, "nurtured_by": "{{ automation }}"}}}]
    workflow.create(wh, _auto("nurture", {"event": "Signed Up"}, steps))
    track(wh, "Signed Up", [1])
    assert workflow.run(wh, shop_settings(tmp_path), now=store.now())["delivered"] == {"sent": 1}
    e = wh.table("events")
    mine = wh.to_arrow(e.filter(e.message_id.startswith("automation-")).select("type", "source", "message_id"))
    assert mine.num_rows == 1 and mine.column("type").to_pylist() == ["identify"]
    assert mine.column("source").to_pylist() == ["automation"]
    t = wh.table(schema.AUTOMATION_OUTBOX.name)
    stored = json.loads(wh.to_arrow(t.filter(t.automation == "nurture").payload).to_pylist()[0])
    assert actions.write_event(wh, stored).status == "sent"  # a resend after a crash: the same messageId
    assert wh.to_arrow(e.filter(e.message_id.startswith("automation-")).count()).as_py() == 1
    update(wh)
    tr = wh.table("profile_traits")
    got = wh.to_arrow(tr.filter(tr.profile_id == profile_of(wh, 1)).select("trait", "value")).to_pylist()
    traits = {r["trait"]: json.loads(r["value"]) for r in got}
    assert traits["nurtured"] is True and traits["nurtured_by"] == "nurture"


def test_add_to_and_remove_from_a_manual_audience(tmp_path: Path) -> None:
    wh = open_shop(tmp_path, 3)
    audiences.create(wh, "nurtured", {"manual": True})
    steps = [
        {"add_to_audience": {"audience": "nurtured"}},
        {
            "wait_for": {
                "event": "Order Completed",
                "timeout_days": 2,
                "on_event": [{"remove_from_audience": {"audience": "nurtured"}}],
            }
        },
    ]
    workflow.create(wh, _auto("nurture", {"event": "Signed Up"}, steps))
    track(wh, "Signed Up", [0, 1])
    triggers.evaluate(wh, "nurture", now=store.now())
    members = lambda: sorted(m["profile_id"] for m in audiences.members(wh, "nurtured")["members"])  # noqa: E731
    assert members() == sorted([profile_of(wh, 0), profile_of(wh, 1)])
    audiences.refresh_audiences(wh, full=True)  # a refresh leaves a manual audience alone
    assert len(members()) == 2
    track(wh, "Order Completed", [0])
    triggers.evaluate(wh, "nurture", now=store.now() + timedelta(seconds=1))
    assert members() == [profile_of(wh, 1)]
    hist = wh.table(schema.AUDIENCE_MEMBERSHIPS.name)
    assert wh.to_arrow(hist.filter(hist.audience == "nurtured").count()).as_py() == 2  # the history keeps the stay
    audiences.create(wh, "pros", {"trait": "plan", "eq": "pro"})
    workflow.create(wh, _auto("bad", {"event": "Signed Up"}, [{"add_to_audience": {"audience": "pros"}}]))
    track(wh, "Signed Up", [2])
    triggers.evaluate(wh, "bad", now=store.now())
    step = _flows(wh, "bad")[profile_of(wh, 2)]["path"][0]
    assert step["outcome"] == "skipped" and "not manual" in step["reason"]


@pytest.mark.parametrize(
    ("steps", "path", "words"),
    [
        ([{"wait_until": {"time": "9am"}}], "$.steps[0].wait_until.time", "HH:MM"),
        ([{"wait_for": {"event": "X"}}], "$.steps[0].wait_for.timeout_days", "needs"),
        ([{"branch": {"if": {"trait": "plan", "like": "p"}}}], "$.steps[0].branch.if", "unknown key"),
        (
            [{"branch": {"if": {"trait": "p", "eq": 1}, "then": [{"sms": {}}]}}],
            "$.steps[0].branch.then[0]",
            "unknown step",
        ),
        ([{"split": {"arms": [{"name": "a", "steps": []}]}}], "$.steps[0].split.arms", "2 to 10"),
        (
            [{"split": {"arms": [{"name": "a", "steps": []}, {"name": "a", "steps": []}]}}],
            "$.steps[0].split.arms[1].name",
            "two arms",
        ),
        (
            [{"split": {"arms": [{"name": "a", "weight": 0, "steps": []}, {"name": "b", "steps": []}]}}],
            "$.steps[0].split.arms[0].weight",
            "positive",
        ),
        (
            [{"hand_off": {"url": "http://crm/x", "owner": "nobody", "score": "lead"}}],
            "$.steps[0].hand_off.owner",
            "email",
        ),
        (
            [{"set_trait": {"traits": {"consent_marketing_email": True}}}],
            "$.steps[0].set_trait.traits.consent_marketing_email",
            "consent",
        ),
        ([{"set_trait": {"traits": {"x": "{{ ''.__class__ }}"}}}], "$.steps[0].set_trait.traits.x", "__class__"),
        ([{"add_to_audience": {}}], "$.steps[0].add_to_audience.audience", "needs"),
        ([{"wait_for": {"event": "X", "timeout_days": 1}}], "$.steps", "only wait"),
    ],
)
def test_a_bad_step_names_the_field(steps: list[Any], path: str, words: str) -> None:
    with pytest.raises(InvalidDefinition) as info:
        parse(_auto("x", {"event": "A"}, steps))
    assert info.value.path == path
    assert words in info.value.message + (info.value.hint or "")


# -- properties: a contact reaches each step at most once; branches partition the entrants; splits are sticky
N = 12


@pytest.fixture(scope="module")
def population(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Warehouse, datetime]]:
    tmp = tmp_path_factory.mktemp("flows")
    wh = open_shop(tmp, N)
    set_traits(wh, {i: {"n": i} for i in range(N)})
    audiences.create(wh, "everyone", {"trait": "n", "gte": 0})
    yield wh, store.now()
    wh.close()


_names = itertools.count()


@settings(
    max_examples=5,
    deadline=None,
    phases=(Phase.explicit, Phase.reuse, Phase.generate),  # each example costs seconds: no slow shrinking
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(k=st.integers(0, N), weights=st.lists(st.integers(1, 5), min_size=2, max_size=3))
def test_each_step_once_branches_partition_and_splits_stick(
    population: tuple[Warehouse, datetime], k: int, weights: list[int]
) -> None:
    wh, _ = population
    name = f"prop-{next(_names)}"
    hook = lambda p: {"webhook": {"url": f"http://127.0.0.1:9/{p}", "purpose": "transactional"}}  # noqa: E731
    fork = {"branch": {"if": {"trait": "n", "gte": k}, "then": [hook("hi")], "else": [hook("lo"), hook("lo2")]}}
    arms = [
        {"name": f"arm{i}", "weight": w, "steps": [fork] if i == 0 else [hook(f"a{i}")]} for i, w in enumerate(weights)
    ]
    steps = [{"split": {"arms": arms}}, {"wait": {"hours": 1}}, hook("end")]
    saved = workflow.create(wh, _auto(name, {"schedule": {"every": "1h", "audience": "everyone"}}, steps))["automation"]
    auto = store.load(wh, name)
    ids = [profile_of(wh, i) for i in range(N)]
    t0 = saved["created_at"]
    for minutes in (61, 62, 125, 126):  # one run; its wait ends; evaluated twice each
        triggers.evaluate(wh, name, now=t0 + timedelta(minutes=minutes))
    t = wh.table(flows.TABLE)
    rows = wh.to_arrow(t.filter(t.automation == name)).to_pylist()
    assert len(rows) == 2 * N and len({r["occurrence"] for r in rows}) == 2  # two runs: each member entered each
    first = min(r["occurrence"] for r in rows)  # the first run's wait has ended; the second's has not
    assert {r["status"] for r in rows if r["occurrence"] == first} == {"done"}
    assert {r["status"] for r in rows if r["occurrence"] != first} == {"waiting"}
    for r in rows:
        path = json.loads(r["path"])
        reached = [e["step"] for e in path]
        assert len(reached) == len(set(reached))  # each step at most once
        arm = next(e["taken"] for e in path if e["kind"] == "split")
        assert arm == flows.split_arm(name, auto.steps[0], r["profile_id"])  # sticky: the same arm every run
        branches = [e["taken"] for e in path if e["kind"] == "branch"]
        n = ids.index(r["profile_id"])
        if arm == "arm0":
            assert branches == (["then"] if n >= k else ["else"])  # the condition decides: a partition
        else:
            assert branches == []
    t = wh.table(schema.AUTOMATION_OUTBOX.name)
    keys = wh.to_arrow(t.filter(t.automation == name).select("profile_id", "occurrence", "step")).to_pylist()
    assert len(keys) == len({(x["profile_id"], x["occurrence"], x["step"]) for x in keys})
    arms_of = {r["profile_id"]: next(e["taken"] for e in json.loads(r["path"]) if e["kind"] == "split") for r in rows}
    assert set(arms_of.values()) <= {a["name"] for a in arms}
