"""The CLI end to end, through its one entry point and error boundary."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tests.conftest import run_cli

run = run_cli


def test_sources_keys_import_query_quarantine(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    data = str(tmp_path / "data")
    code, out, _ = run(capsys, "sources", "create", "web", "--data", data, "--json")
    assert code == 0 and json.loads(out)["write_key"].startswith("tpw_")
    code, out, err = run(capsys, "sources", "create", "web", "--data", data)
    assert code == 1 and "already exists" in err
    code, out, _ = run(capsys, "sources", "list", "--data", data, "--json")
    assert [s["name"] for s in json.loads(out)] == ["web"] and "write_key" not in out
    code, out, _ = run(capsys, "keys", "create", "bi", "--scope", "read", "--data", data, "--json")
    assert json.loads(out)["key"].startswith("tpk_r_")
    code, _, err = run(capsys, "keys", "create", "x", "--scope", "root", "--data", data)
    assert code == 1 and "scope 'root'" in err

    csv_path = tmp_path / "e.csv"
    csv_path.write_text("type,userId,event\ntrack,u1,Signed Up\ntrack,u2\ntrack,u3,Order Completed\n")
    code, out, _ = run(capsys, "import", "events", str(csv_path), "--data", data)
    assert code == 0 and "2 stored" in out and "1 quarantined" in out and "expected 3 fields" in out
    code, out, _ = run(capsys, "import", "events", str(csv_path), "--data", data, "--json")
    assert json.loads(out)["duplicates"] == 2

    code, out, _ = run(capsys, "query", "SELECT user_id, event FROM events ORDER BY 1", "--data", data, "--json")
    assert json.loads(out) == [
        {"user_id": "u1", "event": "Signed Up"},
        {"user_id": "u3", "event": "Order Completed"},
    ]
    code, out, _ = run(capsys, "query", "SELECT count(*) AS n FROM events", "--data", data, "--csv")
    assert out.splitlines() == ["n", "2"]
    code, _, err = run(capsys, "query", "DELETE FROM events", "--data", data)
    assert code == 1 and "DELETE statement" in err  # refused before it runs (and the connection is read-only)
    code, _, err = run(capsys, "query", "SELEC nonsense", "--data", data)
    assert code == 1 and "error:" in err and "Traceback" not in err

    code, out, _ = run(capsys, "quarantine", "list", "--data", data, "--json")
    listed = json.loads(out)
    assert listed["total"] == 1
    record_id = listed["records"][0]["id"]
    code, out, _ = run(capsys, "quarantine", "show", record_id, "--data", data, "--json")
    assert json.loads(out)["payload"].startswith("track,u2")
    fixed = tmp_path / "fixed.json"
    fixed.write_text('{"type": "track", "userId": "u2", "event": "Signed Up"}')
    code, out, _ = run(capsys, "quarantine", "replay", record_id, "--payload", str(fixed), "--data", data, "--json")
    assert json.loads(out)["replayed"] == 1
    code, _, err = run(capsys, "quarantine", "replay", "--data", data)
    assert code != 0 and "--all" in err


def test_orders_and_spend_imports(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    data = str(tmp_path / "data")
    orders = tmp_path / "o.csv"
    orders.write_text("cust_no,order_no,ts,amount\nc1,1,2026-01-01,10\nc1,2,2026-02-01,12\n")
    code, out, _ = run(
        capsys,
        "import",
        "orders",
        str(orders),
        "--map",
        "customer_id=cust_no",
        "--map",
        "order_id=order_no",
        "--map",
        "timestamp=ts",
        "--map",
        "revenue=amount",
        "--data",
        data,
        "--json",
    )
    assert code == 0 and json.loads(out)["stored"] == 2
    code, _, err = run(capsys, "import", "orders", str(orders), "--map", "nonsense", "--data", data)
    assert code == 1 and "FIELD=COLUMN" in err
    spend = tmp_path / "s.csv"
    spend.write_text("date,channel,amount\n2026-01-05,search,100\n")
    code, out, _ = run(capsys, "import", "spend", str(spend), "--data", data, "--json")
    assert json.loads(out)["stored"] == 1


def test_missing_file_and_version(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _, err = run(capsys, "import", "events", str(tmp_path / "nope.jsonl"), "--data", str(tmp_path))
    assert code == 1 and "does not exist" in err
    code, out, _ = run(capsys, "--version")
    assert code == 0 and out.startswith("touchpoint ")


def test_query_on_an_empty_data_dir_says_what_to_do(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _, err = run(capsys, "query", "SELECT 1", "--data", str(tmp_path / "empty"))
    assert code == 1 and "touchpoint import" in err


@pytest.mark.slow
def test_demo_without_serving(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    data = tmp_path / "demo-data"
    args = ("demo", "--customers", "300", "--weeks", "30", "--no-serve", "--no-analyse", "--data", str(data), "--json")
    code, out, _ = run(capsys, *args)
    assert code == 0, out
    summary = json.loads(out)
    truth = json.loads((data / "demo" / "truth.json").read_text())
    assert summary["imports"]["events"]["stored"] == truth["events_written"]
    assert summary["imports"]["orders"]["stored"] == truth["clv"]["orders"]
    assert summary["warehouse"]["events"] == truth["events_written"] + truth["clv"]["orders"]
    assert summary["warehouse"]["quarantined"] == 0
    assert summary["warehouse"]["spend_rows"] == 30 * 5
    # Running it again is idempotent: same shop, nothing new.
    code, out, _ = run(capsys, *args)
    again = json.loads(out)
    assert again["imports"]["events"]["stored"] == 0 and again["warehouse"]["events"] == summary["warehouse"]["events"]
    assert again["keys"] == summary["keys"]


def test_demo_headlines_summarise_each_step() -> None:
    from touchpoint.demo.run import headline

    line = headline("identity", {"profiles": 3, "identifiers": 9, "merge_precision": 1.0, "merge_recall": 0.5})
    assert line == "3 profiles from 9 identifiers; merges against the truth: precision 1.000, recall 0.500"
    assert headline("mmm", {"model_status": "failed", "intervals_covering_truth": "1/5"}).startswith("model failed")
    assert headline("identity", {}) == "" and headline("unknown", {"x": 1}) == ""
