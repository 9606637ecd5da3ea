"""Benchmark audiences: a five-condition definition on N profiles with 20 events each.

Full evaluation (compile, run in DuckDB, record memberships), then an incremental refresh after 10,000
new events, and, in the same run, a plain pandas evaluation of the same definition (what a data
scientist would write: load the tables into data frames, filter and group). Synthetic data is made in
DuckDB SQL straight into the declared tables, identities resolved as after `touchpoint profiles
rebuild` (each event mapped to its profile by ``event_identities``; the 10,000 new events are not
resolved yet and belong to the profile of their user id).

    uv run python bench/audiences.py --sizes 100000 1000000 --json bench/results/audiences.json
    uv run python bench/audiences.py --sizes 3000000 --pandas-up-to 0 --json bench/results/audiences-3m.json

The pandas peer needs about 8 GB at 1M profiles; ``--pandas-up-to`` leaves it out above a size (then the
members are not compared with it).

The definition: two traits (country = SE, a stored trait; orders >= 1, a computed trait), one
prediction (P(alive) < 0.5) and two behavioural windows (2+ lens views in 14 days; no order in 30 days).

Lead scores, in the same run (``--no-scores`` leaves them out): the score ``LEAD`` (two fit rules, two
engagement rules with a half-life, a cap, bands and stages) is run in full at NOW, then after the same
10,000 new events incrementally at NOW + 2 min (the profiles those events touch) and, beside it, in full
at that instant; the incremental run's points are checked equal to the full run's for every profile it
rescored. Then a second round: 10,000 more events, a profiles run (their profiles' ``built_at`` moves), the
audience's incremental refresh (it stays incremental; members checked equal to a full evaluation), the
score's second incremental run (its SQL compiled by the first) and a full run beside it, and a full run a
day later (every engaged profile's points decayed).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import resource
import shutil
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb

from touchpoint.audiences import parse, scores, store
from touchpoint.audiences.compile import compile_members
from touchpoint.audiences.refresh import refresh_one
from touchpoint.warehouse import Warehouse, schema

NOW = datetime(2026, 3, 1)
DEFINITION = {
    "all": [
        {"trait": "country", "eq": "SE"},
        {"trait": "orders", "gte": 1},
        {"prediction": "p_alive", "lt": 0.5},
        {"event": "Product Viewed", "where": {"category": "lenses"}, "count": {"gte": 2}, "within_days": 14},
        {"not": {"event": "Order Completed", "within_days": 30}},
    ]
}
EVENTS_PER_PROFILE = 20
LEAD = {
    "fit": [
        {"name": "swede", "when": {"trait": "country", "eq": "SE"}, "points": 15},
        {"name": "buyer", "when": {"trait": "orders", "gte": 1}, "points": 20},
    ],
    "engagement": [
        {"name": "lens views", "event": "Product Viewed", "where": {"category": "lenses"}, "points": 5,
         "half_life_days": 14, "group": "web"},
        {"name": "orders", "event": "Order Completed", "points": 10, "half_life_days": 30, "within_days": 90},
    ],
    "caps": {"web": 30},
    "ceiling": 100,
    "bands": [{"name": "cold", "min": 0}, {"name": "warm", "min": 30}, {"name": "hot", "min": 60}],
    "stages": [{"name": "subscriber"}, {"name": "lead", "min_points": 20}, {"name": "marketing-qualified",
               "min_points": 60}],
}  # fmt: skip


def generate(path: Path, n: int) -> None:
    """N resolved profiles with traits and predictions, 20 events each over the 90 days before NOW.

    Written in bulk with DuckDB SQL straight into the declared tables, as the running system leaves
    them after ``touchpoint profiles rebuild``: each user id is one identity node of one profile
    (``identity_nodes``), each event is resolved to its node (``event_identities``, identity state
    version 3: with the event's kind, times and properties, in timestamp order as a rebuild writes it),
    profiles and predictions are keyed by the profile id (not the user id). Message ids
    are zero-padded, in key order.
    """
    wh = Warehouse.open(f"duckdb://{path}")  # migrate
    # the two big keyed tables are declared again without their key, filled, then keyed: DuckDB builds a
    # primary key's index in bulk several times faster than row by row (the end state is the same)
    big = [schema.EVENTS, schema.EVENT_IDENTITIES]
    unkeyed = [wh.create_table_sql(dataclasses.replace(spec, key=())) for spec in big]
    wh.close()
    con = duckdb.connect(str(path))
    con.execute("SET preserve_insertion_order = false")
    for spec, ddl in zip(big, unkeyed, strict=True):
        con.execute(f"DROP TABLE {spec.name}; {ddl}")
    now = NOW.isoformat(sep=" ")
    e = n * EVENTS_PER_PROFILE
    con.execute(
        f"""
        INSERT INTO profiles (profile_id, identifiers, user_id, email, events, orders, built_at)
        SELECT 'p' || i, 1, 'u' || i, 'u' || i || '@example.com', {EVENTS_PER_PROFILE}, (hash(i) % 4)::BIGINT,
               TIMESTAMP '{now}'
        FROM range({n}) t(i);
        INSERT INTO profile_traits (profile_id, trait, value, source, timestamp)
        SELECT 'p' || i, 'country', (['"SE"', '"NO"', '"DK"', '"FI"'])[1 + (hash(i * 7) % 4)::BIGINT], 'identify',
               TIMESTAMP '{now}'
        FROM range({n}) t(i);
        INSERT INTO predictions (customer_id, model, run_at, p_alive, clv)
        SELECT 'p' || i, 'bg_nbd', TIMESTAMP '{now}', (hash(i * 13) % 1000) / 1000.0, (hash(i * 17) % 1000)::DOUBLE
        FROM range({n}) t(i);
        INSERT INTO identity_nodes (node_id, id_type, id_value, rank, events, component, cluster, profile_id)
        SELECT i, 'user_id', 'u' || i, 0, {EVENTS_PER_PROFILE}, i, i, 'p' || i
        FROM range({n}) t(i);
        INSERT INTO events (message_id, type, event, user_id, timestamp, received_at, properties)
        SELECT 'm' || lpad(j::VARCHAR, 10, '0'), 'track',
               (['Product Viewed', 'Product Viewed', 'Product Viewed', 'Added to Cart', 'Order Completed'])
                   [1 + (hash(j * 3) % 5)::BIGINT],
               'u' || (j // {EVENTS_PER_PROFILE}),
               epoch_ms(epoch_ms(TIMESTAMP '{now}') - (hash(j * 5) % (90 * 86400))::BIGINT * 1000),
               TIMESTAMP '{now}' - INTERVAL 1 HOUR,
               (['{{"category": "lenses"}}'::JSON, '{{"category": "frames"}}'::JSON, '{{"category": "care"}}'::JSON])
                   [1 + (hash(j * 11) % 3)::BIGINT]
        FROM range({e}) t(j);
        SET preserve_insertion_order = true;
        INSERT INTO event_identities (message_id, node_id, type, event, timestamp, received_at, properties)
        SELECT message_id, substr(message_id, 2)::BIGINT // {EVENTS_PER_PROFILE}, type, event, timestamp, received_at,
               properties
        FROM events ORDER BY timestamp;
        ALTER TABLE events ADD PRIMARY KEY (message_id);
        ALTER TABLE event_identities ADD PRIMARY KEY (message_id);
        INSERT INTO identity_state VALUES ('version', '3'), ('watermark', '"{(NOW - timedelta(hours=1)).isoformat()}"');
        CHECKPOINT;
        """
    )
    con.close()


def add_events(wh: Warehouse, n_profiles: int, k: int, start: int, minutes: int = 0) -> None:
    """``k`` new events of random profiles, stamped ``minutes`` after NOW + 30 s, received a minute later."""
    now = (NOW + timedelta(minutes=minutes)).isoformat(sep=" ")
    with wh.write() as tx:
        expr = wh.ibis.sql(
            f"""
            SELECT 'n' || (j + {start}) AS message_id, 'track' AS type,
                   (['Product Viewed', 'Order Completed'])[1 + (hash(j) % 2)::BIGINT] AS event,
                   'u' || (hash(j * 31) % {n_profiles})::BIGINT AS user_id,
                   TIMESTAMP '{now}' + INTERVAL 30 SECOND AS timestamp,
                   TIMESTAMP '{now}' + INTERVAL 1 MINUTE AS received_at,
                   '{{"category": "lenses"}}'::JSON AS properties
            FROM range({k}) t(j)
            """
        )
        tx.append("events", expr)


def profiles_run(wh: Warehouse, since: datetime, at: datetime) -> int:
    """What a profiles run leaves after the events received after ``since``: their profiles rebuilt
    (``built_at = at``; their traits are left as they were, which changes no membership here)."""
    with wh.write():
        cur = wh.ibis.raw_sql(
            f"""UPDATE profiles SET built_at = TIMESTAMP '{at.isoformat(sep=" ")}'
            WHERE user_id IN (SELECT user_id FROM events WHERE received_at > TIMESTAMP '{since.isoformat(sep=" ")}')"""
        )
        return int(cur.fetchone()[0])  # (the cursor is the thread's connection: not closed)


def pandas_evaluation(path: Path, now: datetime) -> tuple[set[str], float, float]:
    """The same definition, as a data scientist would write it in pandas: (members, load s, compute s)."""
    started = time.perf_counter()
    con = duckdb.connect(str(path), read_only=True)
    profiles = con.execute("SELECT profile_id, orders FROM profiles").df()
    traits = con.execute("SELECT profile_id, trait, value FROM profile_traits").df()
    predictions = con.execute("SELECT customer_id, p_alive FROM predictions").df()
    events = con.execute(
        "SELECT message_id, user_id, event, timestamp, json_extract_string(properties, '$.category') AS category"
        " FROM events"
    ).df()
    resolved = con.execute("SELECT message_id, node_id FROM event_identities").df()
    nodes = con.execute("SELECT node_id, id_type, id_value, profile_id FROM identity_nodes").df()
    con.close()
    loaded = time.perf_counter()

    country = traits[traits.trait == "country"].set_index("profile_id")["value"]
    p = profiles.set_index("profile_id")
    p["country"] = country.reindex(p.index)
    p["p_alive"] = predictions.set_index("customer_id")["p_alive"].reindex(p.index)
    ev = events[(events.timestamp <= now) & (events.timestamp >= now - timedelta(days=30))]
    # each event's profile: its resolved node's, else (stored since the last resolution) its user id's
    by_message = resolved.merge(nodes[["node_id", "profile_id"]], on="node_id").set_index("message_id")["profile_id"]
    by_user = nodes[nodes.id_type == "user_id"].set_index("id_value")["profile_id"]
    ev = ev.assign(profile_id=ev.message_id.map(by_message).fillna(ev.user_id.map(by_user)))
    views = ev[(ev.event == "Product Viewed") & (ev.category == "lenses") & (ev.timestamp >= now - timedelta(days=14))]
    view_counts = views.groupby("profile_id").size().reindex(p.index, fill_value=0)
    orders = ev[ev.event == "Order Completed"]
    ordered = p.index.isin(orders.profile_id.unique())
    keep = (p.country == '"SE"') & (p.orders >= 1) & (p.p_alive < 0.5) & (view_counts >= 2) & ~ordered
    members = set(p.index[keep.fillna(False).to_numpy()])
    return members, loaded - started, time.perf_counter() - loaded


def _members(wh: Warehouse) -> set[str]:
    t = wh.table("audience_memberships")
    return set(wh.to_arrow(t.filter(t.exited_at.isnull()).select("profile_id")).column("profile_id").to_pylist())


def _cpu() -> float:
    """This process's CPU seconds so far (every thread: DuckDB's workers too)."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


class Timer:
    """Wall and CPU seconds of a block, and the 1-minute load average at its end."""

    def __enter__(self) -> Timer:
        self.wall, self.cpu = time.perf_counter(), _cpu()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall, self.cpu = time.perf_counter() - self.wall, _cpu() - self.cpu
        self.load = os.getloadavg()[0]


def _score_rows(wh: Warehouse) -> dict[str, tuple[Any, ...]]:
    t = wh.table("score_results").select("profile_id", "points", "band", "stage", "computed_at")
    return {r["profile_id"]: (r["points"], r["band"], r["stage"], r["computed_at"]) for r in wh.to_arrow(t).to_pylist()}


def run(
    n: int, folder: Path, cache: Path | None = None, pandas: bool = True, with_scores: bool = True
) -> dict[str, Any]:
    path = folder / f"audiences-{n}.duckdb"
    with Timer() as gen:
        base = None if cache is None else cache / f"audiences-{n}-base.duckdb"
        if base is None or not base.exists():
            generate(path, n)
            if base is not None:  # keep the generated warehouse for the next run (it is only read from)
                base.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(path, base)
        else:
            shutil.copyfile(base, path)
    wh = Warehouse.open(f"duckdb://{path}")
    try:
        store.save(wh, "bench", DEFINITION)
        with Timer() as full_t:
            full = refresh_one(wh, "bench", now=NOW, full=True)
        if with_scores:
            scores.save(wh, "lead", LEAD)
            with Timer() as s_full0_t:
                s_full0 = scores.refresh(wh, "lead", now=NOW, full=True)
        add_events(wh, n, 10_000, 0)
        with Timer() as inc_t:
            inc = refresh_one(wh, "bench", now=NOW + timedelta(minutes=2))
        ours = _members(wh)
        scored: dict[str, Any] = {}
        if with_scores:
            later = NOW + timedelta(minutes=2)
            with Timer() as s_inc_t:
                s_inc = scores.refresh(wh, "lead", now=later)
            after_inc = _score_rows(wh)
            with Timer() as s_full_t:
                s_full = scores.refresh(wh, "lead", now=later, full=True)
            after_full = _score_rows(wh)
            rescored = [p for p, row in after_inc.items() if row[3] == later]
            assert s_inc["mode"] == "incremental" and len(rescored) == s_inc["profiles"], s_inc
            assert all(after_inc[p] == after_full[p] for p in rescored), "incremental and full scores disagree"
            # a second round: 10,000 more events, then a profiles run rebuilds their profiles; the audience
            # refresh stays incremental, and the score's second incremental run reuses its compiled SQL
            add_events(wh, n, 10_000, 10_000, minutes=2)
            rebuilt = profiles_run(wh, NOW + timedelta(minutes=2), NOW + timedelta(minutes=3, seconds=30))
            second = NOW + timedelta(minutes=4)
            with Timer() as inc2_t:
                inc2 = refresh_one(wh, "bench", now=second)
            expr, _ = compile_members(wh, parse(DEFINITION), now=second, lookup=store.lookup(wh))
            assert inc2["mode"] == "incremental" and _members(wh) == set(
                wh.to_arrow(expr).column("profile_id").to_pylist()
            ), inc2
            with Timer() as s_inc2_t:
                s_inc2 = scores.refresh(wh, "lead", now=second)
            after_inc2 = _score_rows(wh)
            with Timer() as s_full2_t:
                s_full2 = scores.refresh(wh, "lead", now=second, full=True)
            after_full2 = _score_rows(wh)
            assert s_inc2["mode"] == "incremental" and s_full2["mode"] == "full"
            rescored2 = [p for p, row in after_inc2.items() if row[3] == second]
            assert all(after_inc2[p] == after_full2[p] for p in rescored2), "incremental and full scores disagree"
            # a full run a day later: the points of every engaged profile have decayed (most rows change)
            with Timer() as s_day_t:
                s_day = scores.refresh(wh, "lead", now=NOW + timedelta(days=1), full=True)
            scored = {
                "scores_full_s": round(s_full_t.wall, 2),
                "scores_full_cpu_s": round(s_full_t.cpu, 2),
                "scores_full_load1": round(s_full_t.load, 1),
                "scores_first_full_s": round(s_full0_t.wall, 2),
                "scores_first_full_cpu_s": round(s_full0_t.cpu, 2),
                "scores_incremental_s": round(s_inc_t.wall, 2),
                "scores_incremental_cpu_s": round(s_inc_t.cpu, 2),
                "scores_incremental_load1": round(s_inc_t.load, 1),
                "scores_incremental_candidates": s_inc["candidates"],
                "scores_incremental_rescored": s_inc["profiles"],
                "scores_incremental_band_entries": s_inc["band_entries"],
                "scores_full_band_entries": s_full["band_entries"],
                "scores_bands": s_full0["bands"],
                "profiles_rebuilt": rebuilt,
                "audience_incremental_after_profiles_s": round(inc2_t.wall, 2),
                "audience_incremental_after_profiles_cpu_s": round(inc2_t.cpu, 2),
                "audience_incremental_after_profiles_load1": round(inc2_t.load, 1),
                "audience_incremental_after_profiles_candidates": inc2["candidates"],
                "scores_incremental2_s": round(s_inc2_t.wall, 2),
                "scores_incremental2_cpu_s": round(s_inc2_t.cpu, 2),
                "scores_incremental2_load1": round(s_inc2_t.load, 1),
                "scores_incremental2_rescored": s_inc2["profiles"],
                "scores_full2_s": round(s_full2_t.wall, 2),
                "scores_full2_cpu_s": round(s_full2_t.cpu, 2),
                "scores_full2_load1": round(s_full2_t.load, 1),
                "scores_full_next_day_s": round(s_day_t.wall, 2),
                "scores_full_next_day_cpu_s": round(s_day_t.cpu, 2),
                "scores_full_next_day_load1": round(s_day_t.load, 1),
                "scores_full_next_day_band_entries": s_day["band_entries"],
            }
    finally:
        wh.close()
    peer: dict[str, Any] = {"pandas_load_s": None, "pandas_compute_s": None, "pandas_cpu_s": None}
    peer |= {"pandas_total_over_full": None, "pandas_compute_over_full": None}
    if pandas:
        with Timer() as pandas_t:
            theirs, load_s, compute_s = pandas_evaluation(path, NOW + timedelta(minutes=2))
        assert ours == theirs, f"pandas and touchpoint disagree: {len(ours)} vs {len(theirs)}"
        peer = {
            "pandas_load_s": round(load_s, 2),
            "pandas_compute_s": round(compute_s, 2),
            "pandas_cpu_s": round(pandas_t.cpu, 2),
            "pandas_total_over_full": round((load_s + compute_s) / full_t.wall, 2),
            "pandas_compute_over_full": round(compute_s / full_t.wall, 2),
        }
    path.unlink()
    return {
        "profiles": n,
        "events": n * EVENTS_PER_PROFILE + 10_000,
        "generate_s": round(gen.wall, 2),
        "generate_cpu_s": round(gen.cpu, 2),
        "full_s": round(full_t.wall, 2),
        "full_cpu_s": round(full_t.cpu, 2),
        "full_load1": round(full_t.load, 1),
        "members": full["members"],
        "incremental_s": round(inc_t.wall, 2),
        "incremental_cpu_s": round(inc_t.cpu, 2),
        "incremental_load1": round(inc_t.load, 1),
        "incremental_candidates": inc["candidates"],
        "incremental_mode": inc["mode"],
        "members_after": inc["members"],
        **peer,
        **scored,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--dir", type=Path, default=None, help="where to put the warehouses (default: a temp dir)")
    ap.add_argument(
        "--cache",
        type=Path,
        default=None,
        help="keep each generated warehouse here and reuse it in later runs (generate_s is then the copy)",
    )
    ap.add_argument(
        "--pandas-up-to",
        type=int,
        default=1_000_000,
        help="run the pandas peer only up to this many profiles (it needs about 8 GB at 1M)",
    )
    ap.add_argument("--no-scores", action="store_true", help="leave out the lead score runs")
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        for n in args.sizes:
            row = run(n, Path(tmp), args.cache, pandas=n <= args.pandas_up_to, with_scores=not args.no_scores)
            rows.append(row)
            print(json.dumps(row), flush=True)
    load = os.getloadavg()
    head = f"{'profiles':>10} {'full s':>8} {'(cpu)':>7} {'incr s':>8} {'(cpu)':>7} {'pandas s':>9} {'ratio':>6}"
    head += f" {'members':>9}"
    print(head)
    for r in rows:
        ran = r["pandas_load_s"] is not None
        pandas_s = f"{r['pandas_load_s'] + r['pandas_compute_s']:.2f}" if ran else "not run"
        ratio = r["pandas_total_over_full"] if ran else "-"
        print(
            f"{r['profiles']:>10,} {r['full_s']:>8} {r['full_cpu_s']:>7} {r['incremental_s']:>8} "
            f"{r['incremental_cpu_s']:>7} {pandas_s:>9} {ratio:>6} {r['members']:>9,}"
        )
    if not args.no_scores:
        print(
            f"{'profiles':>10} {'scores 1st full':>15} {'(cpu)':>7} {'full again':>10} {'(cpu)':>7} {'incr s':>8}"
            f" {'(cpu)':>7} {'incr 2 s':>8} {'(cpu)':>7} {'aud incr after profiles':>23} {'(cpu)':>7}"
        )
        for r in rows:
            print(
                f"{r['profiles']:>10,} {r['scores_first_full_s']:>15} {r['scores_first_full_cpu_s']:>7} "
                f"{r['scores_full_s']:>10} {r['scores_full_cpu_s']:>7} "
                f"{r['scores_incremental_s']:>8} {r['scores_incremental_cpu_s']:>7} "
                f"{r['scores_incremental2_s']:>8} {r['scores_incremental2_cpu_s']:>7} "
                f"{r['audience_incremental_after_profiles_s']:>23} {r['audience_incremental_after_profiles_cpu_s']:>7}"
            )
    print(f"load average at the end: {load[0]:.1f} (2 cores, shared with other work: figures are upper bounds)")
    if args.json:
        out = {"rows": rows, "loadavg": load, "cpus": os.cpu_count(), "definition": DEFINITION}
        if not args.no_scores:
            out["score"] = LEAD
        args.json.write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
