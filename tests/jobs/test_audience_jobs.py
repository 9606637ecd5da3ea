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


def test_an_event_moves_a_lead_into_the_hot_band_within_seconds_without_anyone_running_the_score(
    live_server: Callable[..., LiveServer],
) -> None:
    """The real cadences (profiles after new events, scores at most every 5 s after them): the event's
    profile is rescored incrementally and its entry into the hot band is served."""
    server = live_server([JOBS["profiles"], JOBS["scores"]])
    lead = {
        "engagement": [{"event": "Demo Requested", "points": 40, "half_life_days": 14}],
        "bands": [{"name": "cold", "min": 0}, {"name": "hot", "min": 30}],
        "stages": [{"name": "subscriber"}, {"name": "marketing-qualified", "min_points": 30}],
    }
    with server.client() as admin:
        r = admin.post("/v1/scores", json={"name": "lead", "definition": lead})
        assert r.status_code == 201, r.text
        since = r.json()["run"]["computed_at"]
        with server.client(server.write_key) as collector:
            collector.auth = (server.write_key, "")
            del collector.headers["Authorization"]
            demo = {"userId": "bo", "event": "Demo Requested", "properties": {"plan": "team"}}
            sent = time.monotonic()
            assert collector.post("/v1/track", json=demo).status_code == 200
        entries: list[dict[str, object]] = []
        while time.monotonic() < sent + 120 and not entries:
            r = admin.get("/v1/scores/entries", params={"since": since, "score": "lead", "band": "hot"})
            assert r.status_code == 200, r.text
            entries = r.json()["entries"]
            time.sleep(0.2)
        waited = time.monotonic() - sent
        assert len(entries) == 1 and entries[0]["previous"] is None, entries
        # a few seconds: the profiles run, then the scores run it waits for (5 s cadence); generous under load
        assert waited < 30, f"the hot band showed after {waited:.1f} s"
        explained = admin.get(f"/v1/scores/lead/explain/{entries[0]['profile_id']}").json()
        assert (explained["band"], explained["stage"]) == ("hot", "marketing-qualified")
        runs = admin.get("/v1/jobs/scores").json()["history"]
        done = [run for run in runs if run["status"] == "succeeded"]
        assert done and all(run["summary"]["modes"] == ["incremental"] for run in done), runs
