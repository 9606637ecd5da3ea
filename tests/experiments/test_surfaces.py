"""The CLI and HTTP surfaces of experiments, on a real warehouse file and a real per-unit CSV."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from touchpoint import keys
from touchpoint.api.app import create_app
from touchpoint.api.routes.experiments import router
from touchpoint.cli.experiment import app as cli
from touchpoint.collect.store import write_messages
from touchpoint.config import Settings
from touchpoint.experiments import assignment as asg
from touchpoint.warehouse import open_warehouse

runner = CliRunner()
T0 = datetime(2026, 4, 1)


def campaign_csv(path: Path, n: int = 6000, lift: float = 0.03, seed: int = 11) -> Path:
    """A randomized email campaign exported from another tool: one row per recipient."""
    rng = np.random.default_rng(seed)
    arm = np.where(rng.random(n) < 0.5, "holdout", "email")
    pre = rng.poisson(1.0, n)  # orders in the 90 days before
    p = 0.08 + 0.03 * np.minimum(pre, 3) + np.where(arm == "email", lift, 0.0)
    ordered = (rng.random(n) < p).astype(int)
    revenue = np.round(ordered * rng.gamma(2.0, 30.0, n), 2)
    lines = ["recipient,arm,ordered,revenue,orders_before"]
    lines += [f"r{i},{arm[i]},{ordered[i]},{revenue[i]},{pre[i]}" for i in range(n)]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_analyze_file_cli_with_cuped_and_plot(tmp_path: Path) -> None:
    csv = campaign_csv(tmp_path / "campaign.csv")
    args = [
        "analyze",
        "--file",
        str(csv),
        "--control",
        "holdout",
        "--metric",
        "ordered",
        "--metric",
        "revenue",
        "--covariate",
        "orders_before",
        "--engine",
        "frequentist",
        "--plot",
        str(tmp_path / "lift.png"),
    ]
    res = runner.invoke(cli, [*args, "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["srm"]["ok"] is True
    ordered = out["metrics"][0]
    assert ordered["kind"] == "binomial" and ordered["cuped"] is True
    comp = ordered["comparisons"][0]
    assert comp["variant"] == "email" and comp["ci_low"] < comp["estimate"] < comp["ci_high"]
    assert out["status"] == "win" and "email raised ordered" in out["verdict"]
    png = Path(out["plot"])
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5000
    # CUPED narrows the interval against the same data unadjusted
    plain = json.loads(runner.invoke(cli, [*args[:-6], "--engine", "frequentist", "--json"]).stdout)
    width = lambda c: c["ci_high"] - c["ci_low"]  # noqa: E731
    assert width(comp) < width(plain["metrics"][0]["comparisons"][0])
    # the table view carries the verdict in words
    text = runner.invoke(cli, args[:-2])
    assert text.exit_code == 0 and "verdict:" in text.stdout and "sample-ratio check passed" in text.stdout


def test_analyze_file_errors_name_the_column(tmp_path: Path) -> None:
    csv = campaign_csv(tmp_path / "c.csv", n=400)
    res = runner.invoke(
        cli,
        [
            "analyze",
            "--file",
            str(csv),
            "--map",
            "arm=group",
            "--control",
            "holdout",
            "--metric",
            "ordered",
        ],
    )
    assert res.exit_code != 0 and "group" in str(res.exception)
    res = runner.invoke(
        cli,
        ["analyze", "--file", str(csv), "--control", "nobody", "--metric", "ordered"],
    )
    assert "nobody" in str(res.exception)
    res = runner.invoke(cli, ["analyze", "--file", str(csv), "--control", "holdout"])
    assert "--metric" in str(res.exception)
    # the replaced --arm-column still works, with a warning on stderr
    old = ["--arm-column", "arm", "--control", "holdout", "--metric", "ordered"]
    res = runner.invoke(cli, ["analyze", "--file", str(csv), *old])
    assert res.exit_code == 0 and "--arm-column arm is now --map arm=arm" in res.stderr


def test_create_list_analyze_from_the_warehouse(tmp_path: Path) -> None:
    data = tmp_path / "data"
    res = runner.invoke(
        cli,
        [
            "create",
            "hero",
            "--variant",
            "control",
            "--variant",
            "video",
            "--weights",
            "50,50",
            "--metric",
            "purchase:binomial:Order Completed:window=7",
            "--start",
            T0.isoformat(),
            "--data",
            str(data),
            "--json",
        ],
    )
    assert res.exit_code == 0, res.output
    wh = open_warehouse(Settings(data_dir=data))
    rng = np.random.default_rng(2)
    arms = asg.assign(wh, "hero", [f"u{i}" for i in range(3000)])
    msgs = []
    for i, (u, arm) in enumerate(arms.items()):
        seen = T0 + timedelta(minutes=i)
        msgs.append(asg.exposure_message("hero", u, arm, seen))
        if rng.random() < (0.12 if arm == "video" else 0.10):
            msgs.append(
                {
                    "type": "track",
                    "event": "Order Completed",
                    "userId": u,
                    "timestamp": (seen + timedelta(hours=2)).isoformat(),
                    "properties": {"revenue": 20},
                }
            )
    write_messages(wh, msgs, source="test")
    wh.close()
    listed = json.loads(runner.invoke(cli, ["list", "--data", str(data), "--json"]).stdout)
    assert [e["key"] for e in listed] == ["hero"]
    res = runner.invoke(
        cli,
        [
            "analyze",
            "hero",
            "--engine",
            "bayesian",
            "--data",
            str(data),
            "--json",
            "--plot",
            str(tmp_path / "hero.svg"),
        ],
    )
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["exposures"]["units"]["control"] + out["exposures"]["units"]["video"] == 3000
    assert 0 <= out["metrics"][0]["comparisons"][0]["chance_to_win"] <= 1
    assert (tmp_path / "hero.svg").read_text().startswith("<?xml")
    res = runner.invoke(cli, ["plan", "--baseline", "0.1", "--mde", "0.1", "--data", str(data), "--json"])
    plan = json.loads(res.stdout)
    assert plan["units_control"] == 14749 and plan["duration"]["days"] is not None


@pytest.fixture()
def client(tmp_path: Path):
    settings = Settings(data_dir=tmp_path / "api")
    app = create_app(settings)
    app.include_router(router)
    with TestClient(app) as c:
        wh = app.state.touchpoint.warehouse
        read = keys.create_api_key(wh, "reader", "read")
        admin = keys.create_api_key(wh, "admin", "admin")
        c.headers_read = {"Authorization": f"Bearer {read}"}  # type: ignore[attr-defined]
        c.headers_admin = {"Authorization": f"Bearer {admin}"}  # type: ignore[attr-defined]
        c.wh = wh  # type: ignore[attr-defined]
        yield c


def test_http_create_assign_analyze(client) -> None:
    body = {
        "key": "banner",
        "metrics": [{"name": "purchase", "kind": "binomial", "event": "Order Completed"}],
        "start_at": "2026-04-01T00:00:00Z",
    }
    assert client.post("/v1/experiments", json=body).status_code == 401
    assert client.post("/v1/experiments", json=body, headers=client.headers_read).status_code == 403
    r = client.post("/v1/experiments", json=body, headers=client.headers_admin)
    assert r.status_code == 201, r.text
    again = client.post("/v1/experiments", json=body, headers=client.headers_admin)
    assert again.status_code == 409 and again.json()["error"]["code"] == "already_exists"
    units = [f"h{i}" for i in range(400)]
    r = client.post(
        "/v1/experiments/banner/assign", json={"units": units, "expose": True}, headers=client.headers_admin
    )
    assert r.status_code == 200 and set(r.json()["assignments"].values()) == {"control", "treatment"}
    r = client.post("/v1/experiments/banner/analysis", json={"engine": "frequentist"}, headers=client.headers_read)
    assert r.status_code == 200, r.text
    assert r.json()["srm"]["ok"] is True and r.json()["status"] == "insufficient_data"
    missing = client.post("/v1/experiments/nope/analysis", json={}, headers=client.headers_read)
    assert missing.status_code == 404 and "nope" in missing.json()["error"]["message"]
    listed = client.get("/v1/experiments", headers=client.headers_read).json()["experiments"]
    assert [e["key"] for e in listed] == ["banner"]
    assert (
        client.post("/v1/holdouts", json={"key": "hold", "share": 0.05}, headers=client.headers_admin).status_code
        == 201
    )


def test_http_analysis_of_posted_statistics(client) -> None:
    body = {
        "control": "a",
        "weights": {"a": 0.5, "b": 0.5},
        "options": {"engine": "sequential"},
        "metrics": [
            {
                "metric": "signup",
                "kind": "binomial",
                "arms": [
                    {"variant": "a", "n": 5500, "sum": 550, "sum_squares": 550},
                    {"variant": "b", "n": 4500, "sum": 540, "sum_squares": 540},
                ],
            }
        ],
    }
    r = client.post("/v1/experiments/analysis", json=body, headers=client.headers_read)
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "srm_failed"
    bad = client.post("/v1/experiments/analysis", json={**body, "control": "zzz"}, headers=client.headers_read)
    assert bad.status_code == 400 and "zzz" in bad.json()["error"]["message"]
    plan = client.get(
        "/v1/experiments/plan/sample-size", params={"baseline": 0.1, "mde": 0.1}, headers=client.headers_read
    )
    assert plan.status_code == 200 and round(plan.json()["units_control"]) == 14748
