"""The CLI as a user drives it: create from a file, preview, members now and in the past, history,
export, errors that name the bad node."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import pytest
from tests.conftest import run_cli

from touchpoint.collect.store import write_messages
from touchpoint.profiles import workflow as profiles
from touchpoint.warehouse import Warehouse

MESSAGES: list[dict[str, Any]] = [
    {
        "type": "identify",
        "userId": "u1",
        "traits": {"country": "SE", "email": "ann@example.com", "consent_marketing_email": True},
        "timestamp": "2026-01-01T10:00:00Z",
    },
    {"type": "identify", "userId": "u2", "traits": {"country": "NO"}, "timestamp": "2026-01-01T10:00:00Z"},
    {
        "type": "identify",
        "userId": "u3",
        "traits": {"country": "SE", "email": "=cmd@evil.test", "consent_marketing_email": False},
        "timestamp": "2026-01-01T10:00:00Z",
    },
    {
        "type": "track",
        "userId": "u1",
        "event": "Product Viewed",
        "properties": {"category": "lenses"},
        "timestamp": "2026-01-05T10:00:00Z",
    },
    {
        "type": "track",
        "userId": "u3",
        "event": "Product Viewed",
        "properties": {"category": "lenses"},
        "timestamp": "2026-01-08T10:00:00Z",
    },
    {
        "type": "track",
        "userId": "u2",
        "event": "Product Viewed",
        "properties": {"category": "frames"},
        "timestamp": "2026-01-06T10:00:00Z",
    },
]


@pytest.fixture
def data(tmp_path: Path) -> Path:
    folder = tmp_path / "data"
    wh = Warehouse.open(f"duckdb://{folder / 'warehouse.duckdb'}")
    write_messages(wh, MESSAGES)
    profiles.rebuild(wh, as_of="2026-01-10T00:00:00")
    wh.close()
    return folder


def _file(tmp_path: Path, body: Any, name: str = "def.json") -> str:
    path = tmp_path / name
    path.write_text(json.dumps(body))
    return str(path)


def cli(capsys: pytest.CaptureFixture[str], data: Path, *args: str) -> Any:
    code, out, err = run_cli(capsys, *args, "--data", str(data), "--json")
    assert code == 0, (out, err)
    return json.loads(out)


LENSES = {
    "all": [
        {"trait": "country", "eq": "SE"},
        {"event": "Product Viewed", "where": {"category": "lenses"}, "within_days": 3},
    ]
}


def test_create_members_and_members_at(capsys: pytest.CaptureFixture[str], data: Path, tmp_path: Path) -> None:
    path = _file(tmp_path, LENSES)
    out = cli(capsys, data, "audiences", "preview", "--definition", path, "--at", "2026-01-06T12:00:00", "--explain")
    assert out["count"] == 1 and "SELECT" in out["sql"]
    cli(capsys, data, "audiences", "create", "lenses", "--definition", path, "--no-evaluate")
    first = cli(capsys, data, "audiences", "refresh", "lenses", "--at", "2026-01-06T12:00:00")["refreshed"][0]
    assert (first["members"], first["mode"]) == (1, "full")
    second = cli(capsys, data, "audiences", "refresh", "--at", "2026-01-09T12:00:00")["refreshed"][0]
    assert (second["members"], second["entered"], second["exited"], second["mode"]) == (1, 1, 1, "incremental")

    now = cli(capsys, data, "audiences", "members", "lenses")
    assert set(now) == {"audience", "count", "members"}
    assert now["audience"] == "lenses" and now["count"] == 1
    assert set(now["members"][0]) == {"profile_id", "user_id", "email", "entered_at"}
    assert now["members"][0]["user_id"] == "u3"
    past = cli(capsys, data, "audiences", "members", "lenses", "--at", "2026-01-07T00:00:00")
    assert [m["user_id"] for m in past["members"]] == ["u1"]
    assert [m["email"] for m in past["members"]] == ["ann@example.com"]
    before = cli(capsys, data, "audiences", "members", "lenses", "--at", "2026-01-06T11:59:59")
    assert before["count"] == 0

    changes = cli(capsys, data, "audiences", "changes", "--since", "2026-01-01")["changes"]
    assert [(c["change"], c["at"][:10]) for c in changes] == [
        ("entered", "2026-01-06"),
        ("entered", "2026-01-09"),
        ("exited", "2026-01-09"),
    ]

    shown = cli(capsys, data, "audiences", "show", "lenses")
    assert shown["version"] == 1 and shown["size"] == 1 and shown["state"]["mode"] == "incremental"
    listed = cli(capsys, data, "audiences", "list")["audiences"]
    assert [(a["name"], a["members"]) for a in listed] == [("lenses", 1)]


def test_export_csv_and_jsonl(capsys: pytest.CaptureFixture[str], data: Path, tmp_path: Path) -> None:
    cli(
        capsys, data, "audiences", "create", "swedes", "--definition", _file(tmp_path, {"trait": "country", "eq": "SE"})
    )
    args = ("audiences", "export", "swedes", "--data", str(data))
    code, out, err = run_cli(capsys, *args, "--purpose", "analytics", "--format", "csv")  # opt-out: all hold
    assert code == 0, err
    rows = list(csv.DictReader(io.StringIO(out)))
    assert sorted(r["user_id"] for r in rows) == ["u1", "u3"]
    assert "'=cmd@evil.test" in {r["email"] for r in rows}  # no spreadsheet formula survives export
    target = tmp_path / "out.jsonl"
    got = cli(capsys, data, *args[:3], "--purpose", "marketing_email", "--format", "jsonl", "--output", str(target))
    assert got["rows"] == 1 and got["purpose"] == "marketing_email"  # u3 denied it
    assert [json.loads(line)["user_id"] for line in target.read_text().splitlines()] == ["u1"]
    code, out, err = run_cli(capsys, *args, "--json")
    assert code != 0 and json.loads(out)["error"]["code"] == "invalid_input" and "purpose" in out
    code, out, err = run_cli(capsys, *args, "--purpose", "spam", "--json")
    assert code != 0 and "'spam' is not a consent purpose" in json.loads(out)["error"]["message"]


@pytest.mark.parametrize(
    ("body", "path", "words"),
    [
        ({"trait": "country", "equals": "SE"}, "$", "unknown key 'equals'"),
        ({"all": [{"event": "Product Viewed", "count": {"gte": "three"}}]}, "$.all[0].count.gte", "number"),
        ({"any": [{"trait": "orders", "eq": "SE"}]}, "$.any[0].eq", "is a number"),
        ({"not": {"audience": "nobody"}}, "$.not.audience", "unknown audience 'nobody'"),
        ({"colour": "red"}, "$", "exactly one of"),
        ({"prediction": "p_dead", "lt": 0.3}, "$.prediction", "allowed: p_alive"),
        ({"event": "Order Completed", "within_days": -1}, "$.within_days", "whole number of days"),
    ],
)
def test_bad_definitions_name_the_node(
    capsys: pytest.CaptureFixture[str], data: Path, tmp_path: Path, body: Any, path: str, words: str
) -> None:
    code, out, _ = run_cli(
        capsys, "audiences", "create", "bad", "--definition", _file(tmp_path, body), "--data", str(data), "--json"
    )
    error = json.loads(out)["error"]
    assert code == 1 and error["code"] == "invalid_definition"
    assert error["message"].startswith(path + ":") and words in error["message"]


def test_cycles_are_refused(capsys: pytest.CaptureFixture[str], data: Path, tmp_path: Path) -> None:
    cli(capsys, data, "audiences", "create", "a", "--definition", _file(tmp_path, {"trait": "country", "eq": "SE"}))
    cli(capsys, data, "audiences", "create", "b", "--definition", _file(tmp_path, {"audience": "a"}))
    code, out, _ = run_cli(
        capsys,
        "audiences",
        "create",
        "a",
        "--replace",
        "--definition",
        _file(tmp_path, {"not": {"audience": "b"}}),
        "--data",
        str(data),
        "--json",
    )
    error = json.loads(out)["error"]
    assert code == 1 and "cycle: a -> b -> a" in error["message"] and error["message"].startswith("$.not.audience")
    code, out, _ = run_cli(capsys, "audiences", "delete", "a", "--yes", "--data", str(data), "--json")
    assert code == 1 and "used by b" in json.loads(out)["error"]["message"]
    assert cli(capsys, data, "audiences", "delete", "b", "--yes")["deleted"] == "b"


def test_definition_file_errors(capsys: pytest.CaptureFixture[str], data: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    code, out, _ = run_cli(capsys, "audiences", "preview", "--definition", str(bad), "--data", str(data), "--json")
    assert code == 1 and "not valid JSON" in json.loads(out)["error"]["message"]
    code, out, _ = run_cli(
        capsys, "audiences", "preview", "--definition", str(tmp_path / "missing.json"), "--data", str(data), "--json"
    )
    assert code == 1 and "no definition file" in json.loads(out)["error"]["message"]
    code, out, _ = run_cli(capsys, "audiences", "members", "nope", "--data", str(data), "--json")
    assert code == 1 and json.loads(out)["error"]["code"] == "not_found"


def test_a_definition_nested_too_deeply_is_refused_by_name(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """json.loads raises RecursionError past ~1,000 levels: that is bad input, not a crash (CLI and builder)."""
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 5000 + "]" * 5000)
    code, _, err = run_cli(capsys, "audiences", "preview", "--definition", str(deep), "--data", str(tmp_path / "d"))
    assert code == 1 and "nested too deeply" in err
