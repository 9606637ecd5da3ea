"""touchpoint's app served by uvicorn in a thread on 127.0.0.1 (:func:`in_thread`); :func:`live_app` adds a
write key, a read key and an admin key.

The tests that use it reach the app over real HTTP (httpx, keep-alive) and may look into its warehouse.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from fastapi.routing import APIRoute
from tests.conftest import free_port

from touchpoint import keys
from touchpoint.api.app import create_app
from touchpoint.config import Settings
from touchpoint.warehouse import Warehouse, open_warehouse


@dataclass
class LiveApp:
    url: str
    app: Any
    settings: Settings
    write_key: str
    read_key: str
    admin_key: str
    http: httpx.Client

    @property
    def warehouse(self) -> Warehouse:
        wh: Warehouse = self.app.state.touchpoint.warehouse
        return wh

    def auth(self, which: str) -> dict[str, str]:
        """Headers presenting the ``write``, ``read`` or ``admin`` key (``none``: no header)."""
        key = {"write": self.write_key, "read": self.read_key, "admin": self.admin_key}.get(which)
        return {"Authorization": f"Bearer {key}"} if key else {}


def api_routes(routes: Iterable[Any]) -> Iterator[APIRoute]:
    """Every APIRoute of an app's route list, also inside included routers (FastAPI keeps them wrapped)."""
    for route in routes:
        if isinstance(route, APIRoute):
            yield route
        elif hasattr(route, "original_router"):
            assert not route.include_context.prefix, "a router included with a prefix: add it to the paths"
            yield from api_routes(route.original_router.routes)


@contextmanager
def live_app(data_dir: Path, app_hook: Any = None, **changes: Any) -> Iterator[LiveApp]:
    """Serve ``create_app(Settings(data_dir=..., **changes))``; ``app_hook(app)`` may add test routes first."""
    settings = Settings(data_dir=data_dir, **{"run_jobs": False, **changes})
    wh = open_warehouse(settings)
    write_key = keys.create_source(wh, "live")
    read_key = keys.create_api_key(wh, "live-read", "read")
    admin_key = keys.create_api_key(wh, "live-admin", "admin")
    wh.close()
    app = create_app(settings)
    if app_hook is not None:
        app_hook(app)
    with in_thread(app) as url, httpx.Client(base_url=url, timeout=60.0) as http:
        yield LiveApp(url, app, settings, write_key, read_key, admin_key, http)


@contextmanager
def in_thread(app: Any, start_timeout_s: float = 60.0) -> Iterator[str]:
    """Serve ``app`` with uvicorn in a thread on a free port of 127.0.0.1; yield its base URL; stop it on exit."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="critical", lifespan="on"))
    thread = threading.Thread(target=server.run, name="live-uvicorn", daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + start_timeout_s
        while not server.started:
            assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(30)
