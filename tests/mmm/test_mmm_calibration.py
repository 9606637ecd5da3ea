"""The measurement loop and reproducibility (issue 19, parts 3-4): a lift test from an experiment in the
warehouse calibrates the model and narrows its weakest channel's interval around the truth; the key
scheme's errors name the field and the fix; every fit records its library versions; a refit that moves a
channel's ROMI outside its previous interval is flagged, a same-seed refit is not.

One simulated data set (104 weeks, 3 channels) and one small sampler setting, so every fit here runs the
same compiled sampler (calibration terms sit in fixed slots)."""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from fastapi.testclient import TestClient
from tests.conftest import run_cli

from touchpoint import keys
from touchpoint.api.app import create_app
from touchpoint.automations.calibration import SOURCES
from touchpoint.collect.store import write_messages
from touchpoint.config import Settings
from touchpoint.errors import AlreadyExists, InvalidInput, NotFound
from touchpoint.experiments.assignment import record_exposures
from touchpoint.experiments.definitions import Experiment, create_experiment
from touchpoint.experiments.metrics import Metric
from touchpoint.mmm import MMMConfig, MMMData, MMMResult, calibration, simulate, workflow
from touchpoint.mmm.simulate import true_test_roi
from touchpoint.warehouse import Warehouse, schema

pytestmark = pytest.mark.timeout(900)  # a fit and a refit in one test: minutes on a busy 2-core machine
SMALL = MMMConfig(draws=200, warmup=200, chains=2, holdout_weeks=4, seed=1)
TEST_WEEKS = slice(40, 52)  # a 12-week lift test inside the fitted weeks
UNITS = 2000  # per arm
KEY = "geo-test"


@dataclass
class Shop:
    data: MMMData
    truth: dict
    root: Path  # the data directory: warehouse.duckdb and mmm/
    before: dict  # the uncalibrated fit's summary
    weakest: str

    @property
    def url(self) -> str:
        return f"duckdb:///{self.root / 'warehouse.duckdb'}"

    def model_copy(self, name: str) -> Path:
        target = self.root / name
        shutil.copytree(self.root / "mmm", target)
        return target


def _experiment(wh: Warehouse, shop: Shop, channel: str, key: str = KEY, se_share: float = 0.1) -> float:
    """A holdout test of ``channel`` over TEST_WEEKS: UNITS users per arm, the treated arm buys the channel's
    true incremental revenue on top (spread over its users, with noise giving the lift a standard error of
    ``se_share`` of it); the channel's daily spend in the spend table. Returns the true test ROI."""
    t = true_test_roi(shop.data, shop.truth, channel, TEST_WEEKS)
    start = datetime.fromisoformat(str(shop.data.dates[TEST_WEEKS.start]))
    end = datetime.fromisoformat(str(shop.data.dates[TEST_WEEKS.stop - 1])) + timedelta(days=7) - timedelta(seconds=1)
    metric = Metric("revenue", kind="mean", event="Order Completed", value="revenue")
    create_experiment(wh, Experiment(key, variants=["holdout", "treated"], metrics=[metric], unit="user_id",
                                     start_at=start, end_at=end))  # fmt: skip
    rng = np.random.default_rng(4)
    delta = t["incremental"] / UNITS
    sd = se_share * delta * np.sqrt(UNITS / 2)
    users = [(f"{key}-{arm}-{i}", arm) for arm in ("holdout", "treated") for i in range(UNITS)]
    record_exposures(wh, key, [(u, arm, start + timedelta(hours=1)) for u, arm in users])
    orders = []
    for u, arm in users:
        value = 40.0 + 5 * sd + rng.normal(0, sd) + (delta if arm == "treated" else 0.0)
        orders.append(
            {
                "type": "track",
                "event": "Order Completed",
                "userId": u,
                "properties": {"revenue": round(float(max(value, 0.01)), 4)},
                "timestamp": (start + timedelta(days=3)).isoformat() + "Z",
            }
        )
    write_messages(wh, orders)
    j = shop.data.channels.index(channel)
    days = [
        (shop.data.dates[w] + np.timedelta64(d, "D"), shop.data.spend[w, j] / 7)
        for w in range(TEST_WEEKS.start, TEST_WEEKS.stop)
        for d in range(7)
    ]
    rows = pa.table(
        {
            "date": pa.array([np.datetime64(day, "D").astype(object) for day, _ in days], pa.date32()),
            "channel": [channel] * len(days),
            "campaign": [""] * len(days),
            "amount": [float(a) for _, a in days],
        }
    )
    full = pa.Table.from_pylist(rows.to_pylist(), schema=schema.SPEND.schema.to_pyarrow())
    wh.upsert("spend", full, schema.SPEND.key)
    return t["roi"]


