"""The demo shop's randomized email campaign: the estimated lift's interval covers the true lift.

The simulator knows both potential outcomes of every customer, so the true average effect of the
email is known exactly; every engine's interval must cover it (the analysis runs on the events as
imported through the same path users use).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from touchpoint.config import Settings
from touchpoint.demo.run import run_demo
from touchpoint.demo.simulator import DemoConfig
from touchpoint.demo.truth import load_truth


@pytest.mark.slow
def test_demo_email_campaign_interval_covers_the_true_lift(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data")
    summary = run_demo(settings, DemoConfig(customers=4000), say=lambda _: None, steps=("experiments",))
    step = summary["steps"]["experiments"]
    assert step["status"] == "ok", step
    truth = load_truth(settings.data_dir)["experiment"]
    assert step["true_lift_absolute"] == truth["true_lift_absolute"] > 0
    assert step["srm_p_value"] > 0.001
    assert sum(step["units"].values()) == sum(truth["units"].values())
    for name, run in step["runs"].items():
        assert run["ci_low"] <= run["true_lift"] <= run["ci_high"], (name, run)
    absolute = step["runs"]["frequentist_absolute"]
    # the estimate is near the truth: within two standard errors (the interval is +-1.96 se)
    assert abs(absolute["estimate"] - truth["true_lift_absolute"]) < (absolute["ci_high"] - absolute["ci_low"])
    assert Path(step["chart"]).read_bytes()[:4] == b"\x89PNG"
    json.dumps(step)  # JSON-able, as the demo summary requires
