"""A real server on 127.0.0.1: the unmodified Segment client, and SIGKILL in the middle of traffic."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable

import httpx
import pytest
import segment.analytics as segment
from tests.conftest import Server, events_in

pytestmark = pytest.mark.slow


def test_segment_python_client_events_arrive_exactly_once(make_server: Callable[[], Server]) -> None:
    server = make_server()
    errors: list[object] = []
    client = segment.Client(
        write_key=server.write_key,
        host=server.url,
        on_error=lambda e, batch: errors.append(e),
        upload_size=250,
        max_retries=3,
        gzip=True,
    )
    client.identify("user-1", {"email": "Ann@Example.com", "plan": "pro"}, anonymous_id="anon-1")
    client.track("user-1", "Order Completed", {"order_id": "o-1", "revenue": 42.5, "currency": "EUR"})
    client.page("user-1", category="Docs", name="Install", properties={"url": "https://x.example/?utm_source=n"})
    client.group("user-1", "company-1", {"name": "ACME"})
    client.alias("anon-1", "user-1")
    client.screen("user-1", name="Home")
    for i in range(3000):  # a large batch: the client splits it into requests under 500 KB
        client.track(anonymous_id=f"anon-{i % 100}", event="Product Viewed", properties={"i": i, "pad": "x" * 100})
    client.flush()
    client.join()
    assert errors == []
    server.stop()
    wh = events_in(server.data_dir)
    by_type = wh.query("SELECT type, count(*) AS n FROM events GROUP BY type").to_pylist()
    counts = {r["type"]: r["n"] for r in by_type}
    assert counts == {"identify": 1, "track": 3001, "page": 1, "group": 1, "alias": 1, "screen": 1}
    assert wh.query("SELECT count(DISTINCT message_id) AS n FROM events").to_pylist() == [{"n": 3006}]
    order = wh.query("SELECT user_id, revenue, currency FROM events WHERE event = 'Order Completed'").to_pylist()
    assert order == [{"user_id": "user-1", "revenue": 42.5, "currency": "EUR"}]
    assert wh.query("SELECT email FROM events WHERE type = 'identify'").to_pylist() == [{"email": "ann@example.com"}]
    assert wh.query("SELECT count(*) AS n FROM quarantine").to_pylist() == [{"n": 0}]
    wh.close()


#: the collector log on, its loader slow enough that a backlog of acknowledged, unloaded events exists at the kill
LOG_ON = {"TOUCHPOINT_COLLECTOR_LOG": "true", "TOUCHPOINT_COLLECTOR_LOG_LOAD_MS": "300"}
COMMIT = {"TOUCHPOINT_COLLECTOR_LOG": "false"}  # the group commit, whatever the default


@pytest.mark.parametrize("env", [COMMIT, LOG_ON], ids=["commit", "collector-log"])
def test_acknowledged_events_survive_sigkill(make_server: Callable[..., Server], env: dict[str, str]) -> None:
    server = make_server(env)
    acked: set[str] = set()
    unacked: set[str] = set()
    lock = threading.Lock()
    stop = threading.Event()

    def sender(worker: int) -> None:
        with httpx.Client(auth=(server.write_key, ""), timeout=5.0) as http:
            n = 0
            while not stop.is_set() and n < 100_000:
                ids = [f"w{worker}-{n + k}-{uuid.uuid4().hex[:6]}" for k in range(20)]
                n += 20
                body = {
                    "batch": [{"type": "track", "userId": f"u{worker}", "event": "Tick", "messageId": m} for m in ids]
                }
                try:
                    ok = http.post(f"{server.url}/v1/batch", json=body).status_code == 200
                except httpx.HTTPError:
                    ok = False
                with lock:
                    (acked if ok else unacked).update(ids)
                if not ok:
                    time.sleep(0.05)

    threads = [threading.Thread(target=sender, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 30
    while len(acked) < 2000 and time.monotonic() < deadline:
        time.sleep(0.05)
    server.kill()  # SIGKILL while requests are in flight
    time.sleep(0.5)
    stop.set()
    for t in threads:
        t.join(30)
    assert len(acked) >= 2000, "the stream did not get going"
    if env is LOG_ON:  # the log holds acknowledged events the loader had not committed: the restart replays them
        assert list((server.data_dir / "collector-log").glob("*.seg")), "the log left no segment to replay"

    server.start()  # restart on the same data; the client retries what failed, and some of what succeeded
    retry = sorted(unacked) + sorted(acked)[:500]
    with httpx.Client(auth=(server.write_key, ""), timeout=10.0) as http:
        for start in range(0, len(retry), 500):
            body = {
                "batch": [
                    {"type": "track", "userId": "retry", "event": "Tick", "messageId": m}
                    for m in retry[start : start + 500]
                ]
            }
            assert http.post(f"{server.url}/v1/batch", json=body).status_code == 200
    server.stop()
    if env is LOG_ON:
        assert server.log is not None and "replayed" in server.log.read_text()

    wh = events_in(server.data_dir)
    stored = {r["message_id"] for r in wh.query("SELECT message_id FROM events").to_pylist()}
    total = wh.query("SELECT count(*) AS n FROM events").to_pylist()[0]["n"]
    wh.close()
    assert acked <= stored, f"{len(acked - stored)} acknowledged events were lost"
    assert unacked <= stored
    assert total == len(stored) == len(acked | unacked)  # nothing twice
