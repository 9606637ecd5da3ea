"""Benchmark a command run through a running server against the same command run directly.

A small warehouse (events of 2,000 visitors, profiles built) is copied into two data directories; one is
held by a real ``touchpoint serve`` on 127.0.0.1, the other by nobody. Each command runs N times as a
fresh process of the installed ``touchpoint`` entry point (so the figures include Python's start-up)
against each directory, alternating, and the table shows the median and the slowest wall-clock time
and the median CPU time of the client process. "through the server" is what a user waits for while
``touchpoint serve`` runs; the direct figure is what the same command costs with no server. The JSON
(``bench/results/cli_remote.json`` unless ``--json`` says otherwise) keeps every run and the load.

    python3 -m uv run --locked --no-sync python bench/cli_remote.py --runs 10
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

COMMANDS: list[list[str]] = [
    ["sources", "list", "--json"],
    ["query", "SELECT count(*) AS n FROM events", "--json"],
    ["profiles", "stats", "--json"],
    ["profiles", "show", "user-7", "--json"],
]


def entry_point() -> list[str]:
    script = Path(sys.executable).with_name("touchpoint")
    return [str(script)] if script.exists() else [sys.executable, "-m", "touchpoint.cli.main"]


def seed(data: Path, visitors: int) -> None:
    from touchpoint import identity, keys, profiles
    from touchpoint.collect.store import write_messages
    from touchpoint.warehouse import Warehouse

    wh = Warehouse.open(f"duckdb://{data / 'warehouse.duckdb'}")
    events = []
    for i in range(visitors):
        events.append({"type": "identify", "userId": f"user-{i}", "traits": {"email": f"u{i}@example.com"}})
        events += [{"type": "track", "userId": f"user-{i}", "event": "Product Viewed"} for _ in range(4)]
    write_messages(wh, events, source="bench")
    identity.rebuild(wh)
    profiles.build(wh)
    keys.create_source(wh, "web")
    wh.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def time_command(argv: list[str]) -> tuple[float, float]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, check=False)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed:\n{done.stderr.decode()}")
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--visitors", type=int, default=2000)
    parser.add_argument("--json", type=Path, default=Path(__file__).parent / "results" / "cli_remote.json")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="tp-cli-remote-"))
    direct, served = root / "direct", root / "served"
    seed(direct, args.visitors)
    shutil.copytree(direct, served)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("TOUCHPOINT_")}
    server = subprocess.Popen(
        [*entry_point(), "serve", "--port", str(port), "--data", str(served)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 120
        while not (served / "server.json").exists():
            if time.monotonic() > deadline or server.poll() is not None:
                raise SystemExit("the server did not start")
            time.sleep(0.1)
        urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=30).read()
        results = []
        for command in COMMANDS:
            runs: dict[str, list[tuple[float, float]]] = {"direct": [], "served": []}
            time_command([*entry_point(), *command, "--data", str(served)])  # the server's first run warms it
            for _ in range(args.runs):
                for name, data in (("direct", direct), ("served", served)):
                    runs[name].append(time_command([*entry_point(), *command, "--data", str(data)]))
            row = {"command": " ".join(command)}
            for name, timed in runs.items():
                walls = [w for w, _ in timed]
                row[name] = {
                    "median_s": round(statistics.median(walls), 3),
                    "max_s": round(max(walls), 3),
                    "cpu_median_s": round(statistics.median([c for _, c in timed]), 3),
                    "runs": [round(w, 4) for w in walls],
                }
            results.append(row)
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(30)
        shutil.rmtree(root, ignore_errors=True)
    print(f"{'command':48} {'direct':>14} {'via server':>14} {'client CPU d/s':>16}")
    for row in results:
        d, s = row["direct"], row["served"]
        print(
            f"{row['command'][:48]:48} {d['median_s']:>7.3f} s {'':4} {s['median_s']:>7.3f} s {'':4} "
            f"{d['cpu_median_s']:.2f}/{s['cpu_median_s']:.2f} s"
        )
    report = {
        "runs": args.runs,
        "visitors": args.visitors,
        "load_average": os.getloadavg(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "results": results,
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2) + "\n")
    print(f"load average {report['load_average'][0]:.1f} on {report['cpus']} CPUs; wrote {args.json}")


if __name__ == "__main__":
    main()
