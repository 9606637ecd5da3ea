"""Ingestion benchmark: HTTP batch and single-event throughput with acknowledgement latency, file import,
the in-process limit, and DuckDB's own JSON loader as the ceiling, at several sizes.

    uv run python bench/ingest.py                 # full run (1M-event import; about 5-10 minutes)
    uv run python bench/ingest.py --quick         # small sizes, for a smoke test
    uv run python bench/ingest.py --import-only   # file import vs DuckDB's own loads at 100k, 1M, 5M (--sizes ...)
    uv run python bench/ingest.py --import-only --formats jsonl csv parquet   # the same events in each format

HTTP load comes from wrk (Debian package `wrk`, a compiled load generator, so the client does not steal
the server's CPU the way a Python client would); each event carries a fresh random messageId (a UUID v4, as
analytics.js and the Segment libraries send: random keys touch the whole of the events key index, where
sequential ones would touch its end only), generated in Lua; the files' events carry UUIDs too.
Each HTTP run also reports the server's CPU seconds per million stored events (user + system, all threads, from
/proc) and wrk's own share of the CPU used by both, and the server's peak resident memory; each import and
DuckDB load its process's CPU and peak resident memory. Prints a table and writes bench/results/ingest.json.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import msgspec

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"

TARGETS = {"batch_events_per_s": 50_000, "single_requests_per_s": 3_000, "import_events_per_s": 200_000}

# Both wrk scripts: each thread seeds its own generator; uuid4() is a random UUID v4 (a %-template: %% is %).
WRK_PRELUDE = r"""
local counter = 0
local threads = {}
function setup(thread) thread:set("tid", #threads); table.insert(threads, thread) end
function init(args) math.randomseed(os.time() * 1009 + tid * 7919) end
local function uuid4()
  local r = math.random
  return string.format("%%04x%%04x-%%04x-4%%03x-%%04x-%%04x%%04x%%04x", r(0, 65535), r(0, 65535), r(0, 65535),
    r(0, 4095), 32768 + r(0, 16383), r(0, 65535), r(0, 65535), r(0, 65535))
end
"""

WRK_BATCH = (
    WRK_PRELUDE
    + r"""
request = function()
  local items = {}
  for i = 1, %(per)d do
    counter = counter + 1
    items[i] = string.format('{"type":"track","messageId":"%%s","userId":"u%%d","event":"Product Viewed",' ..
      '"timestamp":"2026-11-01T10:00:00.123Z","properties":{"product_id":"p%%d","price":12.5,"currency":"EUR"},' ..
      '"context":{"ip":"10.0.0.1","page":{"url":"https://shop.example/p?utm_source=news&utm_medium=email",' ..
      '"referrer":"https://www.google.com/"},"library":{"name":"wrk","version":"4"}}}',
      uuid4(), counter %% 5000, counter %% 300)
  end
  local body = '{"batch":[' .. table.concat(items, ",") .. ']}'
  return wrk.format("POST", "%(path)s", {["Content-Type"]="application/json",
    ["Authorization"]="Basic %(auth)s"}, body)
end
"""
)


def message_id(i: int) -> str:
    """A UUID v4 that looks random, the same for the same ``i`` (so a file's events are the same each run)."""
    return str(uuid.UUID(bytes=hashlib.blake2b(i.to_bytes(8, "little"), digest_size=16).digest(), version=4))


def event(i: int) -> dict[str, Any]:
    return {
        "type": "track",
        "messageId": message_id(i),
        "userId": f"u{i % 5000}",
        "event": "Product Viewed",
        "timestamp": "2026-11-01T10:00:00.123Z",
        "properties": {"product_id": f"p{i % 300}", "price": 12.5, "currency": "EUR"},
        "context": {
            "ip": "10.0.0.1",
            "page": {
                "url": "https://shop.example/p?utm_source=news&utm_medium=email",
                "referrer": "https://www.google.com/",
            },
            "library": {"name": "bench", "version": "1"},
        },
    }


def write_jsonl(path: Path, n: int) -> None:
    encode = msgspec.json.Encoder().encode
    with path.open("wb") as handle:
        for start in range(0, n, 10_000):
            handle.write(b"\n".join(encode(event(i)) for i in range(start, min(n, start + 10_000))) + b"\n")


def flat(e: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """An event as a flat row: nested fields as dotted columns (``context.page.url``), as a CSV or Parquet
    export holds them."""
    row: dict[str, Any] = {}
    for key, value in e.items():
        if isinstance(value, dict):
            row.update(flat(value, f"{prefix}{key}."))
        else:
            row[prefix + key] = value
    return row


def write_flat(path: Path, n: int, fmt: str) -> None:
    """The events of :func:`write_jsonl` as a CSV or Parquet file of flat rows, written 100,000 rows at a time."""
    import pyarrow as pa
    import pyarrow.csv as pcsv
    import pyarrow.parquet as pq

    writer: Any = None
    try:
        for start in range(0, n, 100_000):
            table = pa.Table.from_pylist([flat(event(i)) for i in range(start, min(n, start + 100_000))])
            if writer is None:
                writer = (
                    pq.ParquetWriter(path, table.schema) if fmt == "parquet" else pcsv.CSVWriter(path, table.schema)
                )
            writer.write_table(table)
    finally:
        if writer is not None:
            writer.close()


def write_events(path: Path, n: int, fmt: str) -> None:
    if fmt == "jsonl":
        write_jsonl(path, n)
    else:
        write_flat(path, n, fmt)


def new_warehouse(folder: Path) -> tuple[str, str]:
    from touchpoint import keys
    from touchpoint.warehouse import Warehouse

    if folder.exists():
        shutil.rmtree(folder)
    url = f"duckdb://{folder / 'warehouse.duckdb'}"
    wh = Warehouse.open(url)
    key = keys.create_source(wh, "bench")
    wh.close()
    return url, key


def count_events(folder: Path) -> int:
    from touchpoint.warehouse import Warehouse

    wh = Warehouse.open(f"duckdb://{folder / 'warehouse.duckdb'}", read_only=True)
    try:
        return wh.count("events")
    finally:
        wh.close()


def _children_cpu() -> float:
    import resource

    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _measured(command: list[str], env: dict[str, str] | None = None) -> tuple[str, float, float]:
    """Run ``command`` (``env``: variables set beside the caller's); its standard output, its CPU seconds (user +
    system) and its peak resident MB, read from the kernel's accounting of that one process (``wait4``)."""
    with tempfile.TemporaryFile() as errors:
        proc = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=errors, env={**os.environ, **env} if env else None
        )
        assert proc.stdout is not None
        out = proc.stdout.read().decode()
        proc.stdout.close()
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode != 0:
            errors.seek(0)
            raise subprocess.CalledProcessError(proc.returncode, command, out, errors.read().decode())
    return out, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024  # Linux: ru_maxrss in KB


def run_import(folder: Path, path: Path, *, engine: bool, src: str | None = None) -> dict[str, Any]:
    """``touchpoint import events --engine|--no-engine`` in its own process (durable, deduplicated, validated);
    ``src``: another source tree's ``src/`` to import from (``--baseline``)."""
    new_warehouse(folder)
    command = [sys.executable, "-m", "touchpoint.cli.main", "import", "events", str(path), "--data", str(folder)]
    started = time.perf_counter()
    env = {"PYTHONPATH": src} if src else None
    out, cpu, peak_mb = _measured([*command, "--json", "--engine" if engine else "--no-engine"], env)
    seconds = time.perf_counter() - started
    report = json.loads(out)
    return {
        "seconds": seconds,
        "events_per_s": report["received"] / seconds,
        "stored": report["stored"],
        "cpu_seconds": cpu,
        "cpu_s_per_million": cpu / report["received"] * 1e6,
        "peak_rss_mb": peak_mb,
        "path": report.get("path", "python"),
        "python_judged": report.get("python_judged"),
        # the import's own time (the report's), without the interpreter's start and the warehouse's opening:
        # what the DuckDB peers' "seconds" measure too (their process start and connect are outside it)
        "import_seconds": report["seconds"],
        "events_per_s_in_process": report["received"] / report["seconds"] if report["seconds"] else None,
    }


_DUCKDB_DURABLE = """
import sys, time, resource, json, duckdb
path, db, fmt = sys.argv[1], sys.argv[2], sys.argv[3]
con = duckdb.connect(db)
con.execute("SET enable_progress_bar = false")
if fmt == "jsonl":
    con.execute("CREATE TABLE events (message_id VARCHAR PRIMARY KEY, type VARCHAR, user_id VARCHAR, event VARCHAR, "
                "timestamp VARCHAR, properties JSON, context JSON)")
    load = f\"\"\"INSERT INTO events SELECT "messageId", type, "userId", event, timestamp, properties, context
      FROM read_json('{path}', format='newline_delimited', columns={{'messageId': 'VARCHAR', 'type': 'VARCHAR',
      'userId': 'VARCHAR', 'event': 'VARCHAR', 'timestamp': 'VARCHAR', 'properties': 'JSON', 'context': 'JSON'}})
      ON CONFLICT DO NOTHING\"\"\"
else:  # the file's own columns and types, messageId the key
    reader = f"read_csv('{path}', header = true)" if fmt == "csv" else f"read_parquet('{path}')"
    columns = con.execute(f"DESCRIBE SELECT * FROM {reader}").fetchall()
    defined = ", ".join(f'"{c[0]}" {c[1]}' + (" PRIMARY KEY" if c[0] == "messageId" else "") for c in columns)
    con.execute(f"CREATE TABLE events ({defined})")
    load = f"INSERT INTO events SELECT * FROM {reader} ON CONFLICT DO NOTHING"
start = time.perf_counter()
con.execute(load)
con.execute("CHECKPOINT")
seconds = time.perf_counter() - start
n = con.execute("SELECT count(*) FROM events").fetchone()[0]
print(json.dumps({"seconds": seconds, "stored": n}))
"""


def run_duckdb_durable(folder: Path, path: Path, fmt: str = "jsonl") -> dict[str, Any]:
    """The engine's own durable, deduplicated load: read_json (read_csv, read_parquet) into an on-disk table with
    the same primary key (ON CONFLICT DO NOTHING), then CHECKPOINT; no validation. The peer the import is
    measured against."""
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    command = [sys.executable, "-c", _DUCKDB_DURABLE, str(path), str(folder / "durable.duckdb"), fmt]
    out, cpu, peak_mb = _measured(command)
    result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    result.update(events_per_s=result["stored"] / result["seconds"], cpu_seconds=cpu, peak_rss_mb=peak_mb)
    result["cpu_s_per_million"] = cpu / result["stored"] * 1e6
    return result


def import_only(
    sizes: list[int], python_max: int, baseline: str | None = None, formats: tuple[str, ...] = ("jsonl",)
) -> None:
    """touchpoint import events beside DuckDB's durable deduplicated load (and, for JSONL, raw read_json), same
    run, for each format; with ``baseline`` (a source tree's ``src/``) its engine import too, just before this
    checkout's."""
    work = Path(tempfile.mkdtemp(prefix="tp-bench-import-"))
    results: dict[str, Any] = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "sizes": sizes,
        "formats": formats,
        "rows": [],
    }
    try:
        for n in sizes:
            for fmt in formats:
                path = work / f"events-{n}.{fmt}"
                write_events(path, n, fmt)
                measures = [
                    ("touchpoint import events --engine", lambda path=path: run_import(work / "e", path, engine=True)),
                    (
                        "duckdb read_json, durable, deduplicated",
                        lambda path=path, fmt=fmt: run_duckdb_durable(work / "durable", path, fmt),
                    ),
                ]
                if fmt == "jsonl":
                    measures.append(
                        ("duckdb read_json, raw (ceiling)", lambda path=path: run_duckdb_read_json(work / "raw", path))
                    )
                if baseline:
                    measures.insert(
                        0,
                        (
                            "baseline: touchpoint import events --engine",
                            lambda path=path: run_import(work / "b", path, engine=True, src=baseline),
                        ),
                    )
                if n <= python_max:
                    measures.insert(
                        1,
                        (
                            "touchpoint import events --no-engine",
                            lambda path=path: run_import(work / "p", path, engine=False),
                        ),
                    )
                for label, measure in measures:
                    if fmt != "jsonl":
                        label = label.replace("read_json", f"read_{fmt}") + f" ({fmt})"
                    load_before = os.getloadavg()[0]
                    wall = time.perf_counter()
                    result = measure()
                    result.setdefault("wall_seconds", time.perf_counter() - wall)
                    result.update(
                        measure=label, size=n, format=fmt, load_before=load_before, load_after=os.getloadavg()[0]
                    )
                    results["rows"].append(result)
                    print(f"{label:52} {n:>10,} {result['events_per_s']:>12,.0f}/s", file=sys.stderr)
                path.unlink()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"\n{'measure':52} {'size':>10} {'events/s':>10} {'% durable':>9} {'cpu s/M':>8} {'peak MB':>8} {'load':>5}")
    for row in results["rows"]:
        peer = next(
            r
            for r in results["rows"]
            if (r["size"], r["format"]) == (row["size"], row["format"]) and "deduplicated" in r["measure"]
        )
        share = 100 * row["events_per_s"] / peer["events_per_s"]
        cpu, peak = row.get("cpu_s_per_million"), row.get("peak_rss_mb")
        print(
            f"{row['measure']:52} {row['size']:>10,} {row['events_per_s']:>10,.0f} {share:>8.1f}% "
            f"{'' if cpu is None else f'{cpu:8.1f}':>8} {'' if peak is None else f'{peak:8,.0f}':>8} "
            f"{row['load_before']:>5.1f}"
        )
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "ingest-import.json").write_text(json.dumps(results, indent=2, default=str))
    print(f"\nwritten to {RESULTS / 'ingest-import.json'}")


