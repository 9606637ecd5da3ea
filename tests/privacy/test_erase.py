"""Erasure through a running `touchpoint serve`: no trace in any file or column, future events dropped.

One scenario per module (building the shop and starting a server is the slow part): the shop is
loaded with `touchpoint import events`, the profiles built with `touchpoint profiles rebuild`, an
audience evaluated, a server started on the data directory; then Zelda is erased with the CLI (relayed
to the server) and Ann over HTTP, and the tests below check what each step left.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.conftest import Server, free_port

from touchpoint import keys
from touchpoint.audiences import workflow as audiences
from touchpoint.collect.files import import_events
from touchpoint.privacy.people import personal_tables
from touchpoint.profiles import workflow as profiles
from touchpoint.warehouse import Warehouse

from .shop import (
    AUDIENCE,
    BYSTANDERS,
    ZELDA,
    ZELDA_NEEDLES,
    bad_line,
    bystander_events,
    data_files,
    late_events,
    write_jsonl,
    zelda_events,
)


def cli(*args: str) -> tuple[int, Any, str]:
    """Run the real `touchpoint` command in a process of its own: (exit code, parsed --json output, stderr)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TOUCHPOINT_")}
    done = subprocess.run(
        [sys.executable, "-m", "touchpoint.cli.main", *args], capture_output=True, text=True, env=env, timeout=120
    )
    try:
        parsed = json.loads(done.stdout) if done.stdout.strip() else None
    except ValueError:
        parsed = done.stdout
    return done.returncode, parsed, done.stderr


def files_holding(folder: Path, needles: list[str]) -> dict[str, list[str]]:
    """``{needle: [files whose bytes hold it (as is, or lower-cased)]}`` for every file under ``folder``."""
    found: dict[str, list[str]] = {}
    for path in folder.rglob("*"):
        if not path.is_file():
            continue
        data = path.read_bytes()
        low = data.lower()
        for needle in needles:
            if needle.encode() in data or needle.lower().encode() in low:
                found.setdefault(needle, []).append(str(path.relative_to(folder)))
    return found


def columns_holding(wh: Warehouse, needles: list[str]) -> dict[str, list[str]]:
    """``{needle: ["table.column", ...]}``: every column of every table, cast to text, searched."""
    found: dict[str, list[str]] = {}
    for table in wh.tables():
        for column in wh.table(table).columns:
            for needle in needles:
                escaped = needle.lower().replace("'", "''")
                sql = (
                    f'SELECT count(*) AS n FROM "{table}" WHERE lower(CAST("{column}" AS VARCHAR)) LIKE \'%{escaped}%\''
                )
                if wh.query(sql).column("n")[0].as_py():
                    found.setdefault(needle, []).append(f"{table}.{column}")
    return found


