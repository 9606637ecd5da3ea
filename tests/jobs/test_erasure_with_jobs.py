"""An erasure on a server whose jobs run answers 200: the job threads, idle between ticks, hold no transaction
that would make the erasure's compaction (its CHECKPOINT) refuse (a 500 on the demo before the fix)."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable

import pytest

from touchpoint.jobs import JOBS

from .conftest import LiveServer

pytestmark = pytest.mark.slow


def test_an_erasure_succeeds_while_the_profiles_and_audiences_jobs_run(
    live_server: Callable[..., LiveServer],
) -> None:
    jobs = [JOBS["profiles"], dataclasses.replace(JOBS["audiences"], every=0.5)]
    server = live_server(jobs)
    buyers = {"event": "Order Completed", "count": {"gte": 1}, "within_days": 30}
    with server.client() as admin, server.client(server.write_key) as collector:
        assert admin.post("/v1/audiences", json={"name": "buyers", "definition": buyers}).status_code == 201
        collector.auth = (server.write_key, "")
        del collector.headers["Authorization"]
        batch = [
            {
                "type": "track",
                "userId": f"u{i % 40}",
                "event": "Order Completed",
                "messageId": f"m{i}",
                "properties": {"order_id": f"o{i}", "revenue": 10 + i % 7},
            }
            for i in range(400)
        ]
        assert collector.post("/v1/batch", json={"batch": batch}).status_code == 200
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:  # both jobs have run on the events: their threads are idle again
            members = admin.get("/v1/audiences/buyers/members", params={"limit": 100}).json()["members"]
            if len(members) == 40:
                break
            time.sleep(0.3)
        assert len(members) == 40
        for user in ("u1", "u2", "u3"):
            r = admin.post("/v1/privacy/erase", json={"identifier": user})
            assert r.status_code == 200, r.text
        assert admin.get("/v1/profiles/u1").status_code == 404
        assert admin.get("/v1/profiles/u4").status_code == 200
