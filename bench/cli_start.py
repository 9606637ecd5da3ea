"""Benchmark how fast the CLI answers: ``touchpoint --help``, each group's ``--help``, ``--version``.

Each command runs N times as a fresh process (the installed ``touchpoint`` entry point of the venv
this script runs in, so the figures include Python's start-up); the table shows the median, the
fastest and the slowest wall-clock time, and the median CPU time (user + system) of the process,
which a busy machine inflates less than wall-clock time. The JSON (``bench/results/cli_start.json``
unless ``--json`` says otherwise) keeps every run and the load average. The target (issue 13) is a
median under 0.3 s.

    python3 -m uv run --locked --no-sync python bench/cli_start.py --runs 10
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

COMMANDS: list[list[str]] = [
    ["--version"],
    ["--help"],
    ["import", "--help"],
    ["predict", "--help"],
    ["mmm", "--help"],
    ["experiment", "--help"],
    ["journeys", "--help"],
    ["profiles", "--help"],
    ["predict", "clv", "--help"],
]
TARGET_SECONDS = 0.3


def entry_point() -> list[str]:
    """The ``touchpoint`` script next to this interpreter, else ``python -m touchpoint.cli.main``."""
    script = Path(sys.executable).with_name("touchpoint")
    if script.exists():
        return [str(script)]
    found = shutil.which("touchpoint")
    return [found] if found else [sys.executable, "-m", "touchpoint.cli.main"]


def time_command(argv: list[str], runs: int) -> tuple[list[float], list[float]]:
    """Wall-clock and CPU (user + system) seconds of ``runs`` fresh processes running ``argv``."""
    wall, cpu = [], []
    for _ in range(runs):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        done = subprocess.run(argv, capture_output=True, check=False)
        wall.append(time.perf_counter() - t0)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu.append((after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime))
        if done.returncode != 0:
            raise SystemExit(f"{' '.join(argv)} exited {done.returncode}: {done.stderr.decode()[:500]}")
    return wall, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10, help="runs per command (default 10)")
    parser.add_argument("--label", default="", help="a note stored with the results, e.g. a commit")
    parser.add_argument("--json", type=Path, default=Path(__file__).parent / "results" / "cli_start.json")
    args = parser.parse_args()

    base = entry_point()
    time_command([*base, "--version"], 1)  # warm the file cache and the bytecode
    rows = []
    load = os.getloadavg()
    print(f"load average {load[0]:.2f} on {os.cpu_count()} cores; {args.runs} runs per command")
    print(f"{'command':<36} {'median s':>9} {'min s':>7} {'max s':>7} {'cpu s':>7}  < {TARGET_SECONDS} s")
    for command in COMMANDS:
        times, cpu = time_command([*base, *command], args.runs)
        median = statistics.median(times)
        row = {"command": "touchpoint " + " ".join(command), "median_s": median, "median_cpu_s": statistics.median(cpu)}
        rows.append({**row, "runs_s": times, "cpu_s": cpu})
        ok = "yes" if median < TARGET_SECONDS else "NO"
        print(
            f"{row['command']:<36} {median:>9.3f} {min(times):>7.3f} {max(times):>7.3f} "
            f"{row['median_cpu_s']:>7.3f}  {ok}"
        )

    result = {
        "benchmark": "cli_start",
        "label": args.label,
        "runs": args.runs,
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "load_average": load,
        "target_s": TARGET_SECONDS,
        "results": rows,
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
