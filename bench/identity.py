"""Benchmark identity resolution: full rebuild and incremental update at several sizes.

Synthetic events (numpy, no Python loop per event): visitors with ~10 events each; 30% of them
identify part-way (identify with userId + email, later events carry both ids); 10% of identified
people use a second device that identifies too; 1% of events use the junk anonymousId "anonymous";
a few shared devices are used by two known people (so merge limits are exercised).

    uv run python bench/identity.py --sizes 1000000 3000000 10000000 --json bench-identity.json

Prints a table (rebuild seconds, incremental seconds for 10,000 new events, peak RSS) and writes JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pyarrow as pa

from touchpoint import identity
from touchpoint.collect.normalize import EVENTS_ARROW
from touchpoint.warehouse import Warehouse

BASE = np.datetime64("2026-01-01T00:00:00", "us")


def _strings(prefix: str, ids: np.ndarray) -> pa.Array:
    return pa.compute.binary_join_element_wise(pa.scalar(prefix), pa.array(ids).cast(pa.string()), "")


def _uuid_like(ids: np.ndarray) -> pa.Array:
    h = (ids.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15)) >> np.uint64(16)
    hexed = pa.array(np.char.mod("%012x", h.astype(np.int64) & 0xFFFFFFFFFFFF))
    return pa.compute.binary_join_element_wise(pa.scalar("5f1e2a9c-7b3d-4c8e-9a1f-"), hexed, "")


def make_events(
    n_events: int, seed: int = 7, offset: int = 0, start_s: int = 0, visitor_base: int | None = None
) -> pa.Table:
    """``n_events`` synthetic events as an Arrow table in the ``events`` schema.

    Message ids start at ``offset``; visitor ids at ``visitor_base`` (default ``offset // 10``, i.e. new
    visitors), so a later batch can revisit earlier visitors.
    """
    rng = np.random.default_rng(seed)
    n_visitors = max(1, n_events // 10)
    base = offset // 10 if visitor_base is None else visitor_base
    visitor = rng.integers(0, n_visitors, n_events) + base
    t = np.sort(rng.integers(0, 90 * 86400, n_events)) + start_s
    # a visitor identifies at a visitor-specific time if they are in the 30% who do
    identifies = (visitor * 2654435761 % 100) < 30
    switch = visitor * 40503 % (90 * 86400)
    known = identifies & (t >= switch)
    person = visitor // 1  # one person per visitor ...
    second_device = (visitor % 10 == 1) & identifies  # ... except 10% of identified share a person id
    person = np.where(second_device, visitor - 1, person)
    user_id = np.where(known, person, -1)
    is_identify = known & (rng.random(n_events) < 0.1)
    junk = rng.random(n_events) < 0.01
    shared_device = (visitor % 5000 == 3) & known  # some devices used by two people
    user_id = np.where(shared_device & (rng.random(n_events) < 0.5), person + 7, user_id)

    # anonymous ids look like analytics.js's (UUID v4 text, 36 characters)
    anon = _uuid_like(visitor)
    anon = pa.compute.if_else(pa.array(junk), pa.scalar("anonymous"), anon)
    none = pa.scalar(None, pa.string())
    uid = pa.compute.if_else(pa.array(user_id >= 0), _strings("user-", np.maximum(user_id, 0)), none)
    email = pa.compute.if_else(pa.array(is_identify), _strings("", np.maximum(user_id, 0)), none)
    at = pa.compute.binary_join_element_wise(email, pa.scalar("@example.org"), "")
    email = pa.compute.if_else(pa.compute.is_null(email), email, at)
    etype = pa.compute.if_else(pa.array(is_identify), pa.scalar("identify"), pa.scalar("track"))
    ts = pa.array(BASE + t.astype("timedelta64[s]"))
    mid = _strings("m-", np.arange(offset, offset + n_events))
    n = n_events
    cols = {name: pa.nulls(n, EVENTS_ARROW.field(name).type) for name in EVENTS_ARROW.names}
    cols.update(
        message_id=mid,
        type=etype,
        event=pa.compute.if_else(pa.array(is_identify), none, pa.scalar("Viewed")),
        user_id=uid,
        anonymous_id=anon,
        timestamp=ts,
        received_at=ts,
        email=email,
        source=pa.array(["bench"] * n),
    )
    arrays = [cols[name].cast(EVENTS_ARROW.field(name).type) for name in EVENTS_ARROW.names]
    return pa.table(arrays, schema=EVENTS_ARROW)


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class PeakRSS:
    """Peak resident memory of this process while the block runs (sampled every 50 ms)."""

    def __enter__(self) -> PeakRSS:
        self.peak = 0
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            with open("/proc/self/statm") as f:
                rss = int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
            self.peak = max(self.peak, rss)
            time.sleep(0.05)

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._t.join()


def run(size: int, workdir: Path, memory_limit: str | None) -> dict[str, float]:
    path = workdir / f"bench-{size}.duckdb"
    if path.exists():
        path.unlink()
    config = {"memory_limit": memory_limit} if memory_limit else None
    wh = Warehouse.open(f"duckdb://{path}", config=config)
    try:
        chunk = 2_000_000
        for start in range(0, size, chunk):
            part = make_events(min(chunk, size - start), seed=start, offset=start)
            wh.ibis.insert("events", part)
        with PeakRSS() as mem:
            t0, c0 = time.perf_counter(), _cpu()
            full = identity.rebuild(wh)
            rebuild_s, rebuild_cpu = time.perf_counter() - t0, _cpu() - c0
        # 10,000 new events: half from known visitors (touching existing profiles), half new visitors
        new = make_events(10_000, seed=size + 1, offset=size, start_s=90 * 86400, visitor_base=size // 10 - 500)
        wh.ibis.insert("events", new)
        t0, c0 = time.perf_counter(), _cpu()
        inc = identity.update(wh)
        update_s, update_cpu = time.perf_counter() - t0, _cpu() - c0
        return {
            "events": size,
            "rebuild_s": round(rebuild_s, 2),
            "update_10k_s": round(update_s, 2),
            # CPU seconds of this process (all threads): what the work costs whatever else runs
            "rebuild_cpu_s": round(rebuild_cpu, 1),
            "update_10k_cpu_s": round(update_cpu, 2),
            "peak_rss_mb": round(mem.peak / 2**20),
            "identifiers": full.identifiers,
            "profiles": full.profiles,
            "refused_links": full.refused_links,
            "conflicted_components": full.conflicted_components,
            "update_components": inc.components_recomputed,
            "update_identifiers": inc.identifiers,
            # other processes share the 2 cores: the 1-minute load average says how much
            "load_avg": round(os.getloadavg()[0], 1),
        }
    finally:
        wh.close()
        path.unlink(missing_ok=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 3_000_000, 10_000_000])
    parser.add_argument("--json", type=Path, default=None, help="write the results here")
    parser.add_argument("--memory-limit", default=None, help="DuckDB memory_limit, e.g. 8GB")
    parser.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()))
    args = parser.parse_args(argv)
    results = []
    header = ("events", "rebuild s", "cpu s", "update 10k s", "cpu s", "peak RSS MB", "profiles", "load avg")
    print("{:>12} {:>10} {:>8} {:>13} {:>8} {:>12} {:>10} {:>9}".format(*header))
    for size in args.sizes:
        r = run(size, args.workdir, args.memory_limit)
        results.append(r)
        print(
            f"{r['events']:>12,} {r['rebuild_s']:>10} {r['rebuild_cpu_s']:>8} {r['update_10k_s']:>13} "
            f"{r['update_10k_cpu_s']:>8} {r['peak_rss_mb']:>12,} {r['profiles']:>10,} {r['load_avg']:>9}",
            flush=True,
        )
    out = {
        "benchmark": "identity",
        "cores": os.cpu_count(),
        "results": results,
        "maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024,
    }
    if args.json:
        args.json.write_text(json.dumps(out, indent=2))
    json.dump(out, sys.stdout)
    print()


if __name__ == "__main__":
    main()