def without_stamp(body: bytes) -> dict[str, Any]:
    doc = json.loads(body)
    doc.pop("exported_at")
    return doc


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("privacy")
    data = root / "data"
    out: dict[str, Any] = {"data": data}
    shop = write_jsonl(root / "shop.jsonl", zelda_events() + bystander_events(), [bad_line()])
    wh = Warehouse.open(f"duckdb://{data / 'warehouse.duckdb'}")
    try:  # what `touchpoint import events` and `touchpoint profiles rebuild` run
        got = import_events(wh, shop, source="shop-file").to_dict()
        assert got["stored"] == 11 and got["quarantined"] == 1, got
        profiles.rebuild(wh)
        audiences.create(wh, "buyers", AUDIENCE)
        write_key = keys.create_source(wh, "web")
        admin = keys.create_api_key(wh, "privacy-admin", "admin")
        import_events(wh, write_jsonl(root / "late.jsonl", late_events()))  # the identity tables are now stale
    finally:
        wh.close()
    data_files(data)

    server = Server(data, free_port(), write_key)
    server.start()
    http = httpx.Client(base_url=server.url, timeout=60.0)
    auth = {"Authorization": f"Bearer {admin}"}
    try:

        def export(identifier: str) -> httpx.Response:
            return http.get("/v1/privacy/export", params={"identifier": identifier}, headers=auth)

        out["zelda_export"] = export(ZELDA["email"])
        out["bob_before"] = export(BYSTANDERS[1]).content
        out["zelda_export_zip"] = http.post(  # the identifier in the body, out of URL logs
            "/v1/privacy/export", json={"identifier": ZELDA["user"], "format": "zip"}, headers=auth
        )
        # the CLI, relayed to the server that holds the data directory
        out["cli_export"] = cli(
            "privacy", "export", ZELDA["anon"], "--out", str(root / "zelda.json"), "--json", "--data", str(data)
        )
        out["cli_export_file"] = root / "zelda.json"
        out["erase"] = cli("privacy", "erase", ZELDA["email"], "--yes", "--json", "--data", str(data))
        out["files_after_erase"] = files_holding(data, ZELDA_NEEDLES)  # the server still runs: WAL included
        out["erase_again"] = http.post("/v1/privacy/erase", json={"identifier": ZELDA["user"]}, headers=auth)
        out["export_erased"] = export(ZELDA["user"])
        # the person's events sent again (a client's retry) and their old file imported again
        batch = {"batch": zelda_events() + late_events()}
        out["resend"] = http.post("/v1/batch", json=batch, auth=(write_key, ""))
        out["reimport"] = cli("import", "events", str(shop), "--data", str(data), "--json")
        out["metrics"] = http.get("/metrics", headers=auth).text
        out["unknown"] = cli("privacy", "erase", "nobody-at-all@example.test", "--yes", "--json", "--data", str(data))
        out["unknown_http"] = http.post("/v1/privacy/erase", json={"identifier": "no-such-person-42"}, headers=auth)
        out["erase_ann"] = http.post("/v1/privacy/erase", json={"identifier": BYSTANDERS[0]}, headers=auth)
        out["read_key_refused"] = http.post("/v1/privacy/erase", json={"identifier": BYSTANDERS[1]})
        out["bob_after"] = export(BYSTANDERS[1]).content
        out["erasures"] = http.get("/v1/privacy/erasures", headers=auth).json()
    finally:
        http.close()
        server.stop()
    return out


def test_export_holds_every_personal_table_and_the_person(scenario: dict[str, Any]) -> None:
    response = scenario["zelda_export"]
    assert response.status_code == 200, response.text
    doc = response.json()
    assert set(doc["tables"]) == {t.name for t in personal_tables()}
    counts = {name: t["count"] for name, t in doc["tables"].items()}
    assert counts["events"] == 7  # 5 before the profiles were built, 2 only the event log ties to her
    assert counts["quarantine"] == 1
    assert counts["profiles"] == 1 and counts["audience_memberships"] == 1
    assert counts["identity_nodes"] >= 4
    values = {i["value"] for i in doc["subject"]["identifiers"]}
    assert {ZELDA["user"], ZELDA["anon"], ZELDA["late_anon"], ZELDA["old_id"], ZELDA["email"]} <= values
    order = next(r for r in doc["tables"]["events"]["rows"] if r["event"] == "Order Completed")
    assert order["properties"]["coupon"] == ZELDA["coupon"]  # raw events as sent
    assert doc["logic"]["audiences"][0]["name"] == "buyers"
    assert {s["source"] for s in doc["sources"]} == {"shop-file", "import"}
    assert set(doc["retention"]) == set(doc["tables"])
    assert not any(v for name, v in counts.items() if name.startswith(("events", "profiles")) and v is None)


def test_cli_export_through_the_server_writes_the_same_document(scenario: dict[str, Any]) -> None:
    code, got, err = scenario["cli_export"]
    assert code == 0, err
    assert got["rows"]["events"] == 7 and got["format"] == "json"
    written = without_stamp(scenario["cli_export_file"].read_bytes())
    by_http = without_stamp(scenario["zelda_export"].content)
    assert (
        written["tables"] == by_http["tables"]
        and written["subject"]["profile_ids"] == by_http["subject"]["profile_ids"]
    )
    assert oct(scenario["cli_export_file"].stat().st_mode & 0o777) == "0o600"


def test_zip_export_has_a_manifest_and_a_file_per_table(scenario: dict[str, Any]) -> None:
    import io
    import zipfile

    response = scenario["zelda_export_zip"]
    assert response.status_code == 200 and response.headers["content-type"] == "application/zip"
    archive = zipfile.ZipFile(io.BytesIO(response.content))
    names = set(archive.namelist())
    assert names == {"manifest.json"} | {f"tables/{t.name}.json" for t in personal_tables()}
    manifest = json.loads(archive.read("manifest.json"))
    events = json.loads(archive.read("tables/events.json"))["rows"]
    assert manifest["tables"]["events"]["count"] == len(events) == 7


