"""How a command finds the server of its data directory, and renders as it would in the client's terminal."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from touchpoint.cli import discovery
from touchpoint.cli.relay import _loopback_url, _rich_size
from touchpoint.cli.remote import stays_local
from touchpoint.config import Settings


def test_the_default_data_directory_is_the_settings_default() -> None:
    assert Path(discovery.DEFAULT_DATA_DIR) == Settings.model_fields["data_dir"].default


def test_the_data_directory_is_found_as_the_settings_find_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert discovery.data_dir_for(["query", "SELECT 1"]) == tmp_path / "touchpoint-data"
    (tmp_path / "touchpoint.toml").write_text('data_dir = "from-toml"\n')
    assert discovery.data_dir_for(["query", "SELECT 1"]) == tmp_path / "from-toml"
    monkeypatch.setenv("TOUCHPOINT_DATA_DIR", str(tmp_path / "from-env"))
    assert discovery.data_dir_for(["query", "SELECT 1"]) == tmp_path / "from-env"
    assert discovery.data_dir_for(["query", "x", "--data", "flag"]) == tmp_path / "flag"
    assert discovery.data_dir_for(["query", "x", "--data=eq"]) == tmp_path / "eq"
    assert discovery.data_dir_for(["query", "--", "--data", "not-an-option"]) == tmp_path / "from-env"
    assert Settings(data_dir=Path("flag")).data_dir.absolute() == discovery.data_dir_for(["--data", "flag"])


def test_a_garbled_discovery_file_is_ignored(tmp_path: Path) -> None:
    (tmp_path / discovery.FILE_NAME).write_text("{not json")
    os.chmod(tmp_path / discovery.FILE_NAME, 0o600)
    assert discovery.read(tmp_path) is None and discovery.live_server(tmp_path) is None


def test_a_dead_pid_makes_the_file_stale(tmp_path: Path) -> None:
    discovery.write(tmp_path, url="http://127.0.0.1:9", token="t", cwd="/")
    path = tmp_path / discovery.FILE_NAME
    path.write_text(path.read_text().replace(f'"pid": {os.getpid()}', '"pid": 999999999'))
    assert discovery.live_server(tmp_path) is None and not path.exists()


def test_help_and_version_never_leave_the_process() -> None:
    assert stays_local([]) and stays_local(["--help"]) and stays_local(["query", "--help"])
    assert stays_local(["--version"]) and not stays_local(["query", "SELECT 1"])
    assert not stays_local(["query", "--", "--help"])


def test_only_loopback_servers_are_announced() -> None:
    assert _loopback_url("127.0.0.1", 8000) == "http://127.0.0.1:8000"
    assert _loopback_url("0.0.0.0", 8000) == "http://127.0.0.1:8000"
    assert _loopback_url("::", 8000) == "http://[::1]:8000"
    assert _loopback_url("::1", 8000) == "http://[::1]:8000"
    assert _loopback_url("10.1.2.3", 8000) is None and _loopback_url("example.com", 8000) is None


def test_the_console_size_follows_rich() -> None:
    assert _rich_size({}, None, tty=False) == (80, 25)
    assert _rich_size({}, [132, 40], tty=True) == (132, 40)
    assert _rich_size({"COLUMNS": "100"}, [132, 40], tty=True) == (100, 40)
    assert _rich_size({"TERM": "dumb"}, [132, 40], tty=True) == (80, 25)
