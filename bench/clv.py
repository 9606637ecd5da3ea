"""Benchmark the CLV models: fit time, peak memory and the log-likelihood reached, BG/NBD and
Pareto/NBD, touchpoint against lifetimes, at several sizes; and CLV scoring of 1M customers.

Data: customers simulated from each model (touchpoint.predict.simulate) with first purchases spread
over a year (T uniform in 1..52 weeks) and purchase times rounded to days, as summaries made from
order dates are; time unit weeks. Both libraries fit the same summary; the log-likelihood of each
library's estimates is then computed with touchpoint's exact likelihood on the full data, so "same or
better optimum" is judged on one yardstick.

Each fit runs in its own subprocess; peak memory is the tracemalloc peak during the fit (numpy and
pandas allocations are traced). lifetimes is archived and is installed only in a separate venv
(never a dependency of touchpoint):

    python3 -m venv /tmp/peer_clv && /tmp/peer_clv/bin/pip install lifetimes
    uv run python bench/clv.py --sizes 10000 100000 1000000 --peer-python /tmp/peer_clv/bin/python \
        --json bench-clv.json

Without --peer-python (or if lifetimes does not import there) the peer columns are left empty and
the reason is printed. PyMC-Marketing was not benchmarked (see docs/predict.md).
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

from touchpoint.predict import BetaGeoModel, ParetoNBDModel
from touchpoint.predict.simulate import simulate_bg_nbd, simulate_pareto_nbd

TRUTH = {
    "bg_nbd": {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426},
    "pareto_nbd": {"r": 0.553, "alpha": 10.578, "s": 0.606, "beta": 11.669},
}
CLASSES = {"bg_nbd": BetaGeoModel, "pareto_nbd": ParetoNBDModel}

OURS = r"""
import json, sys, time, tracemalloc
import numpy as np
from touchpoint.predict import BetaGeoModel, ParetoNBDModel
d = np.load(sys.argv[2])
cls = {"bg_nbd": BetaGeoModel, "pareto_nbd": ParetoNBDModel}[sys.argv[1]]
tracemalloc.start()
t0, c0 = time.perf_counter(), time.process_time()
rep = cls().fit(d["x"], d["tx"], d["T"])
sec, cpu = time.perf_counter() - t0, time.process_time() - c0
peak = tracemalloc.get_traced_memory()[1] / 2**20
print(json.dumps({"seconds": sec, "cpu_seconds": cpu, "peak_mb": peak, "params": rep.params,
                  "converged": rep.converged, "distinct_rows": rep.n_distinct_rows}))