def test_erase_reports_what_it_deleted(scenario: dict[str, Any]) -> None:
    code, got, err = scenario["erase"]
    assert code == 0, err
    assert got["deleted"]["events"] == 7 and got["deleted"]["quarantine"] == 1
    assert got["deleted"]["profiles"] == 1 and got["deleted"]["audience_memberships"] == 1
    assert got["deleted"]["event_identities"] == 5  # her events resolved when the profiles were built
    assert got["identifiers"] >= 5
    assert sorted(got["files"]["removed"]) == ["exports/report.html"]
    assert sorted(got["files"]["rewritten"]) == ["exports/people.jsonl", "exports/people.parquet"]
    assert got["compaction"]["engine"] == "duckdb"


def test_no_byte_of_the_person_is_left_in_any_file(scenario: dict[str, Any]) -> None:
    assert scenario["files_after_erase"] == {}  # while the server ran (its WAL included)
    assert files_holding(scenario["data"], [*ZELDA_NEEDLES, BYSTANDERS[0]]) == {}  # and after it stopped


def test_no_column_of_any_table_holds_the_person(scenario: dict[str, Any]) -> None:
    wh = Warehouse.open(f"duckdb://{scenario['data'] / 'warehouse.duckdb'}", read_only=True)
    try:
        assert columns_holding(wh, [*ZELDA_NEEDLES, BYSTANDERS[0]]) == {}
        assert wh.count("events") == 3  # Bob's events are all that is left
        # event_identities names no one by value: none of its rows may outlive its event or its node
        ei = wh.table("event_identities")
        assert wh.to_arrow(ei.anti_join(wh.table("events"), "message_id").count()).as_py() == 0
        assert wh.to_arrow(ei.anti_join(wh.table("identity_nodes"), "node_id").count()).as_py() == 0
    finally:
        wh.close()


def test_bystanders_files_are_kept_but_for_the_person(scenario: dict[str, Any]) -> None:
    people = (scenario["data"] / "exports" / "people.jsonl").read_text()
    assert BYSTANDERS[1] in people


def test_erased_person_is_unknown_afterwards(scenario: dict[str, Any]) -> None:
    response = scenario["erase_again"]
    assert response.status_code == 404 and response.json()["error"]["code"] == "not_found"
    assert "erased on" in response.json()["error"]["message"]  # said so, without holding anything about her
    assert scenario["export_erased"].status_code == 404
    assert "erased on" in scenario["export_erased"].json()["error"]["message"]


def test_events_sent_again_are_dropped_and_counted(scenario: dict[str, Any]) -> None:
    assert scenario["resend"].status_code == 200
    code, got, err = scenario["reimport"]
    assert code == 0, err
    assert got["suppressed"] == 6 and got["stored"] == 0  # 5 events and the quarantined input, of hers
    metric = [
        line for line in scenario["metrics"].splitlines() if line.startswith("touchpoint_events_suppressed_total")
    ]
    assert metric == ["touchpoint_events_suppressed_total 7.0"]  # the HTTP retry's 7 events
    zelda = scenario["erasures"][-1]
    assert zelda["dropped_since"] == 13 and zelda["actor"].startswith("cli")


def test_erasure_log_holds_counts_not_data(scenario: dict[str, Any]) -> None:
    erasures = scenario["erasures"]
    assert len(erasures) == 2
    assert erasures[0]["actor"] == "api:privacy-admin"
    text = json.dumps(erasures).lower()
    assert not [n for n in [*ZELDA_NEEDLES, BYSTANDERS[0]] if n.lower() in text]


def test_unknown_identifier_is_a_clear_error(scenario: dict[str, Any]) -> None:
    code, got, _ = scenario["unknown"]
    assert code != 0
    assert got["error"]["code"] == "not_found" and "nobody-at-all@example.test" in got["error"]["message"]
    assert scenario["unknown_http"].status_code == 404
    assert scenario["erase_ann"].status_code == 200, scenario["erase_ann"].text
    assert scenario["read_key_refused"].status_code == 401


def test_another_persons_export_is_unchanged(scenario: dict[str, Any]) -> None:
    assert without_stamp(scenario["bob_after"]) == without_stamp(scenario["bob_before"])
    before, after = scenario["bob_before"], scenario["bob_after"]
    stamp = json.loads(before)["exported_at"]
    assert after.replace(json.loads(after)["exported_at"].encode(), stamp.encode()) == before
