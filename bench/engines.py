"""Benchmark the engines: the analytics the parity tests cover, on DuckDB, PostgreSQL and Spark, in one run.

The same synthetic events (bench/identity.py's visitors; each track event given a funnel step, about a third of
them page views with campaign parameters, so there are sessions and journeys) are loaded into an embedded
DuckDB file, a PostgreSQL database and a Spark warehouse (local mode, Parquet tables), then each analysis runs
on each engine: identity rebuild, profiles, sessions, a 4-step funnel, the Markov attribution inputs, the
CDNOW-style summary, experiment sums and a 5-condition audience:

    flock /tmp/bench.lock uv run python bench/engines.py --sizes 10000 100000 1000000 \
        --json bench/results/engines.json

PostgreSQL is the throwaway server the tests use (tests/warehouse/pg.py: Debian's binaries, durability off,
so loading is not slowed by fsync), or the one ``--postgres-url`` names (a database that will be emptied).
Spark is ``spark+local`` with ``--spark-threads`` threads (default 2) in this process's JVM.

Each step's wall time and CPU time: the CPU of this process and of every process under it (the JVM Spark
runs in, the PostgreSQL server and its backends, from /proc), so an engine's work in its own process is
counted. The answers (profiles, sessions, funnel's last step, journeys, RFM rows, experiment sums,
audience members) must agree between the engines; a row records its answers and any engine that differs
from DuckDB is printed. The load average is recorded before and after each engine. Rows are written to the
JSON file as they finish (a long run that is stopped keeps what it measured).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/warehouse/pg.py, bench/identity.py

from bench.identity import make_events

from touchpoint import identity, profiles
from touchpoint.audiences import workflow as audiences
from touchpoint.journeys.funnels import funnel
from touchpoint.warehouse import Warehouse

STEPS = ["Product Viewed", "Added to Cart", "Checkout Started", "Order Completed"]
AUDIENCE = {
    "all": [
        {"event": "Product Viewed", "count": {"gte": 2}},
        {"event": "Added to Cart", "within_days": 60},
        {"any": [{"event": "Order Completed"}, {"event": "Checkout Started", "count": {"gte": 2}}]},
        {"not": {"event": "Order Completed", "count": {"gte": 3}}},
        {"event": "Product Viewed", "within_days": 30},
    ]
}
NOW = datetime(2026, 4, 1)


SOURCES = np.array(["google", "newsletter", "facebook", None], dtype=object)
MEDIUMS = {"google": "cpc", "newsletter": "email", "facebook": "social"}
CALIBRATION_END, HOLDOUT_END = date(2026, 2, 15), date(2026, 4, 1)
EXPERIMENT_UNITS = 5_000  # users exposed to the experiment (before the timing)


def shop_events(n: int, seed: int = 11) -> pa.Table:
    """bench/identity.py's events: each track event a funnel step (fewer at each step), orders with revenue;
    a third of the track events page views instead, with a campaign source (or none: direct)."""
    events = make_events(n, seed=seed)
    rng = np.random.default_rng(seed)
    step = np.minimum(rng.geometric(0.45, n) - 1, 3)
    is_track = np.asarray(events.column("type").to_pylist()) == "track"
    is_page = is_track & (rng.random(n) < 0.35)
    is_track &= ~is_page
    names = np.where(is_track, np.array(STEPS, dtype=object)[step], None)
    revenue = np.where(is_track & (step == 3), np.round(rng.gamma(2.0, 40.0, n), 2), np.nan)
    source = np.where(is_page, SOURCES[rng.integers(0, len(SOURCES), n)], None)
    medium = np.array([MEDIUMS.get(s) if s else None for s in source], dtype=object)
    page = rng.integers(1, 20, n)
    url = np.where(is_page, np.char.add("https://shop.example/p", page.astype(str)).astype(object), None)

    def put(table: pa.Table, name: str, values: Any, kind: pa.DataType = pa.string()) -> pa.Table:
        return table.set_column(table.schema.get_field_index(name), name, pa.array(values, kind))

    kinds = np.where(is_page, "page", np.asarray(events.column("type").to_pylist(), dtype=object))
    events = put(events, "type", kinds)
    events = put(events, "event", names)
    events = put(events, "url", url)
    events = put(events, "utm_source", source)
    events = put(events, "utm_medium", medium)
    column = pa.array(revenue, pa.float64(), mask=np.isnan(revenue))
    return events.set_column(events.schema.get_field_index("revenue"), "revenue", column)


def _descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    parent = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(parent, []).append(int(entry))
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo.extend(children.get(current, []))
    return found


def tree_cpu() -> float:
    """CPU seconds of this process and every process under it (user + system, with their reaped children)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for pid in _descendants(os.getpid()):
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += sum(int(x) for x in fields[11:15]) / tick  # utime stime cutime cstime
    return total


