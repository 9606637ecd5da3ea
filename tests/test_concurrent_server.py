"""Many requests at once against a real ``touchpoint serve`` on loopback, as a dashboard makes them.

The warehouse is seeded first (events, identities, profiles, CLV predictions, an experiment, a
quarantined record). Every read request is made alone to record its answer; then 64 requests go at
once from threads over real HTTP: reads across every read endpoint, admin writes (experiments,
weights, profile updates) and collector batches. None may fail with a 5xx, and every read must
answer exactly as it did alone. The writes are chosen so they cannot change any answer read here
(new experiments, events of new visitors under an event name no read asks about, profile
updates that add those visitors' profiles); a profile's ``as_of``/``built_at`` stamps are the only
fields left out of the comparison.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import numpy as np
import pytest
from tests.conftest import Server, free_port

from touchpoint import identity, keys, profiles
from touchpoint.collect.store import write_messages
from touchpoint.experiments.definitions import Experiment, create_experiment
from touchpoint.predict.clv import ClvOptions, run_clv, write_predictions
from touchpoint.predict.summary import orders_from_events
from touchpoint.warehouse import Warehouse

pytestmark = pytest.mark.slow  # seeds identities, profiles and a CLV fit, then starts a server

START = dt.datetime(2025, 1, 6, 9)


def _shop(n: int = 300, seed: int = 5) -> list[dict[str, Any]]:
    """Visitors from two channels view a product; two in three sign up and buy by a BG/NBD process.

    Every order is stamped at the time of day twelve hours from now: a profile's ``days_since_last_order``
    counts whole days up to the build's ``as_of``, so the profile update during the test (a later
    ``as_of``) gives the same counts as the seed's build unless the test took half a day."""
    rng = np.random.default_rng(seed)
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None) + dt.timedelta(hours=12)
    phase = now - dt.datetime.combine(now.date(), dt.time())
    msgs: list[dict[str, Any]] = []
    for i in range(n):
        t = START + dt.timedelta(days=float(rng.uniform(0, 120)))
        anon = f"anon-{i}"
        campaign = (
            {"source": "google", "medium": "cpc", "name": "q1"}
            if i % 2
            else {"source": "news", "medium": "email", "name": "jan"}
        )
        msgs.append(
            {
                "type": "page",
                "anonymousId": anon,
                "timestamp": t.isoformat() + "Z",
                "properties": {"path": "/product/1", "url": "https://shop.example/product/1"},
                "context": {"campaign": campaign},
            }
        )
        if i % 3 == 0:
            continue
        msgs.append(
            {
                "type": "identify",
                "anonymousId": anon,
                "userId": f"c{i}",
                "timestamp": (t + dt.timedelta(minutes=1)).isoformat() + "Z",
                "traits": {"email": f"c{i}@shop.example", "plan": "pro" if i % 4 == 1 else "free"},
            }
        )
        lam, p = rng.gamma(0.8, 1 / 20.0), rng.beta(0.8, 2.5)
        when, k = t + dt.timedelta(minutes=3), 0
        while when < START + dt.timedelta(days=400):
            msgs.append(
                {
                    "type": "track",
                    "event": "Order Completed",
                    "userId": f"c{i}",
                    "timestamp": (dt.datetime.combine(when.date(), dt.time()) + phase).isoformat() + "Z",
                    "properties": {"order_id": f"o{i}-{k}", "revenue": round(float(rng.gamma(6, 4)), 2)},
                }
            )
            if rng.random() < p:
                break
            when, k = when + dt.timedelta(days=float(rng.exponential(1 / lam))), k + 1
    return msgs


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, dict[str, str], dict[str, str], str]]:
    data = tmp_path_factory.mktemp("concurrent") / "data"
    wh = Warehouse.open(f"duckdb://{data / 'warehouse.duckdb'}")
    write_messages(wh, _shop(), source="seed")
    write_messages(wh, [{"type": "track", "event": 12, "userId": "bad"}], source="seed")  # quarantined
    identity.rebuild(wh)
    profiles.build(wh)  # as of now, as the profile updates below build them
    run = run_clv(wh, orders_from_events(wh), ClvOptions())
    write_predictions(wh, run)
    purchase = {"name": "purchase", "kind": "binomial", "event": "Order Completed"}
    create_experiment(wh, Experiment(key="banner", metrics=[purchase]))  # type: ignore[list-item]
    create_experiment(wh, Experiment(key="weights", metrics=[purchase]))  # type: ignore[list-item]
    write_key = keys.create_source(wh, "web")
    read = {"Authorization": f"Bearer {keys.create_api_key(wh, 'reader', 'read')}"}
    admin = {"Authorization": f"Bearer {keys.create_api_key(wh, 'admin', 'admin')}"}
    wh.close()
    server = Server(data, free_port(), write_key)
    server.start()
    try:
        yield server, read, admin, write_key
    finally:
        server.stop()


