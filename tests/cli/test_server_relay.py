"""Who may run commands through a running server, and what happens when the server is gone.

The CLI endpoint answers the holder of the discovery file's token on loopback, and nobody else: no
token, a wrong one, an API key (even an admin's), a browser (an Origin header), a proxy, a rebound host name.
A discovery file left by a server killed with ``kill -9`` (or naming a PID some other program now has)
is ignored, and commands open the warehouse themselves.
"""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from tests.conftest import Server, free_port, run_cli

from touchpoint import keys
from touchpoint.cli import discovery
from touchpoint.cli.remote import RUN_PATH
from touchpoint.warehouse import Warehouse

pytestmark = pytest.mark.slow  # real servers
ADMIN: list[str] = []  # the module's server's admin API key


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    data = tmp_path_factory.mktemp("relay") / "data"
    wh = Warehouse.open(f"duckdb://{data / 'warehouse.duckdb'}")
    ADMIN.append(keys.create_api_key(wh, "boss", "admin"))
    wh.close()
    served = Server(data, free_port(), write_key="", jobs=True)  # `jobs run` asks its runner
    try:
        served.start()
        yield served
    finally:
        served.stop()


@pytest.fixture
def own_server(tmp_path: Path) -> Iterator[Server]:
    """A server of this test alone (it will be killed or stopped)."""
    data = tmp_path / "own"
    wh = Warehouse.open(f"duckdb://{data / 'warehouse.duckdb'}")
    keys.create_source(wh, "test-source")
    wh.close()
    server = Server(data, free_port(), write_key="")
    try:
        server.start()
        yield server
    finally:
        server.stop()


def _body(server: Server, argv: list[str]) -> dict[str, object]:
    return {"argv": argv, "cwd": os.getcwd(), "data_dir": str(server.data_dir), "stdout_tty": False}


def test_the_discovery_file_is_private_and_names_this_server(server: Server) -> None:
    path = server.data_dir / discovery.FILE_NAME
    assert path.stat().st_mode & 0o777 == 0o600
    found = discovery.read(server.data_dir)
    assert found is not None and found.pid == server.process.pid  # type: ignore[union-attr]
    assert found.url == server.url and len(found.token) >= 40


def test_the_token_runs_a_command_and_streams_its_exit_code(server: Server) -> None:
    found = discovery.read(server.data_dir)
    assert found is not None
    headers = {"Authorization": f"Bearer {found.token}"}
    r = httpx.post(f"{server.url}{RUN_PATH}", json=_body(server, ["keys", "list", "--json"]), headers=headers)
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/x-ndjson")
    frames = [json.loads(line) for line in r.text.splitlines()]
    assert frames[-1] == {"exit": 0}
    assert [k["name"] for k in json.loads("".join(f.get("out", "") for f in frames))] == ["boss"]


def test_debug_is_the_clients_alone(server: Server, capsys: pytest.CaptureFixture[str]) -> None:
    data = str(server.data_dir)
    code, _, err = run_cli(capsys, "--debug", "profiles", "show", "nobody@example.com", "--data", data)
    assert code == 1 and "Traceback" in err and "NotFound" in err
    code, _, err = run_cli(capsys, "profiles", "show", "nobody@example.com", "--data", data)
    assert code == 1 and "Traceback" not in err and err.startswith("error:")  # the server's state did not change


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer wrong-token"},
        {"Authorization": "Basic Zm9vOg=="},
    ],
    ids=["no token", "wrong token", "basic auth"],
)
def test_a_missing_or_wrong_token_is_refused(server: Server, headers: dict[str, str]) -> None:
    r = httpx.post(f"{server.url}{RUN_PATH}", json=_body(server, ["keys", "create", "evil"]), headers=headers)
    assert r.status_code == 401 and r.json()["error"]["code"] == "unauthorized"
    assert "evil" not in r.text


def test_an_admin_api_key_cannot_run_commands(server: Server) -> None:
    admin = ADMIN[0]
    assert httpx.get(f"{server.url}/v1/keys", headers={"Authorization": f"Bearer {admin}"}).status_code == 200
    # an API key works on the API, never on the CLI endpoint (a command line reads and writes files)
    for headers in ({"Authorization": f"Bearer {admin}"}, {"X-API-Key": admin}):
        r = httpx.post(f"{server.url}{RUN_PATH}", json=_body(server, ["keys", "list"]), headers=headers)
        assert r.status_code == 401