def run_in_process(folder: Path, path: Path) -> dict[str, Any]:
    from touchpoint.collect.normalize import EventRows, utcnow
    from touchpoint.collect.readers import iter_lines
    from touchpoint.collect.store import write_rows
    from touchpoint.warehouse import Warehouse

    url, _ = new_warehouse(folder)
    wh = Warehouse.open(url)
    started = time.perf_counter()
    parse = 0.0
    rows, total, now = EventRows(), 0, utcnow()
    t0 = time.perf_counter()
    for _, line in iter_lines(path):
        rows.add_raw(line, received_at=now, source="bench")
        if len(rows) >= 100_000:
            parse += time.perf_counter() - t0
            total += write_rows(wh, rows).stored
            rows = EventRows()
            t0 = time.perf_counter()
    parse += time.perf_counter() - t0
    total += write_rows(wh, rows).stored
    seconds = time.perf_counter() - started
    wh.close()
    return {"seconds": seconds, "events_per_s": total / seconds, "parse_share": parse / seconds, "stored": total}


def run_duckdb_read_json(folder: Path, path: Path) -> dict[str, Any]:
    """The engine's own loader, no validation and no dedup: a ceiling, not a like-for-like peer."""
    import duckdb

    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    con = duckdb.connect(str(folder / "raw.duckdb"))
    started = time.perf_counter()
    con.execute(f"CREATE TABLE raw AS SELECT * FROM read_json_auto('{path}', format='newline_delimited')")
    seconds = time.perf_counter() - started
    n = con.execute("SELECT count(*) FROM raw").fetchone()[0]
    con.close()
    return {"seconds": seconds, "events_per_s": n / seconds, "stored": n}