def _reads(base: str, read: dict[str, str], quarantine_id: str) -> list[tuple[str, str, dict[str, Any]]]:
    """(method, url, httpx kwargs) of one request to every read endpoint."""
    h = {"headers": read}
    return [
        ("GET", "/v1/journeys/funnel", {**h, "params": {"steps": ["page", "Order Completed"]}}),
        ("GET", "/v1/journeys/funnel", {**h, "params": {"steps": ["page", "Order Completed"], "breakdown": "channel"}}),
        ("GET", "/v1/journeys/paths", {**h, "params": {"anchor": "Order Completed", "direction": "to"}}),
        ("GET", "/v1/journeys/retention", {**h, "params": {"cohort": "first_order", "returning": "order"}}),
        ("GET", "/v1/attribution", {**h, "params": {"model": ["markov", "last", "first"]}}),
        ("GET", "/v1/profiles", {**h, "params": {"plan": "pro"}}),
        ("GET", "/v1/profiles/c1", h),
        ("GET", "/v1/profiles/c1@shop.example/events", h),
        ("GET", "/v1/profiles/nobody-at-all", h),  # 404, the same every time
        ("GET", "/v1/predictions", {**h, "params": {"limit": 10}}),
        ("GET", "/v1/predictions/summary", h),
        ("GET", "/v1/predictions/c2", h),
        ("GET", "/v1/experiments/banner", h),
        ("GET", "/v1/experiments", {**h, "params": {"kind": "holdout"}}),
        ("GET", "/v1/experiments/plan/sample-size", {**h, "params": {"baseline": 0.1, "mde": 0.02}}),
        ("GET", "/v1/mmm/model", h),  # 404: no fit saved
        ("GET", "/v1/quarantine", h),
        ("GET", f"/v1/quarantine/{quarantine_id}", h),
        ("GET", "/healthz", {}),
    ]


def _same(a: Any, b: Any) -> bool:
    """Equal, floats to 1e-9 relative: DuckDB sums floats in parallel, so their last bits vary run to run."""
    if isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


def _first_difference(a: Any, b: Any, path: str = "") -> str:
    if isinstance(a, dict) and isinstance(b, dict) and a.keys() == b.keys():
        return next((_first_difference(a[k], b[k], f"{path}.{k}") for k in a if not _same(a[k], b[k])), "")
    if isinstance(a, list | tuple) and isinstance(b, list | tuple) and len(a) == len(b):
        return next(
            (
                _first_difference(x, y, f"{path}[{i}]")
                for i, (x, y) in enumerate(zip(a, b, strict=True))
                if not _same(x, y)
            ),
            "",
        )
    return f"{path}: {a!r} != {b!r}"


def _without(value: Any, keys: set[str]) -> Any:
    if isinstance(value, dict):
        return {k: _without(v, keys) for k, v in value.items() if k not in keys}
    if isinstance(value, list):
        return [_without(v, keys) for v in value]
    return value


def _normal(url: str, response: httpx.Response) -> Any:
    """What must be equal: the status and the body (health's commit counters change with every batch)."""
    body = response.json()
    if url.startswith("/v1/profiles"):
        # a profile update stamps when it ran, and moves the identity watermark pending events are read from
        body = _without(body, {"as_of", "built_at", "watermark"})
    if url == "/healthz":
        body = {"status": body["status"], "version": body["version"]}
    return response.status_code, body


