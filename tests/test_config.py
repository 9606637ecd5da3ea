"""Settings: file, environment (wins), command line (wins), clear errors."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from touchpoint.config import Settings, get_settings, override_settings, reset_settings
from touchpoint.errors import ConfigError
from touchpoint.warehouse import Warehouse
from touchpoint.warehouse.adapters import engine_for


def test_defaults() -> None:
    s = get_settings()
    assert s.data_dir == Path("touchpoint-data") and s.port == 8000
    assert s.resolved_warehouse_url().endswith("touchpoint-data/warehouse.duckdb")


def test_file_then_environment_then_overrides(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "tp.toml"
    config.write_text('data_dir = "/srv/from-file"\nport = 9000\nhost = "0.0.0.0"\n')
    monkeypatch.setenv("TOUCHPOINT_CONFIG", str(config))
    monkeypatch.setenv("TOUCHPOINT_PORT", "9100")
    reset_settings()
    s = get_settings()
    assert (str(s.data_dir), s.port, s.host) == ("/srv/from-file", 9100, "0.0.0.0")
    assert override_settings(data_dir=tmp_path / "cli").data_dir == tmp_path / "cli"
    assert get_settings().port == 9100  # the rest stays


def test_missing_config_file_is_an_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TOUCHPOINT_CONFIG", str(tmp_path / "nope.toml"))
    reset_settings()
    with pytest.raises(ConfigError, match="does not exist"):
        get_settings()


def test_bad_values_name_the_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TOUCHPOINT_PORT", "eighty")
    reset_settings()
    with pytest.raises(ConfigError, match="port"):
        get_settings()
    with pytest.raises(ValueError, match="not a URL"):
        Settings(warehouse_url="warehouse.duckdb")


def test_unknown_engine_and_locked_file_are_explained(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no warehouse adapter for 'snowflake'"):
        engine_for("snowflake://acct/db")
    url = f"duckdb://{tmp_path / 'w.duckdb'}"
    Warehouse.open(url).close()
    with pytest.raises(Exception, match="there is no warehouse"):
        Warehouse.open(f"duckdb://{tmp_path / 'other' / 'x.duckdb'}", read_only=True)


def test_a_second_writer_is_told_who_holds_the_file(tmp_path: Path) -> None:
    import subprocess
    import sys

    path = tmp_path / "held.duckdb"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"import duckdb, time; c = duckdb.connect({str(path)!r}); print('ok', flush=True); time.sleep(60)",
        ],
        stdout=subprocess.PIPE,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == b"ok"
        with pytest.raises(Exception, match=r"open for writing by `python.* \(PID \d+\)"):
            Warehouse.open(f"duckdb://{path}")
    finally:
        holder.kill()
        holder.wait()
        if holder.stdout is not None:
            holder.stdout.close()


def test_a_server_leaves_the_interpreter_a_core(monkeypatch: pytest.MonkeyPatch) -> None:
    """`touchpoint serve` gives DuckDB one core fewer than the process may use unless duckdb_threads is set: the
    interpreter answering HTTP keeps a core during the collector's loads (docs/decisions.md, 2026-12-05)."""
    from touchpoint.cli.serve import engine_threads, serving_settings

    for cores, threads in ((1, None), (2, 1), (8, 7)):
        monkeypatch.setattr(os, "sched_getaffinity", lambda pid, n=cores: set(range(n)))
        assert engine_threads(None) == threads and engine_threads(3) == 3
        reset_settings()
        served = serving_settings(get_settings(), port=9001, host=None)
        assert (served.duckdb_threads, served.port, served.host) == (threads, 9001, "127.0.0.1")
    monkeypatch.setenv("TOUCHPOINT_DUCKDB_THREADS", "2")
    reset_settings()
    assert serving_settings(get_settings()).duckdb_threads == 2  # a configured value stands
