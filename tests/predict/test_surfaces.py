"""The CLI and the HTTP API on a real warehouse with simulated orders: predictions are written,
read back for one customer, and errors come back in the one JSON shape."""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pytest
from fastapi.testclient import TestClient
from tests.conftest import run_cli
from typer.testing import CliRunner

from touchpoint.api.app import create_app
from touchpoint.collect.store import write_messages
from touchpoint.config import Settings
from touchpoint.keys import create_api_key
from touchpoint.warehouse import Warehouse

START = dt.datetime(2024, 1, 1, 12)
TRUE = {"r": 0.8, "alpha": 20.0, "a": 0.8, "b": 2.5}  # days


def _orders(n: int, seed: int = 3) -> list[dict]:
    """Orders of n customers simulated from BG/NBD (days), first orders spread over 120 days."""
    rng = np.random.default_rng(seed)
    msgs = []
    for i in range(n):
        born = float(rng.uniform(0, 120))
        lam = rng.gamma(TRUE["r"], 1 / TRUE["alpha"])
        p = rng.beta(TRUE["a"], TRUE["b"])
        t = 0.0
        times = [0.0]
        while True:
            t += rng.exponential(1 / lam)
            if born + t > 400:
                break
            times.append(t)
            if rng.random() < p:
                break
        for k, t in enumerate(times, start=1):
            msgs.append(
                {
                    "type": "track",
                    "event": "Order Completed",
                    "userId": f"c{i}",
                    "messageId": f"o{i}-{k}",
                    "timestamp": (START + dt.timedelta(days=born + t)).isoformat() + "Z",
                    "properties": {
                        "order_id": f"o{i}-{k}",
                        "revenue": round(float(rng.gamma(6, 4)), 2),
                        "products": [{"sku": "lens-30", "quantity": 1}],
                    },
                }
            )
    return msgs


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("predict")
    wh = Warehouse.open(f"duckdb:///{path}/warehouse.duckdb")
    write_messages(wh, _orders(1500), source="test")
    wh.close()
    from touchpoint.cli.predict import app

    # Every test here starts from written CLV predictions, whatever order the tests run in.
    res = CliRunner().invoke(app, ["clv", "--data", str(path), "--unit", "days"])
    assert res.exit_code == 0, res.output
    return path


def test_cli_clv_writes_predictions_and_report(data_dir):
    from touchpoint.cli.predict import app

    runner = CliRunner()
    res = runner.invoke(
        app,
        [
            "clv",
            "--data",
            str(data_dir),
            "--unit",
            "days",
            "--calibration-end",
            "2024-09-30",
            "--holdout-end",
            "2025-02-03",
            "--json",
            "--rows",
            "2",
        ],
    )
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    assert set(out["params"]) == {"r", "alpha", "a", "b"}
    assert set(out["spend_model"]["params"]) == {"p", "q", "gamma"}
    assert out["fit"]["converged"]
    assert out["holdout"]["mae"] >= 0 and out["holdout"]["by_frequency"]
    e = out["customer_equity"]
    assert e["low_90"] < e["value"] < e["high_90"]
    assert out["written"]["predictions"] == out["customers"] > 1000
    assert (data_dir / "predict" / "tracking.png").stat().st_size > 1000
    assert (data_dir / "predict" / "holdout_by_frequency.svg").exists()
    assert (data_dir / "predict" / "bg_nbd.json").exists()
    # The human rendering names the parameters and the equity.
    res = runner.invoke(app, ["clv", "--data", str(data_dir), "--unit", "days", "--model", "pareto_nbd"])
    assert res.exit_code == 0, res.output
    assert "customer equity" in res.output and "beta" in res.output


def test_cli_errors_name_the_problem(data_dir):
    from touchpoint.cli.predict import app
    from touchpoint.errors import InvalidInput

    res = CliRunner().invoke(app, ["clv", "--data", str(data_dir), "--model", "gbm"])
    assert isinstance(res.exception, InvalidInput) and "unknown model 'gbm'" in str(res.exception)
    res = CliRunner().invoke(app, ["clv", "--data", str(data_dir), "--holdout-end", "2025-01-01"])
    assert isinstance(res.exception, InvalidInput) and "--calibration-end" in str(res.exception)