"""

PEER = r"""
import json, sys, time, tracemalloc, warnings
warnings.filterwarnings("ignore")
import numpy as np, pandas as pd
from lifetimes import BetaGeoFitter, ParetoNBDFitter
d = np.load(sys.argv[2])
cls = {"bg_nbd": BetaGeoFitter, "pareto_nbd": ParetoNBDFitter}[sys.argv[1]]
x, tx, T = pd.Series(d["x"]), pd.Series(d["tx"]), pd.Series(d["T"])
tracemalloc.start()
t0, c0 = time.perf_counter(), time.process_time()
m = cls().fit(x, tx, T)
sec, cpu = time.perf_counter() - t0, time.process_time() - c0
peak = tracemalloc.get_traced_memory()[1] / 2**20
params = {k: float(v) for k, v in m.params_.items()}
print(json.dumps({"seconds": sec, "cpu_seconds": cpu, "peak_mb": peak, "params": params}))
"""


PYMC = r"""
import json, sys, time, tracemalloc, warnings
warnings.filterwarnings("ignore")
import numpy as np, pandas as pd
from pymc_marketing.clv import BetaGeoModel, ParetoNBDModel
d = np.load(sys.argv[2])
cls = {"bg_nbd": BetaGeoModel, "pareto_nbd": ParetoNBDModel}[sys.argv[1]]
df = pd.DataFrame({"customer_id": np.arange(len(d["x"])), "frequency": d["x"], "recency": d["tx"], "T": d["T"]})
tracemalloc.start()
t0, c0 = time.perf_counter(), time.process_time()
m = cls(data=df)
m.fit(method="map", progressbar=False)
sec, cpu = time.perf_counter() - t0, time.process_time() - c0
peak = tracemalloc.get_traced_memory()[1] / 2**20
post = m.idata.posterior
names = ("r", "alpha", "a", "b") if sys.argv[1] == "bg_nbd" else ("r", "alpha", "s", "beta")
params = {k: float(post[k].values.ravel()[0]) for k in names}
print(json.dumps({"seconds": sec, "cpu_seconds": cpu, "peak_mb": peak, "params": params}))
"""


def simulate(model: str, n: int, seed: int) -> dict[str, np.ndarray]:
    if model == "bg_nbd":
        s = simulate_bg_nbd(n, TRUTH[model], T=(1.0, 52.0), seed=seed, resolution=1 / 7)
    else:
        s = simulate_pareto_nbd(n, TRUTH[model], T=(1.0, 52.0), seed=seed, resolution=1 / 7)
    return {"x": s.frequency, "tx": s.recency, "T": s.T}


# Both libraries run with single-threaded BLAS: touchpoint limits BLAS threads during fits itself,
# and lifetimes gets the same treatment so the comparison is about the algorithms.
ENV = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def run_sub(python: str, code: str, model: str, path: Path, timeout: float) -> dict:
    try:
        proc = subprocess.run(
            [python, "-c", code, model, str(path)],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            env=ENV,
        )
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f} s"}
    if proc.returncode != 0:
        return {"error": proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else "failed"}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def loglik(model: str, params: dict, d: dict[str, np.ndarray]) -> float:
    m = CLASSES[model](params=params)
    return float(m.log_likelihood(d["x"], d["tx"], d["T"]).sum())


def peer_available(python: str | None) -> str | None:
    if not python:
        return "no --peer-python given"
    proc = subprocess.run([python, "-c", "import lifetimes"], capture_output=True, text=True, check=False)
    return None if proc.returncode == 0 else f"lifetimes does not import: {proc.stderr.strip()[-200:]}"


def clv_timing(n: int) -> list[dict]:
    out = []
    for model in ("bg_nbd", "pareto_nbd"):
        d = simulate(model, n, seed=99)
        m = CLASSES[model](params=TRUTH[model])
        spend = np.full(n, 35.0)
        t0, c0 = time.perf_counter(), time.process_time()
        v = m.clv(d["x"], d["tx"], d["T"], spend, horizon=52.0, period=52 / 12, discount_rate=0.10 / 12)
        sec, cpu = time.perf_counter() - t0, time.process_time() - c0
        out.append(
            {
                "model": model,
                "customers": n,
                "seconds": sec,
                "cpu_seconds": cpu,
                "periods": 12,
                "equity": float(v.sum()),
            }
        )
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    ap.add_argument("--models", nargs="+", default=["bg_nbd", "pareto_nbd"])
    ap.add_argument("--peer-python", default=None, help="python of a venv with lifetimes installed")
    ap.add_argument("--peer-timeout", type=float, default=420.0)
    ap.add_argument("--pymc-python", default=None, help="python of a venv with pymc-marketing (MAP fits)")
    ap.add_argument("--tools", nargs="+", default=["ours", "lifetimes", "pymc"], help="which fits to run")
    ap.add_argument("--clv-size", type=int, default=1_000_000)
    ap.add_argument("--json", default="bench-clv.json")
    args = ap.parse_args(argv)

    why_no_peer = peer_available(args.peer_python)
    if why_no_peer:
        print(f"lifetimes not measured: {why_no_peer}")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for model in args.models:
            for n in args.sizes:
                d = simulate(model, n, seed=n)
                path = Path(tmp) / f"{model}-{n}.npz"
                np.savez(path, **d)
                ours = run_sub(sys.executable, OURS, model, path, args.peer_timeout) if "ours" in args.tools else {}
                peer = {}
                if "lifetimes" in args.tools and not why_no_peer:
                    peer = run_sub(args.peer_python, PEER, model, path, args.peer_timeout)
                pymc = {}
                if "pymc" in args.tools and args.pymc_python:
                    pymc = run_sub(args.pymc_python, PYMC, model, path, args.peer_timeout)
                    if "params" in pymc:
                        pymc["log_likelihood"] = loglik(model, pymc["params"], d)
                row = {"model": model, "customers": n, "ours": ours, "lifetimes": peer, "pymc_marketing_map": pymc}
                if "params" in ours:
                    ours["log_likelihood"] = loglik(model, ours["params"], d)
                if "params" in peer:
                    peer["log_likelihood"] = loglik(model, peer["params"], d)
                if "seconds" in ours and "seconds" in peer:
                    row["speedup"] = peer["seconds"] / ours["seconds"]
                    row["cpu_speedup"] = peer["cpu_seconds"] / ours["cpu_seconds"]
                rows.append(row)
                print(json.dumps(row, default=float), flush=True)
    clv = clv_timing(args.clv_size)

    print()
    head = (
        f"{'model':<11}{'customers':>10} | {'ours s':>8}{'cpu s':>7}{'MB':>6}{'LL':>15} | {'lifetimes s':>12}"
        f"{'cpu s':>8}{'MB':>6}{'LL':>15} | {'speedup':>8}{'dLL':>9}"
    )
    print(head)
    print("-" * len(head))
    for r in rows:
        o, p = r["ours"], r["lifetimes"]
        pl = p.get("log_likelihood")
        dll = (o["log_likelihood"] - pl) if pl is not None and "log_likelihood" in o else None
        print(
            f"{r['model']:<11}{r['customers']:>10,} | {o.get('seconds', float('nan')):>8.2f}"
            f"{o.get('cpu_seconds', float('nan')):>7.2f}{o.get('peak_mb', float('nan')):>6.0f}"
            f"{o.get('log_likelihood', float('nan')):>15,.2f} | "
            + (
                f"{p['seconds']:>12.2f}{p['cpu_seconds']:>8.2f}{p['peak_mb']:>6.0f}{pl:>15,.2f}"
                if "seconds" in p
                else f"{p.get('error', 'not run'):>41.41}"
            )
            + f" | {r.get('speedup', float('nan')):>8.1f}{dll if dll is not None else float('nan'):>9.2f}"
        )
    pymc_rows = [r for r in rows if r.get("pymc_marketing_map")]
    if pymc_rows:
        print("\nPyMC-Marketing maximum a posteriori (default priors, so its optimum is not the MLE):")
        for r in pymc_rows:
            q = r["pymc_marketing_map"]
            if "seconds" in q:
                print(
                    f"  {r['model']:<11}{r['customers']:>10,}: {q['seconds']:.1f} s ({q['cpu_seconds']:.1f} s CPU), "
                    f"{q['peak_mb']:.0f} MB, LL {q['log_likelihood']:,.2f}"
                )
            else:
                print(f"  {r['model']:<11}{r['customers']:>10,}: {q.get('error')}")
    print()
    for c in clv:
        print(
            f"CLV of {c['customers']:,} customers ({c['model']}, {c['periods']} monthly periods): "
            f"{c['seconds']:.2f} s ({c['cpu_seconds']:.2f} s CPU)"
        )
    Path(args.json).write_text(
        json.dumps({"fits": rows, "clv": clv, "peer": why_no_peer or "lifetimes"}, indent=2, default=float)
    )
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