def _ensure(shop: Shop, key: str, channel: str) -> None:
    with Warehouse.open(shop.url) as wh:
        if key not in wh.to_arrow(wh.table("experiments").key).to_pylist():
            _experiment(wh, shop, channel, key=key)


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Shop:
    data, truth = simulate(weeks=104, channels=3, seed=5, holdout_weeks=SMALL.holdout_weeks)
    root = tmp_path_factory.mktemp("calibration")
    before = workflow.fit_and_save(data, SMALL, root / "mmm")
    identified = {ch: v for ch, v in before["romi"].items() if v["identified"]}
    weakest = max(identified, key=lambda ch: identified[ch]["relative_sd"])
    Warehouse.open(f"duckdb:///{root / 'warehouse.duckdb'}").close()  # migrated, empty
    return Shop(data, truth, root, before, weakest)


def test_a_lift_test_narrows_the_weakest_channel_and_keeps_the_truth(shop: Shop) -> None:
    ch = shop.weakest
    model = shop.model_copy("mmm-calibrated")
    with Warehouse.open(shop.url) as wh:
        true_test = _experiment(wh, shop, ch)
        out = workflow.calibrate(wh, f"experiment:{KEY}", model, channel=ch, accept=True, by="cli:ann", sources=SOURCES)
        stored = calibration.list_calibrations(wh)
    prop = out["proposal"]
    assert prop["channel"] == ch and prop["source"] == f"experiment:{KEY}"
    assert prop["roi_interval"]["low"] <= true_test <= prop["roi_interval"]["high"], (prop, true_test)
    assert prop["roi_se"] == pytest.approx(0.1 * true_test, rel=0.25)
    assert prop["spend"] == pytest.approx(float(shop.data.spend[TEST_WEEKS, shop.data.channels.index(ch)].sum()))
    # stored with its source, period, lift and interval, channel, who and when
    assert [r["calibration_id"] for r in stored] == [out["accepted"]["calibration_id"]]
    row = stored[0]
    assert (row["source"], row["channel"], row["accepted_by"], row["status"]) == (f"experiment:{KEY}", ch, "cli:ann",
                                                                                  "accepted")  # fmt: skip
    assert row["period_start"] == str(shop.data.dates[TEST_WEEKS.start])
    assert row["lift_low"] < row["lift"] < row["lift_high"] and row["accepted_at"]
    # the refit: narrower, still covering the truth
    n = out["narrowing"]
    truth = shop.truth["roi"][ch]
    before, after = shop.before["romi"][ch]["romi"], out["refit"]["romi"][ch]["romi"]
    assert before["low"] <= truth <= before["high"]
    assert after["low"] <= truth <= after["high"], (after, truth)
    assert n["width_before"] == pytest.approx(before["high"] - before["low"])
    assert n["width_after"] == pytest.approx(after["high"] - after["low"])
    assert n["width_after"] < 0.6 * n["width_before"], n
    refit = out["refit"]
    assert refit["romi"][ch]["calibrated_by"] == [f"experiment:{KEY}"]
    used = refit["diagnostics"]["calibration"]
    assert used[0]["used"] and used[0]["weeks"] == 12 and abs(used[0]["z"]) < 3
    assert refit["diagnostics"]["refit"]["changed"] == ["calibrations"]
    saved = json.loads((model / "fit.json").read_text())
    assert saved["diagnostics"]["refit"]["channels"][ch]["width_after"] == pytest.approx(n["width_after"])
    assert Path(saved["files"]["romi"]).stat().st_size > 0
    # the investment case's report says which lift tests the numbers rest on, and the narrowing
    result = MMMResult.load(model)
    plan = workflow.make_plan(result, None, budget=float(shop.data.spend[-52:].sum()), weeks=52)
    case = workflow.make_case(result, plan, model / "case")
    assert case["calibration"][0]["source"] == f"experiment:{KEY}"
    assert case["calibration"][0]["width_after"] == pytest.approx(n["width_after"])
    assert f"Calibrated with lift tests: {ch} by experiment:{KEY}" in (model / "case" / "case.html").read_text()
    # a second accept of the same test is refused; withdrawing keeps the row, marked
    with Warehouse.open(shop.url) as wh:
        with pytest.raises(AlreadyExists, match="withdraw it first"):
            workflow.calibrate(wh, KEY, model, channel=ch, accept=True, by="cli:ann", sources=SOURCES)
        gone = workflow.withdraw(wh, row["calibration_id"], model, by="cli:bob", refit=False)
        assert gone["withdrawn"]["status"] == "withdrawn" and calibration.active(wh) == ()
        kept = [r for r in calibration.list_calibrations(wh, withdrawn=True) if r["source"] == f"experiment:{KEY}"]
        assert [(r["status"], r["withdrawn_by"]) for r in kept] == [("withdrawn", "cli:bob")]
        with pytest.raises(InvalidInput, match="already withdrawn"):
            calibration.withdraw(wh, row["calibration_id"], by="cli:bob")


