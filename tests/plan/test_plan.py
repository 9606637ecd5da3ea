"""The plan: documents checked field by field, the arithmetic (changes that add up and ones that do not),
the roll-up's probability against its closed form, versions, reviews with measured evidence from an
experiment, and the CLI and HTTP surfaces."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from scipy import stats
from tests.conftest import Server, free_port, run_cli

from touchpoint import keys
from touchpoint.collect.store import write_messages
from touchpoint.errors import AlreadyExists, InvalidInput, NotFound
from touchpoint.experiments import assignment as asg
from touchpoint.experiments.definitions import Experiment, create_experiment
from touchpoint.experiments.metrics import Metric
from touchpoint.plan import workflow
from touchpoint.plan.document import Plan
from touchpoint.plan.review import decide
from touchpoint.plan.rollup import Z90, arithmetic, rollup
from touchpoint.warehouse import Warehouse

T0 = datetime(2026, 7, 6)


def doc(**over: Any) -> dict[str, Any]:
    d: dict[str, Any] = {
        "id": "grow",
        "name": "Grow repeat revenue",
        "goal": {"metric": "revenue", "baseline": 1_000_000, "change": 0.10, "deadline": "2027Q2"},
        "behaviour_changes": [
            {
                "id": "repeat",
                "audience": "first-time buyers",
                "behaviour": "repeat purchase rate",
                "from": 0.20,
                "to": 0.25,
                "people": 10_000,
                "value_per_unit": 120.0,
            },
            {
                "id": "aov",
                "audience": "all buyers",
                "behaviour": "orders per buyer",
                "from": 1.5,
                "to": 1.6,
                "people": 4_000,
                "value_per_unit": 100.0,
            },
        ],
        "tactics": [
            {
                "id": "email",
                "kind": "experiment",
                "behaviour_change": "repeat",
                "experiment": "winback",
                "expected": {"effect": 0.05, "low": 0.02, "high": 0.08, "source": "vendor benchmark"},
                "cost": 5000,
            },
            {
                "id": "bundle",
                "kind": "content",
                "behaviour_change": "aov",
                "expected": {"effect": 0.1, "low": 0.0, "high": 0.2},
            },
        ],
    }
    d.update(over)
    return d


def test_changes_that_add_up_are_reported_as_adding_up() -> None:
    a = arithmetic(Plan.from_dict(doc()))
    # 10,000 x 0.05 x 120 = 60,000 and 4,000 x 0.1 x 100 = 40,000: exactly the goal's 100,000
    assert a["goal"]["gap"] == pytest.approx(100_000)
    assert [c["contribution"] for c in a["behaviour_changes"]] == pytest.approx([60_000, 40_000])
    assert a["adds_up"] is True and a["shortfall"] == 0
    assert "enough for the goal" in a["verdict"]
    assert all(c["tactics_add_up"] for c in a["behaviour_changes"])


def test_changes_that_do_not_add_up_are_reported_with_the_shortfall() -> None:
    d = doc()
    d["behaviour_changes"][0]["to"] = 0.22  # 10,000 x 0.02 x 120 = 24,000
    d["tactics"][1]["expected"] = {"effect": 0.05, "low": 0.0, "high": 0.1}
    a = arithmetic(Plan.from_dict(d))
    assert a["adds_up"] is False
    assert a["shortfall"] == pytest.approx(100_000 - 24_000 - 40_000)
    assert "short of the goal's 100,000 by 36,000 (64% of it)" in a["verdict"]
    assert "tactics fall short of the change needed in: aov" in a["verdict"]


def test_rollup_probability_matches_the_closed_form() -> None:
    d = doc()
    d["tactics"][1]["expected"] = {"effect": 0.1, "low": 0.1, "high": 0.1}  # certain: 40,000
    plan = Plan.from_dict(d)
    r = rollup(plan, draws=200_000)
    sd = 0.03 / Z90 * 10_000 * 120
    exact = 1 - stats.norm.cdf((60_000 - 0.05 * 10_000 * 120) / sd)
    assert r["probability_of_attainment"] == pytest.approx(exact, abs=0.005)  # 0.5: the plan is exactly enough
    measured = rollup(plan, {"email": (0.08, 0.07, 0.09)}, draws=50_000)
    assert measured["probability_of_attainment"] > 0.99 and measured["by_tactic"][0]["from"] == "measured"
    weak = rollup(plan, {"email": (0.0, -0.01, 0.01)}, draws=50_000)
    assert weak["probability_of_attainment"] < 0.01


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (("goal",), None, "goal must be an object"),
        (("goal", "change"), None, "exactly one of target"),
        (("goal", "target"), 5.0, "exactly one of target"),
        (("goal", "deadline"), "2027Q9", "--quarter"),
        (("goal", "baseline"), float("nan"), "goal.baseline must be a finite number"),
        (("goal", "baseline"), "1000", "goal.baseline must be a finite number"),
        (("behaviour_changes",), [], "non-empty list"),
        (("behaviour_changes", 0, "people"), 0, "behaviour_changes[0].people must be positive"),
        (("behaviour_changes", 1, "id"), "repeat", "two behaviour changes have the id 'repeat'"),
        (("behaviour_changes", 0, "id"), "bad id/../x", "behaviour_changes[0].id"),
        (("tactics", 0, "kind"), "magic", "tactics[0].kind 'magic' is not known"),
        (("tactics", 0, "behaviour_change"), "nope", "tactics[0].behaviour_change 'nope'"),
        (("tactics", 0, "expected", "low"), 0.09, "low <= effect <= high"),
        (("tactics", 1, "expected"), [1, 2], "tactics[1].expected must be an object"),
        (("id",), "x" * 65, "plan.id"),
        (("name",), "n" * 1000, "longer than 200"),
    ],
)
def test_documents_are_checked_naming_the_field(path: tuple, value: Any, message: str) -> None:
    d = copy.deepcopy(doc())
    target: Any = d
    for p in path[:-1]:
        target = target[p]
    target[path[-1]] = value
    with pytest.raises(InvalidInput, match=message.replace("[", r"\[").replace("]", r"\]").replace("(", r"\(")):
        Plan.from_dict(d)


def test_round_trip_and_versions(tmp_path: Path) -> None:
    with Warehouse.open(f"duckdb://{tmp_path / 'w.duckdb'}") as wh:
        first = workflow.create(wh, doc())
        assert first["version"] == 1 and Plan.from_dict(first["plan"]).to_dict() == first["plan"]
        with pytest.raises(AlreadyExists, match="--new-version"):
            workflow.create(wh, doc())
        with pytest.raises(NotFound):
            workflow.create(wh, doc(id="other"), new_version=True)
        d = doc()
        d["behaviour_changes"][0]["to"] = 0.3
        second = workflow.create(wh, d, new_version=True, note="bolder")
        assert second["version"] == 2
        shown = workflow.show(wh, "grow")
        assert shown["version"] == 2 and [v["version"] for v in shown["versions"]] == [1, 2]
        assert workflow.show(wh, "grow", version=1)["plan"]["behaviour_changes"][0]["to"] == 0.25
        with pytest.raises(NotFound, match="no version 7"):
            workflow.show(wh, "grow", version=7)
        with ThreadPoolExecutor(4) as pool:  # concurrent new versions never take one number twice
            list(pool.map(lambda _: workflow.create(wh, doc(), new_version=True), range(8)))
        assert [v["version"] for v in workflow.show(wh, "grow")["versions"]] == list(range(1, 11))
        assert [p["plan_id"] for p in workflow.plans(wh)] == ["grow"]


def test_decisions() -> None:
    m = lambda e, lo, hi: {"available": True, "effect": e, "low": lo, "high": hi}  # noqa: E731
    assert decide(0.05, None)[0] == "test"
    assert decide(0.05, m(0.07, 0.04, 0.10))[0] == "scale"
    assert decide(0.05, m(0.03, -0.01, 0.07))[0] == "keep"
    assert decide(0.05, m(0.02, 0.01, 0.03))[0] == "keep"
    assert "less than expected" in decide(0.05, m(0.02, 0.01, 0.03))[1]
    assert decide(0.05, m(-0.03, -0.05, -0.01))[0] == "stop"
    assert decide(0.08, m(0.0, -0.03, 0.03))[0] == "stop"


def _experiment(wh: Warehouse, n: int, rates: dict[str, float], seed: int = 1) -> None:
    create_experiment(
        wh,
        Experiment("winback", start_at=T0, metrics=[Metric("ordered", "binomial", "Order Completed", window_days=14)]),
    )
    rng = np.random.default_rng(seed)
    msgs = []
    for i in range(n):
        user, arm = f"u{i}", ("control", "treatment")[i % 2]
        seen = T0 + timedelta(hours=int(rng.integers(0, 48)))
        msgs.append(asg.exposure_message("winback", user, arm, seen))
        if rng.random() < rates[arm]:
            when = seen + timedelta(days=float(rng.uniform(0.1, 10)))
            msgs.append(
                {
                    "type": "track",
                    "userId": user,
                    "event": "Order Completed",
                    "timestamp": when.isoformat(),
                    "properties": {"order_id": f"o{i}", "revenue": 50.0},
                }
            )
    write_messages(wh, msgs, source="test")


@pytest.fixture(scope="module")
def reviewed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    data = tmp_path_factory.mktemp("plan") / "data"
    with Warehouse.open(f"duckdb://{data / 'warehouse.duckdb'}") as wh:
        _experiment(wh, 6000, {"control": 0.20, "treatment": 0.27})
        workflow.create(wh, doc())
    yield data


def test_review_measures_the_experiment_and_proposes_tests(reviewed: Path) -> None:
    with Warehouse.open(f"duckdb://{reviewed / 'warehouse.duckdb'}") as wh:
        r = workflow.review(wh, "grow", quarter="2026Q3")
        email, bundle = r["tactics"]
        m = email["measured"]
        assert m["available"] and m["low"] <= 0.07 <= m["high"]  # the simulated absolute lift
        assert email["decision"] == "scale" and "minimum_viable_test" not in email
        assert bundle["decision"] == "test" and bundle["measured"] is None
        mvt = bundle["minimum_viable_test"]
        assert mvt["possible"] is False and "not a rate" in mvt["reason"]  # orders per buyer is a count
        assert r["rollup"]["probability_of_attainment"] > r["rollup_as_planned"]["probability_of_attainment"]
        shown = workflow.show(wh, "grow")
        assert shown["reviews"][-1]["quarter"] == "2026Q3" and shown["reviews"][-1]["decisions"]["email"] == "scale"
        d = doc()
        d["tactics"][1] = {
            "id": "reminder",
            "kind": "automation",
            "behaviour_change": "repeat",
            "expected": {"effect": 0.02, "low": 0.0, "high": 0.04},
        }
        workflow.create(wh, d, new_version=True)
        r2 = workflow.review(wh, "grow", quarter="2026q3", write=False)
        mvt = r2["tactics"][1]["minimum_viable_test"]
        assert mvt["possible"] and mvt["units_per_arm"] > 1000 and mvt["fits_the_audience"] is False
        assert len(workflow.show(wh, "grow")["reviews"]) == 1  # write=False stored nothing


def test_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "data"
    f = tmp_path / "plan.json"
    f.write_text(json.dumps(doc()))
    code, out, _ = run_cli(capsys, "plan", "create", str(f), "--data", str(data), "--json")
    assert code == 0 and json.loads(out)["arithmetic"]["adds_up"] is True
    code, out, _ = run_cli(capsys, "plan", "create", str(f), "--data", str(data), "--json")
    assert code == 1 and json.loads(out)["error"]["code"] == "already_exists"
    code, out, _ = run_cli(capsys, "plan", "show", "grow", "--data", str(data))
    assert code == 0 and "probability of reaching" in out and "enough for the goal" in out
    code, out, _ = run_cli(capsys, "plan", "review", "grow", "--quarter", "2026Q3", "--data", str(data))
    assert code == 0 and "probability of reaching the goal" in out and "no evidence" in out
    code, out, _ = run_cli(capsys, "plan", "list", "--data", str(data), "--json")
    assert code == 0 and json.loads(out)[0]["plan_id"] == "grow"
    bad = tmp_path / "bad.json"
    bad.write_bytes(b"\xff\xfe{not json")
    code, out, _ = run_cli(capsys, "plan", "create", str(bad), "--data", str(data), "--json")
    assert code == 1 and json.loads(out)["error"]["code"] == "invalid_input"
    code, out, _ = run_cli(capsys, "plan", "review", "grow", "--quarter", "Q3", "--data", str(data), "--json")
    assert code == 1 and "--quarter" in out


def test_http_on_a_real_server(reviewed: Path) -> None:
    with Warehouse.open(f"duckdb://{reviewed / 'warehouse.duckdb'}") as wh:
        read = {"Authorization": f"Bearer {keys.create_api_key(wh, f'plan-r-{free_port()}', 'read')}"}
        admin = {"Authorization": f"Bearer {keys.create_api_key(wh, f'plan-a-{free_port()}', 'admin')}"}
        write_key = keys.create_source(wh, f"plan-web-{free_port()}")
    server = Server(reviewed, free_port(), write_key)
    server.start()
    try:
        url = server.url
        other = doc(id="second")
        assert httpx.post(f"{url}/v1/plans", json=other, headers=read).status_code == 403  # reads may not write
        created = httpx.post(f"{url}/v1/plans", json=other, headers=admin)
        assert created.status_code == 201 and created.json()["version"] == 1
        with ThreadPoolExecutor(6) as pool:
            replies = list(
                pool.map(
                    lambda u: httpx.get(u, headers=read, timeout=60),
                    [f"{url}/v1/plans", f"{url}/v1/plans/second", f"{url}/v1/plans/second/review?quarter=2026Q3"] * 2,
                )
            )
        assert [r.status_code for r in replies] == [200] * 6
        assert {p["plan_id"] for p in replies[0].json()} >= {"second"}
        stored = httpx.post(f"{url}/v1/plans/second/reviews?quarter=2026Q3", headers=admin, timeout=60)
        assert stored.status_code == 200 and stored.json()["tactics"][0]["decision"] == "scale"
        for method, path, body in (
            ("post", "/v1/plans", {"id": "x"}),
            ("post", "/v1/plans", [1, 2]),
            ("post", "/v1/plans", doc(id="'; drop table plans; --")),
            ("get", "/v1/plans/nope", None),
            ("get", "/v1/plans/second?version=0", None),
            ("get", "/v1/plans/second/review?quarter=2026Q0", None),
        ):
            r = httpx.request(method, f"{url}{path}", json=body, headers=admin, timeout=30)
            assert r.status_code in (400, 404, 422), (path, r.status_code, r.text)
            assert r.json()["success"] is False and "Traceback" not in r.text
    finally:
        server.stop()
