"""In-process servers with jobs of a test's choosing (a real uvicorn on 127.0.0.1, in a thread)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from tests.api.live import in_thread

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
    with ExitStack() as running:
        started: list[LiveServer] = []

        def start(jobs: Iterable[Job], **settings: object) -> LiveServer:
            config = Settings(data_dir=tmp_path / f"data-{len(started)}", **settings)  # type: ignore[arg-type]
            wh = open_warehouse(config)
            write_key = keys.create_source(wh, "web")
            admin_key = keys.create_api_key(wh, "ops", "admin")
            read_key = keys.create_api_key(wh, "analyst", "read")
            wh.close()
            url = running.enter_context(in_thread(create_app(config, jobs=list(jobs))))
            started.append(LiveServer(url, write_key, admin_key, read_key, config))
            return started[-1]

        yield start