def _error(call: object) -> InvalidInput | NotFound:
    with pytest.raises((InvalidInput, NotFound)) as info:
        call()  # type: ignore[operator]
    return info.value  # type: ignore[return-value]


def test_the_key_schemes_errors_name_the_field_and_the_fix(shop: Shop) -> None:
    model = shop.root / "mmm"
    with Warehouse.open(shop.url) as wh:
        if "no-revenue" not in wh.to_arrow(wh.table("experiments").key).to_pylist():
            create_experiment(wh, Experiment("no-revenue", metrics=[Metric("bought")]))

        def propose(key: str, **kw: object) -> object:
            return lambda: workflow.calibrate(wh, key, model, sources=SOURCES, **kw)  # type: ignore[arg-type]

        e = _error(propose("experiment:nope"))
        assert "no experiment with key 'nope'" in e.message and "--from-experiment" in e.message
        assert "experiment list" in e.hint and "automation:NAME" in e.hint
        e = _error(propose("no-revenue", channel=shop.weakest))
        assert "--metric" in e.message and "revenue:mean:Order Completed:revenue" in e.hint
        e = _error(propose("no-revenue", channel=shop.weakest, options=calibration.LiftOptions(metric="bought")))
        assert "binomial" in e.message and "--metric" in e.message
        e = _error(propose("automation:nobody"))
        assert "no automation 'nobody'" in e.message and "automations list" in e.hint
        e = _error(propose("automation:"))
        assert "names no automation" in e.message
        # an experiment says nothing about media: the channel must be named, and be the model's
        lift = calibration.MeasuredLift("experiment:x", "2022-02-01", "2022-02-28", 10.0, 5.0, 15.0, 2.5)
        e = _error(lambda: calibration.proposal(wh, lift, channel=None, channels=shop.data.channels))
        assert "does not say which channel" in e.message and "--channel" in e.message
        assert all(ch in e.hint for ch in shop.data.channels)
        e = _error(lambda: calibration.proposal(wh, lift, channel="tv", channels=shop.data.channels))
        assert "'tv' is not in the marketing-mix model (field: --channel)" in e.message
        e = _error(lambda: calibration.proposal(wh, lift, channel="ch1", channels=shop.data.channels))
        assert "no spend on 'ch1'" in e.message and "--spend" in e.hint
        e = _error(lambda: workflow.withdraw(wh, "cal-nope", model, by="cli:ann"))
        assert "calibration_id" in e.message and "calibrations list" in e.hint
        # a test outside the fitted weeks cannot calibrate this model
        outside = calibration.MeasuredLift("experiment:late", "2030-01-01", "2030-02-01", 10.0, 5.0, 15.0, 2.5)
        sources = {"experiment": lambda _wh, _name, _opts: outside}
        e = _error(lambda: workflow.calibrate(wh, "late", model, channel="ch1", spend=100.0, sources=sources))
        assert "outside the fitted weeks" in e.message and "(field: period)" in e.message and "mmm fit" in e.hint


