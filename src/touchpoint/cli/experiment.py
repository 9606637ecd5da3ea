"""``touchpoint experiment create|list|analyze|plan|weights|stop|assign``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from touchpoint.cli.common import (
    DataOpt,
    JsonOpt,
    MapOpt,
    audited,
    console,
    deprecated_column_options,
    emit,
    file_mapping,
    parse_when,
    table,
    warehouse,
)
from touchpoint.errors import InvalidInput

app = typer.Typer(help="A/B tests and holdouts: define, assign, analyse, plan.", no_args_is_help=True)


_when = parse_when


def _weights(text: str | None) -> list[float] | None:
    if not text:
        return None
    try:
        return [float(x) for x in text.split(",")]
    except ValueError:
        raise InvalidInput(f"--weights {text!r} must be numbers separated by commas", hint="e.g. 50,50") from None


@app.command("create")
def create(
    key: str = typer.Argument(..., help="The experiment key exposures carry as properties.experiment_id."),
    variant: list[str] = typer.Option(None, "--variant", help="An arm (repeat; default control and treatment)."),
    weights: str = typer.Option(None, "--weights", help="Split, in variant order, e.g. 50,50 (default equal)."),
    control: str = typer.Option(None, "--control", help="The control arm (default: the first variant)."),
    metric: list[str] = typer.Option(
        None,
        "--metric",
        help="NAME:KIND:EVENT[:VALUE][:key=value], e.g. 'purchase:binomial:Order Completed'.",
    ),
    unit: str = typer.Option(
        "customer",
        "--unit",
        help="customer (the customer rule: resolved profile, else stitched user id), user_id, anonymous_id "
        "or any (user_id, else anonymous_id).",
    ),
    start: str = typer.Option(None, "--start", help="Start (ISO; default now)."),
    end: str = typer.Option(None, "--end", help="End (ISO; default open)."),
    name: str = typer.Option(None, "--name", help="A readable name."),
    description: str = typer.Option(None, "--description", help="The hypothesis, in words."),
    holdout: float = typer.Option(None, "--holdout", help="Create a persistent holdout of this share (e.g. 0.05)."),
    data: DataOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Define an experiment (or, with --holdout, a persistent holdout group)."""
    from touchpoint.experiments import workflow
    from touchpoint.experiments.metrics import Metric

    metrics = [Metric.parse(m) for m in metric or []]
    with warehouse(data) as wh:
        exp = workflow.create(
            wh,
            key,
            holdout=holdout,
            variants=variant,
            weights=_weights(weights),
            control=control,
            metrics=metrics,
            name=name,
            description=description,
            unit=unit,
            start_at=_when(start, "--start"),
            end_at=_when(end, "--end"),
        )
    emit(
        exp.to_dict(),
        as_json,
        lambda: console.print(
            f"created {exp.kind} [bold]{exp.key}[/]: "
            + ", ".join(f"{v} {w:.0%}" for v, w in exp.weight_map.items())
            + f"; {len(exp.metrics)} metric(s)"
        ),
    )


