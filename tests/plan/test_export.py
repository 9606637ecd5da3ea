"""The plan's one-pager (HTML and PDF) and an automation's holdout as a tactic's evidence."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from tests.automations.shop import WELCOME, open_shop, track
from tests.conftest import Server, free_port, run_cli

from touchpoint import keys
from touchpoint.automations import store as automation_store
from touchpoint.automations import triggers
from touchpoint.automations import workflow as automations
from touchpoint.plan import workflow

TREATED_RATE, HOLDOUT_RATE = 0.55, 0.25


def _plan(automation: str | None = "welcome") -> dict[str, Any]:
    evidence = {"automation": automation} if automation else {}
    return {
        "id": "welcome-plan",
        "name": "Welcome <script>alert(1)</script>",  # a name is text, never markup
        "goal": {"metric": "revenue", "baseline": 100000, "change": 0.1, "deadline": "2027Q2"},
        "behaviour_changes": [
            {
                "id": "first-order",
                "audience": "sign-ups",
                "behaviour": "first order within 14 days",
                "from": 0.25,
                "to": 0.5,
                "people": 1000,
                "value_per_unit": 40.0,
            }
        ],
        "tactics": [
            {
                "id": "welcome-email",
                "name": "Welcome email",
                "kind": "automation",
                "behaviour_change": "first-order",
                "expected": {"effect": 0.2, "low": 0.1, "high": 0.3, "source": "a guess"},
                "cost": 500,
                **evidence,
            }
        ],
    }


@pytest.fixture
def shop(tmp_path: Path) -> Path:
    """400 sign-ups through the welcome automation (half held out), orders at known rates per arm."""
    n = 400
    wh = open_shop(tmp_path, n)
    automations.create(wh, WELCOME | {"holdout": 0.5})
    track(wh, "Signed Up", list(range(n)))
    automations.evaluate(wh)
    auto = automation_store.load(wh, "welcome")
    p = wh.table("profiles")
    pid = {r["user_id"]: r["profile_id"] for r in wh.to_arrow(p.select("user_id", "profile_id")).to_pylist()}
    rng = np.random.default_rng(3)
    held = [triggers.in_holdout(auto, pid[f"u{i}"]) for i in range(n)]
    buyers = [i for i in range(n) if rng.random() < (HOLDOUT_RATE if held[i] else TREATED_RATE)]
    track(wh, "Order Completed", buyers, resolve=False, revenue=30.0)
    workflow.create(wh, _plan())
    wh.close()
    return tmp_path


def test_an_automations_holdout_is_its_tactics_measured_effect(shop: Path, capsys: Any) -> None:
    code, out, err = run_cli(
        capsys, "plan", "review", "welcome-plan", "--quarter", "2026Q4", "--data", str(shop), "--json"
    )
    assert code == 0, err
    tactic = json.loads(out)["tactics"][0]
    code, out, err = run_cli(
        capsys, "automations", "lift", "welcome", "--absolute", "--engine", "frequentist", "--data", str(shop), "--json"
    )
    lift = json.loads(out)["lift"]
    measured = tactic["measured"]
    assert measured["available"] and "automation 'welcome'" in measured["source"]
    assert measured["effect"] == pytest.approx(lift["estimate"])
    assert (measured["low"], measured["high"]) == pytest.approx((lift["ci_low"], lift["ci_high"]))
    assert measured["low"] < TREATED_RATE - HOLDOUT_RATE < measured["high"]
    assert tactic["decision"] == "scale"  # measured at least the expected +0.2


def test_a_tactic_names_one_source_of_evidence(shop: Path, capsys: Any, tmp_path: Path) -> None:
    both = _plan()
    both["id"] = "both"
    both["tactics"][0]["experiment"] = "some-test"
    (tmp_path / "both.json").write_text(json.dumps(both))
    code, _, err = run_cli(capsys, "plan", "create", str(tmp_path / "both.json"), "--data", str(shop))
    assert code == 1 and "tactics[0] names both an experiment and an automation" in err
    gone = _plan("no-such-automation")
    gone["id"] = "gone"
    (tmp_path / "gone.json").write_text(json.dumps(gone))
    assert run_cli(capsys, "plan", "create", str(tmp_path / "gone.json"), "--data", str(shop))[0] == 0
    code, out, err = run_cli(capsys, "plan", "review", "gone", "--quarter", "2026Q4", "--data", str(shop), "--json")
    tactic = json.loads(out)["tactics"][0]
    assert tactic["measured"]["available"] is False and "no-such-automation" in tactic["measured"]["reason"]
    assert tactic["decision"] == "test"


def test_export_writes_the_one_pager_as_html_and_pdf(shop: Path, capsys: Any, tmp_path: Path) -> None:
    page, pdf = tmp_path / "review.html", tmp_path / "review.pdf"
    code, out, err = run_cli(
        capsys, "plan", "export", "welcome-plan", "--quarter", "2026Q4", "--out", str(page), "--data", str(shop)
    )
    assert code == 0, err
    assert "a review computed now" in out  # nothing stored for the quarter yet
    text = page.read_text()
    assert "&lt;script&gt;" in text and "<script>" not in text
    assert "P(goal) = " in text and "Welcome email" in text and "scale" in text
    assert run_cli(capsys, "plan", "review", "welcome-plan", "--quarter", "2026Q4", "--data", str(shop))[0] == 0
    code, out, err = run_cli(
        capsys,
        "plan",
        "export",
        "welcome-plan",
        "--quarter",
        "2026Q4",
        "--out",
        str(pdf),
        "--data",
        str(shop),
        "--json",
    )
    assert code == 0, err
    assert json.loads(out)["from"].startswith("the review stored at")
    assert pdf.read_bytes().startswith(b"%PDF") and len(pdf.read_bytes()) > 5000
    code, _, err = run_cli(
        capsys,
        "plan",
        "export",
        "welcome-plan",
        "--quarter",
        "2026Q4",
        "--out",
        str(tmp_path / "x.txt"),
        "--data",
        str(shop),
    )
    assert code == 1 and "name a .html or .pdf file" in err
    code, _, err = run_cli(
        capsys, "plan", "export", "nope", "--quarter", "2026Q4", "--out", str(page), "--data", str(shop)
    )
    assert code == 1 and "nope" in err


def test_export_over_http(shop: Path) -> None:
    from touchpoint.warehouse import Warehouse

    wh = Warehouse.open(f"duckdb://{shop / 'warehouse.duckdb'}")
    read = {"Authorization": f"Bearer {keys.create_api_key(wh, 'cfo', 'read')}"}
    wh.close()
    server = Server(shop, free_port(), write_key="")
    server.start()
    try:
        url = f"{server.url}/v1/plans/welcome-plan/export"
        pdf = httpx.get(url, params={"quarter": "2026Q4", "format": "pdf"}, headers=read, timeout=120)
        assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
        assert pdf.content.startswith(b"%PDF")
        page = httpx.get(url, params={"quarter": "2026Q4"}, headers=read, timeout=120)
        assert page.headers["content-type"].startswith("text/html") and "Welcome email" in page.text
        assert httpx.get(url, params={"quarter": "2026Q4"}, timeout=30).status_code == 401
        bad = httpx.get(url, params={"quarter": "2026Q4", "format": "docx"}, headers=read, timeout=30)
        assert bad.status_code == 422 and "format" in bad.text
    finally:
        server.stop()
