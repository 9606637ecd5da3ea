"""``touchpoint predict clv|propensity|replenishment|show|summary``: customer value predictions."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from touchpoint.cli.common import (
    DataOpt,
    FormatOpt,
    JsonOpt,
    MapOpt,
    audited,
    console,
    deprecated_column_options,
    emit,
    file_mapping,
    pseudonym,
    settings_for,
    table,
    warehouse,
)
from touchpoint.errors import InvalidInput

#: The fields of an order file, as `touchpoint import orders` reads them (docs/cli.md, Reading files).
ORDER_FIELDS = (
    "customer_id",
    "order_id",
    "timestamp",
    "revenue",
    "email",
    "currency",
    "product_id",
    "sku",
    "name",
    "category",
    "quantity",
    "price",
)

app = typer.Typer(
    help="Predict customer value: CLV and P(alive) (BG/NBD, MBG/NBD, Pareto/NBD with Gamma-Gamma spend), "
    "next purchase and replenishment dates, and propensity scores.",
    no_args_is_help=True,
)


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return str(value)


def _render_clv(d: dict[str, Any]) -> None:
    console.print(
        f"[bold]{d['model']}[/] fitted on {d['fit']['n_customers']:,} customers "
        f"(calibration to {d['calibration_end']}, time unit {d['unit']}); "
        f"log-likelihood {d['log_likelihood']:,.2f}, converged: {d['fit']['converged']}"
    )
    rows = [(k, _fmt(v, 4), _fmt(d["standard_errors"][k], 4)) for k, v in d["params"].items()]
    if d["spend_model"]:
        sm = d["spend_model"]
        rows += [(k, _fmt(v, 4), _fmt(sm["standard_errors"][k], 4)) for k, v in sm["params"].items()]
    table("parameters", ["parameter", "estimate", "std. error"], rows)
    if d["holdout"]:
        h = d["holdout"]
        console.print(
            f"holdout ({h['duration']:.0f} {d['unit']}): predicted {h['predicted_total']:,.0f} purchases, "
            f"actual {h['actual_total']:,.0f} ({h['total_error_pct']:+.1f}%); MAE {h['mae']:.3f}, "
            f"correlation {h['correlation']:.3f}"
        )
        table(
            "holdout purchases by calibration frequency",
            ["repeat purchases", "customers", "actual mean", "predicted mean"],
            [
                (b["frequency"], b["customers"], _fmt(b["actual_mean"]), _fmt(b["predicted_mean"]))
                for b in h["by_frequency"]
            ],
        )
    e = d["customer_equity"]
    console.print(
        f"[bold]customer equity[/] ({d['customers']:,} customers, {d['valuation']['horizon_days']:g} days): "
        f"{e['value']:,.0f} (90% interval {_fmt(e['low_90'], 0)} to {_fmt(e['high_90'], 0)})"
    )
    for w in d["warnings"]:
        console.print(f"[yellow]warning:[/] {w}")
    for f in d["files"].values():
        console.print(f"wrote {f}")


@app.command("clv")
def clv(
    model: str = typer.Option("bg_nbd", "--model", help="bg_nbd, mbg_nbd or pareto_nbd."),
    calibration_end: str = typer.Option(
        None,
        "--calibration-end",
        help="Last day of the calibration period (YYYY-MM-DD; default: the last order's day, no holdout).",
    ),
    holdout_end: str = typer.Option(None, "--holdout-end", help="Last day of the holdout period (YYYY-MM-DD)."),
    unit: str = typer.Option("weeks", "--unit", help="Time unit of the model: days or weeks."),
    horizon_days: float = typer.Option(365.0, "--horizon-days", help="CLV horizon in days."),
    discount_rate: float = typer.Option(0.10, "--discount-rate", help="Annual discount rate for CLV."),
    margin: float = typer.Option(1.0, "--margin", help="Share of revenue that is profit (0-1)."),
    orders: Path = typer.Option(
        None,
        "--orders",
        help="Read orders from this file instead of the warehouse, with the columns of `touchpoint import orders` "
        "(nothing is written to the warehouse).",
    ),
    fmt: str = FormatOpt,
    mapping: list[str] = MapOpt,
    revenue_is_order_total: bool = typer.Option(
        False,
        "--revenue-is-order-total",
        help="With --orders: the revenue column holds the order's total, repeated on each line.",
    ),
    customer_col: str = typer.Option(None, "--customer-col", hidden=True, help="Deprecated: --map customer_id=COLUMN."),
    date_col: str = typer.Option(None, "--date-col", hidden=True, help="Deprecated: --map timestamp=COLUMN."),
    amount_col: str = typer.Option(None, "--amount-col", hidden=True, help="Deprecated: --map revenue=COLUMN."),
    date_format: str = typer.Option(None, "--date-format", hidden=True, help="Removed: timestamps are ISO 8601."),
    out: Path = typer.Option(
        None,
        "--out",
        help="Folder for the validation report (PNG, SVG, JSON) and the "
        "saved model (default with the warehouse: <data>/predict).",
    ),
    write: bool = typer.Option(True, "--write/--no-write", help="Write the predictions table."),
    top: int = typer.Option(0, "--rows", help="Include this many customers' predictions in the JSON."),
    data: DataOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Fit a purchase model and the spend model, check them on a holdout, and score customer value."""
    from touchpoint.predict import workflow
    from touchpoint.predict.clv import ClvOptions

    options = ClvOptions(
        model=model,
        calibration_end=calibration_end,
        holdout_end=holdout_end,
        unit=unit,
        horizon_days=horizon_days,
        annual_discount_rate=discount_rate,
        margin=margin,
    )
    if date_format is not None:
        raise InvalidInput(
            "--date-format was removed: order files are read as `touchpoint import orders` reads them",
            hint="give timestamps in ISO 8601 (2026-01-31, 20260131 or 2026-01-31T12:00:00Z)",
        )
    columns = deprecated_column_options(
        file_mapping(mapping, ORDER_FIELDS),
        customer_col=("customer_id", customer_col),
        date_col=("timestamp", date_col),
        amount_col=("revenue", amount_col),
    )
    if orders is not None:
        result = workflow.clv_from_file(
            orders,
            options,
            fmt=fmt,
            mapping=columns,
            revenue_is_order_total=revenue_is_order_total,
            out_dir=out,
            rows=top,
        )
    elif columns or fmt or revenue_is_order_total:
        raise InvalidInput(
            "--map, --format and --revenue-is-order-total describe the file of --orders", hint="add --orders FILE"
        )
    else:
        folder = out or settings_for(data).data_dir / "predict"
        with warehouse(data) as wh:
            result = workflow.clv_from_warehouse(wh, options, out_dir=folder, write=write, rows=top)
    emit(result, as_json, lambda: _render_clv(result))


