"""Regressions from probing a running server as an attacker and a careless client would (issue 12)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from tests.conftest import Server

from touchpoint import keys
from touchpoint.api.app import create_app
from touchpoint.config import Settings
from touchpoint.errors import InvalidInput, WarehouseLocked
from touchpoint.warehouse import Warehouse, open_warehouse
from touchpoint.warehouse.lockholder import lock_holder
from touchpoint.warehouse.private_files import private_dir, write_private


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
    # The route validates the library's Metric itself, so the refusal is the API's request-validation answer.
    assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_input", r.text
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


# -- files holding data or keys are private ------------------------------------------------------


def _mode(path: Path) -> int:
    return path.stat().st_mode & 0o777


def test_a_new_data_directory_and_the_warehouse_are_private(tmp_path: Path) -> None:
    data = tmp_path / "fresh" / "data"
    wh = open_warehouse(Settings(data_dir=data))
    keys.create_source(wh, "web")  # writes, so the WAL exists too
    wal = data / "warehouse.duckdb.wal"
    wh.close()
    assert _mode(data) == 0o700 and _mode(data.parent) == 0o700
    assert _mode(data / "warehouse.duckdb") == 0o600
    assert not wal.exists() or _mode(wal) == 0o600


def test_an_existing_warehouse_file_is_tightened_but_not_the_users_directory(tmp_path: Path) -> None:
    tmp_path.chmod(0o755)
    open_warehouse(Settings(data_dir=tmp_path)).close()
    (tmp_path / "warehouse.duckdb").chmod(0o644)
    open_warehouse(Settings(data_dir=tmp_path)).close()
    assert _mode(tmp_path / "warehouse.duckdb") == 0o600
    assert _mode(tmp_path) == 0o755  # --data . must not lock the user out of their own directory


def test_demo_key_files_are_written_private(tmp_path: Path) -> None:
    from touchpoint.demo.run import _demo_keys

    folder = private_dir(tmp_path / "data" / "demo")
    (folder / "keys.json").write_text("{}")
    (folder / "keys.json").chmod(0o644)  # left by an older version
    with open_warehouse(Settings(data_dir=tmp_path / "data")) as wh:
        saved = _demo_keys(wh, folder)
    assert _mode(folder / "keys.json") == 0o600 and saved["admin_key"].startswith("tpk_a_")
    assert _mode(folder) == 0o700
    write_private(folder / "summary.json", json.dumps({"keys": saved}))
    assert _mode(folder / "summary.json") == 0o600


# -- the lock message names the process that holds the file --------------------------------------


def _hold(path: Path, *argv: str) -> subprocess.Popen[bytes]:
    """A process whose command line is ``argv`` (after the interpreter's) holding ``path`` for writing."""
    code = f"import duckdb, time; c = duckdb.connect({str(path)!r}); print('ok', flush=True); time.sleep(60)"
    holder = subprocess.Popen([sys.executable, "-c", code, *argv], stdout=subprocess.PIPE)
    assert holder.stdout is not None and holder.stdout.readline().strip() == b"ok"
    return holder


def _stop(holder: subprocess.Popen[bytes]) -> None:
    holder.kill()
    holder.wait()
    if holder.stdout is not None:
        holder.stdout.close()


def test_a_concurrent_import_is_not_blamed_on_serve(tmp_path: Path) -> None:
    path = tmp_path / "warehouse.duckdb"
    Warehouse.open(f"duckdb://{path}").close()
    holder = _hold(path, "touchpoint", "import", "events", "big.jsonl")
    try:
        with pytest.raises(WarehouseLocked) as info:
            Warehouse.open(f"duckdb://{path}")
    finally:
        _stop(holder)
    message, hint = info.value.message, info.value.hint or ""
    assert f"`touchpoint import events big.jsonl` (PID {holder.pid})" in message
    assert "serve" not in message + hint and "wait for it to finish" in hint


def test_any_other_holder_is_named_by_its_command_line(tmp_path: Path) -> None:
    path = tmp_path / "warehouse.duckdb"
    holder = _hold(path, "--my-own-tool")
    try:
        with pytest.raises(WarehouseLocked) as info:
            Warehouse.open(f"duckdb://{path}", read_only=True)
    finally:
        _stop(holder)
    assert f"(PID {holder.pid})" in info.value.message and "--my-own-tool" in info.value.message
    assert "serve" not in (info.value.hint or "") and f"process {holder.pid}" in (info.value.hint or "")


def test_the_pid_is_checked_against_the_kernels_lock_table(tmp_path: Path) -> None:
    path = tmp_path / "warehouse.duckdb"
    holder = _hold(path)
    try:
        found = lock_holder(str(path), "Conflicting lock is held in /usr/bin/x (PID 1)")  # a wrong PID
    finally:
        _stop(holder)
    if Path("/proc/locks").exists():
        assert found.pid == holder.pid and found.confirmed


def test_a_running_server_is_named_as_such(make_server: Callable[[], Server]) -> None:
    server = make_server()
    with pytest.raises(WarehouseLocked) as info:
        Warehouse.open(f"duckdb://{server.data_dir / 'warehouse.duckdb'}")
    assert "`touchpoint serve" in info.value.message and "stop it" in (info.value.hint or "")


@pytest.mark.parametrize(("field", "value"), [("window_days", 1e300), ("covariate_days", 1e300), ("window_days", 0)])
def test_metric_windows_out_of_range_are_refused_at_creation(
    client: tuple[TestClient, dict[str, str], str], field: str, value: float
) -> None:
    c, admin, _ = client
    metric = {"name": "spend", "kind": "mean", "event": "Order Completed", "value": "revenue", field: value}
    r = c.post("/v1/experiments", json={"key": "long", "metrics": [metric]}, headers=admin)
    assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_input", r.text
    assert f"{field} {value}" in r.json()["error"]["message"], r.text


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (("/venv/bin/touchpoint", "serve", "--port", "8000"), "a running `touchpoint serve` holds it"),
        (("/venv/bin/python3", "/venv/bin/touchpoint", "demo"), "`touchpoint demo` holds it (it serves once loaded)"),
        (("python", "-m", "touchpoint.cli.main", "import", "events", "x.jsonl"), "wait for it to finish"),
    ],
)
def test_the_lock_hint_fits_the_holder(argv: tuple[str, ...], expected: str) -> None:
    from touchpoint.warehouse.lockholder import LockHolder

    assert expected in LockHolder(pid=12345, argv=argv, confirmed=True).hint()
