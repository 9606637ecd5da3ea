"""Automations: trigger latency through a running server, and the sender's throughput, against a real SMTP sink.

1. **Trigger latency.** A real ``touchpoint serve`` on 127.0.0.1 (its jobs at their default cadence) with one
   automation (``Signed Up`` -> an email, no holdout) and N known contacts (email, consent). A client offers
   ``Signed Up`` for one contact after another at 10, 100 and 1,000 triggers/s on an open-loop schedule
   (:func:`post_paced`: every 10 ms the events due leave in one request, ``/v1/track`` for one, ``/v1/batch``
   for several, as a Segment library batches; no request waits for an earlier answer); the moment each answer
   arrives is the acknowledgement. An aiosmtpd sink in its own process notes the moment each message arrives.
   Latency = arrival - acknowledgement, p50/p99/max; the offered and acknowledged rates, and how many arrived.
   Before the measured triggers, ``--warmup`` triggers (default 20, at 10/s, for other contacts) are sent and
   waited for, and then the server's CPU is let settle (under 10% of a core for a second): a fresh process
   compiles every read of the trigger path on its first runs, and the dashboard computes its first snapshot;
   ``--warmup 0`` measures that cold start (the earlier figures). The median split of deciding (the
   ``automations`` runs) and sending (the ``deliveries`` runs that sent something; before 2026-12-03 the
   ``automations`` runs sent too), wall and the job thread's CPU, is reported beside the job run medians.
2. **Sending throughput.** N decided outbox rows (one email each) sent by ``workflow.deliver`` in this process
   to the sink in its own process; messages/s, this process's CPU seconds and the sink's. The peers in the same
   run: ``smtplib`` sending as many already built messages over one connection with ``send_message``, and
   the same messages flattened beforehand with ``sendmail`` (what the sender's connections do).

The machine's load average is printed beside each figure (the bench machine is shared).

    uv run python bench/automations.py                  # latency at 10, 100, 1000/s; throughput 2000, 10000
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
from datetime import UTC
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


def thread_names(pid: int) -> dict[str, str]:
    """Native thread id -> Python thread name of process ``pid``, from ``py-spy dump`` when py-spy is installed
    beside (CPython does not name its OS threads); empty otherwise."""
    import re

    spy = Path(sys.executable).parent / "py-spy"
    if not spy.exists():
        return {}
    dump = subprocess.run([str(spy), "dump", "--pid", str(pid)], capture_output=True, text=True, timeout=30).stdout
    return dict(re.findall(r'^Thread (\d+) \([^)]*\): "([^"]+)"', dump, re.M))


def thread_cpu(pid: int, names: dict[str, str]) -> dict[str, float]:
    """CPU seconds so far of each thread of process ``pid`` by name (Linux ``/proc``; DuckDB's workers and other
    unnamed threads as "other", the SMTP lanes of a run summed as "touchpoint-send")."""
    out: dict[str, float] = {}
    tick = os.sysconf("SC_CLK_TCK")
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:  # the thread ended meanwhile
            continue
        name = names.get(task.name, "other")
        key = "touchpoint-send" if name.startswith("touchpoint-send") else name
        out[key] = out.get(key, 0.0) + (int(fields[11]) + int(fields[12])) / tick
    return out


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` so far (Linux ``/proc``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


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
        stderr=(folder / "server.log").open("ab"),  # kept for BENCH_DEBUG and for a failed rate's report
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


TICK = 0.01  # the load generator's clock: every 10 ms it sends what is due


async def post_paced(url: str, write_key: str, n: int, rate: float, first: int = 0) -> dict[str, Any]:
    """``Signed Up`` for c<first>..c<first+n-1>, offered at ``rate``/s on an open-loop schedule (event i is due
    at i/rate).

    Every :data:`TICK` the events due by then leave in one request, without waiting for earlier answers: one
    event as ``POST /v1/track``, several as ``POST /v1/batch`` (at 1,000/s, 10 a request: what a server-side
    Segment library does, with a 10 ms flush interval instead of its 0.5 s, so the client's buffering adds at
    most 10 ms). Each request has its own task; up to 512 connections are open at once, so a slow answer
    delays no later request. Returns each recipient's acknowledgement (the arrival of its request's answer, unix
    seconds), the offered rate (events over the span in which they were sent), the acknowledged rate (events over
    the span from the first send to the last answer), how late the requests left against their schedule, and
    the errors."""
    acks: dict[str, float] = {}
    lateness: list[float] = []
    errors: list[str] = []
    limits = httpx.Limits(max_connections=512, max_keepalive_connections=512)
    timeout = httpx.Timeout(60, pool=None)
    async with httpx.AsyncClient(base_url=url, auth=(write_key, ""), timeout=timeout, limits=limits) as client:

        async def one(ids: list[int]) -> None:
            events = [{"type": "track", "userId": f"c{first + i}", "event": "Signed Up"} for i in ids]
            try:
                if len(events) == 1:
                    r = await client.post("/v1/track", json=events[0])
                else:
                    r = await client.post("/v1/batch", json={"batch": events})
            except httpx.HTTPError as exc:
                errors.append(f"{type(exc).__name__}: {exc!r}"[:200])
                return
            at = time.time()
            if r.status_code != 200:
                errors.append(f"{r.status_code} {r.text}"[:200])
                return
            for i in ids:
                acks[email_of(first + i)] = at

        tasks = []
        start = time.monotonic()
        first_sent = last_sent = 0.0
        sent = 0
        while sent < n:
            now = time.monotonic()
            due = min(n, int((now - start) * rate) + 1)
            if due > sent:
                lateness.append(now - (start + sent / rate))
                tasks.append(asyncio.create_task(one(list(range(sent, due)))))
                first_sent = first_sent or now
                last_sent = now
                sent = due
            await asyncio.sleep(max(0.0, min(TICK, start + sent / rate - time.monotonic())))
        await asyncio.gather(*tasks)
        answered = time.monotonic()
    span = max(last_sent - first_sent, 1 / rate)
    return {
        "acks": acks,
        "requests": len(tasks),
        "offered_per_s": round((n - 1) / span, 1) if n > 1 else None,
        "acknowledged_per_s": round(len(acks) / (answered - first_sent), 1),
        "send_late_p99_s": round(float(np.percentile(lateness, 99)), 4),
        "errors": len(errors),
        "first_errors": errors[:3],
    }


def profile(pid: int, rate: int, seconds: float) -> subprocess.Popen[bytes] | None:
    """With ``BENCH_PYSPY=FOLDER``: py-spy (installed beside, not a dependency) samples the server's threads,
    idle ones included (a thread waiting on a lock is where latency goes), over the measured triggers and the
    seconds after; a flame graph ``latency-RATE.svg`` and the raw stacks ``latency-RATE.txt`` in FOLDER."""
    folder = os.environ.get("BENCH_PYSPY")
    if not folder:
        return None
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    spy = [str(Path(sys.executable).parent / "py-spy")]
    common = ["record", "--pid", str(pid), "--idle", "--threads", "--rate", "50", "--duration", str(int(seconds) + 5)]
    return subprocess.Popen(
        [*spy, *common, "--format", "raw", "-o", str(out / f"latency-{rate}.txt")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def settle(pid: int, limit: float = 90.0) -> float:
    """Wait until process ``pid`` used under 10% of a core over one second (up to ``limit`` s); the seconds waited."""
    started = time.monotonic()
    while time.monotonic() - started < limit:
        before = cpu_seconds(pid)
        time.sleep(1.0)
        if cpu_seconds(pid) - before < 0.1:
            break
    return round(time.monotonic() - started, 1)


def warm(url: str, write_key: str, sink: Sink, n: int, first: int) -> dict[str, Any]:
    """``n`` triggers at 10/s for contacts outside the measured ones, waited for until they arrive: the server's
    first runs compile every read of the trigger path once per process, which the measured triggers should not
    pay (the latency of these is reported as ``warmup``)."""
    offered = asyncio.run(post_paced(url, write_key, n, 10.0, first=first))
    acks = offered["acks"]
    deadline = time.monotonic() + 120
    while not set(acks) <= set(sink.arrivals()) and time.monotonic() < deadline:
        time.sleep(0.2)
    arrivals = sink.arrivals()
    delays = np.array([arrivals[to] - at for to, at in acks.items() if to in arrivals])
    return {
        "triggers": n,
        "arrived": len(delays),
        "p50_s": round(float(np.percentile(delays, 50)), 3) if len(delays) else None,
        "max_s": round(float(delays.max()), 3) if len(delays) else None,
    }


def latency(rate: int, seconds: float, warmup: int = 0) -> dict[str, Any]:
    from touchpoint import keys

    n = max(20, int(rate * seconds))
    with tempfile.TemporaryDirectory(prefix="tp-bench-auto-") as tmp:
        folder = Path(tmp) / "data"
        folder.mkdir()
        wh = seed(folder, n + warmup)
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
                warmed = warm(url, write_key, sink, warmup, n) if warmup else None
                settled = settle(server.pid)
                load_before = load_avg()
                measured_from = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime())
                cpu_before, client_before = cpu_seconds(server.pid), time.process_time()
                names = thread_names(server.pid) if os.environ.get("BENCH_DEBUG") else {}
                threads_before = thread_cpu(server.pid, names)
                spy = profile(server.pid, rate, seconds)
                offered = asyncio.run(post_paced(url, write_key, n, rate))
                offered["client_cpu_s"] = round(time.process_time() - client_before, 2)
                acks = offered.pop("acks")
                deadline = time.monotonic() + 120
                while sink.count() < len(acks) + warmup and time.monotonic() < deadline:
                    time.sleep(0.2)
                server_cpu = cpu_seconds(server.pid) - cpu_before
                names.update(thread_names(server.pid) if names else {})  # lanes started meanwhile
                threads = {k: v - threads_before.get(k, 0.0) for k, v in thread_cpu(server.pid, names).items()}
                offered["server_cpu_by_thread_s"] = {
                    k: round(v, 2) for k, v in sorted(threads.items(), key=lambda kv: -kv[1]) if v >= 0.05
                }
                if spy is not None:
                    spy.wait(60)
                arrivals = sink.arrivals()
                if offered["errors"]:  # what the server said about it
                    lines = (folder / "server.log").read_text(errors="replace").splitlines()
                    offered["server_log"] = [x[:300] for x in lines if "ERROR" in x or "WARNING" in x][-5:]
                if os.environ.get("BENCH_DEBUG") and acks and arrivals:
                    for job in ("profiles", "automations", "deliveries"):
                        for r in api.get(f"/v1/jobs/{job}", params={"history": 20}).json()["history"]:
                            print(job, {k: r.get(k) for k in ("started_at", "seconds", "status", "trigger", "summary")})
                    print(
                        "acks",
                        min(acks.values()),
                        max(acks.values()),
                        "arrivals",
                        min(arrivals.values()),
                        max(arrivals.values()),
                    )
                history = {  # the runs during the measured triggers (not the seeding's or the warm-up's)
                    job: [
                        r
                        for r in api.get(f"/v1/jobs/{job}", params={"history": 200}).json()["history"]
                        if r["status"] == "succeeded" and r["seconds"] is not None and r["started_at"] >= measured_from
                    ]
                    for job in ("profiles", "automations", "deliveries")
                }
                # the deliveries runs that sent something (the job also runs, finding nothing, every 15 s)
                history["deliveries"] = [r for r in history["deliveries"] if (r["summary"] or {}).get("rows")]
                runs = {job: [r["seconds"] for r in rows] for job, rows in history.items()}
                timing: dict[str, float] = {}  # the runs' own split: wall and the job thread's CPU, deciding, sending
                for k in ("decide_s", "decide_cpu_s", "send_s", "send_cpu_s"):
                    for job in ("automations", "deliveries"):  # sending: the automations job's before 2026-12-03
                        values = [r["summary"][k] for r in history[job] if k in (r["summary"] or {})]
                        if values and len(values) == len(history[job]):
                            timing[k] = round(float(np.median(values)), 3)
                            break
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(120)
            sink.close()
        stages = stage_split(folder, acks, arrivals)
    delays = np.array([arrivals[to] - at for to, at in acks.items() if to in arrivals])
    return {
        "rate_per_s": rate,
        **offered,
        "triggers": n,
        "warmup": warmed,
        "settle_s": settled,
        "acknowledged": len(acks),
        "arrived": len(delays),
        "p50_s": round(float(np.percentile(delays, 50)), 3) if len(delays) else None,
        "p99_s": round(float(np.percentile(delays, 99)), 3) if len(delays) else None,
        "max_s": round(float(delays.max()), 3) if len(delays) else None,
        "load_1m_before": load_before,
        "load_1m_after": load_avg(),
        "server_cpu_s": round(server_cpu, 2),
        "profiles_run_s_median": round(float(np.median(runs["profiles"])), 2) if runs["profiles"] else None,
        "automations_run_s_median": round(float(np.median(runs["automations"])), 2) if runs["automations"] else None,
        "deliveries_run_s_median": round(float(np.median(runs["deliveries"])), 2) if runs["deliveries"] else None,
        "job_runs": {job: len(v) for job, v in runs.items()},
        "automations_run_median": timing,
        "stages": stages,
    }


def stage_split(folder: Path, acks: dict[str, float], arrivals: dict[str, float]) -> dict[str, Any]:
    """Where each measured trigger's latency went, from the outbox the stopped server left: acknowledged ->
    decided (the row's ``created_at``) -> recorded as sent (``sent_at``), and decided -> arrived at the sink.
    p50 / p99 / max seconds of each stage over the triggers that arrived."""
    from touchpoint.config import Settings
    from touchpoint.warehouse import open_warehouse

    wh = open_warehouse(Settings(data_dir=folder), read_only=True)
    try:
        t = wh.table("automation_outbox")
        rows = wh.to_arrow(t.select("payload", "created_at", "sent_at")).to_pylist()
    finally:
        wh.close()
    decide, send, record = [], [], []
    for r in rows:
        to = json.loads(r["payload"] or "{}").get("to")
        if to not in acks or to not in arrivals:
            continue
        created = r["created_at"].replace(tzinfo=UTC).timestamp()
        decide.append(created - acks[to])
        send.append(arrivals[to] - created)
        if r["sent_at"] is not None:
            record.append(r["sent_at"].replace(tzinfo=UTC).timestamp() - arrivals[to])

    def cut(v: list[float]) -> dict[str, float] | None:
        if not v:
            return None
        a = np.array(v)
        cuts = (("p50", np.percentile(a, 50)), ("p99", np.percentile(a, 99)), ("max", a.max()))
        return {k: round(float(x), 3) for k, x in cuts}

    return {
        "ack_to_decided_s": cut(decide),
        "decided_to_arrived_s": cut(send),
        "arrived_to_recorded_s": cut(record),
        "n": len(decide),
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
            sink_before, cpu_before = cpu_seconds(sink.proc.pid), time.process_time()
            started = time.perf_counter()
            out = workflow.deliver(wh, settings)
            took = time.perf_counter() - started
            cpu, load_mid = time.process_time() - cpu_before, load_avg()
            while sink.count() < n:
                time.sleep(0.05)
            sink_cpu = cpu_seconds(sink.proc.pid) - sink_before
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
            # the second peer: the same messages flattened beforehand, sent with sendmail (what the lanes do)
            flat = [m.as_bytes() for m in msgs]
            started = time.perf_counter()
            with smtplib.SMTP("127.0.0.1", sink.port) as conn:
                for i, data in enumerate(flat):
                    conn.sendmail("news@shop.bench", [f"peer{i}@people.bench"], data)
            peer_flat = time.perf_counter() - started
        finally:
            sink.close()
            wh.close()
    return {
        "messages": n,
        "decided": decided,
        "sent": out.get("sent", 0),
        "seconds": round(took, 3),
        "per_s": round(out.get("sent", 0) / took, 1),
        "cpu_s": round(cpu, 3),
        "sink_cpu_s": round(sink_cpu, 3),
        "smtplib_peer_per_s": round(n / peer, 1),
        "smtplib_sendmail_peer_per_s": round(n / peer_flat, 1),
        "load_1m_before": load_before,
        "load_1m_after": load_mid,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--only", choices=["latency", "throughput"])
    parser.add_argument("--rates", type=int, nargs="*", default=[10, 100, 1000])
    parser.add_argument("--seconds", type=float, default=10.0, help="seconds of triggers per rate")
    parser.add_argument(
        "--warmup", type=int, default=20, help="triggers sent (and waited for) before measuring; 0: measure cold"
    )
    parser.add_argument("--sizes", type=int, nargs="*", default=[2000, 10000])
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
                rows.append(latency(r, args.seconds, args.warmup))
            except (httpx.HTTPError, RuntimeError) as exc:  # the server could not keep up: say so, go on
                rows.append({"rate_per_s": r, "error": f"{type(exc).__name__}: {exc}"[:300], "load_1m": load_avg()})
            print(json.dumps(rows[-1]), flush=True)
        result["latency"] = rows
        print(
            f"{'rate/s':>7} {'offered':>8} {'acked/s':>8} {'requests':>8} {'errors':>6} {'arrived':>8} {'p50 s':>7} "
            f"{'p99 s':>7} {'max s':>7} {'load':>11}"
        )
        for r in rows:
            if "error" in r:
                print(f"{r['rate_per_s']:>7} {r['error']}")
                continue
            print(
                f"{r['rate_per_s']:>7} {r['offered_per_s']!s:>8} {r['acknowledged_per_s']:>8} {r['requests']:>8} "
                f"{r['errors']:>6} {r['arrived']:>8} {r['p50_s']!s:>7} {r['p99_s']!s:>7} {r['max_s']!s:>7} "
                f"{r['load_1m_before']:>5}->{r['load_1m_after']:<5}"
            )
    if args.only != "latency":
        rows = [throughput(n) for n in args.sizes]
        result["throughput"] = rows
        print(
            f"{'messages':>9} {'sent':>6} {'seconds':>8} {'cpu s':>6} {'msg/s':>8} {'smtplib/s':>10} "
            f"{'sendmail/s':>10} {'load':>11}"
        )
        for r in rows:
            print(
                f"{r['messages']:>9} {r['sent']:>6} {r['seconds']:>8} {r['cpu_s']:>6} {r['per_s']:>8} "
                f"{r['smtplib_peer_per_s']:>10} {r['smtplib_sendmail_peer_per_s']:>10} "
                f"{r['load_1m_before']:>5}->{r['load_1m_after']:<5}"
            )
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
