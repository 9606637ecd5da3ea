"""The job runner in a real server: failures are retried and recorded, runs never overlap, the
collector keeps acknowledging whatever the jobs do."""

from __future__ import annotations

import itertools
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any

import httpx
import pytest

from touchpoint.errors import InvalidInput
from touchpoint.jobs import Job, JobContext

BATCH = {"batch": [{"type": "track", "event": "Tick", "anonymousId": f"a{i}"} for i in range(20)]}


def _send(url: str, write_key: str, seconds: float) -> list[int]:
    """POST batches for ``seconds``; the status of each."""
    statuses: list[int] = []
    end = time.monotonic() + seconds
    with httpx.Client(base_url=url, auth=(write_key, ""), timeout=30) as client:
        while time.monotonic() < end:
            statuses.append(client.post("/v1/batch", json=BATCH).status_code)
    return statuses


def _wait(predicate: Any, seconds: float, what: str) -> Any:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def test_a_failing_job_is_retried_with_backoff_recorded_and_the_collector_keeps_acknowledging(live_server: Any) -> None:
    calls: list[float] = []

    def boom(ctx: JobContext) -> None:
        calls.append(time.monotonic())
        raise RuntimeError("the model store is unreachable")

    def fine(ctx: JobContext) -> dict[str, int]:
        return {"rows": ctx.warehouse.count("events")}

    server = live_server(
        [
            Job("boom", boom, every=5.0, retry_base=0.2, retry_max=0.8, doc="always fails"),
            Job("counter", fine, every=0.3, trigger="events", doc="counts events"),
        ]
    )
    with ThreadPoolExecutor(4) as pool:
        sent = [pool.submit(_send, server.url, server.write_key, 3.0) for _ in range(4)]
        statuses = [s for f in sent for s in f.result()]
    assert statuses and set(statuses) == {200}, "the collector stopped acknowledging while a job failed"

    with server.client(server.read_key) as client:
        job = _wait(lambda: (j := client.get("/v1/jobs/boom").json())["failures"] >= 4 and j, 30, "four failures")
        assert job["status"] == "failing" and job["degraded"] is True
        assert job["last_run"]["status"] == "failed"
        assert "RuntimeError: the model store is unreachable" in job["last_run"]["error"]
        attempts = [r["attempt"] for r in reversed(job["history"])]
        assert attempts[:4] == [1, 2, 3, 4]
        assert job["history"][-1]["trigger"] == "schedule"
        assert {r["trigger"] for r in job["history"][:-1]} == {"retry"}
        # exponential backoff: 0.2 s, 0.4 s, 0.8 s, then capped at 0.8 s
        gaps = [b - a for a, b in itertools.pairwise(calls)]
        assert gaps[0] >= 0.15 and gaps[1] >= 0.35 and gaps[2] >= 0.7, gaps
        # the other job keeps running
        counter = client.get("/v1/jobs/counter").json()
        assert counter["last_run"]["status"] == "succeeded" and counter["failures"] == 0
        health = httpx.get(f"{server.url}/healthz").json()
        assert health["status"] == "degraded"
        assert [d["name"] for d in health["degraded_jobs"]] == ["boom"]
        metrics = client.get("/metrics")
        assert metrics.status_code == 200
        failed = [line for line in metrics.text.splitlines() if line.startswith('touchpoint_job_runs_total{job="boom"')]
        assert failed and float(failed[0].split()[-1]) >= 3
        assert "touchpoint_events_accepted_total" in metrics.text
        assert 'touchpoint_job_degraded{job="boom"} 1.0' in metrics.text
        assert 'touchpoint_job_degraded{job="counter"} 0.0' in metrics.text
        assert httpx.get(f"{server.url}/metrics").status_code == 401  # needs a key


def test_a_slow_job_never_runs_twice_at_once(live_server: Any) -> None:
    lock = threading.Lock()
    running = [0]
    most = [0]

    def slow(ctx: JobContext) -> int:
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
        time.sleep(0.8)
        with lock:
            running[0] -= 1
        return 1

    server = live_server([Job("slow", slow, every=0.05, doc="takes longer than its cadence")])
    with server.client() as admin, ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda _: admin.post("/v1/jobs/slow/run"), range(24)))
        time.sleep(2.5)
        job = admin.get("/v1/jobs/slow", params={"history": 50}).json()
    codes = {a.status_code for a in answers}
    assert codes <= {202, 409} and 409 in codes
    refused = next(a for a in answers if a.status_code == 409).json()
    assert refused["error"]["code"] == "job_running"
    assert most[0] == 1
    runs = [r for r in job["history"] if r["finished_at"]]
    assert len(runs) >= 2
    spans = sorted((datetime.fromisoformat(r["started_at"]), datetime.fromisoformat(r["finished_at"])) for r in runs)
    assert all(prev[1] <= nxt[0] for prev, nxt in itertools.pairwise(spans)), "two runs overlapped"


def test_running_a_job_needs_an_admin_key_and_a_known_name(live_server: Any) -> None:
    server = live_server([Job("noop", lambda ctx: 0, every=3600, doc="nothing")])
    with server.client(server.read_key) as reader:
        assert reader.post("/v1/jobs/noop/run").status_code == 403
        assert reader.get("/v1/jobs/nope").json()["error"]["code"] == "not_found"
    with server.client() as admin:
        done = admin.post("/v1/jobs/noop/run", params={"wait": 30})
        assert done.status_code == 200 and done.json()["run"]["status"] == "succeeded"
        assert done.json()["run"]["trigger"] == "manual"
        listing = admin.get("/v1/jobs").json()
        assert [j["name"] for j in listing["jobs"]] == ["noop"]
        assert httpx.post(f"{server.url}/v1/jobs/noop/run").status_code == 401


