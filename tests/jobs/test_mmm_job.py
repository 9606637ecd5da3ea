"""The weekly marketing-mix refit runs in a worker process: the job's thread only waits for it, and a
stopping server ends it at once, keeping the model that was there."""

from __future__ import annotations

import threading
import time
from datetime import date, timedelta
from pathlib import Path

import pytest

from touchpoint.collect.spend import import_spend
from touchpoint.collect.store import write_messages
from touchpoint.config import Settings
from touchpoint.jobs import JOBS, execute
from touchpoint.warehouse import open_warehouse

pytestmark = pytest.mark.slow


def _shop(settings: Settings, tmp_path: Path) -> None:
    start = date(2026, 1, 5)  # a Monday
    orders = []
    lines = ["date,channel,amount"]
    for day in range(7 * 40):  # 40 weeks: enough for a fit (34 at least), so it is sampling when stopped
        when = start + timedelta(days=day)
        for k in range(3):
            orders.append(
                {
                    "type": "track",
                    "event": "Order Completed",
                    "userId": f"c{(day * 3 + k) % 400}",
                    "timestamp": f"{when.isoformat()}T12:00:00Z",
                    "properties": {"order_id": f"o{day}-{k}", "revenue": 40 + (day % 7) * 3 + k},
                }
            )
        if day % 7 == 0:
            lines.append(f"{when.isoformat()},search,{500 + (day % 5) * 40}")
            lines.append(f"{when.isoformat()},social,{300 + (day % 3) * 60}")
    spend = tmp_path / "spend.csv"
    spend.write_text("\n".join(lines) + "\n")
    wh = open_warehouse(settings)
    write_messages(wh, orders)
    import_spend(wh, spend)
    wh.close()


def test_a_stopping_server_ends_the_fit_process_and_keeps_the_old_model(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data")
    _shop(settings, tmp_path)
    model = settings.data_dir / "mmm"
    model.mkdir(parents=True)
    (model / "model.json").write_text('{"the": "previous model"}')
    stopping = threading.Event()
    wh = open_warehouse(settings)
    try:
        runs = []
        worker = threading.Thread(
            target=lambda: runs.append(execute(wh, settings, JOBS["mmm"], trigger="schedule", stopping=stopping))
        )
        worker.start()
        time.sleep(8)  # the weekly summary is pulled and the child process is sampling
        assert worker.is_alive(), f"the fit ended before the stop: {runs and runs[0]}"
        signalled = time.monotonic()
        stopping.set()
        worker.join(30)
        assert not worker.is_alive() and time.monotonic() - signalled < 15
    finally:
        wh.close()
    assert runs[0].status == "interrupted", runs[0]
    assert (model / "model.json").read_text() == '{"the": "previous model"}'
    assert not (settings.data_dir / "mmm.next").exists()  # the half-written model is gone
