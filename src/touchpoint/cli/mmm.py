"""``touchpoint mmm fit|plan|case|calibrate|calibrations``: marketing-mix model, budget plan, investment
case, and the lift tests that calibrate the model.

Each command exits with code 2 when the model behind its numbers failed its diagnostics, after
printing the numbers with the problems, so scripts cannot mistake them for a confident answer.
"""

from __future__ import annotations

from pathlib import Path

import typer

from touchpoint.cli.common import (
    DataOpt,
    Group,
    JsonOpt,
    MapOpt,
    console,
    deprecated_column_options,
    emit,
    file_mapping,
    settings_for,
    table,
    warehouse,
)
from touchpoint.errors import InvalidInput

app = typer.Typer(help="Marketing-mix model: ROMI per channel, budget plan, investment case.", no_args_is_help=True)

FAILED_EXIT = 2
#: The sampler's defaults as `mmm fit` shows them; they are MMMConfig's (a test checks), written out here
#: so that `touchpoint mmm --help` does not import the model stack (numpy, JAX) to show them.
DRAWS, WARMUP, CHAINS, HOLDOUT_WEEKS = 500, 500, 4, 8
ModelOpt = typer.Option(None, "--model", help="Model directory (default: <data>/mmm).")
calibrations_app = typer.Typer(
    help="Lift tests accepted as calibration of the model: list them, withdraw one.", no_args_is_help=True
)
app.add_typer(calibrations_app, name="calibrations", cls=Group)
NoRefitOpt = typer.Option(False, "--no-refit", help="Store the change only; the next fit uses it.")


def _pairs(values: list[str] | None, what: str, example: str) -> dict[str, tuple[float, float]]:
    out = {}
    for item in values or []:
        name, sep, rest = item.partition("=")
        a, sep2, b = rest.partition(":")
        try:
            if not (sep and sep2 and name):
                raise ValueError
            out[name] = (float(a), float(b))
        except ValueError:
            raise InvalidInput(f"{what} {item!r} is not CHANNEL=A:B", hint=f"e.g. {example}") from None
    return out


def _status_line(status: str, problems: list[str], warnings: list[str]) -> None:
    colour = {"ok": "green", "warning": "yellow", "failed": "bold red"}[status]
    console.print(f"model status: [{colour}]{status}[/]")
    for p in problems:
        console.print(f"  [red]problem:[/] {p}")
    for w in warnings:
        console.print(f"  [yellow]warning:[/] {w}")


def _iv(v: dict[str, float], fmt: str = "{:.2f}") -> str:
    return f"{fmt.format(v['mean'])} [{fmt.format(v['low'])}, {fmt.format(v['high'])}]"


