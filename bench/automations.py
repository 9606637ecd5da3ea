"""Automations: trigger latency through a running server, and the sender's throughput, against a real SMTP sink.

1. **Trigger latency.** A real ``touchpoint serve`` on 127.0.0.1 (its jobs at their default cadence) with one
   automation (``Signed Up`` -> an email, no holdout) and N known contacts (email, consent). A client posts
   ``POST /v1/track`` ``Signed Up`` for one contact after another, paced to 10, 100 and 1,000 triggers/s; the
   moment each answer arrives is the acknowledgement. An aiosmtpd sink in its own process notes the moment
   each message arrives. Latency = arrival - acknowledgement, p50/p99/max, and how many arrived.
2. **Sending throughput.** N decided outbox rows (one email each) sent by ``workflow.deliver`` in this process
   to the sink in its own process; messages/s. The peer in the same run: ``smtplib`` sending the same number
   of already built messages over one connection, the ceiling the SMTP exchange with this sink allows.

The machine's load average is printed beside each figure (the bench machine is shared).

    uv run python bench/automations.py                  # latency at 10, 100, 1000/s; throughput 500, 2000, 5000
    uv run python bench/automations.py --quick          # smaller
    uv run python bench/automations.py --only throughput --sizes 1000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import signal
import smtplib
import socket
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
SENDER = "Shop <news@shop.bench>"

SINK = r"""
import asyncio, sys, time
from aiosmtpd.controller import Controller

out = open(sys.argv[2], "a", buffering=1)

class Handler:
    async def handle_DATA(self, server, session, envelope):
        out.write(f"{time.time():.6f} {envelope.rcpt_tos[0]}\n")
        return "250 OK"