NO_JOBS: list[str] = []  # ["--no-jobs"] with --no-jobs: the collector without the job runner beside it
SERVER_ENV: dict[str, str] = {}  # TOUCHPOINT_* settings of the served mode (--modes)
SERVER_SRC: list[str] = []  # with --baseline: the source tree the server imports (PYTHONPATH), else this one
#: --modes: the server's write path (the group commit, or the collector log) and whether the jobs run beside it
MODES = {
    "commit-nojobs": ({"TOUCHPOINT_COLLECTOR_LOG": "false"}, True),
    "log-nojobs": ({"TOUCHPOINT_COLLECTOR_LOG": "true"}, True),
    "commit-jobs": ({"TOUCHPOINT_COLLECTOR_LOG": "false"}, False),
    "log-jobs": ({"TOUCHPOINT_COLLECTOR_LOG": "true"}, False),
}


def start_server(folder: Path, port: int) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TOUCHPOINT_")} | SERVER_ENV
    if SERVER_SRC:  # another checkout's src/ ahead of this one's editable install
        env["PYTHONPATH"] = SERVER_SRC[0]
    proc = subprocess.Popen(
        [sys.executable, "-m", "touchpoint.cli.main", "serve", "--port", str(port), "--data", str(folder), *NO_JOBS],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    for _ in range(1200):
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("server did not start")


def parse_wrk(text: str) -> dict[str, Any]:
    def ms(value: str) -> float:
        number, unit = re.match(r"([\d.]+)(\w+)", value).groups()  # type: ignore[union-attr]
        return float(number) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[unit]

    latency = dict(re.findall(r"^\s+(\d+)%\s+([\d.]+\w+)", text, re.M))
    requests = int(re.search(r"(\d+) requests in", text).group(1))  # type: ignore[union-attr]
    seconds_match = re.search(r"requests in ([\d.]+)(\w+),", text)
    assert seconds_match is not None
    seconds = ms(seconds_match.group(1) + seconds_match.group(2)) / 1000
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    errors = re.search(r"Socket errors: (.*)", text)
    return {
        "requests": requests,
        "seconds": seconds,
        "requests_per_s": requests / seconds,
        "p50_ms": ms(latency["50"]),
        "p99_ms": ms(latency["99"]),
        "non_2xx": int(bad.group(1)) if bad else 0,
        "socket_errors": errors.group(1) if errors else "",
    }


def _wrk(folder: Path, port: int, lua: str, connections: int, seconds: int) -> dict[str, Any]:
    """Run wrk with ``lua`` (formatted with the write key) against a fresh server; return its figures."""
    import base64

    _, key = new_warehouse(folder)
    server = start_server(folder, port)
    script = folder / "wrk.lua"
    script.write_text(lua.replace("%(auth)s", base64.b64encode(f"{key}:".encode()).decode()))
    _settled(server.pid)
    load_before = os.getloadavg()[0]
    server_cpu = _process_cpu(server.pid)
    wrk_cpu = _children_cpu()  # the server is not reaped yet: only wrk's time lands here
    try:
        out = subprocess.run(
            [
                "wrk",
                "-t",
                "2",
                "-c",
                str(connections),
                "-d",
                f"{seconds}s",
                "--timeout",
                "30s",
                "--latency",
                "-s",
                str(script),
                f"http://127.0.0.1:{port}",
            ],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        wrk_cpu = _children_cpu() - wrk_cpu
        drain_started = time.perf_counter()
        backlog = _drain(port)  # with the collector log: acknowledged events still to load; its CPU counts too
        drain_seconds = time.perf_counter() - drain_started
        health = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=30).json()
        commits = int(health["commits"])
        validation_workers = health.get("validation_workers")  # ready at the end (the server's setting)
        server_cpu = _process_cpu(server.pid) - server_cpu
        server_peak_mb = _peak_rss_mb(server.pid)
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(60)
    result = parse_wrk(out)
    result.update({"connections": connections, "stored": count_events(folder)})
    result["events_per_s"] = result["stored"] / result["seconds"]
    # acknowledged per second above; loaded per second counts the time the loader took to catch up after wrk
    result.update(backlog_at_end=backlog, drain_seconds=drain_seconds)
    result.update(commits=commits, events_per_commit=result["stored"] / max(1, commits))
    result["loaded_events_per_s"] = result["stored"] / (result["seconds"] + drain_seconds)
    result.update(
        server_cpu_seconds=server_cpu,
        server_cpu_s_per_million=server_cpu / max(1, result["stored"]) * 1e6,
        wrk_cpu_seconds=wrk_cpu,
        wrk_cpu_share=wrk_cpu / max(1e-9, wrk_cpu + server_cpu),
        server_peak_rss_mb=server_peak_mb,
        validation_workers=validation_workers,
        load_before=load_before,
        load_after=os.getloadavg()[0],
    )
    return result


def _settled(pid: int, timeout: float = 60.0) -> None:
    """Wait until a fresh server is idle (under 5% of a core for half a second): its start-up work (the
    dashboard's first computation of every section, each compiling its queries once) is not what a sustained
    stream costs, and would otherwise be counted in a short run's CPU per event."""
    deadline = time.monotonic() + timeout
    before = _process_cpu(pid)
    while time.monotonic() < deadline:
        time.sleep(0.5)
        now = _process_cpu(pid)
        if now - before < 0.025:
            return
        before = now


def _drain(port: int, timeout: float = 120.0) -> int:
    """Wait until the server has no event waiting to be committed (or loaded); the backlog when wrk stopped."""
    first = None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        queued = int(httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=30).json()["queued_events"])
        first = queued if first is None else first
        if queued == 0:
            break
        time.sleep(0.05)
    return first or 0


