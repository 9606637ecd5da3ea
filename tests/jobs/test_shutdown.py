"""SIGTERM while events pour in and a job runs: exit 0, nothing acknowledged lost, the next start resumes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
from tests.conftest import free_port

from touchpoint import keys
from touchpoint.warehouse import Warehouse

pytestmark = pytest.mark.slow


def _start(data: Path, port: int, log: Path) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TOUCHPOINT_")}
    with log.open("ab") as out:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "touchpoint.cli.main",
                "serve",
                "--port",
                str(port),
                "--data",
                str(data),
                "--log-format",
                "json",
            ],
            env=env,
            stdout=out,
            stderr=out,
        )
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        assert process.poll() is None, log.read_text()
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return process
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    process.kill()
    raise AssertionError(f"the server did not start:\n{log.read_text()}")


def test_sigterm_during_ingestion_and_a_job_loses_nothing_and_the_next_start_resumes(tmp_path: Path) -> None:
    data = tmp_path / "data"
    wh = Warehouse.open(f"duckdb://{data / 'warehouse.duckdb'}")
    write_key = keys.create_source(wh, "web")
    read_key = keys.create_api_key(wh, "ops", "read")
    wh.close()
    port, log = free_port(), tmp_path / "server.log"
    url = f"http://127.0.0.1:{port}"
    process = _start(data, port, log)

    acknowledged: list[str] = []
    stop = threading.Event()

    def send(worker: int) -> None:
        with httpx.Client(base_url=url, auth=(write_key, ""), timeout=10) as client:
            n = 0
            while not stop.is_set():
                batch = [
                    {"type": "identify", "userId": f"w{worker}-u{n + i}", "messageId": f"w{worker}-m{n + i}"}
                    for i in range(25)
                ]
                n += 25
                try:
                    response = client.post("/v1/batch", json={"batch": batch})
                except httpx.HTTPError:
                    continue  # the server is going away: not acknowledged, so not promised
                if response.status_code == 200:
                    acknowledged.extend(e["messageId"] for e in batch)

    senders = [threading.Thread(target=send, args=(w,)) for w in range(4)]
    for t in senders:
        t.start()
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {read_key}"}, timeout=10) as client:
        deadline = time.monotonic() + 60
        while not client.get("/v1/jobs/profiles").json()["running"]:  # a job is under way when we stop
            assert time.monotonic() < deadline, "the profiles job never ran"
            time.sleep(0.05)
    process.send_signal(signal.SIGTERM)
    code = process.wait(60)
    stop.set()
    for t in senders:
        t.join(30)
    assert code == 0, log.read_text()
    assert len(acknowledged) > 100

    lines = [line for line in log.read_text().splitlines() if line.strip()]
    records = [json.loads(line) for line in lines]  # every line is one JSON object
    assert all({"ts", "level", "logger", "message", "fields"} <= set(r) for r in records)
    messages = [r["message"] for r in records]
    assert "committed every queued event" in messages and "stopped" in messages

    with Warehouse.open(f"duckdb://{data / 'warehouse.duckdb'}", read_only=True) as stopped:
        stored = set(stopped.to_arrow(stopped.table("events").select("message_id")).column("message_id").to_pylist())
        runs = stopped.to_arrow(stopped.table("job_runs")).to_pylist()
    lost = set(acknowledged) - stored
    assert not lost, f"{len(lost)} acknowledged events were lost"
    # the profiles run under way at SIGTERM finished, stopped at its next step, or (past the shutdown's
    # wait) is left 'running' for the next start to mark interrupted
    assert {r["status"] for r in runs if r["job"] == "profiles"} <= {"succeeded", "skipped", "interrupted", "running"}

    # the next start resumes: the profiles job catches up with every stored event
    process = _start(data, port, log)
    try:
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {read_key}"}, timeout=10) as client:
            deadline = time.monotonic() + 90
            while True:
                job = client.get("/v1/jobs/profiles").json()
                if job["events_behind"] == 0 and job["last_success_at"] and not job["running"]:
                    break
                assert time.monotonic() < deadline, job
                time.sleep(0.2)
            sample = acknowledged[-1].replace("-m", "-u")
            profile = client.get(f"/v1/profiles/{sample}")
            assert profile.status_code == 200, profile.text
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(60) == 0
    with Warehouse.open(f"duckdb://{data / 'warehouse.duckdb'}", read_only=True) as stopped:
        assert stopped.count("profiles") == len(stored)
        runs = stopped.to_arrow(stopped.table("job_runs")).to_pylist()
    assert "running" not in {r["status"] for r in runs}, "a run of the first server was never settled"
    assert any(r["job"] == "profiles" and r["status"] == "succeeded" for r in runs)