@app.command("propensity")
def propensity(
    event: str = typer.Option(..., "--event", help='The event to predict, e.g. "Order Completed".'),
    days: int = typer.Option(30, "--days", help="Within how many days."),
    as_of: str = typer.Option(None, "--as-of", help="Score as of this date (default: the day after the last event)."),
    write: bool = typer.Option(True, "--write/--no-write", help="Write scores to the propensity_scores table."),
    top: int = typer.Option(10, "--rows", help="Show the customers with the highest scores."),
    data: DataOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Will each customer do EVENT within N days? Gradient boosting with an out-of-time test."""
    from touchpoint.predict import workflow

    with warehouse(data) as wh:
        result = workflow.propensity(wh, event, days, as_of=as_of, write=write, rows=top)

    def render() -> None:
        t = result["test"]
        console.print(
            f"[bold]{event!r} within {days} days[/]: out-of-time AUC {t['auc']:.3f}, Brier {t['brier']:.4f}, "
            f"base rate {t['base_rate']:.3%} ({t['customers']:,} customers)"
        )
        console.print(result["method"])
        table(
            "lift by decile (top first)",
            ["decile", "customers", "rate", "lift", "mean score"],
            [
                (b["decile"], b["customers"], f"{b['rate']:.3%}", _fmt(b["lift"], 2), f"{c['predicted']:.3%}")
                for b, c in zip(t["lift_by_decile"], t["calibration"], strict=True)
            ],
        )
        for w in result["warnings"]:
            console.print(f"[yellow]warning:[/] {w}")

    emit(result, as_json, render)


@app.command("replenishment")
def replenishment(
    as_of: str = typer.Option(None, "--as-of", help="Count days until due from this date (default: today)."),
    due_within: int = typer.Option(None, "--due-within", help="Only show customers due within this many days."),
    write: bool = typer.Option(True, "--write/--no-write", help="Write the replenishment table."),
    data: DataOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """When repeat buyers of a product will run out, from their own purchase intervals."""
    from touchpoint.predict import workflow

    with warehouse(data) as wh:
        rows = workflow.replenishment(wh, as_of=as_of, write=write, due_within=due_within)
    emit(
        {"rows": rows, "count": len(rows)},
        as_json,
        lambda: table(
            f"replenishment ({len(rows):,})",
            ["customer", "product", "last purchase", "qty", "days/unit", "due", "in days", "intervals"],
            [
                (
                    r["customer_id"],
                    r["product"],
                    r["last_purchase_at"],
                    _fmt(r["last_quantity"], 0),
                    _fmt(r["days_per_unit"], 1),
                    r["due_at"],
                    r["days_until_due"],
                    r["intervals"],
                )
                for r in rows[:50]
            ],
        ),
    )


@app.command("show")
def show(customer_id: str, data: DataOpt = None, as_json: JsonOpt = False) -> None:
    """Everything predicted for one customer (user id or profile id)."""
    from touchpoint.predict.store import customer_predictions

    with warehouse(data) as wh, audited(wh, "predictions.read", pseudonym(wh, customer_id)):
        result = customer_predictions(wh, customer_id)

    def render() -> None:
        c = result["clv"]
        if c:
            console.print(
                f"[bold]{result['customer_id']}[/] ({c['model']}, as of {c['as_of']}): "
                f"P(alive) {c['p_alive']:.3f}, "
                f"expected purchases in {c['horizon_days']:g} days {c['expected_purchases']:.2f}, "
                f"expected spend {_fmt(c['expected_spend'], 2)}, CLV {_fmt(c['clv'], 2)}, "
                f"next purchase around {c['next_purchase_at']}"
            )
        for p in result["propensity"]:
            console.print(f"P({p['event']} within {p['days']} days) = {p['score']:.3f} (decile {p['decile']})")
        for r in result["replenishment"]:
            console.print(f"{r['product']}: due {r['due_at']} ({r['days_until_due']} days)")

    emit(result, as_json, render)


@app.command("summary")
def summary(data: DataOpt = None, as_json: JsonOpt = False) -> None:
    """The latest CLV run: model, parameters, holdout check and customer equity."""
    from touchpoint.errors import NotFound
    from touchpoint.predict.store import latest_run

    with warehouse(data, read_only=True) as wh:
        result = latest_run(wh)
    if result is None:
        raise NotFound("no CLV run yet", hint="run `touchpoint predict clv` first")
    emit(result, as_json, lambda: _render_clv({**result["summary"], "files": {}}))
