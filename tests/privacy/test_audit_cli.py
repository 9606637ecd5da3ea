"""The CLI records its accesses to personal data and its key and user changes when no server runs (relayed
commands: tests/privacy/test_audit_api.py); `touchpoint audit list` and `touchpoint audit verify` read the
log and name the first broken entry."""

from __future__ import annotations

import getpass
import json
from pathlib import Path

import pytest
from tests.conftest import run_cli

from touchpoint import keys
from touchpoint.collect.store import write_messages
from touchpoint.profiles import workflow as profiles
from touchpoint.warehouse import Warehouse

EMAIL = "cli.person@example.com"
MESSAGES = [
    {"type": "identify", "userId": "u1", "traits": {"email": EMAIL}, "timestamp": "2026-01-01T10:00:00Z"},
    {"type": "track", "userId": "u1", "event": "Signed Up", "timestamp": "2026-01-02T10:00:00Z"},
]
ME = f"cli:{getpass.getuser()}"


def _shop(data: Path) -> str:
    wh = Warehouse.open(f"duckdb://{data / 'warehouse.duckdb'}")
    write_key = keys.create_source(wh, "web")
    write_messages(wh, MESSAGES)
    profiles.rebuild(wh, as_of="2026-01-10T00:00:00")
    wh.close()
    return write_key


def _log(capsys: pytest.CaptureFixture[str], data: Path, *args: str) -> list[dict[str, object]]:
    code, out, err = run_cli(capsys, "audit", "list", "--data", str(data), "--json", *args)
    assert code == 0, err
    entries: list[dict[str, object]] = json.loads(out)
    return entries


def test_commands_without_a_server_are_recorded_and_verify_names_a_tampered_entry(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "data"
    _shop(data)
    d = ("--data", str(data))
    assert run_cli(capsys, "profiles", "show", EMAIL, *d, "--json")[0] == 0
    assert run_cli(capsys, "profiles", "show", "nobody@example.com", *d, "--json")[0] == 1
    assert run_cli(capsys, "query", "SELECT email FROM events WHERE email IS NOT NULL", *d, "--json")[0] == 0
    assert run_cli(capsys, "keys", "create", "ops", "--scope", "read", *d, "--json")[0] == 0
    assert run_cli(capsys, "keys", "revoke", "ops", *d, "--json")[0] == 0
    log = _log(capsys, data)
    got = [(e["actor"], e["surface"], e["action"], e["rows"], e["outcome"]) for e in reversed(log)]
    assert got == [
        (ME, "cli", "profiles.read", 1, "ok"),
        (ME, "cli", "profiles.read", None, "not_found"),
        (ME, "cli", "query.run", 1, "ok"),
        (ME, "cli", "keys.create", None, "ok"),
        (ME, "cli", "keys.revoke", None, "ok"),
    ]
    assert EMAIL not in json.dumps(log) and log[-1]["subject"] != "nobody@example.com"
    assert [e["action"] for e in _log(capsys, data, "--actor", ME, "--limit", "2")] == ["keys.revoke", "keys.create"]
    assert _log(capsys, data, "--actor", "key:nobody") == []
    assert _log(capsys, data, "--since", "2999-01-01") == []
    about = _log(capsys, data, "--subject", "Nobody@Example.com")  # an identifier: found by its pseudonym
    assert [(e["action"], e["outcome"]) for e in about] == [("profiles.read", "not_found")]
    assert str(about[0]["subject"]).startswith("hmac:")

    code, out, _ = run_cli(capsys, "audit", "verify", *d, "--json")
    assert code == 0 and json.loads(out)["ok"] is True and json.loads(out)["head"]["seq"] == 5
    with Warehouse.open(f"duckdb://{data / 'warehouse.duckdb'}") as wh, wh.write() as tx:
        tx.update("audit_log", {"rows": 0}, key="seq", value=3)  # hide how many rows the query returned
    code, out, _ = run_cli(capsys, "audit", "verify", *d, "--json")
    assert code == 1 and json.loads(out)["broken"]["seq"] == 3, out
    code, _, err = run_cli(capsys, "audit", "verify", *d)
    assert code == 1 and "broken at entry #3" in err