c = Controller(Handler(), hostname="127.0.0.1", port=int(sys.argv[1]))
c.start()
print("ready", flush=True)
sys.stdin.read()
c.stop()
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Sink:
    """An aiosmtpd server in its own process; ``arrivals()``: recipient -> first arrival (unix seconds)."""

    def __init__(self, folder: Path) -> None:
        self.port = free_port()
        self.log = folder / f"sink-{self.port}.log"
        self.log.touch()
        self.proc = subprocess.Popen(
            [sys.executable, "-c", SINK, str(self.port), str(self.log)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None and self.proc.stdout.readline().strip() == "ready"

    def arrivals(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for line in self.log.read_text().splitlines():
            at, _, to = line.partition(" ")
            out.setdefault(to, float(at))
        return out

    def count(self) -> int:
        return sum(1 for _ in self.log.open())

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        self.proc.wait(30)


def load_avg() -> float:
    return round(os.getloadavg()[0], 2)


def email_of(i: int) -> str:
    return f"c{i}@people.bench"


def seed(folder: Path, n: int) -> Any:
    """A warehouse with ``n`` contacts (email, first name, marketing consent), identities and profiles built,
    and the ``welcome`` automation (no holdout)."""
    from touchpoint.automations import workflow
    from touchpoint.collect.store import write_messages
    from touchpoint.profiles.workflow import update
    from touchpoint.warehouse import Warehouse

    wh = Warehouse.open(f"duckdb://{folder / 'warehouse.duckdb'}")
    for lo in range(0, n, 5_000):
        batch = [
            {
                "type": "identify",
                "userId": f"c{i}",
                "traits": {"email": email_of(i), "first_name": f"N{i}", "consent_marketing_email": True},
            }
            for i in range(lo, min(n, lo + 5_000))
        ]
        write_messages(wh, batch)
    update(wh)
    workflow.create(
        wh,
        {
            "name": "welcome",
            "trigger": {"event": "Signed Up"},
            "holdout": 0,
            "allow_no_holdout": True,
            "steps": [
                {
                    "send_email": {
                        "subject": "Welcome {{ traits.first_name }}",
                        "text": "Hello {{ traits.first_name }}!",
                        "purpose": "marketing_email",
                    }
                }
            ],
        },
    )
    return wh


# -- 1. trigger latency ------------------------------------------------------------------------------------
def start_server(folder: Path, port: int, sink: Sink) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "TOUCHPOINT_SMTP_URL": f"smtp://127.0.0.1:{sink.port}",
        "TOUCHPOINT_SMTP_SENDER": SENDER,
        "TOUCHPOINT_AUTOMATIONS_SIGNING_KEY": "bench-signing-key-0123456789",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "touchpoint.cli.main", "serve", "--port", str(port), "--data", str(folder)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    for _ in range(1800):
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    proc.kill()
    raise RuntimeError("server did not start")


async def post_paced(url: str, write_key: str, n: int, rate: float) -> tuple[dict[str, float], float]:
    """``Signed Up`` for c0..c(n-1) at ``rate``/s; recipient -> acknowledgement (unix seconds), achieved rate."""
    acks: dict[str, float] = {}
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
    timeout = httpx.Timeout(60, pool=None)  # a request waits for a free connection as long as it takes
    async with httpx.AsyncClient(base_url=url, auth=(write_key, ""), timeout=timeout, limits=limits) as client:
        start = time.monotonic()

        async def one(i: int) -> None:
            delay = start + i / rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            r = await client.post("/v1/track", json={"userId": f"c{i}", "event": "Signed Up"})
            if r.status_code != 200:
                raise RuntimeError(f"not acknowledged: {r.status_code} {r.text}")
            acks[email_of(i)] = time.time()

        await asyncio.gather(*(one(i) for i in range(n)))
        took = time.monotonic() - start
    return acks, n / took


def latency(rate: int, seconds: float) -> dict[str, Any]:
    from touchpoint import keys

    n = max(20, int(rate * seconds))
    with tempfile.TemporaryDirectory(prefix="tp-bench-auto-") as tmp:
        folder = Path(tmp) / "data"
        folder.mkdir()
        wh = seed(folder, n)
        write_key = keys.create_source(wh, "bench")
        read_key = keys.create_api_key(wh, "bench", "read")
        wh.close()
        sink = Sink(Path(tmp))
        port = free_port()
        server = start_server(folder, port, sink)
        url = f"http://127.0.0.1:{port}"
        try:
            with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {read_key}"}, timeout=30) as api:
                deadline = time.monotonic() + 120
                while time.monotonic() < deadline:  # the seeded profiles are built: the jobs are idle
                    job = api.get("/v1/jobs/profiles").json()
                    if job.get("events_behind") == 0 and not job.get("running"):
                        break
                    time.sleep(0.5)
                time.sleep(2)
                load_before = load_avg()
                acks, achieved = asyncio.run(post_paced(url, write_key, n, rate))
                deadline = time.monotonic() + 120
                while sink.count() < n and time.monotonic() < deadline:
                    time.sleep(0.2)
                arrivals = sink.arrivals()
                if os.environ.get("BENCH_DEBUG"):
                    for job in ("profiles", "automations", "deliveries"):
                        for r in api.get(f"/v1/jobs/{job}", params={"history": 20}).json()["history"]:
                            print(job, {k: r.get(k) for k in ("started_at", "seconds", "status", "trigger", "result")})
                    print(
                        "acks",
                        min(acks.values()),
                        max(acks.values()),
                        "arrivals",
                        min(arrivals.values()),
                        max(arrivals.values()),
                    )
                runs = {
                    job: [
                        r["seconds"]
                        for r in api.get(f"/v1/jobs/{job}", params={"history": 200}).json()["history"]
                        if r["status"] == "succeeded" and r["seconds"] is not None
                    ]
                    for job in ("profiles", "automations")
                }
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(120)
            sink.close()
    delays = np.array([arrivals[to] - at for to, at in acks.items() if to in arrivals])
    return {
        "rate_per_s": rate,
        "achieved_per_s": round(achieved, 1),
        "triggers": n,
        "arrived": len(delays),
        "p50_s": round(float(np.percentile(delays, 50)), 3) if len(delays) else None,
        "p99_s": round(float(np.percentile(delays, 99)), 3) if len(delays) else None,
        "max_s": round(float(delays.max()), 3) if len(delays) else None,
        "load_1m_before": load_before,
        "load_1m_after": load_avg(),
        "profiles_run_s_median": round(float(np.median(runs["profiles"])), 2) if runs["profiles"] else None,
        "automations_run_s_median": round(float(np.median(runs["automations"])), 2) if runs["automations"] else None,
        "job_runs": {job: len(v) for job, v in runs.items()},
    }


# -- 2. sending throughput ---------------------------------------------------------------------------------
def throughput(n: int) -> dict[str, Any]:
    from touchpoint.automations import channels, workflow
    from touchpoint.collect.store import write_messages
    from touchpoint.config import Settings
    from touchpoint.profiles.workflow import update

    with tempfile.TemporaryDirectory(prefix="tp-bench-send-") as tmp:
        folder = Path(tmp)
        wh = seed(folder, n)
        write_messages(wh, [{"type": "track", "userId": f"c{i}", "event": "Signed Up"} for i in range(n)])
        update(wh)
        decided = workflow.evaluate(wh)[0]["outbox"]
        sink = Sink(folder)
        try:
            settings = Settings(
                data_dir=folder,
                smtp_url=f"smtp://127.0.0.1:{sink.port}",
                smtp_sender=SENDER,
                automations_signing_key="bench-signing-key-0123456789",
                public_url="https://tp.shop.bench",
            )
            load_before = load_avg()
            started = time.perf_counter()
            out = workflow.deliver(wh, settings)
            took = time.perf_counter() - started
            load_mid = load_avg()
            while sink.count() < n:
                time.sleep(0.05)
            # the peer: smtplib alone, the same number of built messages over one connection
            config = channels.SMTPConfig.from_settings(settings)
            msgs = [
                channels.build_email(
                    config,
                    to=f"peer{i}@people.bench",
                    subject=f"Welcome N{i}",
                    text=f"Hello N{i}!\n\nUnsubscribe: https://tp.shop.bench/v1/unsubscribe?token=x\n",
                    html=None,
                    outbox_id=f"{i:024x}",
                    unsubscribe_url="https://tp.shop.bench/v1/unsubscribe?token=x",
                )
                for i in range(n)
            ]
            started = time.perf_counter()
            with smtplib.SMTP("127.0.0.1", sink.port) as conn:
                for m in msgs:
                    conn.send_message(m)
            peer = time.perf_counter() - started
        finally:
            sink.close()
            wh.close()
    return {
        "messages": n,
        "decided": decided,
        "sent": out.get("sent", 0),
        "seconds": round(took, 3),
        "per_s": round(out.get("sent", 0) / took, 1),
        "smtplib_peer_per_s": round(n / peer, 1),
        "load_1m_before": load_before,
        "load_1m_after": load_mid,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--only", choices=["latency", "throughput"])
    parser.add_argument("--rates", type=int, nargs="*", default=[10, 100, 1000])
    parser.add_argument("--seconds", type=float, default=10.0, help="seconds of triggers per rate")
    parser.add_argument("--sizes", type=int, nargs="*", default=[500, 2000, 5000])
    parser.add_argument("--json", type=Path, default=RESULTS / "automations.json")
    args = parser.parse_args()
    if args.quick:
        args.seconds, args.sizes = min(args.seconds, 3.0), [300, 1000]
    result: dict[str, Any] = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "load_1m": load_avg()}
    }
    if args.only != "throughput":
        rows = []
        for r in args.rates:
            try:
                rows.append(latency(r, args.seconds))
            except (httpx.HTTPError, RuntimeError) as exc:  # the server could not keep up: say so, go on
                rows.append({"rate_per_s": r, "error": f"{type(exc).__name__}: {exc}"[:300], "load_1m": load_avg()})
            print(json.dumps(rows[-1]), flush=True)
        result["latency"] = rows
        print(
            f"{'rate/s':>7} {'achieved':>9} {'triggers':>9} {'arrived':>8} {'p50 s':>7} {'p99 s':>7} {'max s':>7} "
            f"{'load':>11}"
        )
        for r in rows:
            if "error" in r:
                print(f"{r['rate_per_s']:>7} {r['error']}")
                continue
            print(
                f"{r['rate_per_s']:>7} {r['achieved_per_s']:>9} {r['triggers']:>9} {r['arrived']:>8} "
                f"{r['p50_s']!s:>7} {r['p99_s']!s:>7} {r['max_s']!s:>7} "
                f"{r['load_1m_before']:>5}->{r['load_1m_after']:<5}"
            )
    if args.only != "latency":
        rows = [throughput(n) for n in args.sizes]
        result["throughput"] = rows
        print(f"{'messages':>9} {'sent':>6} {'seconds':>8} {'msg/s':>8} {'smtplib/s':>10} {'load':>11}")
        for r in rows:
            print(
                f"{r['messages']:>9} {r['sent']:>6} {r['seconds']:>8} {r['per_s']:>8} {r['smtplib_peer_per_s']:>10} "
                f"{r['load_1m_before']:>5}->{r['load_1m_after']:<5}"
            )
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
