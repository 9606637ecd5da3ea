"""Coverage study of the marketing-mix model: do its 90% ROMI intervals cover the truth, scenario by scenario?

For each scenario of :data:`touchpoint.mmm.simulate.SCENARIOS` (confounded spend with and without the demand
control, an always-on and a bursty channel, collinear channels, delayed carry-over, 10 noisy channels, Google
Meridian's simulation), N data sets (seeds 0..N-1) are simulated and fitted; per channel the study records
whether the 90% interval covers the true ROMI, the posterior mean's error, the interval's width and whether
the diagnostics gate flagged it (the fit failed, or the channel was marked weakly or not identified).
PyMC-Marketing (its defaults, in a separate venv: see bench/mmm.py) fits the same data sets on a subset.

Every fit's result is appended to a JSONL file as soon as it ends, so a killed run continues where it
stopped; the table is printed and a JSON summary written at the end (or alone, with --summary).
Fits are CPU-heavy: run the study under ``nice -n 19`` on a shared machine.

    nice -n 19 .venv/bin/python bench/mmm_coverage.py --datasets 30
    nice -n 19 .venv/bin/python bench/mmm_coverage.py --peer /tmp/mmmpeer/bin/python --peer-datasets 3
    .venv/bin/python bench/mmm_coverage.py --summary
Writes bench/results/mmm_coverage.jsonl (one line per fit) and bench/results/mmm_coverage.json (the table).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from touchpoint.mmm.simulate import SCENARIOS, scenario

HOLDOUT = 8
RESULTS = Path(__file__).with_name("results")
OURS = "touchpoint"
_DEADLINE = "TOUCHPOINT_COVERAGE_DEADLINE"  # --until's end, for the processes a run goes on in
PEER = "pymc-marketing"


def _ours(name: str, seed: int, draws: int, warmup: int, chains: int) -> dict[str, Any]:
    from touchpoint.mmm import MMMConfig, fit

    data, truth, settings = scenario(name, seed, holdout_weeks=HOLDOUT)
    cfg = MMMConfig(draws=draws, warmup=warmup, chains=chains, holdout_weeks=HOLDOUT, seed=seed, **settings)
    wall, cpu = time.perf_counter(), time.process_time()
    result = fit(data, cfg)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    romi = result.romi()
    failed = result.status == "failed"
    channels = []
    for ch in data.channels:
        est = romi[ch]["romi"]
        flagged = failed or not romi[ch]["identified"] or bool(romi[ch]["note"])
        channels.append(_channel(ch, truth["roi"][ch], est["mean"], est["low"], est["high"], flagged))
        channels[-1]["relative_sd"] = romi[ch]["relative_sd"]
        channels[-1]["note"] = romi[ch]["note"]
    s = result.diagnostics["sampler"]
    return {
        "engine": OURS,
        "scenario": name,
        "seed": seed,
        "weeks": len(data.dates),
        "channels": channels,
        "status": result.status,
        "problems": result.diagnostics["problems"],
        "seconds": wall,
        "cpu_seconds": cpu,
        "max_rhat": s["max_rhat"],
        "min_ess": s["min_ess"],
        "divergences": s["divergences"],
        "sampler": {"draws": draws, "warmup": warmup, "chains": chains, **settings},
    }


def _peer(python: str, name: str, seed: int, draws: int, warmup: int, chains: int) -> dict[str, Any]:
    data, truth, _ = scenario(name, seed, holdout_weeks=HOLDOUT)
    n = len(data.dates) - HOLDOUT  # the peer fits the weeks ours fits (ours predicts the held-out ones)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "data.csv"
        header = ["date", "revenue", *data.channels, *data.control_names]
        rows = [",".join(header)]
        for i in range(n):
            values = [str(data.dates[i]), repr(float(data.target[i]))]
            values += [repr(float(v)) for v in data.spend[i]] + [repr(float(v)) for v in data.controls[i]]
            rows.append(",".join(values))
        path.write_text("\n".join(rows))
        script = Path(__file__).with_name("mmm_peer_pymc.py")
        args = [python, str(script), str(path), ",".join(data.channels), str(draws), str(warmup), str(chains)]
        args += [str(seed), ",".join(data.control_names)]
        wall, start = time.perf_counter(), os.times()
        proc = subprocess.run(args, capture_output=True, text=True, cwd=tmp)
        end = os.times()
        wall = time.perf_counter() - wall
    base = {"engine": PEER, "scenario": name, "seed": seed, "weeks": len(data.dates)}
    if proc.returncode != 0:
        return base | {"error": proc.stderr[-800:], "seconds": wall}
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    # PyMC-Marketing has no gate of its own; a fit its sampler statistics reject counts as flagged.
    bad = out["max_rhat"] > 1.05 or out["min_ess"] < 100 or out["divergences"] > 0.01 * draws * chains
    channels = [
        _channel(ch, truth["roi"][ch], out["roi_mean"][k], out["roi_low"][k], out["roi_high"][k], bad)
        for k, ch in enumerate(data.channels)
    ]
    return base | {
        "version": out.get("version", ""),
        "channels": channels,
        "status": "failed" if bad else "ok",
        "seconds": wall,
        "fit_seconds": out["seconds"],
        "cpu_seconds": (end.children_user + end.children_system) - (start.children_user + start.children_system),
        "max_rhat": out["max_rhat"],
        "min_ess": out["min_ess"],
        "divergences": out["divergences"],
        "sampler": {"draws": draws, "warmup": warmup, "chains": chains},
    }


def _channel(ch: str, true: float, mean: float, low: float, high: float, flagged: bool) -> dict[str, Any]:
    return {
        "channel": ch,
        "true": true,
        "mean": mean,
        "low": low,
        "high": high,
        "covered": bool(low <= true <= high),
        "relative_error": abs(mean / true - 1.0),
        "relative_width": (high - low) / true,
        "flagged": bool(flagged),
    }


def wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95% Wilson interval of a proportion k/n."""
    if n == 0:
        return (float("nan"), float("nan"))
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (centre - half, centre + half)


