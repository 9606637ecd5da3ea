"""The collector's routes served directly (``touchpoint.api.direct``) answer exactly as through FastAPI."""

from __future__ import annotations

import base64
import gzip
from collections.abc import Iterator
from typing import Any

import msgspec
import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from touchpoint import keys
from touchpoint.api.app import create_app
from touchpoint.api.routes import collect
from touchpoint.config import Settings
from touchpoint.errors import Overloaded
from touchpoint.warehouse import open_warehouse


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TestClient, str, list[str]]]:
    settings = Settings(data_dir=tmp_path_factory.mktemp("direct") / "data", max_event_bytes=400)
    wh = open_warehouse(settings)
    write_key = keys.create_source(wh, "web")
    wh.close()
    app = create_app(settings)
    calls: list[str] = []

    async def counted(request: Any, kind: str) -> Any:
        calls.append(kind)
        return await collect.ingest(request, kind)

    app.direct_handler = counted  # type: ignore[attr-defined]
    with TestClient(app) as client:
        yield client, write_key, calls


EVENT = {"userId": "u1", "event": "Signed Up", "messageId": "m-1", "properties": {"plan": "pro"}}
BODIES = {
    "event": msgspec.json.encode(EVENT),
    "batch": msgspec.json.encode({"batch": [EVENT, {"type": "track", "userId": "u2"}, {"type": "nope"}]}),
    "bad type": msgspec.json.encode({"userId": 5.5, "event": ["x"]}),
    "not json": b"{nope",
    "array": b"[1, 2]",
    "empty": b"",
    "too big": msgspec.json.encode({"userId": "u", "event": "E", "properties": {"x": "y" * 600}}),
    "bad batch context": b'{"batch": [], "context": 5}',
    "bad utf-8": b'{"userId": "\xff", "event": "E"}',
}


def _headers(write_key: str, auth: str, origin: bool, encoding: str | None) -> dict[str, str]:
    headers: dict[str, str] = {"Content-Type": "application/json"}
    if auth == "basic":
        headers["Authorization"] = "Basic " + base64.b64encode(f"{write_key}:".encode()).decode()
    elif auth == "bearer":
        headers["Authorization"] = f"Bearer {write_key}"
    elif auth == "unknown":
        headers["Authorization"] = "Bearer nobody"
    elif auth == "malformed":
        headers["Authorization"] = "Basic %%%"
    if origin:
        headers["Origin"] = "https://shop.example"
    if encoding is not None:
        headers["Content-Encoding"] = encoding
    return headers


def _answer(client: TestClient, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes, list[Any]]:
    r = client.post(path, content=body, headers=headers, follow_redirects=False)
    kept = sorted((k, v) for k, v in r.headers.items() if k not in ("date", "x-request-id"))
    return r.status_code, r.content, kept


@hsettings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    path=st.sampled_from([*sorted(collect.KINDS), "/v1/nope", "/v1/track/"]),
    body=st.sampled_from(sorted(BODIES)),
    auth=st.sampled_from(["basic", "bearer", "unknown", "malformed", "none"]),
    origin=st.booleans(),
    encoding=st.sampled_from([None, "gzip", "br"]),
)
def test_direct_and_framework_answer_the_same(
    served: tuple[TestClient, str, list[str]], path: str, body: str, auth: str, origin: bool, encoding: str | None
) -> None:
    client, write_key, calls = served
    raw = BODIES[body]
    sent = gzip.compress(raw) if encoding == "gzip" else raw
    headers = _headers(write_key, auth, origin, encoding)
    app = client.app
    before = len(calls)
    app.direct = True  # type: ignore[attr-defined]
    direct = _answer(client, path, sent, headers)
    assert len(calls) == before + (path in collect.KINDS)  # the direct path took exactly the collector's paths
    app.direct = False  # type: ignore[attr-defined]
    try:
        framework = _answer(client, path, sent, headers)
    finally:
        app.direct = True  # type: ignore[attr-defined]
    assert len(calls) == before + (path in collect.KINDS)
    assert direct == framework


def test_unexpected_and_library_errors_keep_their_shape(
    served: tuple[TestClient, str, list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A 429 from the library and a bug (500 with a request id) answer the same on both paths."""
    client, write_key, _ = served
    headers = _headers(write_key, "basic", True, None)
    state = client.app.state.touchpoint  # type: ignore[attr-defined]
    for failure in (Overloaded("the collector is busy", retry_after=1), RuntimeError("a bug")):

        def refuse(*args: Any, failure: Exception = failure, **kwargs: Any) -> Any:
            raise failure

        monkeypatch.setattr(state.committer, "submit", refuse)
        answers = []
        for direct in (True, False):
            client.app.direct = direct  # type: ignore[attr-defined]
            answers.append(_answer(client, "/v1/track", BODIES["event"], headers | {"X-Request-ID": "req-1"}))
        client.app.direct = True  # type: ignore[attr-defined]
        assert answers[0] == answers[1]
        assert answers[0][0] == (429 if isinstance(failure, Overloaded) else 500)