def test_the_cli_shows_a_lift_before_it_is_accepted(shop: Shop, capsys: pytest.CaptureFixture[str]) -> None:
    _ensure(shop, "cli-test", "ch1")
    code, out, _ = run_cli(capsys, "mmm", "calibrate", "--from-experiment", "cli-test", "--channel", "ch1",
                           "--data", str(shop.root), "--json")  # fmt: skip
    assert code == 0, out
    shown = json.loads(out)
    assert shown["accepted"] is None and "--accept" in shown["note"] and shown["proposal"]["roi"] > 0
    code, out, _ = run_cli(capsys, "mmm", "calibrate", "--from-experiment", "cli-test", "--data", str(shop.root),
                           "--json")  # fmt: skip
    assert code == 1 and json.loads(out)["error"]["hint"].startswith("pass --channel")
    code, out, _ = run_cli(capsys, "mmm", "calibrations", "list", "--data", str(shop.root), "--json")
    assert code == 0 and all(r["source"] != "experiment:cli-test" for r in json.loads(out)["calibrations"])


def test_every_fit_records_its_library_versions(shop: Shop) -> None:
    versions = shop.before["diagnostics"]["versions"]
    for name in ("touchpoint", "numpyro", "jax", "jaxlib", "numpy", "python"):
        assert versions[name], name
    assert MMMResult.load(shop.root / "mmm").diagnostics["versions"] == versions
    from importlib import metadata

    assert versions["numpyro"] == metadata.version("numpyro") and versions["jax"] == metadata.version("jax")


def test_a_same_seed_refit_does_not_drift_and_a_constructed_drift_is_flagged(shop: Shop) -> None:
    """One refit on unchanged data (the weekly job's case): against the saved fit nothing changed and nothing
    drifts; against a previous fit that put one channel's ROMI far higher, that channel is flagged."""
    best = min(shop.before["romi"], key=lambda c: shop.before["romi"][c]["relative_sd"])
    tampered = shop.model_copy("mmm-tampered")
    previous = json.loads((tampered / "fit.json").read_text())
    was = previous["romi"][best]["romi"]
    previous["romi"][best]["romi"] = {**was, "mean": 2.5 * was["mean"], "low": 2 * was["high"], "high": 3 * was["high"]}
    previous["data_hash"] = "0" * 16  # as if last week's data differed
    (tampered / "fit.json").write_text(json.dumps(previous))
    again_dir = shop.root / "mmm-again"
    again = workflow.fit_and_save(shop.data, SMALL, again_dir, previous=tampered)
    np.testing.assert_array_equal(
        MMMResult.load(again_dir).draws["roi"], MMMResult.load(shop.root / "mmm").draws["roi"]
    )
    assert again["romi"] == shop.before["romi"]
    same = workflow.compare_fits(shop.before, MMMResult.load(again_dir))
    assert same["changed"] == [] and same["drift"] == [], same
    assert all(v["narrowed_by"] == 0 for v in same["channels"].values())
    refit = again["diagnostics"]["refit"]
    assert refit["drift"] == [best] and refit["changed"] == ["data"], refit
    report = workflow.drift_report(again)
    assert report["drift"] == [best]
    assert any(f"ROMI of {best} drifted" in w and "changed since then: data" in w for w in report["drift_warnings"])
    assert again["status"] in ("warning", "failed")
    saved = json.loads((again_dir / "fit.json").read_text())
    assert saved["diagnostics"]["refit"]["drift"] == [best]  # the fit's diagnostics keep it


