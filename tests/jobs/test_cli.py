"""`touchpoint jobs list|show|run` without a server: the run log in the warehouse, runs recorded here."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tests.conftest import run_cli

from touchpoint.collect.store import write_messages
from touchpoint.warehouse import Warehouse


@pytest.fixture
def data(tmp_path: Path) -> Path:
    folder = tmp_path / "data"
    wh = Warehouse.open(f"duckdb://{folder / 'warehouse.duckdb'}")
    write_messages(
        wh,
        [
            {"type": "identify", "userId": "u1", "traits": {"plan": "pro"}},
            {
                "type": "track",
                "userId": "u1",
                "event": "Order Completed",
                "properties": {"order_id": "o1", "revenue": 9},
            },
        ],
    )
    wh.close()
    return folder


def test_run_records_the_run_and_list_and_show_report_it(data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(capsys, "jobs", "list", "--data", str(data), "--json")
    assert code == 0
    listing = json.loads(out)
    assert listing["served"] is False
    assert {j["name"] for j in listing["jobs"]} >= {"profiles", "predictions", "mmm"}
    assert all(j["status"] == "never run" for j in listing["jobs"])
    profiles_table = next(t for t in listing["tables"] if t["table"] == "profiles")
    assert profiles_table["refreshed_at"] is None and profiles_table["events_since"] == 2

    code, out, _ = run_cli(capsys, "jobs", "run", "profiles", "--data", str(data), "--json")
    assert code == 0, out
    run = json.loads(out)
    assert run["status"] == "succeeded" and run["trigger"] == "manual" and run["rows"] == 1

    code, out, _ = run_cli(capsys, "jobs", "run", "experiments", "--data", str(data), "--json")
    assert code == 0 and json.loads(out)["status"] == "skipped"
    assert json.loads(out)["error"] == "no running experiment"

    code, out, _ = run_cli(capsys, "jobs", "show", "profiles", "--data", str(data), "--json")
    shown = json.loads(out)
    assert shown["status"] == "ok" and shown["runs"] == 1 and shown["events_behind"] == 0
    assert shown["history"][0]["run_id"] == run["run_id"]
    assert shown["history"][0]["summary"]["profiles"]["profiles"] == 1

    code, out, _ = run_cli(capsys, "jobs", "list", "--data", str(data))
    assert code == 0 and "profiles" in out and "derived tables" in out
    code, out, _ = run_cli(capsys, "jobs", "show", "profiles", "--data", str(data))
    assert code == 0 and "latest runs" in out and "manual" in out


def test_unknown_jobs_are_refused_with_the_list(data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(capsys, "jobs", "run", "profile", "--data", str(data), "--json")
    assert code == 1
    error = json.loads(out)["error"]
    assert error["code"] == "not_found" and "profiles" in error["hint"]
    code, _, err = run_cli(capsys, "jobs", "show", "../../etc/passwd", "--data", str(data))
    assert code == 1 and "no job named" in err


def test_a_failing_run_exits_1_with_the_error_recorded(
    data: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from dataclasses import replace

    from touchpoint import jobs

    def broken(ctx: jobs.JobContext) -> None:
        raise ValueError("the spend table is corrupt")

    monkeypatch.setitem(jobs.JOBS, "sessions", replace(jobs.JOBS["sessions"], run=broken))
    code, out, _ = run_cli(capsys, "jobs", "run", "sessions", "--data", str(data), "--json")
    assert code == 1
    error = json.loads(out)["error"]
    assert error["code"] == "job_failed" and "ValueError: the spend table is corrupt" in error["message"]
    code, out, _ = run_cli(capsys, "jobs", "show", "sessions", "--data", str(data), "--json")
    shown = json.loads(out)
    assert shown["status"] == "failing" and shown["failures"] == 1
    assert shown["history"][0]["status"] == "failed"