def _timed(fn: Callable[[], Any]) -> tuple[dict[str, float], Any]:
    cpu, start = tree_cpu(), time.perf_counter()
    out = fn()
    return {"wall_s": round(time.perf_counter() - start, 3), "cpu_s": round(tree_cpu() - cpu, 2)}, out


def _experiment(wh: Warehouse, events: pa.Table) -> Callable[[], Any]:
    """Create the experiment and expose the first users to it (not timed); returns the timed computation."""
    from touchpoint.collect.store import write_messages
    from touchpoint.experiments import assignment as asg
    from touchpoint.experiments.definitions import Experiment, Metric, create_experiment
    from touchpoint.experiments.metrics import compute_stats

    metrics = [
        Metric("purchase", "binomial", "Order Completed", window_days=30),
        Metric("revenue", "mean", "Order Completed", "revenue", window_days=30, cap=200),
    ]
    start = datetime(2026, 1, 1)
    create_experiment(wh, Experiment("bench", start_at=start, metrics=metrics), replace=True)
    users = sorted({u for u in events.column("user_id").to_pylist() if u})[:EXPERIMENT_UNITS]
    arms = asg.assign(wh, "bench", users)
    exposures = [
        asg.exposure_message("bench", u, arm, start + timedelta(minutes=i)) for i, (u, arm) in enumerate(arms.items())
    ]
    write_messages(wh, exposures, source="bench", received_at=start)

    def stats() -> list[tuple[Any, ...]]:
        found, _summary = compute_stats(wh, "bench", metrics, start=start)
        return [(s.metric, a.variant, a.n, round(a.sum, 6)) for s in found for a in s.arms]

    return stats


def run(engine: str, url: str, events: pa.Table) -> dict[str, Any]:
    from touchpoint.journeys.people import person_events
    from touchpoint.journeys.sessions import build_sessions_table
    from touchpoint.journeys.touches import journeys_expr
    from touchpoint.predict.summary import orders_from_events, rfm_summary

    load_before = os.getloadavg()
    steps: dict[str, dict[str, float]] = {}
    answers: dict[str, Any] = {}
    with Warehouse.open(url) as wh:
        steps["load"], _ = _timed(lambda: wh.append("events", events))
        steps["identity"], resolved = _timed(lambda: identity.rebuild(wh))
        answers["profiles"] = resolved.profiles
        steps["profiles"], _ = _timed(lambda: profiles.build(wh, as_of=NOW))
        steps["sessions"], answers["sessions"] = _timed(lambda: build_sessions_table(wh))
        steps["funnel"], result = _timed(lambda: funnel(wh, STEPS))
        answers["funnel_last_step"] = result["steps"][-1]["people"]

        def markov_inputs() -> Any:
            table = wh.to_arrow(journeys_expr(person_events(wh), lookback_days=30).select("converted", "channels"))
            return table.num_rows, sum(len(c or []) for c in table.column("channels").to_pylist())

        steps["markov_inputs"], answers["journeys_touches"] = _timed(markov_inputs)

        def cdnow() -> Any:
            table = wh.to_arrow(
                rfm_summary(orders_from_events(wh), calibration_end=CALIBRATION_END, holdout_end=HOLDOUT_END)
            )
            return table.num_rows, int(sum(table.column("frequency").to_pylist()))

        steps["cdnow_summary"], answers["rfm_rows_frequency"] = _timed(cdnow)
        stats = _experiment(wh, events)
        steps["experiment_sums"], answers["experiment"] = _timed(stats)
        steps["audience"], created = _timed(lambda: audiences.create(wh, "bench", AUDIENCE, now=NOW))
        answers["members"] = created["refresh"].get("members")
    return {
        "engine": engine,
        "events": events.num_rows,
        "steps": steps,
        "answers": answers,
        "total_wall_s": round(sum(s["wall_s"] for s in steps.values()), 2),
        "total_cpu_s": round(sum(s["cpu_s"] for s in steps.values()), 2),
        "load_before": [round(x, 2) for x in load_before],
        "load_after": [round(x, 2) for x in os.getloadavg()],
    }