def test_cli_replenishment_and_show(data_dir):
    from touchpoint.cli.predict import app

    runner = CliRunner()
    res = runner.invoke(app, ["replenishment", "--data", str(data_dir), "--as-of", "2025-02-04", "--json"])
    assert res.exit_code == 0, res.output
    rows = json.loads(res.output)["rows"]
    assert rows and all(r["product"] == "lens-30" and r["intervals"] >= 1 for r in rows)
    res = runner.invoke(app, ["show", "c1", "--data", str(data_dir), "--json"])
    assert res.exit_code == 0, res.output
    shown = json.loads(res.output)
    assert shown["clv"]["customer_id"] == "c1"


def test_api_predictions(data_dir):
    settings = Settings(data_dir=data_dir)
    wh = Warehouse.open(f"duckdb:///{data_dir}/warehouse.duckdb")
    key = create_api_key(wh, f"reader-{dt.datetime.now().timestamp()}", "read")
    wh.close()
    api = create_app(settings)
    with TestClient(api) as client:
        h = {"Authorization": f"Bearer {key}"}
        assert client.get("/v1/predictions/c1").status_code == 401  # a key is required
        r = client.get("/v1/predictions/c1", headers=h)
        assert r.status_code == 200, r.text
        body = r.json()
        assert 0 <= body["clv"]["p_alive"] <= 1 and body["clv"]["next_purchase_at"]
        r = client.get("/v1/predictions/nobody", headers=h)
        assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
        r = client.get("/v1/predictions", headers=h, params={"by": "clv", "limit": 5})
        rows = r.json()["rows"]
        assert len(rows) == 5 and rows[0]["clv"] >= rows[-1]["clv"]
        r = client.get("/v1/predictions/summary", headers=h)
        assert r.status_code == 200 and r.json()["customer_equity"] > 0


def test_propensity_scores_are_tested_out_of_time_and_written(data_dir):
    from touchpoint.cli.predict import app

    res = CliRunner().invoke(
        app,
        [
            "propensity",
            "--data",
            str(data_dir),
            "--event",
            "Order Completed",
            "--days",
            "30",
            "--json",
            "--rows",
            "3",
        ],
    )
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    t = out["test"]
    assert 0.5 < t["auc"] <= 1.0  # recency and frequency rank who orders next
    assert t["lift_by_decile"][0]["lift"] > 1.5
    assert len(t["calibration"]) == 10
    assert out["written"] == out["scored_customers"] > 1000
    assert out["top"][0]["score"] >= out["top"][-1]["score"]
    wh = Warehouse.open(f"duckdb:///{data_dir}/warehouse.duckdb")
    try:
        scores = wh.to_arrow(wh.table("propensity_scores")).to_pydict()
        assert set(scores["event"]) == {"Order Completed"} and min(scores["decile"]) == 1
    finally:
        wh.close()
    res = CliRunner().invoke(app, ["propensity", "--data", str(data_dir), "--event", "Nope", "--days", "30"])
    assert "no event named 'Nope'" in str(res.exception)


def test_evaluate_metrics():
    from touchpoint.predict.propensity import evaluate

    y = np.array([0] * 90 + [1] * 10)
    perfect = evaluate(y, np.linspace(0, 1, 100))
    assert perfect["auc"] == 1.0 and perfect["lift_by_decile"][0]["lift"] == pytest.approx(10.0)
    noise = evaluate(y, np.full(100, 0.1))
    assert noise["auc"] == 0.5 and noise["brier"] == pytest.approx(0.09)