def test_the_api_runs_the_same_loop(shop: Shop) -> None:
    _ensure(shop, "cli-test", "ch1")
    with Warehouse.open(shop.url) as wh:
        admin = keys.create_api_key(wh, "mmm-admin", "admin")
        read = keys.create_api_key(wh, "mmm-reader", "read")
    as_admin, as_reader = {"Authorization": f"Bearer {admin}"}, {"Authorization": f"Bearer {read}"}
    with TestClient(create_app(Settings(data_dir=shop.root))) as client:
        r = client.post("/v1/mmm/calibrate", json={"key": "cli-test"}, headers=as_admin)
        assert r.status_code == 400 and r.json()["error"]["hint"].startswith("pass --channel"), r.text
        body = {"key": "experiment:cli-test", "channel": "ch1", "accept": True, "refit": False}
        assert client.post("/v1/mmm/calibrate", json=body, headers=as_reader).status_code == 403
        r = client.post("/v1/mmm/calibrate", json=body, headers=as_admin)
        assert r.status_code == 200, r.text
        out = r.json()
        assert out["accepted"]["accepted_by"] == "key:mmm-admin" and out["refit"] is None
        listed = client.get("/v1/mmm/calibrations", headers=as_reader).json()["calibrations"]
        assert out["accepted"]["calibration_id"] in [c["calibration_id"] for c in listed]
        cid = out["accepted"]["calibration_id"]
        r = client.post(f"/v1/mmm/calibrations/{cid}/withdraw", json={"refit": False}, headers=as_admin)
        assert r.status_code == 200 and r.json()["withdrawn"]["withdrawn_by"] == "key:mmm-admin", r.text
        r = client.post("/v1/mmm/calibrations/cal-nope/withdraw", json={"refit": False}, headers=as_admin)
        assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
        left = client.get("/v1/mmm/calibrations", headers=as_reader).json()["calibrations"]
        assert cid not in [c["calibration_id"] for c in left]


def test_an_automations_holdout_lift_reads_as_revenue_on_its_channel(tmp_path: Path) -> None:
    """``automation:NAME``: the treated minus held-out goal rate, times the treated entrants, times the value
    of a conversion; the channel and its spend are named (an automation's email costs what the user says)."""
    from tests.automations.shop import WELCOME, open_shop, track

    from touchpoint.automations import store, triggers
    from touchpoint.automations import workflow as automations

    n, treated_rate, holdout_rate, value = 700, 0.55, 0.25, 30.0  # 300 entrants per arm at least
    wh = open_shop(tmp_path, n)
    try:
        automations.create(wh, WELCOME | {"holdout": 0.5})
        track(wh, "Signed Up", list(range(n)))
        automations.evaluate(wh)
        auto = store.load(wh, "welcome")
        p = wh.table("profiles")
        pid = {r["user_id"]: r["profile_id"] for r in wh.to_arrow(p.select("user_id", "profile_id")).to_pylist()}
        held = [triggers.in_holdout(auto, pid[f"u{i}"]) for i in range(n)]
        rng = np.random.default_rng(7)
        buyers = [i for i in range(n) if rng.random() < (holdout_rate if held[i] else treated_rate)]
        track(wh, "Order Completed", buyers, resolve=False, revenue=value)
        e = _error(lambda: calibration.measure(wh, "automation:welcome", sources=SOURCES))
        assert "--value-per-conversion" in e.message and e.field == "value_per_conversion"  # type: ignore[union-attr]
        opts = calibration.LiftOptions(value_per_conversion=value)
        lift = calibration.measure(wh, "automation:welcome", opts, sources=SOURCES)
        treated = n - sum(held)
        assert lift.source == "automation:welcome" and lift.units == treated
        assert lift.low < (treated_rate - holdout_rate) * treated * value < lift.high
        assert lift.se == pytest.approx((lift.high - lift.low) / (2 * 1.959963984540054))
        assert lift.start == lift.end == store.now().date().isoformat()
        prop = calibration.proposal(wh, lift, channel="email", channels=("email", "search"), spend=1000.0)
        assert prop["roi"] == pytest.approx(lift.incremental / 1000.0)
    finally:
        wh.close()
