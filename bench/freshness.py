"""Freshness: how long after the collector acknowledges an event it shows in the customer's profile, while
at least 5,000 events/s are being ingested, at three warehouse sizes.

A real ``touchpoint serve`` runs on 127.0.0.1 with its jobs at their default cadence. wrk (Debian package
``wrk``, a compiled load generator in its own process) posts batches of 100 events with fresh messageIds,
paced to the target rate. Meanwhile a probe identifies a new customer with a unique trait through
``POST /v1/identify``, takes the moment the answer arrives as the acknowledgement, and polls
``GET /v1/profiles/{userId}`` every 0.2 s until the trait shows (from the profiles job's tables, or from
the events stored since its last run: ``prov`` counts the probes first seen in a provisional profile).
Prints p50/p99/max of that delay and the load reached; writes bench/results/freshness.json.

    uv run python bench/freshness.py            # 2k, 10k, 50k seeded visitors (about 10 minutes)
    uv run python bench/freshness.py --quick    # 2k visitors only
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
sys.path.insert(0, str(ROOT / "bench"))

from ingest import parse_wrk, start_server  # noqa: E402 - the house's wrk output parser and server start
from write_lock import visits  # noqa: E402 - the house's seeded visitors (page, identify, some orders)

PER_REQUEST = 100
WRK_PACED = r"""
local counter = 0
local threads = {}
function setup(thread) thread:set("tid", #threads); table.insert(threads, thread) end
function init(args) tid = tid end
function delay() return %(delay_ms)d end
request = function()
  local items = {}
  for i = 1, %(per)d do
    counter = counter + 1
    items[i] = string.format('{"type":"track","messageId":"load-%%d-%%d","anonymousId":"load-%%d",' ..
      '"event":"Product Viewed","properties":{"product_id":"p%%d","price":12.5}}',
      tid, counter, counter %% 20000, counter %% 300)
  end
  return wrk.format("POST", "/v1/batch", {["Content-Type"]="application/json",
    ["Authorization"]="Basic %(auth)s"}, '{"batch":[' .. table.concat(items, ",") .. ']}')
end
"""


def seed(folder: Path, visitors: int) -> tuple[str, str, int]:
    """A warehouse with ``visitors`` seeded, identities and profiles built; returns (write key, read key, events)."""
    from touchpoint import identity, keys, profiles
    from touchpoint.collect.store import write_messages
    from touchpoint.warehouse import Warehouse

    if folder.exists():
        shutil.rmtree(folder)
    wh = Warehouse.open(f"duckdb://{folder / 'warehouse.duckdb'}")
    for start in range(0, visitors, 20_000):
        write_messages(wh, visits(f"seed{start}", min(20_000, visitors - start)))
    identity.rebuild(wh)
    profiles.build(wh)
    write_key, read_key = keys.create_source(wh, "bench"), keys.create_api_key(wh, "bench", "read")
    events = wh.count("events")
    wh.close()
    return write_key, read_key, events


def wait_caught_up(api: httpx.Client, seconds: float = 300) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        job = api.get("/v1/jobs/profiles").json()
        if job.get("events_behind") == 0 and job.get("last_success_at") and not job.get("running"):
            return
        time.sleep(0.5)
    raise RuntimeError("the profiles job did not catch up before the load started")


def probe(url: str, write_key: str, api: httpx.Client, until: float, tag: str) -> tuple[list[float], int]:
    """Identify new customers one after another until ``until``; each one's delay to its profile, and how
    many showed before the profiles job resolved them (a provisional profile from the pending events)."""
    delays: list[float] = []
    provisional = 0
    k = 0
    with httpx.Client(base_url=url, auth=(write_key, ""), timeout=30) as collector:
        while time.monotonic() < until:
            user, plan = f"probe-{tag}-{k}", f"plan-{k}"
            answer = collector.post("/v1/identify", json={"userId": user, "traits": {"plan": plan}})
            acknowledged = time.monotonic()
            if answer.status_code != 200:
                raise RuntimeError(f"the probe was not acknowledged: {answer.status_code} {answer.text}")
            while True:
                response = api.get(f"/v1/profiles/{user}")
                if response.status_code == 200 and response.json()["traits"].get("plan") == plan:
                    delays.append(time.monotonic() - acknowledged)
                    provisional += bool(response.json().get("pending", {}).get("provisional"))
                    break
                if time.monotonic() - acknowledged > 120:
                    raise RuntimeError(f"{user} never showed in its profile")
                time.sleep(0.2)
            k += 1
    return delays, provisional


def run(visitors: int, seconds: float, rate: int) -> dict[str, Any]:
    port = 18_400 + visitors % 997
    with tempfile.TemporaryDirectory(prefix="tp-bench-fresh-") as tmp:
        folder = Path(tmp) / "data"
        write_key, read_key, seeded = seed(folder, visitors)
        server = start_server(folder, port)
        url = f"http://127.0.0.1:{port}"
        try:
            with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {read_key}"}, timeout=30) as api:
                wait_caught_up(api)
                script = Path(tmp) / "paced.lua"
                connections = 32
                delay_ms = max(1, int(1000 * connections * PER_REQUEST / rate))
                auth = base64.b64encode(f"{write_key}:".encode()).decode()
                script.write_text(WRK_PACED % {"per": PER_REQUEST, "auth": auth, "delay_ms": delay_ms})
                load = subprocess.Popen(
                    ["wrk", "-t2", f"-c{connections}", f"-d{int(seconds)}s", "--latency", "-s", str(script), url],
                    stdout=subprocess.PIPE,
                    stderr=subprocess.STDOUT,
                    text=True,
                )
                time.sleep(3)  # let the load reach its rate before measuring
                delays, provisional = probe(url, write_key, api, time.monotonic() + seconds - 6, str(visitors))
                out, _ = load.communicate(timeout=seconds + 60)
                history = api.get("/v1/jobs/profiles", params={"history": 200}).json()["history"]
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(120)
    wrk = parse_wrk(out)
    runs = [r["seconds"] for r in history if r["status"] == "succeeded" and r["seconds"] is not None]
    ms = np.array(delays)
    return {
        "visitors": visitors,
        "seeded_events": seeded,
        "load_events_per_s": round(wrk["requests_per_s"] * PER_REQUEST),
        "load_non_2xx": wrk["non_2xx"],
        "load_p99_ms": wrk["p99_ms"],
        "samples": len(delays),
        "shown_provisional": provisional,
        "p50_s": round(float(np.percentile(ms, 50)), 2),
        "p99_s": round(float(np.percentile(ms, 99)), 2),
        "max_s": round(float(ms.max()), 2),
        "profiles_run_s_median": round(float(np.median(runs)), 2) if runs else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--seconds", type=float, default=40.0, help="load duration per size")
    # wrk's delay() is added to each answer's latency (a closed loop), so the pace asked for must be above the
    # 5,000 events/s the issue wants reached: 8,000 asked gave 5,045-5,355 reached (the table reports it)
    parser.add_argument("--rate", type=int, default=8_000, help="events/s the load is paced for")
    args = parser.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk is not installed (apt-get install wrk)")
    sizes = [2_000] if args.quick else [2_000, 10_000, 50_000]
    rows = [run(n, args.seconds, args.rate) for n in sizes]
    head = (
        f"{'visitors':>9} {'events':>9} {'load ev/s':>10} {'non-2xx':>8} {'samples':>8} "
        f"{'prov':>5} {'p50 s':>6} {'p99 s':>6} {'max s':>6} {'run s':>6}"
    )
    print(head)
    for r in rows:
        print(
            f"{r['visitors']:>9,} {r['seeded_events']:>9,} {r['load_events_per_s']:>10,} {r['load_non_2xx']:>8} "
            f"{r['samples']:>8} {r['shown_provisional']:>5} {r['p50_s']:>6} {r['p99_s']:>6} {r['max_s']:>6} "
            f"{r['profiles_run_s_median'] or '-':>6}"
        )
    RESULTS.mkdir(parents=True, exist_ok=True)
    machine = {"cpus": os.cpu_count(), "load_1m": os.getloadavg()[0], "python": platform.python_version()}
    (RESULTS / "freshness.json").write_text(json.dumps({"machine": machine, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
