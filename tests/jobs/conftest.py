"""In-process servers with jobs of a test's choosing (a real uvicorn on 127.0.0.1, in a thread)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import uvicorn
from tests.conftest import free_port

from touchpoint import keys
from touchpoint.api.app import create_app
from touchpoint.config import Settings
from touchpoint.jobs import Job
from touchpoint.warehouse import open_warehouse


@dataclass
class LiveServer:
    url: str
    write_key: str
    admin_key: str
    read_key: str
    settings: Settings

    def client(self, key: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {key or self.admin_key}"}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30)


@pytest.fixture
def live_server(tmp_path: Path) -> Iterator[Callable[..., LiveServer]]:
    servers: list[tuple[uvicorn.Server, threading.Thread]] = []

    def start(jobs: Iterable[Job], **settings: object) -> LiveServer:
        config = Settings(data_dir=tmp_path / f"data-{len(servers)}", **settings)  # type: ignore[arg-type]
        wh = open_warehouse(config)
        write_key = keys.create_source(wh, "web")
        admin_key = keys.create_api_key(wh, "ops", "admin")
        read_key = keys.create_api_key(wh, "analyst", "read")
        wh.close()
        app = create_app(config, jobs=list(jobs))
        port = free_port()
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="critical", lifespan="on"))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        servers.append((server, thread))
        deadline = time.monotonic() + 60
        while not server.started:
            assert time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.05)
        return LiveServer(f"http://127.0.0.1:{port}", write_key, admin_key, read_key, config)

    yield start
    for server, thread in servers:
        server.should_exit = True
        thread.join(60)
