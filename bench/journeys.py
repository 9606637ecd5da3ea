"""Benchmark: Markov attribution (order 1 and 2) on 100k, 1M and 5M paths against ChannelAttribution,
and sessionisation + a 4-step funnel on 1M, 3M and 10M events in DuckDB.

    uv run python bench/journeys.py                       # everything (several minutes)
    uv run python bench/journeys.py --paths 100000 --events 1000000 --no-peer

ChannelAttribution is GPL: it is never a dependency of touchpoint. It runs only when a separate
virtual environment has it (``--peer-python``, default ``/tmp/peer/bin/python``), as a subprocess:

    python3 -m venv /tmp/peer && /tmp/peer/bin/pip install channelattribution pandas matplotlib

Targets (issue 6): Markov order 1 on 1M paths under 5 s and faster than ChannelAttribution;
sessions + funnel on 10M events under 30 s on DuckDB.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.csv as pcsv

CHANNELS = [
    "paid_search",
    "paid_social",
    "display",
    "video",
    "affiliate",
    "email",
    "organic_search",
    "organic_social",
    "referral",
    "direct",
]

PEER_SCRIPT = r"""
import json, sys, time
import pandas as pd
import ChannelAttribution as ca
path, order = sys.argv[1], int(sys.argv[2])
df = pd.read_csv(path)
t = time.perf_counter()
res = ca.markov_model(df, var_path="path", var_conv="conversions", var_null="nulls", order=order,
                      out_more=True, verbose=False, flg_pro=False)
seconds = time.perf_counter() - t
result = res["result"] if isinstance(res, dict) else res[0]
removal = res["removal_effects"] if isinstance(res, dict) else res[2]
credited = dict(zip(result["channel_name"], map(float, result["total_conversions"])))
removal_effects = dict(zip(removal["channel_name"], map(float, removal["removal_effect"])))
print(json.dumps({"seconds": seconds, "credited": credited, "removal": removal_effects}))
"""


def make_paths(n: int, seed: int = 0) -> pa.Table:
    """``n`` journeys: channel paths of length 1-10 (geometric), with 0/1 conversions and nulls.

    Channel popularity and conversion propensity differ by channel, so the answer is not uniform.
    """
    rng = np.random.default_rng(seed)
    lengths = np.minimum(rng.geometric(0.45, size=n), 10)
    total = int(lengths.sum())
    pop = np.array([0.16, 0.12, 0.08, 0.05, 0.05, 0.12, 0.18, 0.06, 0.06, 0.12])
    touches = rng.choice(len(CHANNELS), size=total, p=pop)
    lift = np.array([0.05, 0.03, 0.01, 0.01, 0.04, 0.06, 0.04, 0.02, 0.03, 0.02])
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    p = 0.02 + np.add.reduceat(lift[touches], offsets[:-1])
    conv = (rng.random(n) < np.clip(p, 0, 0.9)).astype(np.int64)
    names = pa.array(np.array(CHANNELS, dtype=object)[touches], pa.string())
    lists = pa.ListArray.from_arrays(pa.array(offsets, pa.int32()), names)
    import pyarrow.compute as pc

    path = pc.binary_join(lists, " > ")
    return pa.table({"path": path, "conversions": conv, "nulls": 1 - conv})


def bench_markov(sizes: list[int], peer: str | None, tmp: Path) -> list[dict[str, Any]]:
    from touchpoint.journeys.markov import markov
    from touchpoint.journeys.pathdata import from_table

    rows = []
    for n in sizes:
        table = make_paths(n)
        csv_path = tmp / f"paths_{n}.csv"
        if peer:
            pcsv.write_csv(table, csv_path)
        for order in (1, 2):
            t0 = time.perf_counter()
            data = from_table(table, sep=">")
            t1 = time.perf_counter()
            fit = markov(data, order=order)
            t2 = time.perf_counter()
            row: dict[str, Any] = {
                "paths": n,
                "order": order,
                "parse_s": round(t1 - t0, 3),
                "fit_s": round(t2 - t1, 3),
                "touchpoint_s": round(t2 - t0, 3),
                "states": fit.n_states,
                "p_conversion": fit.p_conversion,
            }
            if peer:
                row.update(run_peer(peer, csv_path, order, fit, tmp))
                if row.get("channelattribution_s"):
                    row["speedup"] = round(row["channelattribution_s"] / row["touchpoint_s"], 1)
            rows.append(row)
            print(_fmt_markov(row), flush=True)
    return rows


def run_peer(peer: str, csv_path: Path, order: int, fit: Any, tmp: Path) -> dict[str, Any]:
    script = tmp / "peer_markov.py"
    script.write_text(PEER_SCRIPT)
    try:
        proc = subprocess.run(
            [peer, str(script), str(csv_path), str(order)], capture_output=True, text=True, timeout=900
        )
    except subprocess.TimeoutExpired:
        return {"channelattribution_s": None, "peer_note": "timed out after 900 s"}
    if proc.returncode != 0:
        return {"channelattribution_s": None, "peer_note": proc.stderr.strip().splitlines()[-1][:200]}
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    ours = dict(zip(fit.channels, fit.conversions, strict=True))
    total = sum(ours.values())
    diff = max(abs(ours.get(c, 0.0) - out["credited"].get(c, 0.0)) / total for c in set(ours) | set(out["credited"]))
    return {
        "channelattribution_s": round(out["seconds"], 3),
        "max_share_diff": round(diff, 4),
    }


def _fmt_markov(r: dict[str, Any]) -> str:
    ca = r.get("channelattribution_s")
    ca_text = "n/a" if ca is None else f"{ca:8.2f}s"
    speed = "" if ca is None else f"  x{ca / r['touchpoint_s']:.1f}"
    diff = "" if r.get("max_share_diff") is None else f"  max share diff {r['max_share_diff']:.4f}"
    return (
        f"markov order {r['order']}  {r['paths']:>9,} paths  touchpoint {r['touchpoint_s']:7.2f}s "
        f"(parse {r['parse_s']:.2f}s, fit {r['fit_s']:.2f}s)  ChannelAttribution {ca_text}{speed}{diff}"
        f"{'  ' + r['peer_note'] if r.get('peer_note') else ''}"
    )


SYNTH = """
INSERT INTO events BY NAME
WITH base AS (
  SELECT i, i // {per} AS p, i % {per} AS k, hash(i) AS h FROM range({n}) t(i)
)
SELECT
  'm' || i AS message_id,
  CASE WHEN k % 5 = 4 AND h % 3 = 0 THEN 'track' ELSE 'page' END AS type,
  CASE WHEN k % 5 = 4 AND h % 3 = 0 THEN 'Order Completed' END AS event,
  CASE WHEN p % 2 = 0 THEN 'u' || p END AS user_id,
  'a' || p AS anonymous_id,
  TIMESTAMP '2026-01-01' + to_seconds(CAST((p * 7919) % 2592000 + k * 400 + (h % 4) * 900 AS BIGINT))
    AS "timestamp",
  TIMESTAMP '2026-03-01' AS received_at,
  'bench' AS source,
  CASE k % 5 WHEN 0 THEN '/' WHEN 1 THEN '/products/p' || (h % 20) WHEN 2 THEN '/cart'
       WHEN 3 THEN '/checkout' ELSE '/thanks' END AS path,
  'https://shop.example' || CASE WHEN k % 5 = 0 AND h % 7 = 0 THEN '/?gclid=' || h ELSE '/' END AS url,
  CASE WHEN k % 5 = 0 AND h % 7 = 1 THEN 'https://www.google.com/' END AS referrer,
  CASE WHEN k % 5 = 0 AND h % 7 = 2 THEN 'newsletter' WHEN k % 5 = 0 AND h % 7 = 3 THEN 'facebook' END
    AS utm_source,
  CASE WHEN k % 5 = 0 AND h % 7 = 2 THEN 'email' WHEN k % 5 = 0 AND h % 7 = 3 THEN 'paid_social' END
    AS utm_medium