def _cdnow_file(tmp_path, cdnow_orders):
    """CDNOW's transactions as a shop exports them: its own column names, dates as YYYYMMDD."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    path = tmp_path / "cdnow.csv"
    days = [t.strftime("%Y%m%d") for t in cdnow_orders["ts"].to_pylist()]
    numbers = [f"o{i}" for i in range(cdnow_orders.num_rows)]
    columns = {"cust": cdnow_orders["customer_id"], "order_no": numbers, "day": days, "value": cdnow_orders["revenue"]}
    table = pa.table(columns)
    pacsv.write_csv(table, path)
    return path


CDNOW_MAP = [
    *("--map", "customer_id=cust"),
    *("--map", "order_id=order_no"),
    *("--map", "timestamp=day"),
    *("--map", "revenue=value"),
]
CDNOW_FIT = ["--calibration-end", "1997-09-30", "--holdout-end", "1998-06-30", "--model", "pareto_nbd", "--json"]


def test_cli_orders_file_without_warehouse(tmp_path, cdnow_orders):
    from touchpoint.cli.predict import app

    path = _cdnow_file(tmp_path, cdnow_orders)
    report = ["--out", str(tmp_path / "report")]
    res = CliRunner().invoke(app, ["clv", "--orders", str(path), *CDNOW_MAP, *CDNOW_FIT, *report])
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    assert out["params"]["r"] == pytest.approx(0.553, abs=2e-3) and out["params"]["s"] == pytest.approx(0.606, abs=2e-3)
    assert out["log_likelihood"] == pytest.approx(-9595.0, abs=0.05)
    assert out["spend_model"]["params"]["p"] == pytest.approx(6.25, abs=0.01)
    assert out["holdout"]["actual_total"] == 1882  # purchase days of the 2,357 customers in the 39-week holdout
    assert out["calibration_fit"]["actual"][0] == 1411
    assert (tmp_path / "report" / "calibration_fit.png").exists() and (tmp_path / "report" / "pareto_nbd.json").exists()


_run = run_cli


def test_an_order_file_that_imports_predicts_the_same_from_the_file(tmp_path, cdnow_orders, capsys):
    """One vocabulary: the same file and the same --map flags for `import orders` and `predict clv --orders`."""
    path = _cdnow_file(tmp_path, cdnow_orders)
    data = ["--data", str(tmp_path / "data")]
    code, out, err = _run(capsys, "import", "orders", str(path), *CDNOW_MAP, "--quiet", "--json", *data)
    assert code == 0 and json.loads(out)["stored"] == cdnow_orders.num_rows, err
    code, out, err = _run(capsys, "predict", "clv", "--orders", str(path), *CDNOW_MAP, *CDNOW_FIT, *data)
    assert code == 0, err
    from_file = json.loads(out)
    code, out, err = _run(capsys, "predict", "clv", *CDNOW_FIT, "--no-write", *data)
    assert code == 0, err
    from_warehouse = json.loads(out)
    assert from_file["customers"] == from_warehouse["customers"] == 2357
    assert from_file["params"] == pytest.approx(from_warehouse["params"], rel=1e-6)


def test_clv_orders_old_column_options_still_work_with_a_warning(tmp_path, cdnow_orders, capsys):
    path = _cdnow_file(tmp_path, cdnow_orders)
    old = ["--customer-col", "cust", "--date-col", "day", "--amount-col", "value", "--map", "order_id=order_no"]
    code, out, err = _run(capsys, "predict", "clv", "--orders", str(path), *old, *CDNOW_FIT)
    assert code == 0, err
    assert "--customer-col cust is now --map customer_id=cust" in err
    assert json.loads(out)["params"]["r"] == pytest.approx(0.553, abs=2e-3)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--map", "amount=value"], "reads no field 'amount'"),
        ([], "line 2: field 'customer_id' is empty"),
        (["--map", "customer_id=cust", "--map", "order_id=order_no", "--map", "timestamp=day", "--date-format", "%Y"],
         "--date-format was removed"),
        (["--map", "customer_id=cust"], "describe the file of --orders"),
    ],
)  # fmt: skip
def test_clv_orders_file_errors_name_the_field(tmp_path, cdnow_orders, capsys, args, message):
    path = _cdnow_file(tmp_path, cdnow_orders)
    orders = [] if "describe" in message else ["--orders", str(path)]
    code, out, _ = _run(capsys, "predict", "clv", *orders, *args, "--json", "--data", str(tmp_path / "d"))
    assert code == 1
    assert message in json.loads(out)["error"]["message"]