@app.command("fit")
def fit_cmd(
    file: Path = typer.Option(
        None, "--file", help="CSV/Parquet with one row per week or day, dated in column 'date' (default: warehouse)."
    ),
    mapping: list[str] = MapOpt,
    date_column: str = typer.Option(None, "--date-column", hidden=True, help="Deprecated: --map date=COLUMN."),
    target: str = typer.Option("revenue", "--target", help="KPI column of --file."),
    channel: list[str] = typer.Option(None, "--channel", help="Spend column (repeat); warehouse: channel name."),
    control: list[str] = typer.Option(None, "--control", help="Control column of --file (price, promotion...)."),
    kpi: str = typer.Option(
        "revenue", "--kpi", help="Warehouse KPI: revenue, conversions, new_customer_revenue or new_customers."
    ),
    brand: list[str] = typer.Option(None, "--brand", help="A brand channel (repeat)."),
    roi_prior: list[str] = typer.Option(None, "--roi-prior", help="Lift-test calibration CH=ROI:SE (repeat)."),
    adstock: str = typer.Option("geometric", "--adstock", help="geometric or weibull."),
    saturation: str = typer.Option("hill", "--saturation", help="hill or logistic."),
    draws: int = typer.Option(DRAWS, "--draws", help="Posterior draws per chain."),
    warmup: int = typer.Option(WARMUP, "--warmup", help="Warm-up iterations per chain."),
    chains: int = typer.Option(CHAINS, "--chains", help="Independent chains (R-hat needs >= 2)."),
    seed: int = typer.Option(0, "--seed", help="Random seed: same seed and data give the same result."),
    holdout_weeks: int = typer.Option(HOLDOUT_WEEKS, "--holdout-weeks", help="Last weeks held out."),
    model: Path = ModelOpt,
    data: DataOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Fit the model (from the warehouse, or --file) and show ROMI per channel with diagnostics."""
    from touchpoint.mmm import workflow
    from touchpoint.mmm.config import MMMConfig
    from touchpoint.mmm.dataset import from_file, from_warehouse

    config = MMMConfig(
        adstock=adstock,
        saturation=saturation,
        draws=draws,
        warmup=warmup,
        chains=chains,
        seed=seed,
        holdout_weeks=holdout_weeks,
        brand_channels=tuple(brand or ()),
        roi_priors=_pairs(roi_prior, "--roi-prior", "--roi-prior search=1.8:0.4"),
    )
    columns = deprecated_column_options(file_mapping(mapping, ("date",)), date_column=("date", date_column))
    if file is not None:
        mmm_data = from_file(
            file,
            date_column=columns.get("date", "date"),
            target=target,
            channels=list(channel or []),
            controls=list(control or []),
        )
    else:
        if control or columns:
            raise InvalidInput("--control and --map need --file", hint="they name a file's columns")
        with warehouse(data) as wh:
            mmm_data = from_warehouse(wh, kpi=kpi, channels=list(channel or []) or None)
            config = workflow.with_calibrations(wh, config)  # the accepted lift tests (`mmm calibrate`)
    out = model or workflow.model_dir(settings_for(data).data_dir)
    with console.status("sampling the posterior (NUTS)...", spinner="dots") if not as_json else _null():
        summary = workflow.fit_and_save(mmm_data, config, out)

    def render() -> None:
        table(
            f"ROMI per channel ({summary['first_week']} to {summary['last_week']}, "
            f"{summary['fitted_weeks']} weeks "
            f"fitted, {config.interval:.0%} intervals)",
            ["channel", "spend", "ROMI", "marginal ROMI", "short-term share", "identified"],
            [
                (
                    ch,
                    f"{v['spend']:,.0f}",
                    _iv(v["romi"]),
                    _iv(v["marginal_romi"]),
                    f"{summary['effect_timing']['channels'][ch]['short_term_share']['mean']:.0%}",
                    "yes" if v["identified"] else "NO",
                )
                for ch, v in summary["romi"].items()
            ],
        )
        d = summary["diagnostics"]
        s, ppc, h = d["sampler"], d["posterior_predictive"], d["holdout"]
        console.print(
            f"R-hat max {s['max_rhat']:.3f}, ESS min {s['min_ess']:.0f}, divergences {s['divergences']}, "
            f"fit R² {ppc['r2']:.2f}, PPC coverage {ppc['coverage']:.0%}, "
            + (f"held-out MAPE {h['mape']:.1%}" if h["weeks"] else "no held-out weeks")
            + f", {summary['fit_seconds']:.0f} s"
        )
        b = summary["brand_share"]
        if b["brand_channels"]:
            console.print(f"brand share of spend {b['brand_share_of_spend']:.0%} (guideline {b['guideline']:.0%})")
        _refit_lines(summary)
        _status_line(summary["status"], summary["problems"], summary["warnings"])
        console.print(f"model and charts saved in {out}")

    emit(summary, as_json, render)
    if not summary["reliable"]:
        raise typer.Exit(FAILED_EXIT)


def _refit_lines(summary: dict) -> None:
    """The calibrations a fit used and how each channel's interval changed against the previous fit."""
    for c in summary["diagnostics"].get("calibration") or []:
        used = (
            f"model's ROI in those weeks {_iv(c['model_roi'])}" if c["used"] else f"[yellow]not used:[/] {c['reason']}"
        )
        console.print(
            f"calibration {c['calibration_id'] or c['source']} on {c['channel']} ({c['start']}..{c['end']}): "
            f"measured ROI {c['roi']:.2f} ± {c['roi_se']:.2f}; {used}"
        )
    refit = summary["diagnostics"].get("refit")
    if refit and refit["channels"]:
        changed = ", ".join(refit["changed"]) or "nothing"
        console.print(f"against the previous fit (changed: {changed}):")
        for ch, v in refit["channels"].items():
            flag = " [bold red]DRIFT[/]" if v["drift"] else ""
            console.print(
                f"  {ch}: interval width {v['width_before']:.2f} -> {v['width_after']:.2f} "
                f"({v['narrowed_by']:+.0%} narrower){flag}"
            )


def _actor() -> str:
    from touchpoint.privacy.audit import cli_actor

    return cli_actor()


def _sources() -> dict:
    from touchpoint.automations.calibration import SOURCES

    return SOURCES


@app.command("calibrate")
def calibrate_cmd(
    key: str = typer.Option(
        ...,
        "--from-experiment",
        help="Where the lift was measured: experiment:KEY (or KEY), or automation:NAME (its holdout).",
    ),
    channel: str = typer.Option(None, "--channel", help="The channel the test varied (one of the model's)."),
    metric: str = typer.Option(None, "--metric", help="The experiment's revenue metric (when it has several)."),
    arm: str = typer.Option(None, "--arm", help="The experiment's arm that ran the channel (when several)."),
    value_per_conversion: float = typer.Option(
        None, "--value-per-conversion", help="Revenue of one goal conversion (automation:NAME)."
    ),
    spend: float = typer.Option(
        None, "--spend", help="The channel's spend in the test (default: the spend table over its period)."
    ),
    level: float = typer.Option(0.95, "--level", help="Confidence level of the lift's interval."),
    accept: bool = typer.Option(False, "--accept", help="Store it as a calibration and refit the model."),
    no_refit: bool = NoRefitOpt,
    model: Path = ModelOpt,
    data: DataOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Turn a measured lift into a calibration of the model: shown first, stored and refitted with --accept.

    The refit uses the saved model's data and settings with every accepted calibration, and shows how much
    the channel's ROMI interval narrowed."""
    from touchpoint.mmm import workflow
    from touchpoint.mmm.calibration import LiftOptions

    directory = model or workflow.model_dir(settings_for(data).data_dir)
    options = LiftOptions(metric=metric, arm=arm, value_per_conversion=value_per_conversion, level=level)
    with (
        warehouse(data) as wh,
        console.status("refitting the model with the calibration (NUTS)...", spinner="dots")
        if accept and not no_refit and not as_json
        else _null(),
    ):
        out = workflow.calibrate(
            wh,
            key,
            directory,
            channel=channel,
            spend=spend,
            options=options,
            accept=accept,
            by=_actor(),
            refit=not no_refit,
            sources=_sources(),
        )

    def render() -> None:
        p = out["proposal"]
        lift, ri = p["lift"], p["roi_interval"]
        table(
            f"lift test {p['source']} on {p['channel']} ({p['period']['start']} to {p['period']['end']})",
            ["measure", "estimate", "interval"],
            [
                (
                    "incremental revenue",
                    f"{lift['estimate']:,.0f}",
                    f"[{lift['low']:,.0f}, {lift['high']:,.0f}] ({lift['level']:.0%})",
                ),
                ("spend", f"{p['spend']:,.0f}", ""),
                ("ROI", f"{p['roi']:.2f} ± {p['roi_se']:.2f}", f"[{ri['low']:.2f}, {ri['high']:.2f}]"),
            ],
        )
        if out["accepted"] is None:
            console.print(out["note"])
            return
        a = out["accepted"]
        console.print(f"accepted as {a['calibration_id']} by {a['accepted_by']} at {a['accepted_at']}")
        _narrowing(out)

    emit(out, as_json, render)
    if out["refit"] is not None and not out["refit"]["reliable"]:
        raise typer.Exit(FAILED_EXIT)


def _narrowing(out: dict) -> None:
    n = out.get("narrowing")
    if out["refit"] is None:
        console.print("not refitted (--no-refit): the next `touchpoint mmm fit` uses it")
        return
    if n and "before" in n:
        b, a = n["before"], n["after"]
        console.print(
            f"ROMI of {n['channel']}: before {b['mean']:.2f} [{b['low']:.2f}, {b['high']:.2f}] (width "
            f"{n['width_before']:.2f}), after {a['mean']:.2f} [{a['low']:.2f}, {a['high']:.2f}] (width "
            f"{n['width_after']:.2f}): {n['narrowed_by']:.0%} narrower"
        )
    r = out["refit"]
    _status_line(r["status"], r["problems"], r["warnings"])


@calibrations_app.command("list")
def calibrations_list(
    withdrawn: bool = typer.Option(False, "--withdrawn", help="Also the withdrawn ones."),
    data: DataOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """The lift tests accepted as calibration (source, channel, period, ROI, who accepted it and when)."""
    from touchpoint.mmm import calibration

    with warehouse(data, read_only=True) as wh:
        rows = calibration.list_calibrations(wh, withdrawn=withdrawn)

    def render() -> None:
        table(
            "calibrations of the marketing-mix model",
            ["id", "source", "channel", "period", "ROI", "accepted", "status"],
            [
                (
                    r["calibration_id"],
                    r["source"],
                    r["channel"],
                    f"{r['period_start']}..{r['period_end']}",
                    f"{r['roi']:.2f} ± {r['roi_se']:.2f}",
                    f"{r['accepted_by']} {r['accepted_at'][:16]}",
                    r["status"] + (f" ({r['withdrawn_by']})" if r["withdrawn_by"] else ""),
                )
                for r in rows
            ],
        )

    emit({"calibrations": rows}, as_json, render)


@calibrations_app.command("withdraw")
def calibrations_withdraw(
    calibration_id: str = typer.Argument(..., help="The calibration's id (`touchpoint mmm calibrations list`)."),
    no_refit: bool = NoRefitOpt,
    model: Path = ModelOpt,
    data: DataOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Stop using a calibration: the row stays, marked withdrawn; the model is refitted without it."""
    from touchpoint.mmm import workflow

    directory = model or workflow.model_dir(settings_for(data).data_dir)
    with warehouse(data) as wh:
        out = workflow.withdraw(wh, calibration_id, directory, by=_actor(), refit=not no_refit)

    def render() -> None:
        w = out["withdrawn"]
        console.print(f"withdrew {w['calibration_id']} ({w['source']} on {w['channel']})")
        _narrowing(out)

    emit(out, as_json, render)
    if out["refit"] is not None and not out["refit"]["reliable"]:
        raise typer.Exit(FAILED_EXIT)


class _null:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


@app.command("plan")
def plan_cmd(
    budget: float = typer.Option(..., "--budget", help="Total budget over the plan period (money)."),
    weeks: int = typer.Option(52, "--weeks", help="Length of the plan period in weeks."),
    bound: list[str] = typer.Option(None, "--bound", help="CH=MIN:MAX money over the period (repeat)."),
    min_brand_share: float = typer.Option(None, "--min-brand-share", help="Minimum share of budget on brand."),
    objective: str = typer.Option("revenue", "--objective", help="revenue (spend it all) or profit."),
    gross_margin: float = typer.Option(1.0, "--gross-margin", help="Margin on revenue, for profit."),
    out: Path = typer.Option(None, "--out", help="Where to write plan.json (default: the model directory)."),
    model: Path = ModelOpt,
    data: DataOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Allocate a budget across channels to maximise expected revenue (or profit), against the current mix."""
    from touchpoint.mmm import workflow

    directory = model or workflow.model_dir(settings_for(data).data_dir)
    result = workflow.load(directory)
    plan = workflow.make_plan(
        result,
        out or directory,
        budget=budget,
        weeks=weeks,
        bounds=_pairs(bound, "--bound", "--bound tv=10000:50000"),
        min_brand_share=min_brand_share,
        objective=objective,
        gross_margin=gross_margin,
    )

    def render() -> None:
        table(
            f"budget plan: {plan['spent']:,.0f} over {weeks} weeks",
            ["channel", "plan", "share", "current mix", "bounds"],
            [
                (
                    ch,
                    f"{v['total']:,.0f}",
                    f"{v['share']:.0%}",
                    f"{v['current_total']:,.0f}",
                    f"{v['bounds'][0]:,.0f}-{v['bounds'][1]:,.0f}",
                )
                for ch, v in plan["channels"].items()
            ],
        )
        e, c, u = plan["expected"], plan["current"], plan["uplift"]
        console.print(f"expected revenue {_iv(e['revenue'], '{:,.0f}')} vs current mix {_iv(c['revenue'], '{:,.0f}')}")
        console.print(f"uplift {_iv(u['revenue'], '{:,.0f}')}, P(better than current) {u['probability_better']:.0%}")
        if plan["extrapolated_channels"]:
            console.print(f"[yellow]extrapolated beyond observed spend:[/] {', '.join(plan['extrapolated_channels'])}")
        _status_line(plan["model_status"], plan["model_problems"], [])
        console.print(f"plan saved as {plan['file']}")

    emit(plan, as_json, render)
    if not plan["reliable"]:
        raise typer.Exit(FAILED_EXIT)


@app.command("case")
def case_cmd(
    plan: Path = typer.Option(..., "--plan", help="A plan.json from `touchpoint mmm plan`."),
    horizon_months: int = typer.Option(24, "--horizon-months", help="Months of cash flows, incl. carry-over."),
    discount_rate: float = typer.Option(0.10, "--discount-rate", help="Annual discount rate for the NPV."),
    gross_margin: float = typer.Option(None, "--gross-margin", help="Margin on revenue (default: the plan's)."),
    currency: str = typer.Option("", "--currency", help="Currency symbol for the summary, e.g. '€'."),
    out: Path = typer.Option(None, "--out", help="Directory for case.json/.html/.pdf/.png (default: model dir)."),
    first_orders_only: bool = typer.Option(
        False, "--first-orders-only", help="Do not value new customers at their lifetime value (CLV)."
    ),
    model: Path = ModelOpt,
    data: DataOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """The investment case of a plan: monthly cash flows, NPV, payback and risk, as JSON, HTML, PDF and PNG.

    A model of new customers values them at their lifetime value from the latest `predict clv` run."""
    from touchpoint.errors import WarehouseError
    from touchpoint.mmm import workflow
    from touchpoint.mmm.lifetime import NEW_CUSTOMER_KPIS

    directory = model or workflow.model_dir(settings_for(data).data_dir)
    result = workflow.load(directory)
    lifetime = None
    if not first_orders_only and result.data.target_name in NEW_CUSTOMER_KPIS:
        try:
            with warehouse(data, read_only=True) as wh:
                lifetime = workflow.lifetime_for(result, wh)
        except WarehouseError:  # no warehouse beside this model: the case counts first orders, and says so
            lifetime = None
    case = workflow.make_case(
        result,
        workflow.read_plan(plan),
        out or directory,
        horizon_months=horizon_months,
        discount_rate=discount_rate,
        gross_margin=gross_margin,
        currency=currency,
        lifetime=lifetime,
    )

    def render() -> None:
        console.print(case["summary"])
        files = case["files"]
        console.print(f"report: {files['html']} and {files['pdf']} (chart {files['png']})")

    emit(case, as_json, render)
    if not case["reliable"]:
        raise typer.Exit(FAILED_EXIT)