def _peak_rss_mb(pid: int) -> float | None:
    """A running process's peak resident memory so far (``VmHWM`` in /proc), in MB."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def _process_cpu(pid: int) -> float:
    """CPU seconds (user + system, all threads) a running process and its running children (the validation
    workers) have used so far (Linux /proc)."""
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # ended meanwhile
            continue
        if int(stat.parent.name) == pid or int(fields[1]) == pid:
            total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def run_http(folder: Path, port: int, per_request: int, path: str, connections: int, seconds: int) -> dict[str, Any]:
    lua = WRK_BATCH % {"per": per_request, "path": path, "auth": "%(auth)s"}  # the key is filled in by _wrk
    result = _wrk(folder, port, lua, connections, seconds)
    result.update(
        {"events_per_request": per_request, "acked_events": (result["requests"] - result["non_2xx"]) * per_request}
    )
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small sizes only")
    parser.add_argument("--seconds", type=int, default=15, help="duration of each HTTP run")
    parser.add_argument("--http-only", action="store_true", help="skip the file and in-process measures")
    parser.add_argument("--import-only", action="store_true", help="only the file import and DuckDB's own loads")
    parser.add_argument(
        "--sizes", type=int, nargs="+", default=[100_000, 1_000_000, 5_000_000], help="with --import-only"
    )
    parser.add_argument("--python-max", type=int, default=1_000_000, help="largest size for import --no-engine")
    parser.add_argument(
        "--formats",
        nargs="+",
        choices=["jsonl", "csv", "parquet"],
        default=["jsonl"],
        help="with --import-only: the files' formats (CSV and Parquet hold the same events as flat rows)",
    )
    parser.add_argument(
        "--cases",
        nargs="+",
        choices=["batch_100_c8", "batch_100_c32", "single_track_c32", "single_track_path_c32"],
        help="only these HTTP runs (default: all four)",
    )
    parser.add_argument(
        "--no-jobs",
        action="store_true",
        help="serve with --no-jobs: the collector alone, without the jobs (identity, profiles...) that by default "
        "run beside it and process the events as they arrive",
    )
    parser.add_argument(
        "--modes",
        nargs="+",
        choices=list(MODES),
        help="run the HTTP cases once per mode, in this order (the group commit or the collector log, without or "
        "with the jobs); overrides --no-jobs",
    )
    parser.add_argument(
        "--server-env",
        nargs="+",
        default=[],
        metavar="NAME=VALUE",
        help="extra TOUCHPOINT_* settings for every server this run starts (the bench clears the caller's own)",
    )
    parser.add_argument(
        "--out", help="the JSON file's name in bench/results (default: ingest-http.json or ingest.json)"
    )
    parser.add_argument(
        "--baseline",
        metavar="SRC",
        help="also serve every HTTP case (with --import-only: run the engine import) from this source tree (e.g. "
        "`git archive` of main's src/), just before the same case from this checkout, so that before and after "
        "are measured in the same run",
    )
    args = parser.parse_args()
    if args.no_jobs:
        NO_JOBS.append("--no-jobs")
    if args.import_only:
        baseline = str(Path(args.baseline).resolve()) if args.baseline else None
        import_only(args.sizes, args.python_max, baseline, tuple(args.formats))
        return
    if shutil.which("wrk") is None:
        sys.exit("bench/ingest.py needs wrk for HTTP load: apt-get install wrk")
    sizes = [] if args.http_only else [20_000, 100_000] if args.quick else [100_000, 300_000, 1_000_000]
    seconds = 5 if args.quick else args.seconds
    work = Path(tempfile.mkdtemp(prefix="tp-bench-"))
    results: dict[str, Any] = {
        "server_env": args.server_env,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "targets": TARGETS,
        "import": {},
        "in_process": {},
        "duckdb_read_json": {},
        "http": {},
    }
    try:
        for n in sizes:
            path = work / f"events-{n}.jsonl"
            write_jsonl(path, n)
            results["in_process"][n] = run_in_process(work / "inproc", path)
            results["import"][n] = run_import(work / "import", path, engine=False)
            results["duckdb_read_json"][n] = run_duckdb_read_json(work / "raw", path)
            path.unlink()
            print(f"size {n:,}: done", file=sys.stderr)
        port = 18_000 + os.getpid() % 1000
        cases = {
            "batch_100_c8": lambda: run_http(work / "http1", port, 100, "/v1/batch", 8, seconds),
            "batch_100_c32": lambda: run_http(work / "http2", port + 1, 100, "/v1/batch", 32, seconds),
            "single_track_c32": lambda: run_http(work / "http3", port + 2, 1, "/v1/batch", 32, seconds),
            "single_track_path_c32": lambda: run_http_single(work / "http4", port + 3, 32, seconds),
        }
        extra = dict(pair.split("=", 1) for pair in args.server_env)
        SERVER_ENV.update(extra)
        for mode in args.modes or [None]:
            if mode is not None:
                env, no_jobs = MODES[mode]
                SERVER_ENV.clear()
                SERVER_ENV.update(env | extra)
                NO_JOBS[:] = ["--no-jobs"] if no_jobs else []
            for name in args.cases or list(cases):
                key = name if mode is None else f"{mode}/{name}"
                for build in ["baseline", "this"] if args.baseline else ["this"]:
                    SERVER_SRC[:] = [str(Path(args.baseline).resolve())] if build == "baseline" else []
                    label = f"baseline/{key}" if build == "baseline" else key
                    results["http"][label] = cases[name]()
                    results["http"][label]["server_src"] = SERVER_SRC[0] if SERVER_SRC else str(ROOT / "src")
                    print(f"{label}: done", file=sys.stderr)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    batches = [r["events_per_s"] for k, r in results["http"].items() if "batch" in k]
    best_batch = max(batches, default=0.0)
    if sizes and batches:
        results["ratio_batch_to_in_process"] = best_batch / results["in_process"][sizes[-1]]["events_per_s"]
    print_table(results, sizes)
    RESULTS.mkdir(parents=True, exist_ok=True)
    name = args.out or ("ingest-http.json" if args.http_only else "ingest.json")
    (RESULTS / name).write_text(json.dumps(results, indent=2, default=str))
    print(f"\nwritten to {RESULTS / name}")


WRK_SINGLE = (
    WRK_PRELUDE
    + r"""
