"""Benchmark the experiments engine at several sizes.

1. Analysis from sufficient statistics: E experiments x 10 metrics (2 arms each) in one table, with
   ``analyze_table`` (vectorised), per engine; and the per-experiment ``analyze`` loop for comparison.
   Target: 1,000 x 10 in under 1 s.
2. One experiment with N exposed units, sums computed in the engine (DuckDB) from the events:
   exposures, orders after exposure (binomial "ordered" and capped "revenue" metrics within a 14-day
   window) and orders in the 14 days before (the CUPED covariate), then analysed. Target: 10M in
   under 10 s. Events are generated with numpy and inserted through the adapter in bulk (not through
   the validating collector, which is benchmarked elsewhere), into a DuckDB file.

    uv run python bench/experiments.py                       # defaults below
    uv run python bench/experiments.py --experiments 100 1000 10000 --units 1000000 3000000 10000000 \
        --json bench-experiments.json

Prints a table and writes JSON. Wall time and process CPU time (all threads) are both reported, with
the load average: on a shared machine the CPU time is the steadier figure.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from touchpoint.collect.normalize import EVENTS_ARROW
from touchpoint.experiments.analysis import AnalysisOptions, analyze, analyze_table
from touchpoint.experiments.definitions import Experiment, create_experiment
from touchpoint.experiments.metrics import Metric
from touchpoint.experiments.results import analyze_experiment
from touchpoint.experiments.statistics import ArmStats, MetricStats
from touchpoint.warehouse import Warehouse

BASE = np.datetime64("2026-01-01T00:00:00", "us")
KEY = "bench-exp"


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def stats_table(n_exp: int, n_metrics: int = 10, seed: int = 1) -> pa.Table:
    """Sums for ``n_exp`` experiments x ``n_metrics`` metrics (half binomial, half revenue means)."""
    rng = np.random.default_rng(seed)
    rows = n_exp * n_metrics * 2
    exp = np.repeat(np.arange(n_exp), n_metrics * 2)
    met = np.tile(np.repeat(np.arange(n_metrics), 2), n_exp)
    is_ctrl = np.tile([True, False], n_exp * n_metrics)
    n = rng.integers(2_000, 200_000, rows).astype(float)
    binomial = met % 2 == 0
    rate = rng.uniform(0.01, 0.3, rows)
    s = np.where(binomial, rng.binomial(n.astype(np.int64), rate), n * rng.uniform(1, 20, rows))
    ss = np.where(binomial, s, s * rng.uniform(30, 300, rows))
    return pa.table(
        {
            "experiment": pc.binary_join_element_wise("exp-", pa.array(exp).cast(pa.string()), ""),
            "metric": pc.binary_join_element_wise("m", pa.array(met).cast(pa.string()), ""),
            "kind": np.where(binomial, "binomial", "mean"),
            "variant": np.where(is_ctrl, "control", "treatment"),
            "is_control": is_ctrl,
            "n": n,
            "sum": s.astype(float),
            "sum_squares": ss.astype(float),
        }
    )


def as_metric_stats(table: pa.Table) -> list[list[MetricStats]]:
    d = table.to_pydict()
    by_exp: dict[str, list[MetricStats]] = {}
    for i in range(0, table.num_rows, 2):
        arms = [ArmStats(d["variant"][j], d["n"][j], d["sum"][j], d["sum_squares"][j]) for j in (i, i + 1)]
        by_exp.setdefault(d["experiment"][i], []).append(MetricStats(d["metric"][i], d["kind"][i], arms))
    return list(by_exp.values())


def bench_sufficient(sizes: list[int]) -> list[dict]:
    out = []
    for n_exp in sizes:
        table = stats_table(n_exp)
        row = {"experiments": n_exp, "comparisons": n_exp * 10}
        for engine in ("frequentist", "sequential", "bayesian"):
            opts = AnalysisOptions(engine=engine)
            analyze_table(table.slice(0, 40), options=opts)  # warm up scipy
            t, cpu = time.perf_counter(), time.process_time()
            res = analyze_table(table, options=opts)
            row[f"{engine}_s"] = round(time.perf_counter() - t, 4)
            row[f"{engine}_cpu_s"] = round(time.process_time() - cpu, 4)
            assert res.num_rows == n_exp * 10
        if n_exp <= 1000:
            per_exp = as_metric_stats(table)
            t = time.perf_counter()
            for stats in per_exp:
                analyze(stats, control="control", options=AnalysisOptions(engine="sequential"))
            row["loop_analyze_s"] = round(time.perf_counter() - t, 3)
        row["load_average"] = round(os.getloadavg()[0], 1)
        out.append(row)
        print(
            f"  {n_exp:>7,} experiments x 10 metrics: "
            + ", ".join(f"{k} {v}" for k, v in row.items() if k.endswith("_s")),
            flush=True,
        )
    return out


def make_events(n_units: int, seed: int = 3) -> pa.Table:
    """Exposures for ``n_units`` over 14 days, orders after (with a 5% lift) and before exposure."""
    rng = np.random.default_rng(seed)
    unit = np.arange(n_units)
    treated = rng.random(n_units) < 0.5
    exposed_s = rng.integers(14 * 86400, 28 * 86400, n_units)
    # orders in the 14 days after exposure: 10% of control, 10.5% of treatment; some order twice
    buys = rng.random(n_units) < np.where(treated, 0.105, 0.10)
    after_u = np.concatenate([unit[buys], unit[buys & (rng.random(n_units) < 0.3)]])
    after_t = exposed_s[after_u] + rng.integers(60, 14 * 86400, after_u.size)
    # orders in the 14 days before exposure (the covariate)
    pre = rng.random(n_units) < 0.08
    pre_u = unit[pre]
    pre_t = exposed_s[pre_u] - rng.integers(60, 14 * 86400, pre_u.size)
    order_u = np.concatenate([after_u, pre_u])
    order_t = np.concatenate([after_t, pre_t])
    n_orders = order_u.size
    total = n_units + n_orders
    users = pc.binary_join_element_wise("u", pa.array(np.concatenate([unit, order_u])).cast(pa.string()), "")
    ts = BASE + np.concatenate([exposed_s, order_t]).astype("timedelta64[s]")
    props_choice = pa.array(
        [
            json.dumps({"experiment_id": KEY, "variation_id": "control"}),
            json.dumps({"experiment_id": KEY, "variation_id": "treatment"}),
        ]
    )
    revenue = np.round(rng.gamma(2.0, 35.0, n_orders), 2)
    exposure_props = props_choice.take(pa.array(treated.astype(np.int64)))
    order_props = pc.binary_join_element_wise('{"revenue":', pa.array(revenue).cast(pa.string()), "}", "")
    cols = {
        "message_id": pc.binary_join_element_wise("m", pa.array(np.arange(total)).cast(pa.string()), ""),
        "type": pa.array(np.full(total, "track")),
        "event": pa.array(
            np.concatenate([np.full(n_units, "Experiment Viewed"), np.full(n_orders, "Order Completed")])
        ),
        "user_id": users,
        "timestamp": pa.array(ts),
        "received_at": pa.array(ts),
        "source": pa.array(np.full(total, "bench")),
        "properties": pa.concat_arrays([exposure_props, order_props]),
        "revenue": pa.array(np.concatenate([np.full(n_units, np.nan), revenue])),
    }
    arrays = []
    for field in EVENTS_ARROW:
        arr = cols.get(field.name)
        arrays.append(pa.nulls(total, field.type) if arr is None else arr.cast(field.type))
    table = pa.Table.from_arrays(arrays, schema=EVENTS_ARROW)
    return table.set_column(
        table.schema.get_field_index("revenue"),
        "revenue",
        pc.if_else(pc.is_nan(table.column("revenue")), None, table.column("revenue")),
    )


def bench_engine(sizes: list[int], threads: int | None) -> list[dict]:
    out = []
    for n_units in sizes:
        with tempfile.TemporaryDirectory(prefix="tp-bench-exp-") as tmp:
            config = {"threads": threads} if threads else None
            wh = Warehouse.open(f"duckdb://{Path(tmp) / 'wh.duckdb'}", config=config)
            t = time.perf_counter()
            events = make_events(n_units)
            wh.insert_new("events", events)
            load_s = time.perf_counter() - t
            create_experiment(
                wh,
                Experiment(
                    KEY,
                    start_at=BASE.astype("datetime64[us]").item(),
                    metrics=[
                        Metric("ordered", "binomial", "Order Completed", window_days=14),
                        Metric("revenue", "mean", "Order Completed", "revenue", window_days=14, cap=500),
                    ],
                ),
            )
            timings = {}
            for label, opts in (
                ("plain", AnalysisOptions(engine="sequential")),
                ("cuped", AnalysisOptions(engine="sequential", cuped=True)),
            ):
                t, cpu = time.perf_counter(), time.process_time()
                result = analyze_experiment(wh, KEY, options=opts)
                timings[label] = time.perf_counter() - t
                timings[label + "_cpu"] = time.process_time() - cpu
            c = result.metrics[0].comparisons[0]
            row = {
                "units": n_units,
                "events": events.num_rows,
                "load_s": round(load_s, 1),
                "analyze_s": round(timings["plain"], 2),
                "analyze_cuped_s": round(timings["cuped"], 2),
                "analyze_cpu_s": round(timings["plain_cpu"], 2),
                "analyze_cuped_cpu_s": round(timings["cuped_cpu"], 2),
                "load_average": round(os.getloadavg()[0], 1),
                "lift_ordered": round(c.estimate or 0, 4),
                "ci": [round(c.ci_low or 0, 4), round(c.ci_high or 0, 4)],
                "srm_ok": result.srm.ok,
                "peak_rss_mb": round(peak_rss_mb()),
            }
            wh.close()
        out.append(row)
        print(
            f"  {n_units:>11,} units ({row['events']:,} events): analyze {row['analyze_s']} s "
            f"(CPU {row['analyze_cpu_s']} s), with CUPED {row['analyze_cuped_s']} s "
            f"(CPU {row['analyze_cuped_cpu_s']} s); lift {row['lift_ordered']:+.2%} (true +5%); "
            f"peak RSS {row['peak_rss_mb']} MB; load average {row['load_average']}",
            flush=True,
        )
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--experiments", type=int, nargs="+", default=[100, 1000, 10000])
    ap.add_argument("--units", type=int, nargs="+", default=[1_000_000, 3_000_000, 10_000_000])
    ap.add_argument("--threads", type=int, default=None, help="DuckDB threads (default: all cores)")
    ap.add_argument("--json", type=Path, default=None, help="write the results here")
    args = ap.parse_args(argv)
    print("analysis from sufficient statistics (target: 1,000 x 10 under 1 s)")
    suff = bench_sufficient(args.experiments)
    print("one experiment, sums computed in DuckDB from events (target: 10M units under 10 s)")
    eng = bench_engine(args.units, args.threads)
    result = {"sufficient_statistics": suff, "engine": eng, "python": sys.version.split()[0]}
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
