"""An unexpected exception in any route answers 500 in the one error shape, and the keep-alive connection
survives it: the client's next request on the same TCP connection is answered (issue 12)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from tests.api.live import in_thread

from touchpoint.api.app import create_app
from touchpoint.config import Settings


@pytest.fixture
def live_url(tmp_path: Any) -> Iterator[str]:
    app = create_app(Settings(data_dir=tmp_path / "data"))

    @app.get("/test/boom")
    def boom() -> None:
        raise RuntimeError("a bug with a secret inside: /etc/shadow")

    with in_thread(app) as url:
        yield url


def _client_end(response: httpx.Response) -> Any:
    return response.extensions["network_stream"].get_extra_info("client_addr")


def test_a_500_keeps_the_connection_and_hides_internals(live_url: str, caplog: pytest.LogCaptureFixture) -> None:
    with httpx.Client(base_url=live_url, timeout=30) as client, caplog.at_level(logging.ERROR):
        first = client.get("/healthz")
        assert first.status_code == 200
        boom = client.get("/test/boom")
        assert boom.status_code == 500
        rid = boom.headers["x-request-id"]
        assert boom.json() == {
            "success": False,
            "error": {
                "code": "internal_error",
                "message": "an unexpected error occurred",
                "hint": f"the server log has details under request id {rid}",
            },
            "request_id": rid,
        }
        assert "shadow" not in boom.text
        after = client.get("/healthz")
        assert after.status_code == 200
        assert _client_end(first) == _client_end(boom) == _client_end(after), "the connection was reset"
    assert any(f"unexpected error on GET /test/boom (request {rid})" in r.getMessage() for r in caplog.records)
