"""Regressions from probing a running server as an attacker and a careless client would (issue 12)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from touchpoint import keys
from touchpoint.api.app import create_app
from touchpoint.config import Settings
from touchpoint.errors import InvalidInput
from touchpoint.warehouse import Warehouse


def _client(settings: Settings) -> Iterator[tuple[TestClient, dict[str, str], str]]:
    with TestClient(create_app(settings)) as c:
        wh: Warehouse = c.app.state.touchpoint.warehouse  # type: ignore[attr-defined]
        admin = keys.create_api_key(wh, "boss", "admin")
        write_key = keys.create_source(wh, "web")
        yield c, {"Authorization": f"Bearer {admin}"}, write_key


@pytest.fixture
def client(settings: Settings) -> Iterator[tuple[TestClient, dict[str, str], str]]:
    yield from _client(settings)


# -- the Host header is never trusted ------------------------------------------------------------


def _segment(client: TestClient, write_key: str, **headers: str) -> dict[str, str]:
    r = client.get(f"/v1/projects/{write_key}/settings", headers=headers)
    assert r.status_code == 200, r.text
    segment: dict[str, str] = r.json()["integrations"]["Segment.io"]
    return segment


def test_settings_never_echo_the_host_header(client: tuple[TestClient, dict[str, str], str]) -> None:
    c, _, write_key = client
    segment = _segment(c, write_key, Host="evil.example")
    assert "evil" not in str(segment)
    assert segment["apiHost"] == "127.0.0.1:8000/v1" and segment["protocol"] == "http"


def test_settings_use_the_configured_public_url(settings: Settings) -> None:
    configured = settings.model_copy(update={"public_url": "https://collect.example.com/tp/"})
    configured = Settings.model_validate(configured.model_dump())
    for c, _, write_key in _client(configured):
        segment = _segment(c, write_key, Host="evil.example", **{"X-Forwarded-Host": "evil.example"})
        assert segment["apiHost"] == "collect.example.com/tp/v1" and segment["protocol"] == "https"


@pytest.mark.parametrize(
    ("host", "port", "expected"),
    [
        ("127.0.0.1", 8000, "http://127.0.0.1:8000"),
        ("0.0.0.0", 9000, "http://127.0.0.1:9000"),
        ("::", 80, "http://[::1]:80"),
    ],
)
def test_the_default_public_url_comes_from_the_bind_address(host: str, port: int, expected: str) -> None:
    assert Settings(host=host, port=port).resolved_public_url() == expected


@pytest.mark.parametrize("url", ["collect.example.com", "ftp://x", "https://", "https://x/?a=1"])
def test_a_bad_public_url_is_refused(url: str) -> None:
    with pytest.raises(ValueError, match="public_url"):
        Settings(public_url=url)


# -- quotes in property keys answer 400, and bad metrics are refused at creation -----------------


@pytest.mark.parametrize("breakdown", ['properties.a"b', "properties.a'b", "properties.a\x00b"])
def test_a_funnel_breakdown_with_a_quote_is_400(client: tuple[TestClient, dict[str, str], str], breakdown: str) -> None:
    c, admin, write_key = client
    c.post("/v1/track", json={"userId": "u", "event": "A", "properties": {'a"b': 1}}, auth=(write_key, ""))
    r = c.get("/v1/journeys/funnel", params={"steps": ["A", "B"], "breakdown": breakdown}, headers=admin)
    assert r.status_code == 400, r.text
    message = r.json()["error"]["message"]
    assert "breakdown" in message and "cannot be read by name" in message


def test_a_metric_with_a_quote_is_refused_at_creation(client: tuple[TestClient, dict[str, str], str]) -> None:
    c, admin, _ = client
    body = {
        "key": "banner",
        "metrics": [{"name": "spend", "kind": "mean", "event": "Order Completed", "value": 'properties.a"b'}],
    }
    r = c.post("/v1/experiments", json=body, headers=admin)
    assert r.status_code == 400, r.text
    assert "metric 'spend': value 'properties.a\"b'" in r.json()["error"]["message"]
    assert c.get("/v1/experiments/banner", headers=admin).status_code == 404  # nothing was stored
    body["metrics"][0]["value"] = "properties.amount"
    assert c.post("/v1/experiments", json=body, headers=admin).status_code == 201


def test_an_analysis_dimension_with_a_quote_is_400(client: tuple[TestClient, dict[str, str], str]) -> None:
    c, admin, _ = client
    body = {"key": "hero", "metrics": [{"name": "buy", "kind": "binomial", "event": "Order Completed"}]}
    assert c.post("/v1/experiments", json=body, headers=admin).status_code == 201
    for dimension in ("properties.x'y", 'context.a"b.c'):
        r = c.post("/v1/experiments/hero/analysis", params={"dimension": dimension}, headers=admin)
        assert r.status_code == 400 and "cannot be read by name" in r.json()["error"]["message"], r.text


def test_the_cli_metric_spec_refuses_quotes_too() -> None:
    from touchpoint.experiments.metrics import Metric

    with pytest.raises(InvalidInput, match="cannot be read by name"):
        Metric.parse("spend:mean:Order Completed:properties.it's")
