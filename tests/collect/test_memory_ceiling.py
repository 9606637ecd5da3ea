"""Overload under a memory ceiling: a real ``touchpoint serve`` stays under ``memory_ceiling_mb`` while many
clients post full batches at once; the ones it cannot take answer 429 with Retry-After, never a 5xx or a dropped
connection, and every event it acknowledged is stored exactly once.

The server's own peak resident memory (``VmHWM`` in ``/proc/PID/status``, the kernel's high-water mark, so no
sampling can miss a spike) is the witness.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from tests.conftest import Server, free_port

from touchpoint import keys
from touchpoint.warehouse import Warehouse

pytestmark = [
    pytest.mark.slow,  # a server under a minute of overload
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the witness is Linux's /proc"),
]

CEILING_MB = 420  # about 150 MB over the server at rest; these clients take it to 666 MB without a ceiling
CLIENTS = 48
SECONDS = 20.0
EVENTS = 800  # per batch: about 475 KB, just under the collector's 500 KB


def _status_kb(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise AssertionError(f"{field} not in /proc/{pid}/status")


def _batch(tag: str) -> bytes:
    event = {
        "type": "track",
        "event": "Product Viewed",
        "anonymousId": "a-@@",
        "messageId": f"{tag}-@@",
        "properties": {"sku": "sku-@@", "price": 12.5, "name": "x" * 300},
        "context": {"page": {"path": "/p/1", "url": "https://shop.example/p/1"}, "userAgent": "Mozilla/5.0"},
        "timestamp": "2026-11-30T10:00:00Z",
    }
    items = [json.dumps(event).replace("@@", str(k)) for k in range(EVENTS)]
    return ('{"batch":[' + ",".join(items) + "]}").encode()


@pytest.mark.parametrize("collector_log", [False, True], ids=["commit", "collector-log"])
def test_overload_stays_under_the_ceiling_and_loses_nothing_acknowledged(tmp_path: Path, collector_log: bool) -> None:
    data = tmp_path / "data"
    data.mkdir()
    wh = Warehouse.open(f"duckdb://{data / 'warehouse.duckdb'}")
    write_key = keys.create_source(wh, "load")
    read = {"Authorization": f"Bearer {keys.create_api_key(wh, 'metrics', 'read')}"}
    wh.close()
    log_setting = f"collector_log = {str(collector_log).lower()}\n"
    (tmp_path / "touchpoint.toml").write_text(f"memory_ceiling_mb = {CEILING_MB}\n{log_setting}")
    server = Server(data, free_port(), write_key, cwd=tmp_path)
    server.start()
    assert server.process is not None
    pid = server.process.pid
    at_start_mb = _status_kb(pid, "VmRSS") / 1024
    assert at_start_mb < CEILING_MB - 50, f"the server starts at {at_start_mb:.0f} MB: raise CEILING_MB"

    statuses: dict[int, int] = {}
    acknowledged: list[str] = []
    refused_for_memory = 0
    problems: list[str] = []
    lock = threading.Lock()
    stop_at = time.monotonic() + SECONDS

    def client(n: int) -> None:
        nonlocal refused_for_memory
        with httpx.Client(base_url=server.url, auth=(write_key, ""), timeout=120.0) as http:
            k = 0
            while time.monotonic() < stop_at:
                tag = f"c{n}-{k}"
                try:
                    r = http.post("/v1/batch", content=_batch(tag), headers={"Content-Type": "application/json"})
                except httpx.HTTPError as exc:  # a dropped connection is a failure of the promise
                    with lock:
                        problems.append(f"{tag}: {exc!r}")
                    return
                with lock:
                    statuses[r.status_code] = statuses.get(r.status_code, 0) + 1
                    if r.status_code == 200:
                        assert r.json()["accepted"] == EVENTS, r.text
                        acknowledged.append(tag)
                    elif r.status_code == 429:
                        assert int(r.headers["retry-after"]) >= 1
                        refused_for_memory += "memory ceiling" in r.json()["error"]["message"]
                    else:
                        problems.append(f"{tag}: {r.status_code} {r.text[:200]}")
                k += 1

    try:
        with ThreadPoolExecutor(CLIENTS) as pool:
            list(pool.map(client, range(CLIENTS)))
        peak_mb = _status_kb(pid, "VmHWM") / 1024
        metrics = httpx.get(server.url + "/metrics", headers=read, timeout=30).text
    finally:
        server.stop()

    assert problems == []
    assert statuses.get(200, 0) > 0 and refused_for_memory > 0, statuses  # the overload reached the ceiling
    assert peak_mb < CEILING_MB, f"peak resident memory {peak_mb:.0f} MB over the ceiling of {CEILING_MB} MB"
    exported = {line.split()[0]: float(line.split()[1]) for line in metrics.splitlines() if line[:1] != "#"}
    assert exported["touchpoint_memory_ceiling_bytes"] == CEILING_MB * 1024 * 1024
    assert exported["touchpoint_memory_refusals_total"] == refused_for_memory
    wh = Warehouse.open(f"duckdb://{data / 'warehouse.duckdb'}")
    try:
        stored = wh.query(
            "SELECT split_part(message_id, '-', 1) || '-' || split_part(message_id, '-', 2) AS tag, "
            "count(*) AS n, count(DISTINCT message_id) AS distinct_ids FROM events GROUP BY 1"
        ).to_pylist()
    finally:
        wh.close()
    by_tag = {row["tag"]: row for row in stored}
    missing = [t for t in acknowledged if t not in by_tag or by_tag[t]["n"] != EVENTS]
    assert missing == [], missing[:5]
    assert all(row["n"] == row["distinct_ids"] for row in stored)  # each event once
