"""Benchmark how fast the CLI answers: ``touchpoint --help``, each group's ``--help``, ``--version``.

Each command runs N times as a fresh process (the installed ``touchpoint`` entry point of the venv
this script runs in, so the figures include Python's start-up); the table shows the median, the
fastest and the slowest wall-clock time, and the JSON (``bench/results/cli_start.json`` unless
``--json`` says otherwise) keeps every run. The target (issue 13) is a median under 0.3 s.

    python3 -m uv run --locked --no-sync python bench/cli_start.py --runs 10
"""

from __future__ import annotations

import argparse
import json
import platform
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


def time_command(argv: list[str], runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        done = subprocess.run(argv, capture_output=True, check=False)
        times.append(time.perf_counter() - t0)
        if done.returncode != 0:
            raise SystemExit(f"{' '.join(argv)} exited {done.returncode}: {done.stderr.decode()[:500]}")
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10, help="runs per command (default 10)")
    parser.add_argument("--label", default="", help="a note stored with the results, e.g. a commit")
    parser.add_argument("--json", type=Path, default=Path(__file__).parent / "results" / "cli_start.json")
    args = parser.parse_args()

    base = entry_point()
    time_command([*base, "--version"], 1)  # warm the file cache and the bytecode
    rows = []
    print(f"{'command':<36} {'median s':>9} {'min s':>7} {'max s':>7}  < {TARGET_SECONDS} s")
    for command in COMMANDS:
        times = time_command([*base, *command], args.runs)
        median = statistics.median(times)
        rows.append({"command": "touchpoint " + " ".join(command), "median_s": median, "runs_s": times})
        ok = "yes" if median < TARGET_SECONDS else "NO"
        print(f"{rows[-1]['command']:<36} {median:>9.3f} {min(times):>7.3f} {max(times):>7.3f}  {ok}")

    result = {
        "benchmark": "cli_start",
        "label": args.label,
        "runs": args.runs,
        "python": platform.python_version(),
        "machine": platform.machine(),
        "target_s": TARGET_SECONDS,
        "results": rows,
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
