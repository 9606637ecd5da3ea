"""`touchpoint automations runs NAME` (CLI and HTTP): each entry's path through the flow; and `split NAME`:
a split's arms compared on the goal by the experiments engine, each arm's goal rate with interval."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

from starlette.testclient import TestClient
from tests.conftest import run_cli

from touchpoint import keys
from touchpoint.api.app import create_app
from touchpoint.automations import flows, store, triggers, workflow
from touchpoint.collect.store import write_messages
from touchpoint.profiles.workflow import update

from .shop import open_shop, profile_of, settings, track

N = 40


def _hook(path: str) -> dict[str, Any]:
    return {"webhook": {"url": f"http://127.0.0.1:9/{path}", "purpose": "transactional"}}


def test_runs_show_each_path_and_split_compares_the_arms(tmp_path: Path) -> None:
    wh = open_shop(tmp_path, N)
    steps = [
        {"split": {"arms": [{"name": "short", "steps": [_hook("s")]}, {"name": "long", "steps": [_hook("l")]}]}},
        {"wait_for": {"event": "Order Completed", "timeout_days": 2}},
        {"branch": {"if": {"trait": "first_name", "eq": "Name0"}, "then": [_hook("vip")]}},
    ]
    d = {"name": "ab", "trigger": {"event": "Signed Up"}, "holdout": 0.2, "steps": steps}
    workflow.create(wh, d | {"goal": {"event": "Order Completed", "within_days": 14}})
    track(wh, "Signed Up", list(range(N)))
    t0 = store.now()
    triggers.evaluate(wh, "ab", now=t0)
    auto = store.load(wh, "ab")
    ids = [profile_of(wh, i) for i in range(N)]
    arm = {p: flows.split_arm("ab", auto.steps[0], p) for p in ids}
    ordered = [i for i, p in enumerate(ids) if (arm[p] == "long" and i % 5) or i % 6 == 0]  # long converts more
    write_messages(
        wh,
        [
            {
                "type": "track",
                "userId": f"u{i}",
                "event": "Order Completed",
                "timestamp": (t0 + timedelta(hours=1)).isoformat() + "Z",
            }
            for i in ordered
        ],
    )
    update(wh)
    triggers.evaluate(wh, "ab", now=t0 + timedelta(hours=2))
    out = workflow.runs(wh, "ab", limit=1000)
    assert out["total"] == N and len(out["runs"]) == N
    by = {r["profile_id"]: r for r in out["runs"]}
    held = [p for p in ids if by[p]["arm"] == "holdout"]
    assert held and all(by[p]["outcome"] == "held_out" and by[p]["path"] == [] for p in held)
    for i, p in enumerate(ids):
        r = by[p]
        if r["arm"] == "holdout":
            continue
        kinds = [s["kind"] for s in r["path"]]
        assert r["path"][0]["taken"] == arm[p] and kinds[1] == "webhook"
        if i in ordered:  # the goal ended the flow before the wait: it exited
            assert r["outcome"] == "exited", r
        else:
            assert r["outcome"] == "waiting" and r["at"]["kind"] == "wait_for" and r["at"]["until"] is not None
    split = workflow.split(wh, "ab", now=t0 + timedelta(days=20), engine="frequentist")
    treated = [p for p in ids if by[p]["arm"] == "treated"]
    assert split["entrants"] == {a: float(sum(arm[p] == a for p in treated)) for a in ("short", "long")}
    for a in ("short", "long"):
        mine = [i for i, p in enumerate(ids) if p in treated and arm[p] == a]
        assert split["goal_rate"][a] == sum(i in ordered for i in mine) / len(mine)
    long_vs_short = split["comparisons"][0]
    assert long_vs_short["arm"] == "long" and long_vs_short["estimate"] > 0
    assert long_vs_short["ci_low"] < long_vs_short["estimate"] < long_vs_short["ci_high"]
    assert split["srm"]["ok"] in (True, False)


def test_runs_over_http_and_the_cli(tmp_path: Path, capsys: Any) -> None:
    data = tmp_path / "data"
    data.mkdir()
    wh = open_shop(data, 3)
    token = keys.create_api_key(wh, "reader", "read")
    steps = [{"wait": {"hours": 1}}, _hook("x")]
    workflow.create(
        wh, {"name": "plain", "trigger": {"event": "Signed Up"}, "holdout": 0, "allow_no_holdout": True, "steps": steps}
    )
    track(wh, "Signed Up", [0, 1])
    triggers.evaluate(wh, "plain", now=store.now())
    wh.close()
    with TestClient(create_app(settings(data), run_jobs=False)) as c:
        r = c.get("/v1/automations/plain/runs", headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 200, r.text
        body = r.json()
    assert body["total"] == 2 and {x["outcome"] for x in body["runs"]} == {"sending"}
    assert [s["kind"] for s in body["runs"][0]["path"]] == ["wait", "webhook"]
    assert body["runs"][0]["path"][1]["message"] == "pending"
    code, out, err = run_cli(capsys, "automations", "runs", "plain", "--data", str(data), "--json")
    assert code == 0, err
    assert json.loads(out)["total"] == 2
    code, out, err = run_cli(capsys, "automations", "runs", "plain", "--data", str(data))
    assert code == 0 and "=> sending" in out