request = function()
  counter = counter + 1
  local body = string.format('{"userId":"u%%d","event":"Signed Up","messageId":"%%s",' ..
    '"properties":{"plan":"pro"},"context":{"ip":"10.0.0.1"}}', counter %% 5000, uuid4())
  return wrk.format("POST", "/v1/track", {["Content-Type"]="application/json",
    ["Authorization"]="Basic %(auth)s"}, body)
end
"""
)


def run_http_single(folder: Path, port: int, connections: int, seconds: int) -> dict[str, Any]:
    return _wrk(folder, port, WRK_SINGLE.replace("%%", "%"), connections, seconds)


def print_table(results: dict[str, Any], sizes: list[int]) -> None:
    print(
        f"\n{'measure':44} {'size':>10} {'events/s':>12} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'target':>9} "
        f"{'cpu s/M':>8} {'wrk cpu':>7} {'load':>5} {'loaded/s':>10} {'ev/commit':>9} {'peak MB':>8}"
    )
    for n in sizes:
        for key, label in (
            ("import", "touchpoint import events (JSONL)"),
            ("in_process", "in-process limit (parse+insert)"),
            ("duckdb_read_json", "duckdb read_json, no validation (ceiling)"),
        ):
            r = results[key][n]
            target = TARGETS["import_events_per_s"] if key == "import" else ""
            print(f"{label:44} {n:>10,} {r['events_per_s']:>12,.0f} {'':>9} {'':>8} {'':>8} {target:>9}")
    for key, r in results["http"].items():
        target = TARGETS["single_requests_per_s"] if "single" in key else TARGETS["batch_events_per_s"]
        print(
            f"{'HTTP ' + key:44} {r['stored']:>10,} {r['events_per_s']:>12,.0f} {r['requests_per_s']:>9,.0f} "
            f"{r['p50_ms']:>8.1f} {r['p99_ms']:>8.1f} {target:>9,} {r['server_cpu_s_per_million']:>8.1f} "
            f"{r['wrk_cpu_share']:>7.0%} {r['load_before']:>5.1f} {r['loaded_events_per_s']:>10,.0f} "
            f"{r.get('events_per_commit', 0):>9,.0f} {r.get('server_peak_rss_mb') or 0:>8,.0f}"
        )
    if "ratio_batch_to_in_process" in results:
        ratio = results["ratio_batch_to_in_process"]
        print(f"\nratio of HTTP batch throughput to the in-process limit: {ratio:.2f}")


if __name__ == "__main__":
    main()
