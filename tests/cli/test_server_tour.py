"""The README's tour of commands while ``touchpoint serve`` holds the warehouse: every command runs through
the server and prints what it prints without one.

A small simulated shop (the demo's files) is loaded twice by the same commands: once into a data directory
with no server (each command opens the warehouse itself) and once into a directory a real ``touchpoint
serve`` subprocess holds (each command is sent to it). Their outputs are compared after the only values
that differ between two runs are replaced: new keys (random), timings, the time of day things were created,
and the data directory's own path.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.conftest import Server, free_port, run_cli

from touchpoint.cli import discovery

pytestmark = pytest.mark.slow  # a simulated shop, a CLV fit and a real server

CALIBRATION_END, HOLDOUT_END = "2025-06-02", "2025-08-11"
EXPERIMENT = "email-winback-2026"

TOUR: list[list[str]] = [
    ["sources", "create", "website"],
    ["keys", "create", "bi", "--scope", "read", "--json"],
    ["import", "events", "events.jsonl"],
    ["import", "orders", "orders.csv", "--json"],
    ["import", "spend", "spend.csv"],
    ["profiles", "rebuild"],
    ["profiles", "show", "customer1@example.com"],
    ["profiles", "show", "customer1@example.com", "--json"],
    ["profiles", "stats"],
    ["profiles", "stats", "--json"],
    ["predict", "clv", "--calibration-end", CALIBRATION_END, "--holdout-end", HOLDOUT_END],
    ["predict", "summary", "--json"],
    ["predict", "show", "cust-000001", "--json"],
    ["experiment", "create", EXPERIMENT, "--metric", "purchase:binomial:Order Completed:window=14"],
    ["experiment", "analyze", EXPERIMENT],
    ["experiment", "analyze", EXPERIMENT, "--json"],
    ["journeys", "funnel", "page:/products/%", "Product Added", "Order Completed"],
    ["journeys", "funnel", "page:/products/%", "Product Added", "Order Completed", "--json"],
    ["attribution", "--model", "markov"],
    ["query", "SELECT type, count(*) AS n FROM events GROUP BY 1 ORDER BY 1"],
    ["query", "SELECT type, count(*) AS n FROM events GROUP BY 1 ORDER BY 1", "--json"],
    ["query", "SELECT type, count(*) AS n FROM events GROUP BY 1 ORDER BY 1", "--csv"],
    ["query", "SELECT * FROM read_text('/etc/passwd')"],  # refused by the sandbox, both ways
    ["quarantine", "list", "--json"],
    ["sources", "list"],
    ["keys", "list", "--json"],
    ["profiles", "show", "nobody@example.com"],  # an error: same message, same exit code
    ["profiles", "show", "nobody@example.com", "--json"],
    ["predict", "clv", "--model", "nope"],  # a usage error
]


def normal(text: str, data_dirs: list[Path]) -> str:
    """Replace what differs between two runs of the same commands: keys, timings, creation times, paths."""
    for data in data_dirs:
        text = text.replace(str(data), "DATA")
    text = re.sub(r"tp[wk]_(?:[ra]_)?[A-Za-z0-9_-]{6,}", "KEY", text)
    text = re.sub(r"tp[wk]_[A-Za-z0-9_-]{1,5}(?![A-Za-z0-9_-])", "KEYPREFIX", text)  # a prefix may end in "-"
    today = dt.datetime.now(dt.UTC).date()
    days = "|".join(d.isoformat() for d in (today, today - dt.timedelta(days=1)))  # a run may pass midnight
    text = re.sub(rf"(?:{days})[T ]\d\d:\d\d:\d\d(\.\d+)?(\+00:00|Z)?", "NOW", text)
    text = re.sub(r'"(seconds|events_per_second|fit_seconds)":\s*[0-9.e-]+', r'"\1":0', text)
    text = re.sub(r"\b\d+(\.\d+)? s\b", "T s", text)
    text = re.sub(r"[\d,]+/s\b", "N/s", text)
    return text


NUMBER = re.compile(r"-?\d+\.\d+(?:e[+-]?\d+)?")


def same_output(served: str, direct: str) -> bool:
    """The same text, numbers with a decimal point equal to 1e-4 relative: optimiser results differ in the
    last digits between two processes (the engine's parallel sums, BLAS threads), and rounding both to a few
    digits still differs when a value sits on a rounding boundary (3.409935 printed 3.40994 and 3.40993)."""
    if NUMBER.split(served) != NUMBER.split(direct):
        return False
    pairs = zip(NUMBER.findall(served), NUMBER.findall(direct), strict=True)
    return all(abs(float(a) - float(b)) <= 1e-4 * max(abs(float(a)), abs(float(b)), 1e-12) for a, b in pairs)


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from touchpoint.demo.export import write_files
    from touchpoint.demo.simulator import DemoConfig, simulate

    folder = tmp_path_factory.mktemp("shop")
    # seed 11: a shop whose spend model is identified (with seed 7 the Gamma-Gamma fit runs to its bound,
    # and the standard errors of a parameter at a bound vary in their leading digits from run to run)
    write_files(simulate(DemoConfig(customers=400, weeks=40, seed=11)), folder)
    return folder


def _serve(data_dir: Path, shop: Path, *, jobs: bool) -> Iterator[Server]:
    server = Server(data_dir, free_port(), write_key="", cwd=shop, jobs=jobs)
    try:
        server.start()
        yield server
    finally:
        server.stop()


@pytest.fixture
def quiet(tmp_path: Path, shop: Path) -> Iterator[Server]:
    """A server that runs no jobs: the tour compares outputs, and a job (the predictions job's own CLV fit, an
    identity update) run between two commands would change what the second prints."""
    yield from _serve(tmp_path / "served", shop, jobs=False)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, shop: Path) -> Iterator[Server]:
    """One server for the tests below, running its jobs: commands run beside them."""
    yield from _serve(tmp_path_factory.mktemp("busy") / "served", shop, jobs=True)


def test_the_tour_prints_the_same_through_a_running_server(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path, shop: Path, quiet: Server
) -> None:
    served = quiet
    monkeypatch.chdir(shop)  # the tour names its files relative to where it runs, as a user would
    direct_dir = tmp_path / "direct"
    found = discovery.live_server(served.data_dir)
    assert found is not None and found.pid == served.process.pid  # type: ignore[union-attr]
    dirs = [direct_dir, served.data_dir]
    for argv in TOUR:
        code_direct, out_direct, err_direct = run_cli(capsys, *argv, "--data", str(direct_dir))
        code_served, out_served, err_served = run_cli(capsys, *argv, "--data", str(served.data_dir))
        shown = " ".join(argv)
        assert code_served == code_direct, f"{shown}: exit {code_served} != {code_direct}\n{err_served}"
        assert same_output(normal(out_served, dirs), normal(out_direct, dirs)), (shown, out_served, out_direct)
        assert normal(err_served, dirs) == normal(err_direct, dirs), shown
        assert "open for writing" not in err_served, shown
    # the served directory really was written by the server: it still holds the warehouse
    assert served.process is not None and served.process.poll() is None
    assert discovery.live_server(served.data_dir) is not None


def test_a_relative_path_from_another_directory_is_read_there(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path, shop: Path, served: Server
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "few.jsonl").write_text('{"type":"track","userId":"u1","event":"Signed Up"}\n')
    monkeypatch.chdir(elsewhere)  # not the server's working directory (that is the shop's folder)
    code, out, err = run_cli(capsys, "import", "events", "few.jsonl", "--data", str(served.data_dir), "--json")
    assert code == 0, err
    assert json.loads(out)["stored"] == 1 and json.loads(out)["file"] == str(elsewhere / "few.jsonl")
    code, _, err = run_cli(capsys, "import", "events", "missing.jsonl", "--data", str(served.data_dir))
    assert code == 1 and str(elsewhere / "missing.jsonl") in err


def _cli(*args: str, cwd: Path | None = None, extra_env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TOUCHPOINT_")} | (extra_env or {})
    return subprocess.Popen(
        [sys.executable, "-m", "touchpoint.cli.main", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=cwd,
    )


def test_commands_run_through_the_server_at_once(served: Server, shop: Path) -> None:
    data = str(served.data_dir)
    setup = _cli("import", "orders", "orders.csv", "--data", data, "--quiet", cwd=shop)
    _, err = setup.communicate(timeout=120)
    assert setup.returncode == 0, err
    query = ["query", "SELECT count(*) AS n FROM events", "--data", data, "--json"]
    readers = [_cli(*query) for _ in range(6)]
    writers = [_cli("keys", "create", f"k{i}", "--scope", "read", "--data", data, "--json") for i in range(3)]
    imports = [_cli("import", "events", "events.jsonl", "--data", data, "--json", cwd=shop)]
    done = [(p, *p.communicate(timeout=240)) for p in readers + writers + imports]
    for process, _, err in done:
        assert process.returncode == 0, err
        assert "open for writing" not in err
    counts = {json.loads(out)[0]["n"] for _, out, _ in done[: len(readers)]}
    assert counts and all(n >= 1 for n in counts)  # each saw a consistent snapshot, before or after the import
    assert sorted(json.loads(out)["name"] for _, out, _ in done[len(readers) : len(readers) + 3]) == ["k0", "k1", "k2"]
    listed = _cli("keys", "list", "--data", data, "--json")
    out, err = listed.communicate(timeout=120)
    assert {"k0", "k1", "k2"} <= {k["name"] for k in json.loads(out)}, err


def test_serve_and_demo_beside_a_running_server_say_which_server(served: Server) -> None:
    for argv in (["serve", "--port", str(free_port())], ["demo", "--no-serve"]):
        process = _cli(*argv, "--data", str(served.data_dir))
        out, err = process.communicate(timeout=120)
        assert process.returncode == 1, out + err
        pid = served.process.pid  # type: ignore[union-attr]
        assert f"PID {pid}" in err and served.url in err and f"kill -TERM {pid}" in err
    process = _cli("serve", "--data", str(served.data_dir), "--json")
    out, _ = process.communicate(timeout=120)
    assert json.loads(out)["error"]["code"] == "warehouse_locked"


def test_colours_and_width_follow_the_clients_terminal(served: Server, tmp_path: Path) -> None:
    from touchpoint.warehouse import Warehouse

    direct = tmp_path / "direct"
    Warehouse.open(f"duckdb://{direct / 'warehouse.duckdb'}").close()
    terminal = {"FORCE_COLOR": "1", "COLUMNS": "44", "TERM": "xterm-256color"}
    commands = [
        ["query", "SELECT 1 AS one, 'a value long enough to wrap in 44 columns' AS two"],
        ["query", "SELECT CAST('not a number' AS INTEGER) AS n"],  # an error, whatever the server holds
    ]
    for argv in commands:
        a = _cli(*argv, "--data", str(direct), extra_env=terminal)
        b = _cli(*argv, "--data", str(served.data_dir), extra_env=terminal)
        (out_a, err_a), (out_b, err_b) = a.communicate(timeout=120), b.communicate(timeout=120)
        assert (a.returncode, out_a, err_a) == (b.returncode, out_b, err_b), argv
        assert "\x1b[" in out_a + err_a  # coloured, as FORCE_COLOR asks