FROM base
"""


def bench_events(sizes: list[int], tmp: Path, per_person: int = 20) -> list[dict[str, Any]]:
    from touchpoint.journeys.funnels import funnel
    from touchpoint.journeys.sessions import build_sessions_table
    from touchpoint.warehouse import Warehouse

    rows = []
    for n in sizes:
        path = tmp / f"events_{n}.duckdb"
        if path.exists():
            path.unlink()
        wh = Warehouse.open(f"duckdb://{path}")
        t0 = time.perf_counter()
        with wh.write():
            wh.ibis.raw_sql(SYNTH.format(n=n, per=per_person))  # DuckDB SQL: a synthetic event log
        wh.ibis.raw_sql("CHECKPOINT")
        load = time.perf_counter() - t0
        t1 = time.perf_counter()
        n_sessions = build_sessions_table(wh)
        t2 = time.perf_counter()
        out = funnel(wh, ["page:/products/%", "page:/cart", "page:/checkout", "Order Completed"], window_hours=24)
        t3 = time.perf_counter()
        row = {
            "events": n,
            "people": n // per_person,
            "sessions": n_sessions,
            "load_s": round(load, 2),
            "sessions_s": round(t2 - t1, 2),
            "funnel_s": round(t3 - t2, 2),
            "total_s": round(t3 - t1, 2),
            "funnel_people": [s["people"] for s in out["steps"]],
        }
        wh.close()
        path.unlink()
        rows.append(row)
        print(
            f"sessions + 4-step funnel  {n:>11,} events  {row['total_s']:6.2f}s "
            f"(sessions {row['sessions_s']:.2f}s, funnel {row['funnel_s']:.2f}s; {n_sessions:,} sessions)",
            flush=True,
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--paths", type=int, nargs="*", default=[100_000, 1_000_000, 5_000_000])
    parser.add_argument("--events", type=int, nargs="*", default=[1_000_000, 3_000_000, 10_000_000])
    parser.add_argument("--peer-python", default="/tmp/peer/bin/python")
    parser.add_argument("--no-peer", action="store_true")
    parser.add_argument("--out", default=str(Path(tempfile.gettempdir()) / "touchpoint-bench" / "journeys.json"))
    args = parser.parse_args()

    peer = None if args.no_peer else args.peer_python
    if peer and not Path(peer).exists():
        print(f"ChannelAttribution venv not found at {peer}; comparing skipped (see the module docstring)")
        peer = None
    tmp = Path(tempfile.mkdtemp(prefix="tp-bench-journeys-"))
    try:
        results = {
            "machine": {
                "cpus": os.cpu_count(),
                "python": platform.python_version(),
                "platform": platform.platform(),
            },
            "markov": bench_markov(args.paths, peer, tmp),
            "sessions_funnel": bench_events(args.events, tmp),
        }
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    print(f"results written to {out}")
    sys.exit(0)


if __name__ == "__main__":
    main()