def _same(a: Any, b: Any) -> bool:  # exact, except sums (1e-9 relative, as the parity tests)
    if isinstance(a, float) and isinstance(b, float):
        return abs(a - b) <= 1e-9 * max(abs(a), abs(b), 1.0)
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--engines", nargs="+", default=["duckdb", "postgresql", "spark"])
    parser.add_argument("--postgres-url", help="a PostgreSQL database to use (emptied); default: a throwaway server")
    parser.add_argument("--spark-threads", default="2", help="Spark's local threads (local[N])")
    parser.add_argument("--spark-memory", default="3g", help="Spark's driver memory")
    parser.add_argument("--json", type=Path, help="write the results here (after each row)")
    args = parser.parse_args()

    server = None
    if "postgresql" in args.engines and args.postgres_url is None:
        from tests.warehouse.pg import PostgresServer

        server = PostgresServer.start()
    rows: list[dict[str, Any]] = []
    names = ["load", "identity", "profiles", "sessions", "funnel", "markov_inputs", "cdnow_summary",
             "experiment_sums", "audience"]  # fmt: skip
    print(f"{'events':>10} {'engine':<10} " + " ".join(f"{n[:9]:>9}" for n in names) + "   total (wall / CPU s)")
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for size in args.sizes:
                events = shop_events(size)
                for engine in args.engines:
                    if engine == "duckdb":
                        url = f"duckdb://{tmp}/bench-{size}.duckdb"
                    elif engine == "spark":
                        url = (
                            f"spark+local://{tmp}/spark-{size}?threads={args.spark_threads}"
                            f"&partitions={2 * int(args.spark_threads)}&memory={args.spark_memory}"
                        )
                    elif server is not None:
                        url = server.new_database(f"bench{size}")
                    else:
                        url = args.postgres_url
                        with Warehouse.open(url) as wh, wh.write() as tx:  # start from no rows
                            for table in wh.tables():
                                if table != "schema_migrations":
                                    tx.delete(table)
                    row = run(engine, url, events)
                    rows.append(row)
                    cells = " ".join(f"{row['steps'][n]['wall_s']:>9.2f}" for n in names)
                    print(
                        f"{size:>10,} {engine:<10} {cells}   {row['total_wall_s']:.1f} / {row['total_cpu_s']:.1f}"
                        f"  (load {row['load_before'][0]:.1f} -> {row['load_after'][0]:.1f})",
                        flush=True,
                    )
                    first = next(r for r in rows if r["events"] == size)
                    for key, value in row["answers"].items():  # the same answers, or the timing is moot
                        if not _same(first["answers"][key], value):
                            print(f"  DIFFERS from {first['engine']}: {key} {first['answers'][key]} != {value}")
                            row.setdefault("differs", []).append(key)
                    if args.json:
                        args.json.write_text(json.dumps({"rows": rows}, indent=2, default=str) + "\n")
    finally:
        if server is not None:
            server.stop()


if __name__ == "__main__":
    main()