def summarise(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One line per (engine, scenario): coverage (with its 95% Wilson interval), errors, widths, time, gate."""
    out = []
    keys = sorted({(r["engine"], r["scenario"]) for r in rows}, key=lambda k: (list(SCENARIOS).index(k[1]), k[0]))
    for engine, name in keys:
        fits = [r for r in rows if r["engine"] == engine and r["scenario"] == name and "channels" in r]
        errors = [r for r in rows if r["engine"] == engine and r["scenario"] == name and "error" in r]
        chans = [c for r in fits for c in r["channels"]]
        if not chans:
            continue
        covered = sum(c["covered"] for c in chans)
        missed = [c for c in chans if not c["covered"]]
        passed = [c for r in fits if r["status"] != "failed" for c in r["channels"]]
        converged = [c for r in fits if r["max_rhat"] <= 1.05 and r["min_ess"] >= 100 for c in r["channels"]]
        low, high = wilson(covered, len(chans))
        out.append(
            {
                "engine": engine,
                "scenario": name,
                "datasets": len(fits),
                "errors": len(errors),
                "channels": len(chans),
                "coverage": covered / len(chans),
                "coverage_95ci": [low, high],
                "median_relative_error": float(np.median([c["relative_error"] for c in chans])),
                "median_relative_width": float(np.median([c["relative_width"] for c in chans])),
                "median_seconds": float(np.median([r["seconds"] for r in fits])),
                "median_cpu_seconds": float(np.median([r["cpu_seconds"] for r in fits])),
                "fits_failed": sum(r["status"] == "failed" for r in fits),
                "missed": len(missed),
                "missed_flagged": sum(c["flagged"] for c in missed),
                "flagged": sum(c["flagged"] for c in chans),
                "coverage_unflagged": _share([c["covered"] for c in chans if not c["flagged"]]),
                "coverage_passed_gate": _share([c["covered"] for c in passed]),
                "converged_channels": len(converged),
                "coverage_converged": _share([c["covered"] for c in converged]),
                "max_rhat": max(r["max_rhat"] for r in fits),
                "min_ess": min(r["min_ess"] for r in fits),
            }
        )
    return out


def _share(values: list[bool]) -> float | None:
    return sum(values) / len(values) if values else None


def _print_table(summary: list[dict[str, Any]]) -> None:
    head = (
        f"{'engine':<15}{'scenario':<20}{'sets':>5}{'ch':>5}{'coverage':>10}{'95% CI':>14}{'med err':>9}"
        f"{'med width':>10}{'wall s':>8}{'cpu s':>8}{'failed':>7}{'missed':>7}{'flagged':>8}{'cov unflagged':>14}"
    )
    print(head)
    for s in summary:
        unflagged = "-" if s["coverage_unflagged"] is None else f"{s['coverage_unflagged']:.0%}"
        conv = "-" if s["coverage_converged"] is None else f"{s['coverage_converged']:.0%} of {s['converged_channels']}"
        print(
            f"{s['engine']:<15}{s['scenario']:<20}{s['datasets']:>5}{s['channels']:>5}{s['coverage']:>10.0%}"
            f"{s['coverage_95ci'][0]:>8.0%}-{s['coverage_95ci'][1]:<5.0%}{s['median_relative_error']:>9.1%}"
            f"{s['median_relative_width']:>10.2f}{s['median_seconds']:>8.1f}{s['median_cpu_seconds']:>8.1f}"
            f"{s['fits_failed']:>7}{s['missed']:>7}{s['missed_flagged']:>8}{unflagged:>14}{conv:>14}"
        )


def _print_markdown(summary: list[dict[str, Any]]) -> None:
    print(
        "| scenario | engine | data sets | channels | coverage (95% CI) | median error | median width | "
        "CPU s | fits failed | missed, of them flagged | coverage of converged fits |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for s in summary:
        conv = "-" if s["coverage_converged"] is None else f"{s['coverage_converged']:.0%} of {s['converged_channels']}"
        print(
            f"| {s['scenario']} | {s['engine']} | {s['datasets']} | {s['channels']} | {s['coverage']:.0%} "
            f"({s['coverage_95ci'][0]:.0%}-{s['coverage_95ci'][1]:.0%}) | {s['median_relative_error']:.0%} | "
            f"{s['median_relative_width']:.2f} | {s['median_cpu_seconds']:.0f} | {s['fits_failed']} | "
            f"{s['missed']}, {s['missed_flagged']} | {conv} |"
        )


def _load_all(path: Path, merge: list[str]) -> list[dict[str, Any]]:
    """This run's fits and those of the JSONL files in ``merge`` (another process's), each fit once."""
    rows: dict[tuple[str, str, int], dict[str, Any]] = {}
    for source in [path, *map(Path, merge)]:
        for r in load(source):
            rows.setdefault((r["engine"], r["scenario"], r["seed"]), r)
    return list(rows.values())


def load(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scenarios", default=",".join(SCENARIOS), help="comma-separated scenario names")
    ap.add_argument("--datasets", type=int, default=30, help="data sets (seeds 0..N-1) per scenario")
    ap.add_argument("--draws", type=int, default=400, help="draws per chain (ours and the peer's)")
    ap.add_argument("--warmup", type=int, default=400, help="warm-up per chain")
    ap.add_argument("--chains", type=int, default=2)
    ap.add_argument("--peer", help="python of a venv with pymc-marketing (omit to skip the peer)")
    ap.add_argument("--peer-scenarios", help="scenarios the peer fits (default: --scenarios)")
    ap.add_argument("--peer-datasets", type=int, default=3, help="data sets per scenario the peer fits")
    ap.add_argument("--no-ours", action="store_true", help="run only the peer's fits")
    ap.add_argument("--results", default=str(RESULTS / "mmm_coverage.jsonl"), help="the resumable JSONL")
    ap.add_argument("--summary", action="store_true", help="only print the table and write the JSON")
    ap.add_argument("--merge", action="append", default=[], help="another process's JSONL (done, and in the table)")
    ap.add_argument("--markdown", action="store_true", help="print the table as Markdown (for docs/mmm.md)")
    ap.add_argument("--until", type=float, help="stop starting fits after this many seconds")
    ap.add_argument(
        "--fits-per-process",
        type=int,
        default=40,
        help="start a new process after this many of our fits (each leaves about 1,240 memory maps: engine.py)",
    )
    args = ap.parse_args()
    path = Path(args.results)
    path.parent.mkdir(parents=True, exist_ok=True)
    names = [n for n in args.scenarios.split(",") if n]
    unknown = set(names) - set(SCENARIOS)
    if unknown:
        sys.exit(f"unknown scenario(s) {sorted(unknown)}; known: {', '.join(SCENARIOS)}")
    # a process started again (--fits-per-process) keeps the first one's deadline
    deadline = float(os.environ.get(_DEADLINE, 0)) or (time.time() + args.until if args.until else 0.0)
    if not args.summary:
        done = {(r["engine"], r["scenario"], r["seed"]) for r in _load_all(path, args.merge)}
        jobs: list[tuple[str, str, int]] = []
        for seed in range(args.datasets):  # seed by seed across scenarios, so a stopped run stays balanced
            if not args.no_ours:
                jobs += [(OURS, n, seed) for n in names]
            if args.peer and seed < args.peer_datasets:
                jobs += [(PEER, n, seed) for n in (args.peer_scenarios or args.scenarios).split(",") if n]
        fitted = 0
        for engine, name, seed in jobs:
            if (engine, name, seed) in done:
                continue
            if deadline and time.time() > deadline:
                print("stopping: the --until deadline is reached", flush=True)
                break
            if engine == OURS and fitted >= args.fits_per_process:
                print(f"{fitted} fits in this process: going on in a new one", flush=True)
                os.execve(sys.executable, [sys.executable, *sys.argv], {**os.environ, _DEADLINE: str(deadline)})
            if engine == OURS:
                fitted += 1
                row = _ours(name, seed, args.draws, args.warmup, args.chains)
            else:
                row = _peer(args.peer, name, seed, args.draws, args.warmup, args.chains)
            row["load_average"] = os.getloadavg()
            with path.open("a") as fh:
                fh.write(json.dumps(row) + "\n")
            _print_fit(row)
    rows = _load_all(path, args.merge)
    summary = summarise(rows)
    _print_markdown(summary) if args.markdown else _print_table(summary)
    meta = {"holdout_weeks": HOLDOUT, "cores": os.cpu_count(), "load_average": os.getloadavg(), "fits": len(rows)}
    out = path.with_suffix(".json")
    out.write_text(json.dumps({"meta": meta, "summary": summary}, indent=1))
    print(f"\nwrote {out}; {len(rows)} fits; load average {meta['load_average']}")


def _print_fit(r: dict[str, Any]) -> None:
    if "error" in r:
        print(f"{r['engine']:<15}{r['scenario']:<20} seed {r['seed']:>3}  failed: {r['error'][-300:]}", flush=True)
        return
    cov = sum(c["covered"] for c in r["channels"])
    print(
        f"{r['engine']:<15}{r['scenario']:<20} seed {r['seed']:>3}  {r['seconds']:6.1f} s wall "
        f"{r['cpu_seconds']:6.1f} s cpu  covered {cov}/{len(r['channels'])}  "
        f"R-hat {r['max_rhat']:.3f} ESS {r['min_ess']:5.0f} div {r['divergences']}  {r['status']}",
        flush=True,
    )


if __name__ == "__main__":
    main()
