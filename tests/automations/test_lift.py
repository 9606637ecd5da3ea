"""The holdout's measured lift covers the true one: entrants reach the goal at known rates per arm."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from tests.conftest import run_cli

from touchpoint.automations import store, triggers, workflow

from .shop import WELCOME, open_shop, track

TREATED_RATE, HOLDOUT_RATE = 0.55, 0.25  # the truth: an absolute lift of 0.30


def test_the_lift_interval_covers_the_true_lift_and_srm_holds(tmp_path: Path, capsys: Any) -> None:
    n = 400
    wh = open_shop(tmp_path, n)
    workflow.create(wh, WELCOME | {"holdout": 0.5})
    track(wh, "Signed Up", list(range(n)))
    assert workflow.evaluate(wh)[0]["entered"] == n
    auto = store.load(wh, "welcome")
    rng = np.random.default_rng(7)
    p = wh.table("profiles")
    pid = {r["user_id"]: r["profile_id"] for r in wh.to_arrow(p.select("user_id", "profile_id")).to_pylist()}
    held = [triggers.in_holdout(auto, pid[f"u{i}"]) for i in range(n)]
    buyers = [i for i in range(n) if rng.random() < (HOLDOUT_RATE if held[i] else TREATED_RATE)]
    track(wh, "Order Completed", buyers, resolve=False, revenue=30.0)
    track(wh, "Order Completed", buyers[:20], resolve=False, revenue=30.0)  # a second order counts once
    out = workflow.lift(wh, "welcome", relative=False)
    assert out["entrants"] == {"holdout": float(sum(held)), "treated": float(n - sum(held))}
    observed = {
        arm: np.mean([i in set(buyers) for i in range(n) if held[i] == (arm == "holdout")]) for arm in out["goal_rate"]
    }
    assert out["goal_rate"] == {k: float(v) for k, v in observed.items()}
    lift = out["lift"]
    assert lift["ci_low"] < TREATED_RATE - HOLDOUT_RATE < lift["ci_high"]
    assert lift["ci_low"] > 0 and lift["engine"] == "sequential"
    assert out["srm"]["ok"] is True
    wh.close()
    code, text, err = run_cli(
        capsys,
        "automations",
        "lift",
        "welcome",
        "--absolute",
        "--engine",
        "frequentist",
        "--data",
        str(tmp_path),
        "--json",
    )
    assert code == 0, err
    freq = json.loads(text)["lift"]
    assert freq["engine"] == "frequentist" and freq["ci_high"] - freq["ci_low"] < lift["ci_high"] - lift["ci_low"]