def test_64_concurrent_mixed_requests_answer_as_if_alone(
    served: tuple[Server, dict[str, str], dict[str, str], str],
) -> None:
    server, read, admin, write_key = served
    with httpx.Client(base_url=server.url, timeout=120.0) as client:
        quarantined = client.get("/v1/quarantine", headers=read).json()["records"]
        assert len(quarantined) == 1
        reads = _reads(server.url, read, quarantined[0]["id"])
        alone = {i: _normal(url, client.request(method, url, **kw)) for i, (method, url, kw) in enumerate(reads)}
        assert sum(1 for status, _ in alone.values() if status == 200) >= 15, alone

    requests: list[tuple[str, str, str, dict[str, Any], int | None]] = []  # kind, method, url, kwargs, read index
    for n in range(64):
        slot = n % 8
        if slot < 5:
            i = (n * 7) % len(reads)
            method, url, kw = reads[i]
            requests.append(("read", method, url, kw, i))
        elif slot == 5:
            batch = [
                {"type": "track", "event": "Load Probe", "anonymousId": f"probe-{n}-{k}", "messageId": f"p{n}-{k}"}
                for k in range(20)
            ]
            requests.append(("collect", "POST", "/v1/batch", {"json": {"batch": batch}, "auth": (write_key, "")}, None))
        elif slot == 6:
            body = {"key": f"exp-{n}", "metrics": [{"name": "p", "kind": "binomial", "event": "Load Probe"}]}
            requests.append(("admin", "POST", "/v1/experiments", {"json": body, "headers": admin}, None))
        elif n % 16 == 7:
            requests.append(("admin", "POST", "/v1/profiles/update", {"headers": admin}, None))
        else:
            body = {"weights": [0.5, 0.5] if n % 3 else [0.4, 0.6]}
            requests.append(("admin", "PUT", "/v1/experiments/weights/weights", {"json": body, "headers": admin}, None))
    assert len(requests) == 64

    def send(req: tuple[str, str, str, dict[str, Any], int | None]) -> httpx.Response:
        _, method, url, kw, _ = req
        with httpx.Client(base_url=server.url, timeout=120.0) as c:
            return c.request(method, url, **kw)

    with ThreadPoolExecutor(max_workers=64) as pool:
        responses = list(pool.map(send, requests))

    failures = [
        (r[2], resp.status_code, resp.text[:300])
        for r, resp in zip(requests, responses, strict=True)
        if resp.status_code >= 500
    ]
    assert failures == []
    for (kind, _, url, _, index), resp in zip(requests, responses, strict=True):
        if kind == "read":
            assert index is not None
            assert _same(_normal(url, resp), alone[index]), (url, _first_difference(_normal(url, resp), alone[index]))
        elif kind == "collect":
            assert resp.json() == {"success": True, "accepted": 20, "quarantined": 0}, resp.text
        elif url == "/v1/experiments":
            assert resp.status_code == 201 and resp.json()["key"].startswith("exp-"), resp.text
        else:
            assert resp.status_code == 200, (url, resp.text)

    with httpx.Client(base_url=server.url, timeout=60.0) as client:
        listed = client.get("/v1/experiments", headers=read).json()["experiments"]
        assert len([e for e in listed if e["key"].startswith("exp-")]) == 8
        # every collected event was stored once, and the profile update saw a consistent log
        update = client.post("/v1/profiles/update", headers=admin)
        assert update.status_code == 200, update.text
        for i, (method, url, kw) in enumerate(reads):
            again = _normal(url, client.request(method, url, **kw))
            assert _same(again, alone[i]), (url, _first_difference(again, alone[i]))
        for n in (5, 61):
            events = client.get(f"/v1/profiles/probe-{n}-19/events", headers=read)
            assert events.status_code == 200 and events.json()["total"] == 1, events.text