@app.command("list")
def list_(
    kind: str = typer.Option(None, "--kind", help="experiment or holdout."),
    data: DataOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """List experiments and holdouts, newest first."""
    from touchpoint.experiments.definitions import list_experiments

    with warehouse(data) as wh:
        items = list_experiments(wh, kind=kind)

    def show() -> None:
        table(
            f"experiments ({len(items)})",
            ["key", "kind", "status", "arms", "metrics", "start", "end"],
            [
                (
                    e.key,
                    e.kind,
                    e.status,
                    ", ".join(f"{v} {w:.0%}" for v, w in e.weight_map.items()),
                    ", ".join(m.name for m in e.metrics),
                    e.start_at,
                    e.end_at,
                )
                for e in items
            ],
        )

    emit([e.to_dict() for e in items], as_json, show)


def _fmt(value: float | None, relative: bool, pct: bool = True) -> str:
    if value is None:
        return "-"
    return f"{value:+.2%}" if (relative and pct) else f"{value:+.4g}"


def render(result: Any) -> None:
    """Print an analysis for a person: per metric the arms, lifts, intervals, evidence; SRM; verdict."""
    opts = result.options
    rel = opts.relative
    level = f"{1 - opts.alpha:.0%}"
    for m in result.metrics:
        title = f"{m.metric} ({m.kind}{', CUPED' if m.cuped else ''}{', lower is better' if m.inverse else ''})"
        if m.dimension is not None:
            title += f" [{m.dimension}]"
        rows = []
        comps = {c.variant: c for c in m.comparisons}
        for a in m.arms:
            c = comps.get(a.variant)
            evidence = "-"
            if c is not None and c.error:
                evidence = c.error
            elif c is not None and opts.engine == "bayesian":
                evidence = f"chance to win {c.chance_to_win:.1%}"
            elif c is not None:
                p = c.p_adjusted if c.p_adjusted is not None else c.p_value
                evidence = f"p = {p:.3g}" if p is not None else "-"
            interval = "-" if c is None or c.ci_low is None else f"{_fmt(c.ci_low, rel)} to {_fmt(c.ci_high, rel)}"
            rows.append(
                (
                    a.variant + (" (control)" if a.variant == result.control else ""),
                    f"{a.n:,}",
                    f"{a.mean:.4g}",
                    "-" if c is None else _fmt(c.estimate, rel),
                    interval,
                    evidence,
                    "" if c is None else c.direction,
                )
            )
        table(title, ["arm", "units", "mean", "lift", f"{level} interval", "evidence", "call"], rows)
    color = "green" if result.srm.ok else "red"
    console.print(f"[{color}]{result.srm.describe()}[/]")
    for note in result.notes:
        console.print(f"[dim]note: {note}[/]")
    style = {"win": "bold green", "loss": "bold red", "srm_failed": "bold red"}.get(result.status, "bold")
    console.print(f"[{style}]verdict:[/] {result.verdict}", highlight=False)


@app.command("analyze")
def analyze(
    key: str = typer.Argument(None, help="The experiment key (omit with --file)."),
    engine: str = typer.Option("sequential", "--engine", help="frequentist, bayesian or sequential."),
    cuped: bool = typer.Option(False, "--cuped", help="Adjust with each metric's pre-exposure value (CUPED)."),
    absolute: bool = typer.Option(False, "--absolute", help="Absolute instead of relative lift."),
    alpha: float = typer.Option(0.05, "--alpha", help="1 - interval level."),
    correction: str = typer.Option("holm", "--correction", help="holm, bh or none (across metrics and arms)."),
    min_units: int = typer.Option(300, "--min-units", help="Units per arm before any verdict."),
    dimension: str = typer.Option(None, "--dimension", help="Break down by properties.<key> of the exposure."),
    end: str = typer.Option(None, "--end", help="Analyse as of this time (ISO)."),
    file: Path = typer.Option(
        None, "--file", help="A CSV/Parquet file with one row per unit instead of a key: its arm in column 'arm'."
    ),
    mapping: list[str] = MapOpt,
    arm_column: str = typer.Option(None, "--arm-column", hidden=True, help="Deprecated: --map arm=COLUMN."),
    control: str = typer.Option(None, "--control", help="With --file: the control arm's name."),
    metric: list[str] = typer.Option(None, "--metric", help="With --file: a metric column (repeat)."),
    covariate: str = typer.Option(None, "--covariate", help="With --file: a pre-period column for CUPED."),
    plot: Path = typer.Option(None, "--plot", help="Also draw the lift intervals to this .png/.svg file."),
    data: DataOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Analyse an experiment from the warehouse, or a per-unit file with --file."""
    from touchpoint.experiments.analysis import AnalysisOptions

    opts = AnalysisOptions(
        engine=engine,
        relative=not absolute,
        alpha=alpha,
        cuped=cuped or bool(covariate),
        correction=correction,
        min_units=min_units,
    )
    from touchpoint.experiments import workflow

    columns = deprecated_column_options(file_mapping(mapping, ("arm",)), arm_column=("arm", arm_column))
    if file is not None:
        if key:
            raise InvalidInput("give either an experiment KEY or --file, not both", hint="drop one of them")
        arm = columns.get("arm", "arm")
        result, out = workflow.analyze_file(
            file, arm_column=arm, control=control, metrics=metric, covariate=covariate, options=opts, plot=plot
        )
    else:
        if not key:
            raise InvalidInput("name the experiment to analyse", hint="`touchpoint experiment list` shows the keys")
        if columns or covariate:
            raise InvalidInput("--map and --covariate go with --file", hint="add --file FILE or drop them")
        from touchpoint.experiments.metrics import Metric

        with warehouse(data) as wh:
            result, out = workflow.analyze(
                wh,
                key,
                opts,
                metrics=[Metric.parse(m) for m in metric or []] or None,
                end=_when(end, "--end"),
                dimension=dimension,
                plot=plot,
            )

    def show() -> None:
        render(result)
        if plot is not None:
            console.print(f"lift chart: {out['plot']}")

    emit(out, as_json, show)


@app.command("plan")
def plan(
    baseline: float = typer.Option(..., "--baseline", help="Control conversion rate (binomial) or mean."),
    mde: float = typer.Option(None, "--mde", help="Smallest relative lift worth detecting, e.g. 0.05."),
    sd: float = typer.Option(None, "--sd", help="Per-unit standard deviation (mean metrics; omit for a rate)."),
    units: float = typer.Option(None, "--units", help="Units per arm available (gives the MDE instead)."),
    alpha: float = typer.Option(0.05, "--alpha"),
    power: float = typer.Option(0.8, "--power"),
    ratio: float = typer.Option(1.0, "--ratio", help="Treatment units per control unit."),
    event: str = typer.Option(None, "--event", help="Audience: units that sent this event (for the duration)."),
    share: float = typer.Option(1.0, "--share", help="Share of the audience entering the experiment."),
    data: DataOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Sample size (or MDE) and power for a binomial or mean metric, and duration from observed traffic."""
    from touchpoint.experiments import workflow

    with warehouse(data) as wh:
        out, duration = workflow.plan(
            wh, baseline, mde=mde, units=units, sd=sd, alpha=alpha, power=power, ratio=ratio, event=event, share=share
        )
    kind, total = out["kind"], out["units_total"]

    def show() -> None:
        console.print(
            f"{kind} metric, baseline {baseline:g}: detect a {out['mde']:+.2%} lift with "
            f"{power:.0%} power at alpha {alpha:g}"
        )
        console.print(f"units: {out['units_control']:,} control + {out['units_treatment']:,} treatment = {total:,}")
        console.print(f"duration: {duration.describe()}")

    emit(out, as_json, show)


@app.command("weights")
def weights_(
    key: str = typer.Argument(...),
    weights: str = typer.Argument(..., help="New split in variant order, e.g. 50,50."),
    data: DataOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Change the split for new units; units already exposed keep their arm."""
    from touchpoint.experiments.definitions import update_weights

    with warehouse(data) as wh:
        exp = update_weights(wh, key, _weights(weights) or [])
    emit(
        exp.to_dict(),
        as_json,
        lambda: console.print(
            f"{exp.key}: " + ", ".join(f"{v} {w:.0%}" for v, w in exp.weight_map.items()) + " for new units"
        ),
    )


@app.command("stop")
def stop(key: str = typer.Argument(...), data: DataOpt = None, as_json: JsonOpt = False) -> None:
    """Stop an experiment now (its end is set; later exposures are not analysed)."""
    from touchpoint.experiments.definitions import set_status

    with warehouse(data) as wh:
        exp = set_status(wh, key, "stopped")
    emit(exp.to_dict(), as_json, lambda: console.print(f"stopped {exp.key} at {exp.end_at}"))


@app.command("assign")
def assign(
    key: str = typer.Argument(...),
    unit_ids: list[str] = typer.Argument(..., help="Unit ids (user ids) to assign."),
    expose: bool = typer.Option(False, "--expose", help="Also record their exposure now."),
    data: DataOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Show (and with --expose, record) the arm of each unit."""
    from touchpoint.experiments import workflow

    with warehouse(data) as wh, audited(wh, "experiments.assign", key) as entry:
        arms = workflow.assign(wh, key, unit_ids, expose=expose)
        entry.rows = len(unit_ids)
    emit(arms, as_json, lambda: table(f"{key} assignments", ["unit", "arm"], list(arms.items())))
