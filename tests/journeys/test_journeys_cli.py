"""The CLI surfaces: ``touchpoint journeys ...`` and ``touchpoint attribution``."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

import pyarrow as pa
import pytest
import typer
from typer.testing import CliRunner

from touchpoint.cli import journeys as cli
from touchpoint.collect.store import write_messages
from touchpoint.config import Settings, reset_settings
from touchpoint.errors import InvalidInput
from touchpoint.warehouse import open_warehouse

runner = CliRunner()
attribution_app = typer.Typer()
attribution_app.command("attribution")(cli.attribution)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory, m) -> Iterator[Path]:  # type: ignore[no-untyped-def]
    root = tmp_path_factory.mktemp("tp")
    wh = open_warehouse(Settings(data_dir=root))
    msgs = []
    for i in range(12):
        who = f"v{i}"
        t = m.T0 + timedelta(days=i % 3, hours=i)
        source, medium = [("google", "cpc"), ("news", "email"), ("facebook", "paid_social")][i % 3]
        msgs.append(m.page(who, t, "/product/1", query=f"utm_source={source}&utm_medium={medium}"))
        msgs.append(m.track(who, "Product Added", t + m.minutes(1)))
        if i % 2 == 0:
            msgs.append(m.track(who, "Order Completed", t + m.minutes(3), order_id=f"o{i}", revenue=25.0))
        msgs.append(m.page(who, t + timedelta(days=8), "/again"))
    assert write_messages(wh, msgs, source="test").quarantined == 0
    spend = pa.table(
        {
            "date": [date(2026, 3, 2)] * 2,
            "channel": ["paid_search", "email"],
            "campaign": ["", ""],
            "amount": [120.0, 12.0],
        }
    )
    wh.append("spend", spend)
    wh.close()
    yield root
    reset_settings()


def run(app: typer.Typer, args: list[str]) -> dict:  # type: ignore[type-arg]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, (result.output, result.exception)
    return json.loads(result.stdout) if "--json" in args else {"text": result.stdout}


def test_funnel_json_and_table(data_dir: Path, tmp_path: Path) -> None:
    out = run(
        cli.journeys_app,
        [
            "funnel",
            "page:/product%",
            "Product Added",
            "Order Completed",
            "--data",
            str(data_dir),
            "--json",
            "--chart",
            str(tmp_path / "f.png"),
        ],
    )
    assert [s["people"] for s in out["steps"]] == [12, 12, 6]
    assert Path(out["chart"]).stat().st_size > 1000
    text = run(
        cli.journeys_app,
        ["funnel", "page", "Order Completed", "--breakdown", "channel", "--data", str(data_dir)],
    )["text"]
    assert "paid_search" in text and "funnel" in text


def test_paths_retention_sessions(data_dir: Path, tmp_path: Path) -> None:
    out = run(
        cli.journeys_app,
        ["paths", "Product Added", "--data", str(data_dir), "--json", "--chart", str(tmp_path / "s.svg")],
    )
    assert out["paths"][0]["people"] >= 6 and out["sankey"]["links"]
    assert (tmp_path / "s.svg").read_text().startswith("<?xml")
    ret = run(cli.journeys_app, ["retention", "--periods", "2", "--data", str(data_dir), "--json"])
    assert ret["cohorts"][0]["size"] > 0
    ses = run(cli.journeys_app, ["sessions", "--data", str(data_dir), "--json"])
    assert {r["channel"] for r in ses["channels"]} >= {"paid_search", "email", "paid_social", "direct"}


def test_attribution_from_warehouse_with_romi(data_dir: Path) -> None:
    out = run(attribution_app, ["--data", str(data_dir), "--json"])
    assert out["total_conversions"] == 6
    assert set(out["models"]) >= {"markov", "shapley", "first", "position"}
    romi = {(r["model"], r["channel"]): r for r in out["romi"]["rows"]}
    assert romi[("last", "paid_search")]["cpa"] == pytest.approx(120 / 2)
    text = run(attribution_app, ["--data", str(data_dir), "--model", "markov", "--order", "2"])["text"]
    assert "caveat" in text and "ROAS" in text


def test_attribution_from_path_file(tmp_path: Path) -> None:
    f = tmp_path / "paths.csv"
    f.write_text("path,conversions,value,nulls\na;b,3,30,1\nb,1,5,4\n")
    out = run(attribution_app, ["--paths", str(f), "--sep", ";", "--model", "markov,shapley", "--json"])
    assert out["models"] == ["markov", "shapley"]
    assert sum(r["markov"] for r in out["channels"]) == pytest.approx(4)
    assert out["romi"] is None


def test_attribution_path_file_with_its_own_column_names(tmp_path: Path) -> None:
    """The path file's fields are renamed with --map, as every file a command reads (docs/cli.md)."""
    f = tmp_path / "paths.csv"
    f.write_text("journey,total_conversions,value,nulls\na;b,3,30,1\nb,1,5,4\n")
    mapped = ["--map", "path=journey", "--map", "conversions=total_conversions"]
    out = run(attribution_app, ["--paths", str(f), "--sep", ";", "--model", "markov", *mapped, "--json"])
    assert sum(r["markov"] for r in out["channels"]) == pytest.approx(4)
    result = runner.invoke(attribution_app, ["--paths", str(f), "--map", "journey=path"])
    assert isinstance(result.exception, InvalidInput) and "reads no field 'journey'" in str(result.exception)


def test_bad_model_is_an_error(tmp_path: Path) -> None:
    result = runner.invoke(attribution_app, ["--model", "guess", "--paths", str(tmp_path / "x.csv")])
    assert isinstance(result.exception, InvalidInput)
    assert "guess" in str(result.exception)