def test_an_after_job_runs_only_after_its_upstream_job_succeeded_never_on_events_alone(live_server: Any) -> None:
    ups: list[float] = []
    downs: list[float] = []

    def up(ctx: JobContext) -> int:
        ups.append(time.monotonic())
        return 1

    def down(ctx: JobContext) -> int:
        downs.append(time.monotonic())
        return 1

    def orphan(ctx: JobContext) -> int:
        raise AssertionError("an after job ran although its upstream job never ran")

    server = live_server(
        [
            Job("up", up, every=0.3, trigger="events", doc="an events job"),
            Job("down", down, every=0.1, trigger="after", after=("up",), doc="runs after up"),
            Job("off", up, every=0.1, trigger="events", enabled=False, doc="never runs"),
            Job("orphan", orphan, every=0.1, trigger="after", after=("off",), doc="after a job that never runs"),
        ]
    )
    _send(server.url, server.write_key, 1.5)
    _wait(lambda: len(ups) >= 2 and len(downs) >= 2, 20, "runs of up and down")
    time.sleep(1.0)
    with server.client() as admin:
        down_runs = admin.get("/v1/jobs/down", params={"history": 100}).json()
        orphan_job = admin.get("/v1/jobs/orphan").json()
    assert {r["trigger"] for r in down_runs["history"]} == {"upstream"}
    assert down_runs["cadence"] == "after a up run, at most every 0.1s"
    assert orphan_job["runs"] == 0 and orphan_job["next_due"] == "after a off run"
    assert len(downs) <= len(ups), "down ran more often than up succeeded"
    # each run of down started after a run of up (it never runs on the events alone)
    assert all(any(u <= d for u in ups) for d in downs)


def test_after_every_wakes_a_slow_job_soon_after_an_upstream_run_that_wrote_rows(live_server: Any) -> None:
    """``after_every``: an hourly job (the deliveries) runs right after each upstream run that wrote rows; an
    upstream run that wrote none (``wakes_when_empty=False``) wakes nothing."""
    busy: list[float] = []
    sends: list[float] = []
    idle_sends: list[float] = []

    def decide(ctx: JobContext) -> int:
        busy.append(time.monotonic())
        return 1

    def send(ctx: JobContext) -> int:
        sends.append(time.monotonic())
        return 0

    def send_idle(ctx: JobContext) -> int:
        idle_sends.append(time.monotonic())
        return 0

    server = live_server(
        [
            Job("busy", decide, every=0.3, trigger="events", wakes_when_empty=False, doc="decides something"),
            Job("idle", lambda ctx: 0, every=0.3, trigger="events", wakes_when_empty=False, doc="decides nothing"),
            Job("send", send, every=3600, after=("busy",), after_every=0.05, doc="sends after busy"),
            Job("send_idle", send_idle, every=3600, after=("idle",), after_every=0.05, doc="sends after idle"),
        ]
    )
    _send(server.url, server.write_key, 1.5)
    _wait(lambda: len(busy) >= 3 and len(sends) >= 3, 20, "runs of busy and send")
    time.sleep(1.0)
    with server.client() as admin:
        send_job = admin.get("/v1/jobs/send", params={"history": 100}).json()
        idle_job = admin.get("/v1/jobs/send_idle", params={"history": 100}).json()
        idle_runs = admin.get("/v1/jobs/idle", params={"history": 100}).json()["runs"]
    assert "upstream" in {r["trigger"] for r in send_job["history"]}
    assert send_job["cadence"] == "hourly, and 0.05s after a busy run"
    assert idle_runs >= 2 and "upstream" not in {r["trigger"] for r in idle_job["history"]}
    assert len(idle_sends) <= 1, "an upstream run that wrote nothing woke its downstream job"  # its first, on schedule
    # every upstream-woken run of send followed a run of busy, within a few ticks of it
    woken = sorted(sends)[-2:]
    assert all(any(0 <= w - b < 2.0 for b in busy) for w in woken)
    with pytest.raises(InvalidInput, match="after_every"):
        Job("bad", send, every=1, after_every=0.1, doc="no upstream")


def test_an_after_job_on_commit_is_woken_by_the_collectors_commits(live_server: Any) -> None:
    """``on_commit``: the committer tells the runner, and the job runs though its upstream job never does; with
    nothing committed it stays asleep."""
    runs: list[float] = []

    def quick(ctx: JobContext) -> int:
        runs.append(time.monotonic())
        return 1

    server = live_server(
        [
            Job("off", quick, every=0.1, trigger="events", enabled=False, doc="never runs"),
            Job("quick", quick, every=0.1, trigger="after", after=("off",), on_commit=True, doc="after commits"),
        ]
    )
    time.sleep(1.0)
    assert runs == [], "it ran with nothing committed"
    sent = time.monotonic()
    with httpx.Client(base_url=server.url, auth=(server.write_key, ""), timeout=30) as client:
        assert client.post("/v1/batch", json=BATCH).status_code == 200
    _wait(lambda: runs, 10, "a run after the commit")
    assert runs[0] >= sent
    with server.client() as admin:
        history = admin.get("/v1/jobs/quick", params={"history": 10}).json()["history"]
    assert {r["trigger"] for r in history} == {"events"}
    time.sleep(1.0)
    assert len(runs) == 1, "it ran again with nothing new committed"
