"""The collector's two designs compared in one process, by CPU per event: acknowledge after the DuckDB group commit
(today), or after an fsync'd append of the validated rows to a log that a loader commits in large groups.

    uv run python bench/ingest_split.py                      # 100,000 events, groups of 800 (8 x 100 in flight)
    uv run python bench/ingest_split.py --events 200000 --group 3200 --load-every 20000 --threads 1

No HTTP: the same request bodies (the bench's track event, 100 a batch) go through ``rows_from_body``; then
either ``store.write_rows`` per group (what the committer does), or the group's Arrow table is appended to a file
in Arrow IPC and ``fdatasync``'d (what an acknowledgement would wait for), and a loader reads the file back and
commits every ``--load-every`` events with ``store.write_table``. CPU is ``time.process_time`` (all threads);
wall and the load average are printed beside it. Writes bench/results/ingest-split.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import msgspec
import pyarrow as pa

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ingest import RESULTS, event, new_warehouse


def bodies(n: int) -> list[bytes]:
    encode = msgspec.json.Encoder().encode
    return [encode({"batch": [event(i) for i in range(start, min(n, start + 100))]}) for start in range(0, n, 100)]


def validate(raw: list[bytes], group: int) -> tuple[list[Any], float]:
    """The validated rows, one EventRows per group of ``group`` events; and the CPU seconds it took."""
    from touchpoint.collect.body import Limits, rows_from_body
    from touchpoint.collect.normalize import EventRows, utcnow

    limits, now = Limits(), utcnow()
    groups, current = [], EventRows()
    started = time.process_time()
    for body in raw:
        rows, _ = rows_from_body(body, "batch", received_at=now, source="bench", limits=limits)
        current.extend(rows)
        if len(current) >= group:
            groups.append(current)
            current = EventRows()
    if len(current):
        groups.append(current)
    return groups, time.process_time() - started


def commit_each(url: str, groups: list[Any]) -> dict[str, float]:
    """Today: one durable DuckDB commit per group."""
    from touchpoint.collect.store import write_rows
    from touchpoint.warehouse import Warehouse

    wh = Warehouse.open(url)
    cpu, wall = time.process_time(), time.perf_counter()
    stored = sum(write_rows(wh, rows).stored for rows in groups)
    result = {"commit_cpu": time.process_time() - cpu, "commit_wall": time.perf_counter() - wall, "stored": stored}
    wh.close()
    return result


def append_then_load(url: str, groups: list[Any], folder: Path, load_every: int) -> dict[str, float]:
    """The split: each group appended to an Arrow IPC log and fdatasync'd; then loaded in large commits."""
    from touchpoint.collect.normalize import EventRows
    from touchpoint.collect.store import write_table
    from touchpoint.warehouse import Warehouse

    log = folder / "events.arrows"
    cpu, wall = time.process_time(), time.perf_counter()
    latencies = []
    with open(log, "ab") as handle:
        for rows in groups:
            began = time.perf_counter()
            table = rows.to_arrow()
            with pa.ipc.new_stream(handle, table.schema) as writer:
                writer.write_table(table)
            handle.flush()
            os.fdatasync(handle.fileno())
            latencies.append(time.perf_counter() - began)
    append_cpu, append_wall = time.process_time() - cpu, time.perf_counter() - wall

    wh = Warehouse.open(url)
    cpu, wall = time.process_time(), time.perf_counter()
    stored, pending, size = 0, [], 0
    with open(log, "rb") as handle:
        while True:
            try:
                table = pa.ipc.open_stream(handle).read_all()
            except pa.ArrowInvalid:  # the end of the log
                break
            pending.append(table)
            size += table.num_rows
            if size >= load_every:
                stored += write_table(wh, pa.concat_tables(pending), EventRows()).stored
                pending, size = [], 0
    if pending:
        stored += write_table(wh, pa.concat_tables(pending), EventRows()).stored
    result = {
        "append_cpu": append_cpu,
        "append_wall": append_wall,
        "append_p50_ms": sorted(latencies)[len(latencies) // 2] * 1000,
        "append_p99_ms": sorted(latencies)[int(len(latencies) * 0.99)] * 1000,
        "load_cpu": time.process_time() - cpu,
        "load_wall": time.perf_counter() - wall,
        "stored": stored,
    }
    wh.close()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--group", type=int, default=800, help="events a group commit (or a log append) holds")
    parser.add_argument("--load-every", type=int, default=20_000, help="events a loader commit holds")
    parser.add_argument("--threads", type=int, default=None, help="duckdb_threads (default: all cores)")
    args = parser.parse_args()
    if args.threads:
        os.environ["TOUCHPOINT_DUCKDB_THREADS"] = str(args.threads)
    work = Path(tempfile.mkdtemp(prefix="tp-bench-split-"))
    load_before = os.getloadavg()[0]
    try:
        raw = bodies(args.events)
        groups, validate_cpu = validate(raw, args.group)
        url, _ = new_warehouse(work / "a")
        today = commit_each(url, groups)
        url, _ = new_warehouse(work / "b")
        split = append_then_load(url, groups, work, args.load_every)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    n = args.events
    per = {k: v / n * 1e6 for k, v in {**today, **split}.items() if k.endswith("_cpu")}
    results = {
        "events": n,
        "group": args.group,
        "load_every": args.load_every,
        "duckdb_threads": args.threads,
        "validate_cpu_us_per_event": validate_cpu / n * 1e6,
        **{f"{k}_us_per_event": v for k, v in per.items()},
        **{k: v for k, v in {**today, **split}.items() if not k.endswith("_cpu")},
        "load_before": load_before,
        "load_after": os.getloadavg()[0],
    }
    print(f"events {n:,}, groups of {args.group:,}, loader commits of {args.load_every:,}, threads {args.threads}")
    print(f"  validation                      {results['validate_cpu_us_per_event']:6.1f} µs CPU/event")
    print(
        f"  today: commit per group         {per['commit_cpu']:6.1f} µs CPU/event "
        f"(wall {today['commit_wall']:.1f} s, stored {today['stored']:,})"
    )
    print(
        f"  split: append + fdatasync       {per['append_cpu']:6.1f} µs CPU/event "
        f"(p50 {split['append_p50_ms']:.1f} ms, p99 {split['append_p99_ms']:.1f} ms a group)"
    )
    print(
        f"  split: loader                   {per['load_cpu']:6.1f} µs CPU/event "
        f"(wall {split['load_wall']:.1f} s, stored {split['stored']:,})"
    )
    print(f"  load average {load_before:.1f} -> {results['load_after']:.1f}")
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "ingest-split.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