@pytest.mark.parametrize(
    "extra",
    [
        {"Origin": "http://evil.example"},
        {"Host": "evil.example"},
        {"Host": "rebind.evil.example:8000"},
        {"X-Forwarded-For": "203.0.113.9"},
        {"Forwarded": "for=203.0.113.9"},
    ],
    ids=["browser origin", "foreign host", "rebound host", "proxied", "proxied (RFC 7239)"],
)
def test_browsers_and_rebound_host_names_are_refused(server: Server, extra: dict[str, str]) -> None:
    found = discovery.read(server.data_dir)
    assert found is not None
    headers = {"Authorization": f"Bearer {found.token}", **extra}
    r = httpx.post(f"{server.url}{RUN_PATH}", json=_body(server, ["keys", "list"]), headers=headers)
    assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden"


def test_bad_requests_with_the_token_are_refused_cleanly(server: Server) -> None:
    found = discovery.read(server.data_dir)
    assert found is not None
    headers = {"Authorization": f"Bearer {found.token}"}
    url = f"{server.url}{RUN_PATH}"
    bad = [
        b"not json",
        json.dumps({"argv": "keys list", "cwd": "/"}).encode(),
        json.dumps({"argv": ["keys", "list"], "cwd": "relative"}).encode(),
        json.dumps({"argv": ["x"] * 5000, "cwd": "/", "data_dir": str(server.data_dir)}).encode(),
        json.dumps({"argv": ["keys", "list"], "cwd": "/", "data_dir": "/somewhere/else"}).encode(),
        json.dumps({"argv": ["serve"], "cwd": "/", "data_dir": str(server.data_dir)}).encode(),
    ]
    for content in bad:
        r = httpx.post(url, content=content, headers=headers)
        assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_input", r.text
    assert httpx.get(f"{server.url}/healthz").status_code == 200
    assert RUN_PATH not in httpx.get(f"{server.url}/openapi.json").text  # not part of the public API


def test_a_discovery_file_others_can_read_is_not_trusted(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    discovery.write(data, url="http://127.0.0.1:9", token="t", cwd="/")
    os.chmod(data / discovery.FILE_NAME, 0o644)
    assert discovery.read(data) is None


def test_a_killed_servers_discovery_file_is_ignored(own_server: Server, capsys: pytest.CaptureFixture[str]) -> None:
    server = own_server
    assert discovery.live_server(server.data_dir) is not None
    server.kill()  # SIGKILL: the file stays behind
    assert (server.data_dir / discovery.FILE_NAME).exists()
    code, out, err = run_cli(capsys, "sources", "list", "--data", str(server.data_dir), "--json")
    assert code == 0, err
    assert [s["name"] for s in json.loads(out)] == ["test-source"]  # ran here, on the file itself
    assert not (server.data_dir / discovery.FILE_NAME).exists()  # the stale file was removed


def test_a_reused_pid_with_nothing_listening_is_ignored(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "data"
    Warehouse.open(f"duckdb://{data / 'warehouse.duckdb'}").close()
    # this test's own PID is alive, and nothing listens on the port: as after `kill -9` and PID reuse
    discovery.write(data, url=f"http://127.0.0.1:{free_port()}", token="t", cwd="/")
    code, out, err = run_cli(capsys, "sources", "list", "--data", str(data), "--json")
    assert code == 0 and json.loads(out) == [], err


def test_a_stopped_server_removes_its_discovery_file(own_server: Server) -> None:
    server = own_server
    assert (server.data_dir / discovery.FILE_NAME).exists()
    assert server.process is not None
    server.process.send_signal(signal.SIGTERM)
    server.process.wait(30)
    assert not (server.data_dir / discovery.FILE_NAME).exists()


def test_jobs_run_through_the_server_is_the_runners_run(server: Server, capsys: pytest.CaptureFixture[str]) -> None:
    """`touchpoint jobs run` beside a server asks the server's runner, so it never overlaps the runner's own run."""
    data = str(server.data_dir)
    code, out, err = run_cli(capsys, "jobs", "run", "profiles", "--data", data, "--json")
    assert code == 0, err
    run = json.loads(out)
    assert run["job"] == "profiles" and run["trigger"] == "manual" and run["status"] in ("succeeded", "skipped")
    code, out, err = run_cli(capsys, "jobs", "show", "profiles", "--data", data, "--json")
    assert code == 0, err
    assert run["run_id"] in [r["run_id"] for r in json.loads(out)["history"]]
    code, out, _ = run_cli(capsys, "jobs", "list", "--data", data, "--json")
    assert code == 0 and json.loads(out)["served"] is True  # the runner's own view, not the run log's
    profiles = next(j for j in json.loads(out)["jobs"] if j["name"] == "profiles")
    assert profiles["last_run"]["run_id"] == run["run_id"] or profiles["last_run"]["started_at"] > run["started_at"]
