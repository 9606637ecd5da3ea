"""Why commands go through the running server, not a multi-process store: plain DuckDB against DuckLake.

Measures, for the embedded DuckDB file touchpoint uses and for DuckLake with a SQLite catalog (the
multi-process option of issue 13): the commit of a 500-event batch (p50/p99 of 40), a profile lookup by
key in 100,000 profiles (p50/p99 of 200), and two processes committing 20 batches each at once.
DuckLake is not a dependency of touchpoint (see docs/decisions.md): run this in a scratch environment,

    python3 -m uv venv /tmp/dl && python3 -m uv pip install --python /tmp/dl \\
        duckdb==1.5.5 duckdb-extension-ducklake==1.5.5 duckdb-extension-sqlite-scanner==1.5.5 pyarrow
    /tmp/dl/bin/python bench/store_choice.py

(the extension packages ship the extension binaries: nothing is downloaded at run time; they pin
duckdb 1.5.5, touchpoint's lock has 1.5.6).
"""

from __future__ import annotations

import contextlib
import json
import multiprocessing as mp
import os
import shutil
import statistics
import tempfile
import time
from typing import Any

import duckdb
import pyarrow as pa

N_PROFILES = 100_000
ROOT = tempfile.mkdtemp()
NO_DOWNLOADS = {"autoinstall_known_extensions": False, "autoload_known_extensions": False}


def batch(start: int, n: int = 500) -> pa.Table:
    return pa.table(
        {
            "message_id": [f"m{start + i}" for i in range(n)],
            "type": ["track"] * n,
            "user_id": [f"u{(start + i) % 5000}" for i in range(n)],
            "event": ["Order Completed"] * n,
            "ts": pa.array([1_700_000_000_000_000 + i for i in range(n)], pa.timestamp("us")),
            "properties": [json.dumps({"revenue": i * 1.5, "order_id": f"o{start + i}"}) for i in range(n)],
        }
    )


def connect(kind: str, path: str) -> Any:
    if kind == "duckdb":
        return duckdb.connect(path, config=NO_DOWNLOADS)
    import duckdb_extension_ducklake  # type: ignore[import-not-found]  # only in the scratch environment
    import duckdb_extension_sqlite_scanner  # type: ignore[import-not-found]

    con = duckdb.connect(config=NO_DOWNLOADS)
    for module in (duckdb_extension_sqlite_scanner, duckdb_extension_ducklake):
        folder = os.path.dirname(module.__file__)
        found = (os.path.join(r, f) for r, _, files in os.walk(folder) for f in files)
        con.execute(f"LOAD '{next(f for f in found if f.endswith('.duckdb_extension'))}'")
    con.execute(f"ATTACH 'ducklake:sqlite:{path}.sqlite' AS lake (DATA_PATH '{path}.files/')")
    con.execute("USE lake")
    return con


def setup(kind: str, path: str) -> None:
    con = connect(kind, path)
    key = " PRIMARY KEY" if kind == "duckdb" else ""  # DuckLake: "PRIMARY KEY/UNIQUE constraints are not supported"
    con.execute(
        f"CREATE TABLE events (message_id VARCHAR{key}, type VARCHAR, user_id VARCHAR, event VARCHAR,"
        " ts TIMESTAMP, properties VARCHAR)"
    )
    con.execute(f"CREATE TABLE profiles (profile_id VARCHAR{key}, email VARCHAR, orders INTEGER, revenue DOUBLE)")
    ids = range(N_PROFILES)
    profiles = pa.table(
        {
            "profile_id": [f"p{i}" for i in ids],
            "email": [f"p{i}@x.io" for i in ids],
            "orders": list(ids),
            "revenue": [i * 2.0 for i in ids],
        }
    )
    con.register("profiles_in", profiles)
    con.execute("INSERT INTO profiles SELECT * FROM profiles_in")
    con.close()


def commit(con: Any, kind: str, start: int) -> float:
    con.register("b", batch(start))
    t = time.perf_counter()
    con.execute("BEGIN")
    suffix = " ON CONFLICT DO NOTHING" if kind == "duckdb" else ""  # dedup by messageId: DuckDB only
    con.execute(f"INSERT INTO events SELECT * FROM b{suffix}")
    con.execute("COMMIT")
    took = time.perf_counter() - t
    con.unregister("b")
    return took


def writer(kind: str, path: str, offset: int, n: int, q: Any) -> None:
    try:
        con = connect(kind, path)
    except Exception as exc:
        q.put(([], [f"open: {str(exc).splitlines()[0][:200]}"]))
        return
    times, errors = [], []
    for i in range(n):
        try:
            times.append(commit(con, kind, offset + i * 500))
        except Exception as exc:
            errors.append(str(exc).splitlines()[0][:160])
            with contextlib.suppress(Exception):
                con.execute("ROLLBACK")
    q.put((times, errors))


def ms(xs: list[float]) -> float | None:
    return round(statistics.median(xs) * 1000, 2) if xs else None


def p99(xs: list[float]) -> float | None:
    return round(sorted(xs)[max(0, int(len(xs) * 0.99) - 1)] * 1000, 2) if xs else None


def main() -> None:
    out = {}
    for kind in ("duckdb", "ducklake"):
        path = os.path.join(ROOT, kind)
        setup(kind, path)
        con = connect(kind, path)
        commits = [commit(con, kind, 10_000_000 + i * 500) for i in range(40)]
        lookups = []
        for i in range(200):
            t = time.perf_counter()
            con.execute("SELECT * FROM profiles WHERE profile_id = ?", [f"p{(i * 7919) % N_PROFILES}"]).fetchall()
            lookups.append(time.perf_counter() - t)
        con.close()
        q: Any = mp.Queue()
        procs = [mp.Process(target=writer, args=(kind, path, 20_000_000 + k * 1_000_000, 20, q)) for k in range(2)]
        for p in procs:
            p.start()
        results = [q.get(timeout=300) for _ in procs]
        for p in procs:
            p.join()
        out[kind] = {
            "commit_500_ms_p50": ms(commits),
            "commit_500_ms_p99": p99(commits),
            "lookup_ms_p50": ms(lookups),
            "lookup_ms_p99": p99(lookups),
            "two_writers": [
                {"ok": len(t), "errors": len(e), "first_error": e[0] if e else None, "p50_ms": ms(t)}
                for t, e in results
            ],
        }
    print(json.dumps(out, indent=1))
    shutil.rmtree(ROOT)


if __name__ == "__main__":
    main()
