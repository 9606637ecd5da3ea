"""The demo's automations: the replenishment reminder and the hot-lead hand-off really send (a local SMTP sink
and a CRM webhook, both started by the step), the held-out get nothing, and the reminder's measured lift covers
the simulator's true lift (each entrant's potential outcomes are drawn from their purchase process)."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest

from touchpoint.automations import workflow
from touchpoint.config import Settings
from touchpoint.demo.run import run_demo
from touchpoint.demo.simulator import DemoConfig
from touchpoint.warehouse import open_warehouse

pytestmark = pytest.mark.slow  # a demo shop loaded, its CLV fitted, its automations run for four weeks


def test_the_demo_reminds_hands_off_and_its_lift_covers_the_truth(tmp_path: Path) -> None:
    steps = ("identity", "predict", "audiences", "automations")
    settings = Settings(data_dir=tmp_path / "data")
    with warnings.catch_warnings():  # a small shop's fits may warn (overflow) without being under test here
        warnings.simplefilter("ignore", RuntimeWarning)
        summary = run_demo(
            settings,
            DemoConfig(customers=4_000, weeks=60, seed=11),
            say=lambda _: None,
            steps=steps,
        )
    result = summary["steps"]["automations"]
    assert result["status"] == "ok", result
    r = result["replenish"]
    assert r["entered"]["treated"] >= 60 and r["entered"]["holdout"] >= 20, r["entered"]
    sent = {row["status"]: row["n"] for row in result["outbox"] if row["automation"] == "replenish"}
    assert sent.get("sent", 0) > 0 and r["emails_received"] == sent["sent"] == r["distinct_message_ids"]
    assert r["held_out_emailed"] == 0
    assert sum(sent.values()) == r["entered"]["treated"]  # each treated entrant: sent, or suppressed (consent)
    lift, true = r["lift"]["lift"], r["true"]
    assert lift["ci_low"] <= true["lift_relative"] <= lift["ci_high"], (lift, true)
    h = result["hot_leads"]
    assert h["handed_off"] == h["entered"] == h["owner_emails"] == h["distinct_idempotency_keys"]
    assert "automations: replenishment reminder to" in result["headline"]
    wh = open_warehouse(settings)
    try:  # the sink and the CRM stopped with the step: a server started after the demo sends nothing to them
        assert {a["name"]: a["status"] for a in workflow.list_automations(wh)} == {
            "replenish": "paused",
            "hot-lead-handoff": "paused",
        }
    finally:
        wh.close()
