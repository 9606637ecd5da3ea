"""Benchmark: marketing-mix model fit time and ROMI accuracy, against PyMC-Marketing.

For each size (years of weekly data x channels) the same simulated data set (known adstock,
saturation and ROMI, :func:`touchpoint.mmm.simulate`) is fitted by touchpoint (NumPyro NUTS) and,
when a peer venv is given, by PyMC-Marketing's MMM at the same chains/warm-up/draws. Reported:
wall seconds (compilation included, on a cold JAX cache), CPU seconds, ROMI error (mean absolute
relative error of the posterior means against the truth), interval coverage, R-hat, ESS.

    uv run python bench/mmm.py                       # full grid: 2/3/5 years x 3/6/10 channels + 3y x 8
    uv run python bench/mmm.py --quick --peer /tmp/mmmpeer/bin/python
The peer venv: python3 -m venv /tmp/mmmpeer && /tmp/mmmpeer/bin/pip install pymc-marketing
Prints a table and writes bench/results/mmm.json.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HOLDOUT = 8
PRECISE = 0.10  # posterior sd / mean of a channel's ROMI at or below which it counts as measured precisely


def _ours(weeks: int, channels: int, draws: int, chains: int, seed: int) -> dict:
    from touchpoint.mmm import MMMConfig, fit, simulate

    data, truth = simulate(weeks=weeks, channels=channels, seed=seed, holdout_weeks=HOLDOUT)
    cfg = MMMConfig(draws=draws, warmup=draws, chains=chains, holdout_weeks=HOLDOUT, seed=seed)
    wall, cpu = time.perf_counter(), time.process_time()
    result = fit(data, cfg)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    romi = result.romi()
    true = np.array([truth["roi"][c] for c in data.channels])
    est = np.array([romi[c]["romi"]["mean"] for c in data.channels])
    cover = np.mean([romi[c]["romi"]["low"] <= truth["roi"][c] <= romi[c]["romi"]["high"] for c in data.channels])
    s = result.diagnostics["sampler"]
    precise = np.array([romi[c]["relative_sd"] <= PRECISE for c in data.channels])
    return {
        "engine": "touchpoint (NumPyro NUTS)",
        "weeks": weeks,
        "channels": channels,
        "seconds": wall,
        "cpu_seconds": cpu,
        "romi_mape": float(np.mean(np.abs(est / true - 1))),
        "within_15pct": int(np.sum(np.abs(est / true - 1) <= 0.15)),
        "precise": int(precise.sum()),
        "precise_within_15pct": int(np.sum(precise & (np.abs(est / true - 1) <= 0.15))),
        "coverage": float(cover),
        "max_rhat": s["max_rhat"],
        "min_ess": s["min_ess"],
        "divergences": s["divergences"],
        "status": result.status,
    }


def _peer(python: str, weeks: int, channels: int, draws: int, chains: int, seed: int) -> dict:
    from touchpoint.mmm import simulate

    data, truth = simulate(weeks=weeks, channels=channels, seed=seed, holdout_weeks=HOLDOUT)
    n = weeks - HOLDOUT  # the peer fits the same weeks ours fits (ours predicts the held-out ones)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "data.csv"
        rows = ["date,revenue," + ",".join(data.channels)]
        rows += [
            f"{d},{y}," + ",".join(map(str, s))
            for d, y, s in zip(data.dates[:n], data.target[:n], data.spend[:n], strict=True)
        ]
        path.write_text("\n".join(rows))
        script = Path(__file__).with_name("mmm_peer_pymc.py")
        wall, start = time.perf_counter(), os.times()
        proc = subprocess.run(
            [python, str(script), str(path), ",".join(data.channels), str(draws), str(draws), str(chains), str(seed)],
            capture_output=True,
            text=True,
            cwd=tmp,
        )
        end = os.times()
        wall = time.perf_counter() - wall
    if proc.returncode != 0:
        return {"engine": "PyMC-Marketing", "weeks": weeks, "channels": channels, "error": proc.stderr[-500:]}
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    true = np.array([truth["roi"][c] for c in data.channels])
    est = np.array(out["roi_mean"])
    cover = np.mean((np.array(out["roi_low"]) <= true) & (true <= np.array(out["roi_high"])))
    return {
        "engine": "PyMC-Marketing " + out.get("version", ""),
        "weeks": weeks,
        "channels": channels,
        "seconds": wall,
        "fit_seconds": out["seconds"],
        "cpu_seconds": (end.children_user + end.children_system) - (start.children_user + start.children_system),
        "romi_mape": float(np.mean(np.abs(est / true - 1))),
        "within_15pct": int(np.sum(np.abs(est / true - 1) <= 0.15)),
        "coverage": float(cover),
        "max_rhat": out["max_rhat"],
        "min_ess": out["min_ess"],
        "divergences": out["divergences"],
        "status": "",
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="2y x 3, 3y x 6, 5y x 10 and 3y x 8 only")
    ap.add_argument("--sizes", help="our sizes instead of the grid, e.g. 156x8")
    ap.add_argument("--out", default="mmm.json", help="result file name under bench/results")
    ap.add_argument("--peer", help="python of a venv with pymc-marketing (omit to skip the peer)")
    ap.add_argument("--peer-sizes", default="104x3,156x8", help="sizes the peer fits, e.g. 104x3,156x8")
    ap.add_argument("--draws", type=int, default=500, help="warm-up and draws per chain, for both engines")
    ap.add_argument("--chains", type=int, default=4)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    # Cold compilation: a fresh JAX cache, so fit times include compiling the sampler.
    os.environ["JAX_COMPILATION_CACHE_DIR"] = tempfile.mkdtemp(prefix="tp-jax-")
    if args.sizes:
        sizes = [(int(w), int(c)) for w, c in (item.split("x") for item in args.sizes.split(","))]
    elif args.quick:
        sizes = [(104, 3), (156, 6), (260, 10), (156, 8)]
    else:
        sizes = [(w, c) for w in (104, 156, 260) for c in (3, 6, 10)] + [(156, 8)]
    rows = []
    for weeks, channels in sizes:
        rows.append(_ours(weeks, channels, args.draws, args.chains, args.seed))
        _print(rows[-1])
    if args.peer:
        for item in args.peer_sizes.split(","):
            weeks, channels = (int(v) for v in item.split("x"))
            rows.append(_peer(args.peer, weeks, channels, args.draws, args.chains, args.seed))
            _print(rows[-1])
    out = Path(__file__).with_name("results")
    out.mkdir(exist_ok=True)
    meta = {
        "draws": args.draws,
        "warmup": args.draws,
        "chains": args.chains,
        "cores": os.cpu_count(),
        "load_average": os.getloadavg(),
        "python": sys.version.split()[0],
    }
    (out / args.out).write_text(json.dumps({"meta": meta, "rows": rows}, indent=1))
    print(f"\nwrote {out / args.out}; load average {meta['load_average']}")


def _print(r: dict) -> None:
    if "error" in r:
        print(f"{r['engine']:<28} {r['weeks']:>4}w x {r['channels']:>2}  failed: {r['error'][-200:]}")
        return
    print(
        f"{r['engine']:<28} {r['weeks']:>4}w x {r['channels']:>2}  {r['seconds']:7.1f} s wall "
        f"{r['cpu_seconds']:7.1f} s cpu  ROMI error {r['romi_mape']:6.1%}  coverage {r['coverage']:5.0%}  "
        f"within 15% {r['within_15pct']}/{r['channels']}  "
        + (f"precise {r['precise_within_15pct']}/{r['precise']} within 15%  " if "precise" in r else "")
        + f"R-hat {r['max_rhat']:.3f}  ESS {r['min_ess']:6.0f}  div {r['divergences']}  {r['status']}",
        flush=True,
    )


if __name__ == "__main__":
    main()
