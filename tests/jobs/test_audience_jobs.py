"""The server keeps audiences and lead scores current: a buyer's order enters the audience on its own."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable

import pytest

from touchpoint.jobs import JOBS, execute
from touchpoint.warehouse import open_warehouse

from .conftest import LiveServer

pytestmark = pytest.mark.slow


def test_an_order_enters_the_buyers_audience_without_anyone_refreshing_it(
    live_server: Callable[..., LiveServer],
) -> None:
    jobs = [JOBS["profiles"], dataclasses.replace(JOBS["audiences"], every=0.5)]
    server = live_server(jobs)
    buyers = {"event": "Order Completed", "count": {"gte": 1}, "within_days": 30}
    with server.client() as admin:
        r = admin.post("/v1/audiences", json={"name": "buyers", "definition": buyers})
        assert r.status_code == 201, r.text
        with server.client(server.write_key) as collector:
            collector.auth = (server.write_key, "")
            del collector.headers["Authorization"]
            order = {"userId": "ann", "event": "Order Completed", "properties": {"order_id": "o-1", "revenue": 30}}
            assert collector.post("/v1/track", json=order).status_code == 200
        deadline = time.monotonic() + 120
        members: list[dict[str, object]] = []
        while time.monotonic() < deadline and not members:
            r = admin.get("/v1/audiences/buyers/members")
            assert r.status_code == 200, r.text
            members = r.json()["members"]
            time.sleep(0.3)
        assert [m["user_id"] for m in members] == ["ann"]
        runs = admin.get("/v1/jobs/audiences").json()["history"]
        assert any(run["status"] == "succeeded" and run["rows"] for run in runs)


def test_audience_and_score_jobs_skip_with_a_reason_when_nothing_is_defined(tmp_path: object) -> None:
    from touchpoint.config import Settings

    settings = Settings(data_dir=tmp_path)  # type: ignore[arg-type]
    wh = open_warehouse(settings)
    try:
        for name in ("audiences", "scores"):
            run = execute(wh, settings, JOBS[name])
            assert run.status == "skipped" and f"no {name} are defined" in (run.error or "")
    finally:
        wh.close()
