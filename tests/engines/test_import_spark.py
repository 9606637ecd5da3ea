"""File import into a Spark warehouse: events appended as Parquet files by Spark's own writer, judged by the one
set of rules (collect/normalize.py through ``touchpoint import events``), deduplicated by messageId, bad lines
quarantined with their reasons, and a killed import run again storing each event once.

On Spark the import takes the Python judge (the engine judge, collect/engine_import.py, stages its steps as
temporary tables with DuckDB's functions; on Spark ``--engine`` falls back to it); each chunk is one
transaction whose events are an anti-join on the stored messageIds and one appended Parquet file."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import msgspec
import pyarrow.parquet as pq
from tests.conftest import spark_warehouse_url

from touchpoint.collect.files import import_events
from touchpoint.warehouse import Warehouse

_encode = msgspec.json.Encoder().encode


def _lines() -> list[bytes]:
    good = [
        _encode(
            {
                "type": "track",
                "messageId": f"m{i}",
                "userId": f"u{i % 7}",
                "event": "Viewed",
                "timestamp": f"2026-03-0{1 + i % 9}T10:00:00Z",
            }
        )
        for i in range(30)
    ]
    return [
        *good[:12],
        good[3],  # the same event again (a retry): stored once
        # no messageId: an id from its content
        b'{"type": "track", "userId": "u1", "event": "No id", "timestamp": "2026-03-05T10:00:00Z"}',
        b"{not json",
        b'{"userId": "u2", "event": "No type", "messageId": "bad1"}',
        *good[12:],
    ]


def _report(wh: Warehouse, path: Path, chunk_events: int) -> dict[str, Any]:
    return import_events(wh, path, source="file", chunk_events=chunk_events).to_dict()


def test_an_import_appends_parquet_files_with_the_same_verdicts_as_duckdb(spark_session: Path, tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    path.write_bytes(b"\n".join(_lines()) + b"\n")
    folder = tmp_path / "spark"
    spark = Warehouse.open(spark_warehouse_url(spark_session, folder))
    duck = Warehouse.open(f"duckdb://{tmp_path / 'wh.duckdb'}")
    try:
        reports = {e: _report(wh, path, chunk_events=10) for e, wh in (("spark", spark), ("duckdb", duck))}
        for report in reports.values():
            report.pop("seconds"), report.pop("events_per_second")
        assert reports["spark"] == reports["duckdb"]
        assert reports["spark"]["stored"] == 31 and reports["spark"]["duplicates"] == 1
        assert reports["spark"]["quarantined"] == 2 and len(reports["spark"]["sample_reasons"]) == 2

        def stored(wh: Warehouse) -> list[tuple[Any, ...]]:
            t = wh.table("events")
            rows = wh.to_arrow(t.select("message_id", "user_id", "event", "timestamp", "properties")).to_pylist()
            return sorted(tuple(r.values()) for r in rows)

        def quarantined(wh: Warehouse) -> list[tuple[Any, ...]]:
            rows = wh.to_arrow(wh.table("quarantine").select("reason", "payload")).to_pylist()
            return sorted(tuple(r.values()) for r in rows)

        assert stored(spark) == stored(duck) and len(stored(spark)) == 31
        assert quarantined(spark) == quarantined(duck)

        # the files are Parquet that any reader takes: one per chunk that stored events (4 chunks of 10 lines)
        files = sorted(p for p in (folder / "events").iterdir() if p.suffix == ".parquet")
        assert len(files) == 4
        on_disk = pq.read_table(files).column("message_id").to_pylist()
        assert sorted(on_disk) == sorted(r[0] for r in stored(spark))

        again = _report(spark, path, chunk_events=10)
        assert (again["stored"], again["duplicates"], again["already_quarantined"]) == (0, 32, 2)  # 31 + the repeat
        assert spark.count("events") == 31
        assert len([p for p in (folder / "events").iterdir() if p.suffix == ".parquet"]) == 4  # nothing appended
    finally:
        spark.close()
        duck.close()


# The CLI with each chunk's commit announced on stdout before it starts, so the test can kill it in a write.
_ANNOUNCING = """
import sys
from touchpoint.collect import files
def announcing(commit):
    def announced(*args, **kwargs):
        print("committing", flush=True)
        return commit(*args, **kwargs)
    return announced
files.write_rows = announcing(files.write_rows)
from touchpoint.cli.main import app
app(sys.argv[1:])
"""


def test_a_killed_import_on_spark_rerun_stores_each_event_once(spark_session: Path, tmp_path: Path) -> None:
    """SIGKILL during the third chunk's write (Spark's commit of files in progress, or just after), then the
    same import again: every event stored exactly once, what the killed write left behind removed at open."""
    n, chunk = 3000, 500
    path = tmp_path / "events.jsonl"
    path.write_bytes(
        b"\n".join(
            _encode({"type": "track", "messageId": f"r{i}", "userId": f"u{i % 97}", "event": "Viewed"})
            for i in range(n)
        )
        + b"\n"
    )
    folder = tmp_path / "spark"
    url = spark_warehouse_url(spark_session, folder)
    env = {**os.environ, "TOUCHPOINT_WAREHOUSE_URL": url, "TOUCHPOINT_IMPORT_CHUNK_EVENTS": str(chunk)}
    args = ["import", "events", str(path), "--data", str(tmp_path / "data"), "--json"]
    run = subprocess.Popen(
        [sys.executable, "-c", _ANNOUNCING, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )
    assert run.stdout is not None
    commits = 0
    for line in run.stdout:
        commits += line.startswith("committing")
        if commits == 3:
            break
    time.sleep(1.0)  # into the write: the anti-join, the file's commit
    assert run.poll() is None, "the import finished before it could be killed"
    run.send_signal(signal.SIGKILL)
    run.communicate(timeout=60)

    wh = Warehouse.open(url)
    try:
        partial = wh.count("events")
        assert 2 * chunk <= partial < n
        assert not (folder / "events" / "_temporary").exists()
        report = _report(wh, path, chunk_events=chunk)
        assert report["stored"] == n - partial and report["duplicates"] == partial
        t = wh.table("events")
        assert wh.count("events") == n and wh.to_arrow(t.message_id.nunique()).as_py() == n
    finally:
        wh.close()
    print(json.dumps({"killed_after": partial}))
