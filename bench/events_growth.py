"""What storing an event costs as the events table grows: the collector's commits into a warehouse file.

The loader of the collector log commits groups of events (about 20,000 under load) with ``store.write_table``,
into ``events``, whose primary key is ``message_id``. Clients send random message ids (analytics.js and the
Segment libraries send UUID v4), so every group touches the whole key index. This bench commits groups of
``--group`` events with fresh random UUIDs into one warehouse file until it holds ``--events``, and reports the
CPU of the commits (all threads, DuckDB's included) per event in slices, so the growth shows; then the final
checkpoint, the file's size and a reopen (the write-ahead log replayed).

Peers in the same run, each in its own process: this environment with ``duckdb_checkpoint_mb`` at touchpoint's
default and at 16 MB (DuckDB's own default), and, with ``--peer-python``, another environment (e.g. one with an
older DuckDB) at 16 MB:

    uv run python bench/events_growth.py --events 3000000
    uv run python bench/events_growth.py --peer-python /path/to/other/venv/bin/python

Prints a table and writes bench/results/events_growth.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
SLICES = 8


def _body(n: int) -> bytes:
    """A batch of the ingest bench's track event (bench/ingest.py's shape), ``n`` items."""
    item = (
        '{"type":"track","messageId":"m%d","userId":"u%d","event":"Product Viewed",'
        '"timestamp":"2026-11-01T10:00:00.123Z","properties":{"product_id":"p%d","price":12.5,"currency":"EUR"},'
        '"context":{"ip":"10.0.0.1","page":{"url":"https://shop.example/p?utm_source=news&utm_medium=email",'
        '"referrer":"https://www.google.com/"},"library":{"name":"bench","version":"1"}}}'
    )
    return ('{"batch":[' + ",".join(item % (i, i % 5000, i % 300) for i in range(n)) + "]}").encode()


def measure(events: int, group: int, checkpoint_mb: int) -> dict[str, Any]:
    """In this process: commit ``events`` in groups of ``group`` into a fresh warehouse file."""
    import duckdb
    import pyarrow as pa

    from touchpoint.collect.body import Limits, rows_from_body
    from touchpoint.collect.normalize import EventRows
    from touchpoint.collect.store import write_table
    from touchpoint.warehouse import Warehouse

    body = _body(group)
    limits = Limits(max_batch_bytes=len(body), max_batch_events=group)
    rows, problems = rows_from_body(body, "batch", received_at=datetime.now(UTC), source="bench", limits=limits)
    assert not problems, problems
    template = rows.to_arrow()
    at = template.schema.get_field_index("message_id")
    folder = Path(tempfile.mkdtemp(prefix="tp-growth-"))
    path = folder / "warehouse.duckdb"
    config = {"checkpoint_threshold": f"{checkpoint_mb}MB"}
    wh = Warehouse.open(f"duckdb://{path}", config=config)
    slices: list[dict[str, Any]] = []
    per_slice = max(1, events // group // SLICES)
    cpu_slice = wall_slice = 0.0
    stored = 0
    for k in range(events // group):
        ids = pa.array([str(uuid.uuid4()) for _ in range(group)])  # made outside the measured commit
        table = template.set_column(at, "message_id", ids)
        c0, w0 = time.process_time(), time.perf_counter()
        result = write_table(wh, table, EventRows())
        cpu_slice += time.process_time() - c0
        wall_slice += time.perf_counter() - w0
        stored += result.stored
        if (k + 1) % per_slice == 0:
            n = per_slice * group
            slices.append(
                {"rows": stored, "cpu_us_per_event": cpu_slice / n * 1e6, "wall_us_per_event": wall_slice / n * 1e6}
            )
            cpu_slice = wall_slice = 0.0
    assert stored == events // group * group, stored
    # a crash now: copy the file with the log not yet folded in (only a checkpoint writes the file; a commit
    # appends to the log), to time a reopen that replays it
    wal = path.with_name(path.name + ".wal")
    copy = folder / "copy.duckdb"
    shutil.copy(path, copy)
    wal_mb = 0.0
    if wal.exists():
        shutil.copy(wal, copy.with_name(copy.name + ".wal"))
        wal_mb = wal.stat().st_size / 1e6
    c0, w0 = time.process_time(), time.perf_counter()
    wh.checkpoint()
    final_cpu, final_wall = time.process_time() - c0, time.perf_counter() - w0
    peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    wh.close()
    size_mb = path.stat().st_size / 1e6
    w0 = time.perf_counter()
    con = duckdb.connect(str(copy))
    reopened = con.execute("SELECT count(*) FROM events").fetchone()
    reopen_s = time.perf_counter() - w0
    con.close()
    shutil.rmtree(folder, ignore_errors=True)
    total_cpu = sum(s["cpu_us_per_event"] for s in slices) * per_slice * group / 1e6 + final_cpu
    return {
        "duckdb": duckdb.__version__,
        "checkpoint_mb": checkpoint_mb,
        "events": stored,
        "group": group,
        "slices": slices,
        "final_checkpoint_cpu_s": final_cpu,
        "final_checkpoint_wall_s": final_wall,
        "cpu_us_per_event_total": total_cpu / stored * 1e6,
        "file_mb": size_mb,
        "peak_rss_mb": peak_rss_mb,
        "reopen": {"rows": reopened[0] if reopened else None, "wal_mb": wal_mb, "seconds": reopen_s},
    }


def run(python: str, events: int, group: int, checkpoint_mb: int) -> dict[str, Any]:
    """:func:`measure` in a fresh process of ``python`` (each peer starts from the same state)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TOUCHPOINT_")}
    done = subprocess.run(
        [python, __file__, "--child", str(events), str(group), str(checkpoint_mb)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"{python} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=3_000_000, help="events stored in each run")
    parser.add_argument("--group", type=int, default=20_000, help="events per commit (the loader's group)")
    parser.add_argument("--peer-python", action="append", default=[], help="another environment's python, at 16 MB")
    parser.add_argument("--child", nargs=3, type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(*args.child)))
        return
    from touchpoint.config import Settings

    default_mb = Settings.model_fields["duckdb_checkpoint_mb"].default
    runs = [(sys.executable, default_mb), (sys.executable, 16)] + [(p, 16) for p in args.peer_python]
    results = []
    for python, mb in runs:
        print(f"{python} at {mb} MB ...", file=sys.stderr, flush=True)
        results.append({"python": python, **run(python, args.events, args.group, mb)})
    print(f"\nevents table growth, {args.group:,}-event commits of random UUIDs (CPU µs an event, all threads)")
    header = f"{'duckdb':8} {'ckpt MB':>7} " + " ".join(f"{s['rows'] / 1e6:>6.2f}M" for s in results[0]["slices"])
    print(header + f" {'final s':>7} {'total':>6} {'file MB':>7} {'RSS MB':>6} {'WAL MB':>6} {'reopen s':>8}")
    for r in results:
        cells = " ".join(f"{s['cpu_us_per_event']:>7.1f}" for s in r["slices"])
        print(
            f"{r['duckdb']:8} {r['checkpoint_mb']:>7} {cells} {r['final_checkpoint_cpu_s']:>7.2f} "
            f"{r['cpu_us_per_event_total']:>6.1f} {r['file_mb']:>7.0f} {r['peak_rss_mb']:>6.0f} "
            f"{r['reopen']['wal_mb']:>6.0f} {r['reopen']['seconds']:>8.2f}"
        )
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / "events_growth.json"
    meta = {"machine": platform.machine(), "cpus": os.cpu_count(), "at": time.strftime("%Y-%m-%dT%H:%M:%SZ")}
    out.write_text(json.dumps({"meta": meta, "results": results}, indent=2))
    print(f"\nwritten to {out}")


if __name__ == "__main__":
    main()
