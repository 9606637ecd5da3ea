"""Benchmark the engines: identity rebuild, a 4-step funnel and a 5-condition audience on DuckDB and PostgreSQL.

The same synthetic events (bench/identity.py's visitors, each track event given a funnel step) are loaded
into an embedded DuckDB file and into a PostgreSQL database, then each operation runs on both:

    uv run python bench/engines.py --sizes 100000 1000000 3000000 --json bench/results/engines.json

PostgreSQL is the throwaway server the tests use (tests/warehouse/pg.py: Debian's binaries, durability off,
so loading is not slowed by fsync), or the one ``--postgres-url`` names (a database that will be emptied).
Prints one row per size and engine (seconds for load, identity rebuild, profiles, funnel, audience) and
writes JSON.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import datetime
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


def shop_events(n: int, seed: int = 11) -> pa.Table:
    """bench/identity.py's events, each track event a funnel step (fewer at each step), orders with revenue."""
    events = make_events(n, seed=seed)
    rng = np.random.default_rng(seed)
    step = np.minimum(rng.geometric(0.45, n) - 1, 3)
    is_track = np.asarray(events.column("type").to_pylist()) == "track"
    names = np.where(is_track, np.array(STEPS, dtype=object)[step], None)
    revenue = np.where(is_track & (step == 3), np.round(rng.gamma(2.0, 40.0, n), 2), np.nan)
    events = events.set_column(events.schema.get_field_index("event"), "event", pa.array(names, pa.string()))
    column = pa.array(revenue, pa.float64(), mask=np.isnan(revenue))
    return events.set_column(events.schema.get_field_index("revenue"), "revenue", column)


def _timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    out = fn()
    return round(time.perf_counter() - start, 3), out


def run(engine: str, url: str, events: pa.Table) -> dict[str, Any]:
    with Warehouse.open(url) as wh:
        load, _ = _timed(lambda: wh.append("events", events))
        rebuild, resolved = _timed(lambda: identity.rebuild(wh))
        build, _ = _timed(lambda: profiles.build(wh, as_of=NOW))
        steps, result = _timed(lambda: funnel(wh, STEPS))
        audience, created = _timed(lambda: audiences.create(wh, "bench", AUDIENCE, now=NOW))
        return {
            "engine": engine,
            "events": events.num_rows,
            "load_s": load,
            "identity_rebuild_s": rebuild,
            "profiles_s": build,
            "funnel_s": steps,
            "audience_s": audience,
            "profiles": resolved.profiles,
            "funnel_last_step": result["steps"][-1]["people"],
            "members": created["refresh"].get("members"),
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000, 3_000_000])
    parser.add_argument("--postgres-url", help="a PostgreSQL database to use (emptied); default: a throwaway server")
    parser.add_argument("--json", type=Path, help="write the results here")
    args = parser.parse_args()

    server = None
    if args.postgres_url is None:
        from tests.warehouse.pg import PostgresServer

        server = PostgresServer.start()
    rows = []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for size in args.sizes:
                events = shop_events(size)
                if server is not None:
                    pg_url = server.new_database(f"bench{size}")
                else:
                    pg_url = args.postgres_url
                    with Warehouse.open(pg_url) as wh, wh.write() as tx:  # start from no rows
                        for table in wh.tables():
                            if table != "schema_migrations":
                                tx.delete(table)
                for engine, url in (("duckdb", f"duckdb://{tmp}/bench-{size}.duckdb"), ("postgresql", pg_url)):
                    row = run(engine, url, events)
                    rows.append(row)
                    print(
                        f"{size:>10,} {engine:<10} load {row['load_s']:>8.2f}s"
                        f"  identity {row['identity_rebuild_s']:>8.2f}s"
                        f"  profiles {row['profiles_s']:>8.2f}s  funnel {row['funnel_s']:>7.2f}s"
                        f"  audience {row['audience_s']:>7.2f}s",
                        flush=True,
                    )
                duck, pg = rows[-2], rows[-1]
                for key in ("profiles", "funnel_last_step", "members"):  # the same answers, or the timing is moot
                    assert duck[key] == pg[key], (key, duck[key], pg[key])
    finally:
        if server is not None:
            server.stop()
    if args.json:
        args.json.write_text(json.dumps({"rows": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
