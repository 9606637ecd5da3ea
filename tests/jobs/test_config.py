"""`[jobs.NAME]` in touchpoint.toml: applied, validated with errors naming the key and the allowed values,
and documented (a registered job or a job setting missing from the docs fails here)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tests.conftest import run_cli

from touchpoint.config import JobSettings, Settings, get_settings, parse_cadence
from touchpoint.errors import ConfigError
from touchpoint.jobs import JOBS, Job, configured

DOCS = Path(__file__).resolve().parents[2] / "docs"


def _toml(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str) -> None:
    path = tmp_path / "touchpoint.toml"
    path.write_text(f'data_dir = "{tmp_path / "data"}"\n' + text)
    monkeypatch.setenv("TOUCHPOINT_CONFIG", str(path))


def test_cadence_from_the_file_is_applied(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _toml(
        tmp_path,
        monkeypatch,
        '[jobs.profiles]\nevery = "5s"\n[jobs.mmm]\nenabled = false\n[jobs.predictions]\nevery = "daily"\n',
    )
    jobs = {job.name: job for job in configured(get_settings())}
    assert jobs["profiles"].every == 5.0 and jobs["profiles"].trigger == "events"
    assert jobs["mmm"].enabled is False and jobs["mmm"].every == JOBS["mmm"].every
    assert jobs["predictions"].every == 86400.0
    assert jobs["attribution"] == JOBS["attribution"]  # untouched


@pytest.mark.parametrize(("every", "seconds"), [("2.0", 2.0), ("3", 3.0), ("0.5", 0.5)])
def test_a_bare_number_is_seconds(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, every: str, seconds: float) -> None:
    _toml(tmp_path, monkeypatch, f"[jobs.profiles]\nevery = {every}\n")  # a TOML number, not a string
    assert {job.name: job for job in configured(get_settings())}["profiles"].every == seconds


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('[jobs.profiles]\nevery = "5x"\n', ["jobs.profiles.every", "'5x'", "hourly, daily, weekly"]),
        ('[jobs.profiles]\nevery = "0s"\n', ["jobs.profiles.every", "between 0.1s and 366d"]),
        ("[jobs.profiles]\nevery = true\n", ["jobs.profiles.every"]),
        ('[jobs.profiles]\nevry = "5s"\n', ["jobs.profiles", "unknown key 'evry'", "every, enabled"]),
        ('[jobs.profiles]\nenabled = "sometimes"\n', ["jobs.profiles.enabled"]),
        ('jobs = "fast"\n', ["jobs"]),
        ('log_format = "xml"\n', ["log_format", "'text' or 'json'"]),
    ],
)
def test_a_bad_job_setting_names_the_key_and_the_allowed_values(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], text: str, expected: list[str]
) -> None:
    _toml(tmp_path, monkeypatch, text)
    with pytest.raises(ConfigError) as info:
        get_settings()
    for part in expected:
        assert part in info.value.message
    code, out, _ = run_cli(capsys, "jobs", "list", "--json")
    assert code == 1
    error = json.loads(out)["error"]
    assert error["code"] == "config_error" and expected[0] in error["message"]


def test_a_job_table_naming_no_job_stops_the_server_and_every_job_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _toml(tmp_path, monkeypatch, '[jobs.profile]\nevery = "5s"\n')
    with pytest.raises(ConfigError) as info:
        configured(get_settings())
    assert "[jobs.profile]" in info.value.message and "profiles" in (info.value.hint or "")
    from touchpoint.api.app import create_app

    with pytest.raises(ConfigError):
        create_app(get_settings())
    code, out, _ = run_cli(capsys, "jobs", "list", "--json")
    assert code == 1 and json.loads(out)["error"]["code"] == "config_error"


def test_cadence_words_and_units() -> None:
    assert [parse_cadence(v) for v in ("0.5s", "10m", "2h", "3d", "1w", "hourly", "weekly", " Daily ")] == [
        0.5,
        600.0,
        7200.0,
        259200.0,
        604800.0,
        3600.0,
        604800.0,
        86400.0,
    ]
    for bad in ("", "s", "5", "-1s", "nan s", "1e9d", "5 parsecs", "infs"):
        with pytest.raises(ValueError, match="cadence"):
            parse_cadence(bad)
    assert JobSettings(every=None).seconds() is None


def test_jobs_refuse_bad_definitions() -> None:
    from touchpoint.errors import AlreadyExists, InvalidInput

    with pytest.raises(InvalidInput, match="trigger"):
        Job("x", lambda ctx: None, every=1, trigger="cron")
    with pytest.raises(InvalidInput, match="positive"):
        Job("x", lambda ctx: None, every=0)
    with pytest.raises(InvalidInput, match="lower-case"):
        Job("Bad Name", lambda ctx: None, every=1)
    from touchpoint.jobs import register

    with pytest.raises(AlreadyExists):
        register(Job("profiles", lambda ctx: None, every=1))


def test_every_job_and_job_setting_is_documented() -> None:
    jobs_doc = (DOCS / "jobs.md").read_text()
    config_doc = (DOCS / "configuration.md").read_text()
    missing = [name for name in JOBS if f"| `{name}` |" not in jobs_doc or f"`{name}`" not in config_doc]
    assert missing == [], f"document these jobs in docs/jobs.md and docs/configuration.md: {missing}"
    keys = [key for key in JobSettings.model_fields if f"`{key}`" not in config_doc or key not in jobs_doc]
    assert keys == [], f"document these [jobs.NAME] keys: {keys}"
    assert "jobs" in Settings.model_fields and "`jobs`" in config_doc


def test_an_output_younger_than_the_cadence_is_not_redone_unless_asked_for() -> None:
    from datetime import UTC, datetime, timedelta

    from touchpoint.jobs import JobContext, Skip

    now = datetime.now(UTC).replace(tzinfo=None)
    ctx = JobContext(warehouse=None, settings=Settings(), trigger="schedule", every=86400.0)  # type: ignore[arg-type]
    with pytest.raises(Skip, match="the model is 1h old, younger than the cadence \\(daily\\)"):
        ctx.fresh_enough(now - timedelta(hours=1), "the model")
    ctx.fresh_enough(now - timedelta(days=2), "the model")  # stale: runs
    ctx.fresh_enough(None, "the model")  # never made: runs
    JobContext(warehouse=None, settings=Settings(), trigger="manual", every=86400.0).fresh_enough(  # type: ignore[arg-type]
        now, "the model"
    )
