"""The weekly job's refit is compared with the model it replaces: a ROMI that left its previous interval is
written in the job's run log (and logged), with what changed; the job uses the warehouse's calibrations."""

from __future__ import annotations

import json
import logging
from datetime import date, timedelta
from pathlib import Path

import pyarrow as pa
import pytest

from touchpoint.collect.store import write_messages
from touchpoint.config import Settings
from touchpoint.jobs import JOBS, execute
from touchpoint.jobs.runlog import Run
from touchpoint.mmm import MMMResult, simulate, workflow
from touchpoint.mmm.calibration import MeasuredLift, accept, proposal
from touchpoint.mmm.dataset import from_warehouse
from touchpoint.warehouse import open_warehouse, schema

from .test_mmm_calibration import SMALL

# the job fits in a fresh worker process, after a fit here: minutes on a busy 2-core machine
pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]


def _shop(settings: Settings) -> None:
    """test_mmm_calibration's simulated weeks as daily orders and spend (so its compiled sampler serves)."""
    data, _ = simulate(weeks=104, channels=3, seed=5, holdout_weeks=SMALL.holdout_weeks)
    start = date.fromisoformat(str(data.dates[0]))
    orders, spend = [], []
    for w in range(data.n_weeks):
        for d in range(7):
            day = start + timedelta(days=7 * w + d)
            orders.append(
                {
                    "type": "track",
                    "event": "Order Completed",
                    "userId": f"c{w % 50}",
                    "timestamp": f"{day.isoformat()}T12:00:00Z",
                    "properties": {"order_id": f"o{w}-{d}", "revenue": round(float(data.target[w]) / 7, 4)},
                }
            )
            for j, ch in enumerate(data.channels):
                spend.append({"date": day, "channel": ch, "campaign": "", "amount": float(data.spend[w, j]) / 7})
    wh = open_warehouse(settings)
    try:
        write_messages(wh, orders)
        wh.append("spend", pa.Table.from_pylist(spend, schema=schema.SPEND.schema.to_pyarrow()))
    finally:
        wh.close()


def test_the_weekly_refit_writes_a_drift_in_the_job_log(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    settings = Settings(data_dir=tmp_path / "data")
    _shop(settings)
    model = workflow.model_dir(settings.data_dir)
    wh = open_warehouse(settings)
    try:
        data = from_warehouse(wh, kpi="revenue")
        first = workflow.fit_and_save(data, SMALL, model)
        assert first["diagnostics"]["refit"] is None  # nothing to compare with
        # last week's fit, as its summary says, put ch1 far higher than the data show now
        saved = json.loads((model / "fit.json").read_text())
        high = saved["romi"]["ch1"]["romi"]["high"]
        saved["romi"]["ch1"]["romi"] |= {"mean": 3 * high, "low": 2 * high, "high": 4 * high}
        (model / "fit.json").write_text(json.dumps(saved))
        lift = MeasuredLift("experiment:geo", str(data.dates[40]), str(data.dates[51]), 9e4, 7e4, 11e4, 1e4)
        accept(wh, proposal(wh, lift, channel="ch3", channels=data.channels, spend=7e4), by="cli:ann")
        with caplog.at_level(logging.WARNING, logger="touchpoint.jobs"):
            run: Run = execute(wh, settings, JOBS["mmm"], trigger="manual")
    finally:
        wh.close()
    assert run.status == "succeeded", run.error
    logged = run.to_dict()["summary"]
    assert logged["drift"] == ["ch1"] and logged["calibrations"] == 1, logged
    assert any("ROMI of ch1 drifted" in w and "calibrations" in w for w in logged["drift_warnings"])
    assert any("ROMI of ch1 drifted" in r.getMessage() for r in caplog.records)
    refitted = MMMResult.load(model)
    assert [c.source for c in refitted.config.calibrations] == ["experiment:geo"]
    assert refitted.diagnostics["refit"]["drift"] == ["ch1"] and refitted.diagnostics["calibration"][0]["used"]
