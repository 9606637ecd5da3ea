"""A file import killed with SIGKILL halfway and run again stores every event exactly once.

Each chunk of the file commits in its own transaction and every event is keyed by messageId
(inserted only when new), so a re-run skips what the killed run committed and adds the rest.
The file has 60,000 events in 8 chunks (TOUCHPOINT_TEST_RESUME_EVENTS to change it): 1,000,000 takes about a
minute per run on two shared cores, too slow for the suite; the mechanism does not depend on size.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import msgspec
import pytest

from touchpoint.warehouse import Warehouse

EVENTS = int(os.environ.get("TOUCHPOINT_TEST_RESUME_EVENTS", "60000"))


def _write(path: Path, n: int) -> None:
    encode = msgspec.json.Encoder().encode
    with path.open("wb") as out:
        for start in range(0, n, 50_000):
            out.write(
                b"\n".join(
                    encode({"type": "track", "messageId": f"r{i}", "userId": f"u{i % 977}", "event": "Viewed"})
                    for i in range(start, min(n, start + 50_000))
                )
                + b"\n"
            )


# The CLI, with each committed chunk announced on stdout, so the test knows when to kill it (the engine
# path's chunks, at least ENGINE_CHUNK_MIN lines in use, take the test's size here).
_ANNOUNCING = """
import sys
from touchpoint.collect import engine_import, files
def announcing(commit):
    def announced(*args, **kwargs):
        result = commit(*args, **kwargs)
        print("committed", result.stored, flush=True)
        return result
    return announced
files.write_rows = announcing(files.write_rows)
engine_import.commit = announcing(engine_import.commit)
files.ENGINE_CHUNK_MIN = 1
from touchpoint.cli.main import app
app(sys.argv[1:])
"""


def _import(
    path: Path, data: Path, env: dict[str, str], *, engine: bool, announce: bool = False
) -> subprocess.Popen[str]:
    args = ["import", "events", str(path), "--data", str(data), "--json", "--engine" if engine else "--no-engine"]
    command = (
        [sys.executable, "-c", _ANNOUNCING, *args] if announce else [sys.executable, "-m", "touchpoint.cli.main", *args]
    )
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def _killed_halfway(path: Path, data: Path, env: dict[str, str], *, engine: bool) -> int:
    """Run the import and SIGKILL it once two of its eight chunks are committed; returns what it stored."""
    run = _import(path, data, env, engine=engine, announce=True)
    assert run.stdout is not None
    commits = 0
    for line in run.stdout:
        commits += line.startswith("committed")
        if commits == 2:
            break
    assert run.poll() is None, "the import finished before it could be killed"
    run.send_signal(signal.SIGKILL)
    run.communicate(timeout=30)
    wh = Warehouse.open(f"duckdb://{data / 'warehouse.duckdb'}")
    try:
        return wh.count("events")
    finally:
        wh.close()


@pytest.mark.parametrize("engine", [False, True], ids=["python", "engine"])
def test_a_killed_import_rerun_stores_each_event_once(tmp_path: Path, engine: bool) -> None:
    path = tmp_path / "events.jsonl"
    _write(path, EVENTS)
    data = tmp_path / "data"
    env = {**os.environ, "TOUCHPOINT_IMPORT_CHUNK_EVENTS": str(EVENTS // 8)}
    partial = _killed_halfway(path, data, env, engine=engine)
    assert 0 < partial < EVENTS

    rerun = _import(path, data, env, engine=engine)
    out, err = rerun.communicate(timeout=300)
    assert rerun.returncode == 0, err
    report = json.loads(out)
    assert report["stored"] == EVENTS - partial and report["duplicates"] == partial

    wh = Warehouse.open(f"duckdb://{data / 'warehouse.duckdb'}", read_only=True)
    try:
        t = wh.table("events")
        assert wh.count("events") == EVENTS
        assert wh.to_arrow(t.message_id.nunique()).as_py() == EVENTS
    finally:
        wh.close()
