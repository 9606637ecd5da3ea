"""The KPIs on a warehouse: a small demo shop (with its survey answers and known truth), the CLI, the
HTTP API on a real server, and hostile survey answers."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from tests.conftest import Server, free_port, run_cli

from touchpoint import keys
from touchpoint.collect.files import import_events
from touchpoint.collect.orders import import_orders
from touchpoint.collect.store import write_messages
from touchpoint.demo.export import write_files
from touchpoint.demo.simulator import DemoConfig, simulate
from touchpoint.errors import InvalidInput
from touchpoint.plan.kpis import kpis
from touchpoint.plan.surveys import answers, quarter_bounds
from touchpoint.predict.clv import ClvOptions, run_clv, write_predictions
from touchpoint.predict.summary import orders_from_events
from touchpoint.warehouse import Warehouse


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, dict]]:
    data = tmp_path_factory.mktemp("kpis") / "data"
    files = data / "demo"
    truth = write_files(simulate(DemoConfig(customers=1500, weeks=60, seed=3)), files)
    with Warehouse.open(f"duckdb://{data / 'warehouse.duckdb'}") as wh:
        import_events(wh, files / "events.jsonl", source="demo")
        import_orders(wh, files / "orders.csv", source="demo")
        write_predictions(wh, run_clv(wh, orders_from_events(wh), ClvOptions(unit="days", equity_draws=60)))
    yield data, truth


def _open(data: Path) -> Warehouse:
    return Warehouse.open(f"duckdb://{data / 'warehouse.duckdb'}", read_only=True)


def test_kpis_on_the_demo_shop_recover_its_survey_truth(shop: tuple[Path, dict]) -> None:
    data, truth = shop
    with _open(data) as wh:
        k = kpis(wh, brand="acme", nps=True)  # the brand matches ignoring case
    for name in ("customer_equity", "satisfaction", "relative_attractiveness"):
        assert {"value", "low", "high", "n", "method"} <= set(k[name]), name
        assert k[name]["low"] <= k[name]["value"] <= k[name]["high"], name
    st = truth["surveys"]
    sat = k["satisfaction"]
    assert sat["n"] == st["csat"]["segments"]["new"]["answers"] + st["csat"]["segments"]["repeat"]["answers"]
    assert sat["low"] <= st["csat"]["mean"] <= sat["high"]
    assert sat["top_box"]["low"] <= st["csat"]["top_box"] <= sat["top_box"]["high"]
    segments = {s["segment"]: s for s in sat["by_segment"]}
    assert set(segments) == {"new", "repeat"}
    assert segments["repeat"]["value"] > segments["new"]["value"]  # the simulated difference shows
    ra = k["relative_attractiveness"]
    assert ra["n"] == st["attractiveness"]["respondents"]
    assert ra["low"] <= st["attractiveness"]["index"] <= ra["high"]
    assert sorted(ra["alternatives"]) == sorted(st["alternatives"])
    rel = ra["relation_to_retention_and_clv"]
    assert rel["respondents_with_predictions"] == ra["n"]
    assert rel["p_alive"]["verdict"] and rel["clv"]["verdict"]
    assert "why_not_a_headline_kpi" in k["nps"] and "Keiningham" in k["nps"]["why_not_a_headline_kpi"]
    assert k["nps"]["n"] == st["nps"]["respondents"]


def test_equity_changes_add_up_and_end_at_the_stored_run(shop: tuple[Path, dict]) -> None:
    data, _ = shop
    with _open(data) as wh:
        ce = kpis(wh, brand="Acme")["customer_equity"]
        series = ce["by_quarter"]
        assert len(series) >= 4
        assert series[-1]["value"] == pytest.approx(ce["value"], rel=1e-9)  # the run's own total
        for before, row in itertools.pairwise(series):
            ch = row["change"]
            assert ch["total"] == pytest.approx(row["value"] - before["value"])
            parts = ch["acquisition"]["value"] + ch["retention"]["value"] + ch["spend_per_customer"]["value"]
            assert parts == pytest.approx(ch["total"], rel=1e-9, abs=1e-6)
            assert ch["acquisition"]["value"] > 0
            for p in ("acquisition", "retention", "spend_per_customer"):
                assert ch[p]["low"] <= ch[p]["value"] <= ch[p]["high"]
        q = series[2]["quarter"]
        at = kpis(wh, brand="Acme", quarter=q.lower())
        assert at["quarter"] == q and at["customer_equity"]["value"] == pytest.approx(series[2]["value"])
        assert at["satisfaction"]["n"] == next(r["n"] for r in at["satisfaction"]["by_quarter"] if r["quarter"] == q)
        with pytest.raises(InvalidInput, match="--quarter 2031Q1"):
            kpis(wh, quarter="2031Q1")


@pytest.mark.parametrize("bad", ["2026Q5", "Q3", "2026-Q3x", "", "'; drop table events; --"])
def test_a_malformed_quarter_is_refused_naming_the_option(bad: str) -> None:
    with pytest.raises(InvalidInput, match="--quarter"):
        quarter_bounds(bad)


def test_hostile_survey_answers_are_skipped_with_their_reason(tmp_path: Path) -> None:
    wh = Warehouse.open(f"duckdb://{tmp_path / 'w.duckdb'}")
    good = {"survey": "csat", "score": 4, "scale_max": 5}
    bad = [
        {"survey": "csat", "score": "four", "scale_max": 5},
        {"survey": "csat", "score": 9, "scale_max": 5},
        {"survey": "csat", "score": -1, "scale_max": 5},
        {"survey": "csat", "score": 3},
        {"survey": "csat", "score": 3, "scale_max": 0},
        {"survey": "csat", "score": {"nested": [1, 2]}, "scale_max": 5},
        {"survey": "csat", "score": 1e308, "scale_max": "5"},
        {"survey": "csat", "score": "NaN", "scale_max": 5},
    ]
    msgs = [
        {"type": "track", "event": "Survey Responded", "userId": f"u{i}", "properties": p}
        for i, p in enumerate([good, good, *bad])
    ]
    msgs.append({"type": "track", "event": "Survey Responded", "userId": "x", "properties": {"survey": "csat\u0000"}})
    write_messages(wh, msgs, source="t")
    a = answers(wh, "csat")
    assert a.score.tolist() == [4.0, 4.0]
    assert sum(a.skipped.values()) == len(bad)
    assert a.skipped["score outside 0..scale_max"] == 3
    k = kpis(wh, brand=None)
    assert k["satisfaction"]["value"] == 4.0 and k["satisfaction"]["n"] == 2
    assert k["relative_attractiveness"]["value"] is None and "brand_name" in k["relative_attractiveness"]["hint"]
    assert k["customer_equity"]["value"] is None and "predict clv" in k["customer_equity"]["hint"]
    with pytest.raises(InvalidInput, match="--by"):
        kpis(wh, by='seg"ment')
    wh.close()


def test_small_attractiveness_samples_are_flagged(tmp_path: Path) -> None:
    wh = Warehouse.open(f"duckdb://{tmp_path / 'w.duckdb'}")
    msgs = []
    for i, (ours, theirs) in enumerate([(8, 6), (7, 7), (9, 5), (6, 6), (8, 7)]):
        for brand, s in (("Acme", ours), ("Globex", theirs)):
            msgs.append(
                {
                    "type": "track",
                    "event": "Survey Responded",
                    "userId": f"u{i}",
                    "properties": {"survey": "attractiveness", "brand": brand, "score": s, "scale_max": 10},
                }
            )
    write_messages(wh, msgs, source="t")
    ra = kpis(wh, brand="Acme")["relative_attractiveness"]
    assert ra["n"] == 5 and ra["value"] == pytest.approx(38 / 31)
    assert any("only 5 respondents" in w for w in ra["warnings"])
    assert ra["relation_to_retention_and_clv"]["n"] == 0  # no predictions: said, not invented
    wrong = kpis(wh, brand="Initech")["relative_attractiveness"]
    assert wrong["n"] == 0 and any("check the brand_name" in w for w in wrong["warnings"])
    wh.close()


def test_the_demo_steps_check_kpis_and_the_plan_against_the_truth(shop: tuple[Path, dict]) -> None:
    from touchpoint.demo.steps import experiments
    from touchpoint.demo.steps import kpis as kpi_step
    from touchpoint.demo.steps import plan as plan_step

    data, truth = shop
    with Warehouse.open(f"duckdb://{data / 'warehouse.duckdb'}") as wh:
        k = kpi_step.run_demo(wh, truth, data / "demo")
        assert k["satisfaction"]["covers_truth"] and k["relative_attractiveness"]["covers_truth"]
        assert "truth" in kpi_step.headline(k)
        experiments.define(wh, truth)
        p = plan_step.run_demo(wh, truth, data / "demo")
        again = plan_step.run_demo(wh, truth, data / "demo")  # a re-run stores the next version
    assert again["version"] == p["version"] + 1
    assert [t["tactic"] for t in p["tactics"]] == [
        "winback-email",
        "replenishment-reminder",
        "winback-audience",
        "media-reallocation",
    ]
    assert 0 <= p["probability_of_attainment"] <= 1 and "P(goal)" in plan_step.headline(p)
    email = p["email_effect_vs_truth"]
    assert email["measured"] is not None and email["covers_truth"], email


def test_cli_json_has_the_issue_keys_and_errors_name_the_option(
    shop: tuple[Path, dict], capsys: pytest.CaptureFixture[str]
) -> None:
    data, _ = shop
    code, out, _ = run_cli(capsys, "kpis", "--data", str(data), "--brand", "Acme", "--json")
    assert code == 0
    k = json.loads(out)
    for name in ("customer_equity", "satisfaction", "relative_attractiveness"):
        assert {"value", "low", "high", "n", "method"} <= set(k[name])
    assert "nps" not in k  # not by default
    code, out, _ = run_cli(capsys, "kpis", "--data", str(data), "--quarter", "2026Q9", "--json")
    assert code == 1 and json.loads(out)["error"]["code"] == "invalid_input" and "--quarter" in out
    code, out, _ = run_cli(capsys, "kpis", "--data", str(data), "--nps", "--brand", "Acme")
    assert code == 0 and "customer equity" in out and "Keiningham" in out and "acquisition" in out


def test_http_api_on_a_real_server_in_parallel(shop: tuple[Path, dict], tmp_path: Path) -> None:
    data, _ = shop
    with Warehouse.open(f"duckdb://{data / 'warehouse.duckdb'}") as wh:
        read = {"Authorization": f"Bearer {keys.create_api_key(wh, f'kpi-reader-{free_port()}', 'read')}"}
        write_key = keys.create_source(wh, f"kpi-web-{free_port()}")
    server = Server(data, free_port(), write_key)
    server.start()
    try:
        assert httpx.get(f"{server.url}/v1/kpis").status_code == 401
        urls = [f"{server.url}/v1/kpis?brand=Acme", f"{server.url}/v1/kpis?brand=Acme&nps=true"] * 3
        with ThreadPoolExecutor(6) as pool:
            replies = list(pool.map(lambda u: httpx.get(u, headers=read, timeout=120), urls))
        assert [r.status_code for r in replies] == [200] * 6
        values = {r.json()["customer_equity"]["value"] for r in replies}
        assert len(values) == 1  # the same answer under concurrency
        for query in ("quarter=2026Q7", "by=a%22b", "quarter=" + "9" * 40):
            r = httpx.get(f"{server.url}/v1/kpis?{query}", headers=read, timeout=60)
            assert r.status_code in (400, 422), (query, r.status_code)
            body = r.json()
            assert body["success"] is False and "Traceback" not in r.text
    finally:
        server.stop()
