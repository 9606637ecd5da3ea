"""Benchmark privacy requests: export and erase one person with 10,000 events in warehouses of N events.

For each size, a DuckDB warehouse holds N synthetic events (20 per person) plus one person with
``--person-events`` events (identify with an email, tracks with a distinctive property); then it times
``touchpoint.privacy.export.export`` + JSON rendering of that person, and ``touchpoint.privacy.erase.erase``
of them, split into the row deletes and the compaction (the database rewritten into a fresh file),
with the file size. Identities are not resolved (the person is found through the event log), which
is the slower path for the export.

    uv run python bench/privacy.py --sizes 100000 1000000 10000000 --json bench/results/privacy.json
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from touchpoint.privacy import erase as privacy_erase
from touchpoint.privacy import export as privacy_export
from touchpoint.warehouse import Warehouse

TARGET = "bench-target-user-7d41"
EMAIL = "bench.target@example.test"


def load(wh: Warehouse, n: int, person_events: int) -> None:
    con = wh.connection()  # DuckDB-only: synthetic rows made in SQL, fast at any size
    try:
        con.execute(
            """
            INSERT INTO events (message_id, type, event, user_id, anonymous_id, timestamp, received_at,
                                source, properties)
            SELECT 'm' || i, 'track', 'Product Viewed', 'u' || (i // 20), 'a' || (i // 20),
                   TIMESTAMP '2026-01-01' + to_seconds(i % 5000000), TIMESTAMP '2026-06-01', 'bench',
                   json_object('sku', 'sku-' || (i % 500))
            FROM range(?) t(i)
            """,
            [n],
        )
        con.execute(
            """
            INSERT INTO events (message_id, type, event, user_id, email, timestamp, received_at, source,
                                properties, traits)
            SELECT 't' || i, CASE WHEN i = 0 THEN 'identify' ELSE 'track' END, 'Order Completed', ?, ?,
                   TIMESTAMP '2026-01-01' + to_seconds(i * 60), TIMESTAMP '2026-06-01', 'bench',
                   json_object('coupon', 'SECRET-' || i), json_object('email', ?)
            FROM range(?) t(i)
            """,
            [TARGET, EMAIL, EMAIL, person_events],
        )
        con.execute("CHECKPOINT")
    finally:
        con.close()


def run(n: int, person_events: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "warehouse.duckdb"
        wh = Warehouse.open(f"duckdb://{path}")
        try:
            start = time.perf_counter()
            load(wh, n, person_events)
            loaded = time.perf_counter() - start
            size = os.path.getsize(path)
            start = time.perf_counter()
            doc = privacy_export.export(wh, TARGET)
            body = privacy_export.to_json(doc)
            export_s = time.perf_counter() - start
            start = time.perf_counter()
            out = privacy_erase.erase(wh, EMAIL, actor="bench", data_dir=Path(tmp))
            erase_s = time.perf_counter() - start
            left = wh.count("events")
        finally:
            wh.close()
    return {
        "events": n,
        "person_events": person_events,
        "load_s": round(loaded, 2),
        "db_mb": round(size / 1e6, 1),
        "export_s": round(export_s, 3),
        "export_mb": round(len(body) / 1e6, 2),
        "erase_s": round(erase_s, 3),
        "compact_s": out["compaction"]["seconds"],
        "deleted": out["deleted"].get("events", 0),
        "events_left": left,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000, 10_000_000])
    parser.add_argument("--person-events", type=int, default=10_000)
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = parser.parse_args()
    results = []
    print(f"{'events':>12} {'db MB':>8} {'export s':>9} {'export MB':>10} {'erase s':>8} {'compact s':>10}")
    for n in args.sizes:
        r = run(n, args.person_events)
        results.append(r)
        print(
            f"{r['events']:>12,} {r['db_mb']:>8} {r['export_s']:>9} {r['export_mb']:>10} "
            f"{r['erase_s']:>8} {r['compact_s']:>10}",
            flush=True,
        )
        assert r["deleted"] == args.person_events and r["events_left"] == n, r
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
