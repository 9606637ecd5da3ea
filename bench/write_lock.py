"""How long the collector's commits wait while a profile rebuild writes: two write lanes, one lane, no staging.

Event commits take the warehouse's events write lane, every other write the main lane (docs/decisions.md,
"Two write lanes"); a rebuild computes its rows before taking its lock (``Warehouse.staged``) and holds
it only to swap them in. This runs the group committer with small batches while identities and profiles
are rebuilt in a loop, four ways: no rebuild (the floor), two lanes (as shipped), one lane (events wait
for the swap, as before the lanes) and one lane with the rebuild computing inside the lock (staging
switched off), at three warehouse sizes. Prints commit-latency percentiles and the rebuild
time; writes bench/results/write_lock.json.

    uv run python bench/write_lock.py            # 2k, 8k, 32k visitors (a few minutes)
    uv run python bench/write_lock.py --quick    # 2k visitors only
"""

from __future__ import annotations

import argparse
import contextlib
import json
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"


def visits(prefix: str, n: int) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for i in range(n):
        out.append({"type": "page", "anonymousId": f"{prefix}-a{i}", "messageId": f"{prefix}-p{i}"})
        out.append({"type": "identify", "anonymousId": f"{prefix}-a{i}", "userId": f"{prefix}-u{i}"})
        if i % 3 == 0:
            out.append(
                {
                    "type": "track",
                    "event": "Order Completed",
                    "userId": f"{prefix}-u{i}",
                    "properties": {"order_id": f"{prefix}-o{i}", "revenue": 10.0},
                }
            )
    return out


@contextlib.contextmanager
def no_staging(wh: Any) -> Iterator[None]:
    """Make ``staged`` pass expressions through, so rebuilds compute while holding the lock."""

    @contextlib.contextmanager
    def passthrough(rows: Any) -> Iterator[Any]:
        yield rows

    original = wh.staged
    wh.staged = passthrough
    try:
        yield
    finally:
        wh.staged = original


def run(n_visitors: int, mode: str, seconds: float) -> dict[str, Any]:
    from touchpoint import identity, profiles
    from touchpoint.collect.committer import GroupCommitter
    from touchpoint.collect.normalize import EventRows, utcnow
    from touchpoint.collect.store import write_messages
    from touchpoint.warehouse import Warehouse

    with tempfile.TemporaryDirectory(prefix="tp-bench-lock-") as tmp:
        wh = Warehouse.open(f"duckdb://{Path(tmp) / 'wh.duckdb'}")
        write_messages(wh, visits("seed", n_visitors))
        identity.rebuild(wh)
        profiles.build(wh)
        stop = threading.Event()
        rebuilds: list[float] = []

        def rebuilder() -> None:
            while not stop.is_set():
                t = time.perf_counter()
                identity.rebuild(wh)
                profiles.build(wh)
                rebuilds.append(time.perf_counter() - t)

        latencies: list[float] = []
        wh.separate_event_lane = mode in ("no_rebuild", "lanes")
        staging = no_staging(wh) if mode == "inside_lock" else contextlib.nullcontext()
        with staging, GroupCommitter(wh, max_wait_ms=1.0) as committer:
            thread = threading.Thread(target=rebuilder) if mode != "no_rebuild" else None
            if thread:
                thread.start()
            end, k = time.monotonic() + seconds, 0
            while time.monotonic() < end:
                rows = EventRows()
                for j in range(10):
                    body = f'{{"type":"track","event":"Tick","anonymousId":"t{k}-{j}","messageId":"t{k}-{j}"}}'
                    rows.add_raw(body.encode(), received_at=utcnow(), source="bench")
                t = time.perf_counter()
                committer.submit(rows).result()
                latencies.append(time.perf_counter() - t)
                k += 1
                time.sleep(0.005)
            stop.set()
            if thread:
                thread.join()
        wh.close()
    ms = np.array(latencies) * 1000
    return {
        "visitors": n_visitors,
        "mode": mode,
        "commits": len(latencies),
        "p50_ms": round(float(np.percentile(ms, 50)), 1),
        "p99_ms": round(float(np.percentile(ms, 99)), 1),
        "max_ms": round(float(ms.max()), 1),
        "rebuild_s": round(float(np.median(rebuilds)), 2) if rebuilds else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--seconds", type=float, default=15.0)
    args = parser.parse_args()
    sizes = [2_000] if args.quick else [2_000, 8_000, 32_000]
    rows = [run(n, mode, args.seconds) for n in sizes for mode in ("no_rebuild", "lanes", "one_lane", "inside_lock")]
    print(f"{'visitors':>9} {'mode':>12} {'commits':>8} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} {'rebuild s':>10}")
    for r in rows:
        print(
            f"{r['visitors']:>9,} {r['mode']:>12} {r['commits']:>8} {r['p50_ms']:>8} {r['p99_ms']:>8} "
            f"{r['max_ms']:>8} {r['rebuild_s'] if r['rebuild_s'] is not None else '-':>10}"
        )
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "write_lock.json").write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
