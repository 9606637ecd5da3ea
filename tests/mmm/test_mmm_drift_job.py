"""The weekly job's refit is compared with the model it replaces: a ROMI that left its previous interval is
written in the job's run log (and logged), with what changed; the job uses the warehouse's calibrations."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from tests.jobs.test_mmm_job import _shop

from touchpoint.config import Settings
from touchpoint.jobs import JOBS, execute
from touchpoint.jobs.runlog import Run
from touchpoint.mmm import MMMResult, workflow
from touchpoint.mmm.calibration import MeasuredLift, accept, proposal
from touchpoint.mmm.dataset import from_warehouse
from touchpoint.warehouse import open_warehouse

pytestmark = pytest.mark.slow  # the job fits in a fresh worker process


def test_the_weekly_refit_writes_a_drift_in_the_job_log(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """The shop of tests/jobs/test_mmm_job.py, whose default-settings fit is compiled there too."""
    settings = Settings(data_dir=tmp_path / "data")
    _shop(settings, tmp_path)
    model = workflow.model_dir(settings.data_dir)
    model.mkdir(parents=True)
    # last week's fit, as its summary says: search far higher than the data show (no model.json: defaults)
    last_week = {"romi": {"search": {"romi": {"mean": 50.0, "low": 40.0, "high": 60.0}}}, "data_hash": "0" * 16}
    (model / "fit.json").write_text(json.dumps(last_week))
    wh = open_warehouse(settings)
    try:
        data = from_warehouse(wh, kpi="revenue")
        lift = MeasuredLift("experiment:geo", str(data.dates[10]), str(data.dates[15]), 900.0, 700.0, 1100.0, 100.0)
        accept(wh, proposal(wh, lift, channel="social", channels=data.channels, spend=1800.0), by="cli:ann")
        with caplog.at_level(logging.WARNING, logger="touchpoint.jobs"):
            run: Run = execute(wh, settings, JOBS["mmm"], trigger="manual")
    finally:
        wh.close()
    assert run.status == "succeeded", run.error
    logged = run.to_dict()["summary"]
    assert logged["drift"] == ["search"] and logged["calibrations"] == 1, logged
    assert any("ROMI of search drifted" in w and "calibrations" in w for w in logged["drift_warnings"])
    assert any("ROMI of search drifted" in r.getMessage() for r in caplog.records)
    refitted = MMMResult.load(model)
    assert [c.source for c in refitted.config.calibrations] == ["experiment:geo"]
    assert refitted.diagnostics["refit"]["drift"] == ["search"]
    assert refitted.diagnostics["calibration"][0]["used"]
