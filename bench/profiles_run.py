"""CPU of one warm incremental profiles run (``profiles.workflow.update``) for small batches (issue 15).

The server's ``profiles`` job runs after new events, back to back while they flow; for a batch of a few
hundred events of known people nearly all of its CPU is per-run overhead (statements, Ibis compilations,
schema reads), not data work. This measures that run on a seeded warehouse for three kinds of batch:

* ``track``: ``Signed Up`` tracks of known users (the statistics and extension paths);
* ``new``: identifies of unknown user ids with emails (new identifiers: the in-memory path, new profiles);
* ``anon``: page views of known anonymous ids (linked to their user ids by an identify during the seed).

Each kind is warmed (compiled queries cached) and then measured ``--rounds`` times, interleaved; the
figure is the median CPU time of the process (``time.process_time``) per run, with the DuckDB statements a
run sends (counted with cProfile: ``execute`` and ``sql`` calls of DuckDB connections). Prints a table and
writes JSON (``--json``); ``--dump`` writes the derived tables' rows after the runs (minus the columns that
hold wall-clock instants), to compare two versions of the code for identical results.

    PYTHONPATH=src python bench/profiles_run.py --contacts 520 --batch 190 --rounds 5
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import statistics
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

from automations import email_of

KINDS = ("track", "new", "anon")
BASE = datetime(2026, 11, 1)
#: what sends DuckDB a statement, as cProfile names it (Ibis's ``raw_sql`` calls the connection's ``execute``
#: with keyword arguments, a call cProfile does not see, so it is counted itself)
_STATEMENTS = (
    "<built-in method _duckdb.execute>",
    "<built-in method _duckdb.sql>",
    "<built-in method _duckdb.query>",
    "<built-in method _duckdb.executemany>",
)
#: the columns that hold when a row was written (differ between any two runs)
_CLOCK_COLUMNS = {"built_at", "as_of", "logged_at", "updated_at", "received_at", "days_since_last_order"}


def _at(k: int, i: int) -> str:
    """A fixed instant per batch and event (the runs of two versions of the code compare row for row)."""
    return (BASE + timedelta(hours=k, seconds=i)).isoformat() + "Z"


def batch(kind: str, k: int, n: int, contacts: int) -> list[dict[str, Any]]:
    if kind == "track":
        return [
            {
                "type": "track",
                "userId": f"c{(k * n + i) % contacts}",
                "event": "Signed Up",
                "messageId": f"t{k}-{i}",
                "timestamp": _at(k, i),
            }
            for i in range(n)
        ]
    if kind == "new":
        return [
            {
                "type": "identify",
                "userId": f"n{k}-{i}",
                "traits": {"email": f"n{k}-{i}@example.org", "first_name": f"M{i}"},
                "messageId": f"n{k}-{i}",
                "timestamp": _at(k, i),
            }
            for i in range(n)
        ]
    return [
        {
            "type": "page",
            "anonymousId": f"a{(k * n + i) % contacts}",
            "name": "Home",
            "messageId": f"a{k}-{i}",
            "timestamp": _at(k, i),
        }
        for i in range(n)
    ]


def seed(folder: Path, contacts: int) -> Any:
    """A warehouse of ``contacts`` identified contacts (user id, email, anonymous id), resolved and profiled."""
    from touchpoint.collect.store import write_messages
    from touchpoint.profiles.workflow import update
    from touchpoint.warehouse import Warehouse

    wh = Warehouse.open(f"duckdb://{folder / 'warehouse.duckdb'}{os.environ.get('BENCH_DUCKDB_OPTIONS', '')}")
    write_messages(
        wh,
        [
            {
                "type": "identify",
                "userId": f"c{i}",
                "anonymousId": f"a{i}",
                "traits": {"email": email_of(i), "first_name": f"N{i}", "consent_marketing_email": True},
                "messageId": f"s{i}",
                "timestamp": (BASE - timedelta(days=1, seconds=-i)).isoformat() + "Z",
            }
            for i in range(contacts)
        ],
    )
    update(wh)
    return wh


def statements(pr: cProfile.Profile) -> int:
    st = pstats.Stats(pr)
    total = 0
    for (file, _, name), (cc, *_rest) in st.stats.items():  # type: ignore[attr-defined]
        if name in _STATEMENTS or (name == "raw_sql" and file.endswith("duckdb/__init__.py")):
            total += cc
    return total


def dump(wh: Any, path: Path) -> None:
    """The derived tables' rows, sorted, without the columns of wall-clock instants, and with node ids (numbered
    anew by each rebuild, in no fixed order) named by their identifier: a component or cluster (labelled by a
    node id) by its first identifier, a link's two ends in name order."""
    nodes = wh.to_arrow(wh.table("identity_nodes")).to_pylist()
    name = {r["node_id"]: f"{r['id_type']}:{r['id_value']}" for r in nodes}
    for label in ("component", "cluster"):
        members: dict[Any, list[str]] = {}
        for r in nodes:
            members.setdefault(r[label], []).append(name[r["node_id"]])
        for r in nodes:
            r[label] = min(members[r[label]])
    tables = {t: wh.to_arrow(wh.table(t)).to_pylist() for t in ("profiles", "profile_traits", "event_identities")}
    tables["identity_nodes"] = nodes
    links = wh.to_arrow(wh.table("identity_links")).to_pylist()
    for r in links:
        r["src"], r["dst"] = sorted([name[r["src"]], name[r["dst"]]])
    tables["identity_links"] = links
    out: dict[str, Any] = {}
    for table, rows in tables.items():
        named = [
            {c: name.get(v, v) if c == "node_id" else str(v) for c, v in r.items() if c not in _CLOCK_COLUMNS}
            for r in rows
        ]
        out[table] = sorted(json.dumps(r, sort_keys=True, default=str) for r in named)
    path.write_text(json.dumps(out, indent=0))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--contacts", type=int, default=520)
    ap.add_argument("--batch", type=int, default=190)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--warm", type=int, default=3)
    ap.add_argument("--kinds", default=",".join(KINDS))
    ap.add_argument("--profile", default=None, help="print a cProfile of the last run of this kind")
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--dump", type=Path, default=None)
    args = ap.parse_args()

    from touchpoint.collect.store import write_messages
    from touchpoint.profiles.workflow import update

    kinds = args.kinds.split(",")
    tmp = Path(tempfile.mkdtemp())
    wh = seed(tmp, args.contacts)
    k = 0
    for _ in range(args.warm):
        for kind in kinds:
            write_messages(wh, batch(kind, k, args.batch, args.contacts))
            update(wh)
            k += 1
    cpu: dict[str, list[float]] = {kind: [] for kind in kinds}
    stmts: dict[str, list[int]] = {kind: [] for kind in kinds}
    last: dict[str, cProfile.Profile] = {}
    for _ in range(args.rounds):
        for kind in kinds:
            write_messages(wh, batch(kind, k, args.batch, args.contacts))
            k += 1
            c = time.process_time()
            update(wh)
            cpu[kind].append(time.process_time() - c)
            pr = cProfile.Profile()  # a second batch of the same kind, counted (cProfile inflates its CPU)
            write_messages(wh, batch(kind, k, args.batch, args.contacts))
            k += 1
            pr.enable()
            update(wh)
            pr.disable()
            stmts[kind].append(statements(pr))
            last[kind] = pr
    load = os.getloadavg()[0]
    result = {
        "contacts": args.contacts,
        "batch": args.batch,
        "rounds": args.rounds,
        "load_1m": round(load, 2),
        "kinds": {
            kind: {
                "cpu_median_s": round(statistics.median(cpu[kind]), 4),
                "cpu_s": [round(x, 4) for x in cpu[kind]],
                "statements": statistics.median(stmts[kind]),
            }
            for kind in kinds
        },
    }
    print(f"{'batch':<8}{'cpu median s':>14}{'statements':>12}   runs (load {load:.1f})")
    for kind in kinds:
        r = result["kinds"][kind]
        print(f"{kind:<8}{r['cpu_median_s']:>14.3f}{r['statements']:>12}   {r['cpu_s']}")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    if args.dump:
        dump(wh, args.dump)
    if args.profile:
        pstats.Stats(last[args.profile]).sort_stats("cumulative").print_stats(60)
    wh.close()


if __name__ == "__main__":
    main()
