"""Fitting on simulated data with known truth: recovery, the diagnostics gate, plan, case, surfaces."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from touchpoint.cli import mmm as mmm_cli
from touchpoint.errors import InvalidInput
from touchpoint.mmm import MMMConfig, MMMData, MMMResult, fit, simulate, workflow
from touchpoint.mmm.case import investment_case
from touchpoint.mmm.optimize import current_allocation, plan_budget

SMALL = MMMConfig(draws=250, warmup=250, chains=2, holdout_weeks=6, seed=7)


@pytest.fixture(scope="module")
def fitted(tmp_path_factory: pytest.TempPathFactory) -> tuple[MMMResult, dict, Path]:
    data, truth = simulate(weeks=130, channels=3, seed=11, holdout_weeks=6)
    out = tmp_path_factory.mktemp("data") / "mmm"
    workflow.fit_and_save(data, SMALL, out)  # the model, fit.json and the charts, as the CLI writes them
    return MMMResult.load(out), truth, out


def test_recovers_the_true_romi(fitted: tuple[MMMResult, dict, Path]) -> None:
    result, truth, _ = fitted
    assert result.status in ("ok", "warning"), result.diagnostics["problems"]
    romi = result.romi()
    for ch, true_roi in truth["roi"].items():
        est = romi[ch]["romi"]
        assert est["low"] <= true_roi <= est["high"], (ch, true_roi, est)
        assert est["mean"] == pytest.approx(true_roi, rel=0.15), (ch, true_roi, est)
        assert romi[ch]["identified"]


def test_diagnostics_are_real(fitted: tuple[MMMResult, dict, Path]) -> None:
    result, _, _ = fitted
    d = result.diagnostics
    assert d["sampler"]["max_rhat"] < 1.05 and d["sampler"]["min_ess"] > 100
    names = {row["parameter"] for row in d["parameters"]}
    assert {"roi[ch1]", "decay[ch3]", "sigma", "gamma[trend]"} <= names
    assert d["posterior_predictive"]["coverage"] > 0.75
    assert d["posterior_predictive"]["r2"] > 0.7
    assert d["holdout"]["weeks"] == 6 and d["holdout"]["mape"] < 0.15
    summary = result.summary()
    json.dumps(summary)  # JSON-able
    timing = summary["effect_timing"]["channels"]["ch1"]
    assert timing["short_term_share"]["mean"] + timing["long_term_share"]["mean"] == pytest.approx(1.0)


def test_same_seed_same_result(fitted: tuple[MMMResult, dict, Path]) -> None:
    result, _, _ = fitted
    again = fit(result.data, SMALL)  # same shapes: the compiled sampler is reused
    np.testing.assert_array_equal(again.draws["roi"], result.draws["roi"])
    assert again.summary()["romi"] == result.summary()["romi"]
    other = fit(result.data, MMMConfig.from_dict(SMALL.to_dict() | {"seed": 8}))
    assert not np.array_equal(other.draws["roi"], result.draws["roi"])


def test_fits_in_threads_at_once_share_the_sampler_and_give_each_its_own_draws(
    fitted: tuple[MMMResult, dict, Path],
) -> None:
    """The process keeps one sampler per shape (engine._sampler): four fits of the same shape started at once
    in threads, two seeds each twice, give the draws each gives alone."""
    from concurrent.futures import ThreadPoolExecutor

    result, _, _ = fitted
    configs = [MMMConfig.from_dict(SMALL.to_dict() | {"seed": seed}) for seed in (7, 8, 7, 8)]
    with ThreadPoolExecutor(4) as pool:
        runs = list(pool.map(lambda c: fit(result.data, c).draws["roi"], configs))
    np.testing.assert_array_equal(runs[0], result.draws["roi"])  # seed 7 alone: the fixture
    np.testing.assert_array_equal(runs[2], result.draws["roi"])
    np.testing.assert_array_equal(runs[1], runs[3])
    assert not np.array_equal(runs[0], runs[1])


@pytest.mark.slow  # identical channels form a ridge that NUTS walks with long trajectories
def test_identical_spend_is_reported_as_not_identifiable(tmp_path: Path) -> None:
    data, _ = simulate(weeks=130, channels=3, seed=2, identical=(0, 1))
    lines = ["week,revenue,ch1,ch2,ch3"] + [
        f"{d},{y},{s[0]},{s[1]},{s[2]}" for d, y, s in zip(data.dates, data.target, data.spend, strict=True)
    ]
    (tmp_path / "w.csv").write_text("\n".join(lines))
    args = ["fit", "--file", str(tmp_path / "w.csv"), "--map", "date=week", "--target", "revenue"]
    args += ["--channel", "ch1", "--channel", "ch2", "--channel", "ch3", "--draws", "250", "--warmup", "250"]
    args += ["--chains", "2", "--seed", "7", "--holdout-weeks", "6", "--model", str(tmp_path / "model"), "--json"]
    run = CliRunner().invoke(mmm_cli.app, args)
    assert run.exit_code == mmm_cli.FAILED_EXIT, run.output
    out = json.loads(run.stdout)
    assert out["status"] == "failed" and out["reliable"] is False
    assert any("ch1, ch2 are not identifiable" in p for p in out["problems"])
    assert not out["romi"]["ch1"]["identified"] and not out["romi"]["ch2"]["identified"]
    assert out["romi"]["ch3"]["identified"]
    # every downstream output carries the failure too
    plan = CliRunner().invoke(mmm_cli.app, ["plan", "--budget", "100000", "--model", str(tmp_path / "model"), "--json"])
    assert plan.exit_code == mmm_cli.FAILED_EXIT
    assert json.loads(plan.stdout)["reliable"] is False


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    budget=st.floats(50_000, 3_000_000),
    lo=st.floats(0.0, 0.9),
    hi=st.floats(1.1, 4.0),
    objective=st.sampled_from(["revenue", "profit"]),
)
def test_plan_respects_bounds_and_beats_the_current_mix(
    fitted: tuple[MMMResult, dict, Path], budget: float, lo: float, hi: float, objective: str
) -> None:
    result, _, _ = fitted
    current = current_allocation(result) * budget
    bounds = {ch: (current[j] * lo, current[j] * hi) for j, ch in enumerate(result.data.channels)}
    plan = plan_budget(result, budget, weeks=26, bounds=bounds, objective=objective, gross_margin=0.5)
    for ch, v in plan["channels"].items():
        assert bounds[ch][0] - 1e-6 * budget <= v["total"] <= bounds[ch][1] + 1e-6 * budget
    if objective == "revenue":
        assert plan["spent"] == pytest.approx(budget, rel=1e-6)
        assert plan["expected"]["revenue"]["mean"] >= plan["current"]["revenue"]["mean"] * (1 - 1e-9)
    else:
        assert plan["spent"] <= budget * (1 + 1e-9)
        cur_profit = 0.5 * plan["current"]["revenue"]["mean"] - budget
        assert plan["expected"]["profit"]["mean"] >= cur_profit - 1e-6 * budget


def test_plan_brand_share_and_errors(fitted: tuple[MMMResult, dict, Path]) -> None:
    result, _, _ = fitted
    branded = MMMResult(
        result.data,
        MMMConfig.from_dict(SMALL.to_dict() | {"brand_channels": ["ch2"]}),
        result.design,
        result.draws,
        result.diagnostics,
        result.seconds,
        result.extra,
    )
    bounds = {ch: (0.0, 1e7) for ch in result.data.channels}
    plan = plan_budget(branded, 1_000_000, bounds=bounds, min_brand_share=0.6)
    assert plan["brand_share"] >= 0.6 - 1e-6
    with pytest.raises(InvalidInput, match="add up to 3,000,000, more than the budget"):
        plan_budget(result, 1_000_000, bounds={ch: (1e6, 2e6) for ch in result.data.channels})
    with pytest.raises(InvalidInput, match="needs brand channels"):
        plan_budget(result, 1_000_000, min_brand_share=0.5)
    with pytest.raises(InvalidInput, match="unknown channel 'radio'"):
        plan_budget(result, 1_000_000, bounds={"radio": (0, 1)})


def test_investment_case_adds_up(fitted: tuple[MMMResult, dict, Path]) -> None:
    result, _, _ = fitted
    plan = plan_budget(result, 500_000, weeks=26)
    case = investment_case(result, plan, horizon_months=18, discount_rate=0.0, gross_margin=0.5)
    months = case["months"]
    assert len(months) == 18
    assert sum(m["spend"] for m in months) == pytest.approx(500_000)
    assert all(m["spend"] == 0 for m in months[7:])  # 26 weeks of spend end in month 7
    # carry-over: revenue keeps arriving after the spend stops
    assert months[6]["revenue"]["mean"] > 0 and case["carry_over_share"]["mean"] > 0
    # with no discounting the NPV is the total cash flow
    assert case["npv"]["mean"] == pytest.approx(sum(m["cash_flow"]["mean"] for m in months), rel=1e-9)
    assert case["expected_return"]["mean"] == pytest.approx(0.5 * case["expected_revenue"]["mean"])
    assert 0 <= case["probability_pays_back"] <= 1
    assert "We plan to spend 500.0 thousand over 26 weeks" in case["summary"]
    discounted = investment_case(result, plan, horizon_months=18, discount_rate=0.2, gross_margin=0.5)
    assert discounted["npv"]["mean"] < case["npv"]["mean"] or case["npv"]["mean"] < 0


def test_saved_model_round_trip_and_cli(fitted: tuple[MMMResult, dict, Path], tmp_path: Path) -> None:
    result, _, out = fitted
    loaded = MMMResult.load(out)
    assert loaded.romi() == result.romi()
    runner = CliRunner()
    plan_run = runner.invoke(
        mmm_cli.app,
        [
            "plan",
            "--budget",
            "400000",
            "--weeks",
            "26",
            "--model",
            str(out),
            "--bound",
            "ch1=0:50000",
            "--out",
            str(tmp_path),
            "--json",
        ],
    )
    assert plan_run.exit_code == 0, plan_run.output
    assert json.loads(plan_run.stdout)["channels"]["ch1"]["total"] <= 50000 + 1e-3
    case_run = runner.invoke(
        mmm_cli.app,
        ["case", "--plan", str(tmp_path / "plan.json"), "--model", str(out), "--out", str(tmp_path), "--currency", "€"],
    )
    assert case_run.exit_code == 0, case_run.output
    assert "We plan to spend €400.0 thousand" in case_run.stdout.replace("\n", " ")
    html = (tmp_path / "case.html").read_text()
    assert "<h1>Investment case</h1>" in html and "data:image/png;base64," in html
    assert (tmp_path / "case.png").read_bytes()[:4] == b"\x89PNG"
    pdf = (tmp_path / "case.pdf").read_bytes()
    assert pdf[:5] == b"%PDF-" and len(re.findall(rb"/Type /Page\b(?!s)", pdf)) == 1  # one page
    bad = runner.invoke(mmm_cli.app, ["plan", "--budget", "1000", "--model", str(tmp_path / "none")])
    assert bad.exit_code != 0 and "run `touchpoint mmm fit` first" in str(bad.exception)
    bad_bound = runner.invoke(mmm_cli.app, ["plan", "--budget", "1000", "--model", str(out), "--bound", "ch1=5"])
    assert "is not CHANNEL=A:B" in str(bad_bound.exception)


def test_tampered_model_is_refused(fitted: tuple[MMMResult, dict, Path], tmp_path: Path) -> None:
    result, _, _ = fitted
    result.save(tmp_path)
    meta = json.loads((tmp_path / "model.json").read_text())
    meta["config"]["seed"] = 99
    (tmp_path / "model.json").write_text(json.dumps(meta))
    with pytest.raises(InvalidInput, match="config hash does not match"):
        MMMResult.load(tmp_path)


def test_http_api(fitted: tuple[MMMResult, dict, Path]) -> None:
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    from touchpoint.api.app import create_app
    from touchpoint.config import Settings
    from touchpoint.keys import create_api_key
    from touchpoint.warehouse import Warehouse

    _, _, out = fitted
    settings = Settings(data_dir=out.parent)
    with Warehouse.open(settings.resolved_warehouse_url()) as wh:
        read = create_api_key(wh, "mmm-read", "read")
    app: FastAPI = create_app(settings)
    with TestClient(app) as client:
        auth = {"Authorization": f"Bearer {read}"}
        assert client.get("/v1/mmm/model").status_code == 401
        model = client.get("/v1/mmm/model", headers=auth).json()
        assert model["reliable"] is True and set(model["romi"]) == {"ch1", "ch2", "ch3"}
        assert {"romi", "marginal_romi"} <= set(model["romi"]["ch1"])
        plan = client.post("/v1/mmm/plan", headers=auth, json={"budget": 300000, "weeks": 26}).json()
        assert plan["spent"] == pytest.approx(300000)
        case = client.post("/v1/mmm/case", headers=auth, json={"plan": plan, "horizon_months": 12}).json()
        assert len(case["months"]) == 12 and "summary" in case
        pdf = client.post("/v1/mmm/case.pdf", headers=auth, json={"plan": plan, "currency": "€"})
        assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
        assert pdf.content[:5] == b"%PDF-"
        png = client.get("/v1/mmm/charts/romi.png", headers=auth)
        assert png.status_code == 200 and png.content[:4] == b"\x89PNG"
        missing = client.get("/v1/mmm/charts/nope.png", headers=auth)
        assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
        bad = client.post("/v1/mmm/plan", headers=auth, json={"budget": -1})
        assert bad.status_code in (400, 422)
        refit = client.post("/v1/mmm/fit", headers=auth, json={})
        assert refit.status_code == 403  # fitting is an admin action


def test_a_channel_that_never_pauses_is_reported_as_extrapolated(fitted: tuple[MMMResult, dict, Path]) -> None:
    """Total ROMI of an always-on channel extrapolates its curve below the lowest spend seen: the channel is
    noted and the fit warns (the coverage study's always-on channels: docs/mmm.md). The channels that pause
    are not. Same shapes as ``fitted``: the compiled sampler is reused."""
    data, truth = simulate(weeks=130, channels=3, seed=11, holdout_weeks=6, always_on=(0,))
    result = fit(data, SMALL)
    romi = result.romi()
    channels = {c["channel"]: c for c in result.diagnostics["identification"]["channels"]}
    lowest = data.spend[:-6].min(axis=0) / data.spend[:-6].mean(axis=0)
    assert channels["ch1"]["lowest_spend_share"] == pytest.approx(lowest[0]) and lowest[0] > 0.5
    assert "always on: its weekly spend never fell below" in romi["ch1"]["note"]
    assert any(w.startswith("ch1 never paused") for w in result.diagnostics["warnings"])
    assert all(channels[ch]["lowest_spend_share"] == 0 for ch in ("ch2", "ch3"))
    assert not any("never fell" in (romi[ch]["note"] or "") for ch in ("ch2", "ch3"))
    est = romi["ch1"]["romi"]
    assert est["low"] <= truth["roi"]["ch1"] <= est["high"]  # extrapolated, and still covering the truth here


def test_a_model_that_misses_the_held_out_weeks_fails() -> None:
    data, _ = simulate(weeks=130, channels=2, seed=5, holdout_weeks=6)
    shifted = data.target.copy()
    shifted[-6:] *= 1.6  # demand jumps after the fitted weeks: nothing in the model explains it
    spend = dict(zip(data.channels, data.spend.T, strict=True))
    jumped = MMMData.from_columns(dates=data.dates, target=shifted, spend=spend)
    result = fit(jumped, MMMConfig(draws=200, warmup=200, chains=2, holdout_weeks=6, seed=7))
    assert result.status == "failed" and not result.reliable
    assert any("does not predict the 6 held-out weeks" in p for p in result.diagnostics["problems"])
    assert result.diagnostics["holdout"]["coverage"] < 0.25


def test_the_demos_model_is_the_one_the_cli_and_api_read(tmp_path: Path) -> None:
    from touchpoint.config import Settings
    from touchpoint.demo.run import run_demo
    from touchpoint.demo.simulator import DemoConfig

    settings = Settings(data_dir=tmp_path / "data")
    summary = run_demo(settings, DemoConfig(customers=400, weeks=50), say=lambda _: None, steps=("mmm", "calibration"))
    step = summary["steps"]["mmm"]
    assert step["kpi"] == "new_customer_revenue" and set(step["recovery"]) == set(step["romi"])
    model = workflow.model_dir(settings.data_dir)
    assert MMMResult.load(model).data.target_name == "new_customer_revenue"
    run = CliRunner().invoke(mmm_cli.app, ["case", "--plan", str(model / "plan.json"), "--model", str(model)])
    assert run.exit_code in (0, mmm_cli.FAILED_EXIT), run.output
    assert (model / "case.pdf").exists()
    # the calibration step: a geo test on the weakest-identified channel, accepted, the model refitted with it
    cal = summary["steps"]["calibration"]
    assert cal["status"] == "ok", cal
    assert cal["channel"] in step["romi"] and cal["test"]["kind"] == "geo" and cal["test"]["se"] > 0
    assert cal["width_after"] < cal["width_before"] and cal["before"] == {
        k: step["romi"][cal["channel"]][k] for k in ("mean", "low", "high")
    }
    refitted = MMMResult.load(model)
    assert [c.source for c in refitted.config.calibrations] == [f"demo:geo-test:{cal['channel']}"]
    assert refitted.diagnostics["refit"]["changed"] == ["calibrations"]
