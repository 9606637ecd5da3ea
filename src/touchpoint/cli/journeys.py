"""``touchpoint journeys funnel|paths|retention|sessions`` and ``touchpoint attribution``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from touchpoint.cli.common import (
    DataOpt,
    JsonOpt,
    MapOpt,
    console,
    emit,
    file_mapping,
    parse_when,
    settings_for,
    table,
    warehouse,
)
from touchpoint.collect.ecommerce import ORDER_COMPLETED
from touchpoint.errors import InvalidInput

journeys_app = typer.Typer(
    help="Customer journeys: sessions, funnels, paths and cohort retention.", no_args_is_help=True
)

SinceOpt = typer.Option(None, "--since", help="Start of the period (ISO date or date-time, UTC).")
UntilOpt = typer.Option(None, "--until", help="End of the period, exclusive (ISO date or date-time, UTC).")
ChartOpt = typer.Option(None, "--chart", help="Also draw the chart to this .png or .svg file.")
RulesOpt = typer.Option(None, "--rules", help="Channel rules file (JSON or TOML) replacing the defaults.")
TimeoutOpt = typer.Option(None, "--timeout", help="Session inactivity timeout in minutes (default 30).")
IdentityOpt = typer.Option("auto", "--identity", help="Who is who: auto, profiles, stitch or raw.")


_when = parse_when
#: The fields of an aggregated path file (ChannelAttribution's layout); docs/cli.md, Reading files.
PATH_FIELDS = ("path", "conversions", "value", "nulls")


def _rules(path: Path | None, data: Path | None) -> Any:
    from touchpoint.collect.channels import load_rules, rules_from

    if path is not None:
        return load_rules(path)
    configured = settings_for(data).journeys_channel_rules
    return rules_from(configured) if configured else None


def _timeout(value: float | None, data: Path | None) -> float:
    if value is not None:
        return value
    return settings_for(data).journeys_session_timeout_minutes


def _chart(kind: str, result: dict[str, Any], path: Path | None, **kw: Any) -> None:
    if path is None:
        return
    from touchpoint.journeys import charts

    drawn = getattr(charts, f"{kind}_chart")(result, path, **kw)
    result["chart"] = str(drawn)


def _pct(x: float | None) -> str:
    return "" if x is None else f"{x:.1%}"


@journeys_app.command("funnel")
def funnel(
    steps: list[str] = typer.Argument(..., help="Steps in order: 'Event Name', 'page', 'page:/path%', 'screen:Name'."),
    window_hours: float = typer.Option(168.0, "--window", help="Conversion window in hours from step 1."),
    breakdown: str = typer.Option(None, "--breakdown", help="'channel', an event column or 'properties.<key>'."),
    since: str = SinceOpt,
    until: str = UntilOpt,
    chart: Path = ChartOpt,
    rules: Path = RulesOpt,
    timeout: float = TimeoutOpt,
    identity: str = IdentityOpt,
    data: DataOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """People who went through ordered steps within the window, per step (with 95% intervals)."""
    from touchpoint.journeys.funnels import funnel as run

    with warehouse(data, read_only=True) as wh:
        result = run(
            wh,
            steps,
            window_hours=window_hours,
            breakdown=breakdown,
            start=_when(since, "--since"),
            end=_when(until, "--until"),
            identity=identity,
            timeout_minutes=_timeout(timeout, data),
            rules=_rules(rules, data),
        )
    _chart("funnel", result, chart)

    def show() -> None:
        groups = [{"breakdown": "all", "steps": result["steps"]}, *result["groups"]]
        for g in groups:
            table(
                f"funnel ({g['breakdown']})" if breakdown else "funnel",
                ["step", "people", "of step 1", "95% CI", "from previous", "median time"],
                [
                    (
                        f"{s['step']}. {s['label']}",
                        f"{s['people']:,}",
                        _pct(s["overall"]),
                        "" if not s["overall_ci"] else f"{s['overall_ci'][0]:.1%}-{s['overall_ci'][1]:.1%}",
                        _pct(s["from_previous"]) if s["step"] > 1 else "",
                        ""
                        if s["median_seconds_from_previous"] is None
                        else _duration(s["median_seconds_from_previous"]),
                    )
                    for s in g["steps"]
                ],
            )
        if "chart" in result:
            console.print(f"chart: {result['chart']}")

    emit(result, as_json, show)


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f}s"
    if seconds < 7200:
        return f"{seconds / 60:.1f}m"
    if seconds < 172_800:
        return f"{seconds / 3600:.1f}h"
    return f"{seconds / 86_400:.1f}d"


@journeys_app.command("paths")
def paths(
    anchor: str = typer.Argument(..., help="The event: 'Event Name', 'page:/path' or 'page'."),
    direction: str = typer.Option("from", "--direction", help="'from' (what happens after) or 'to' (before)."),
    depth: int = typer.Option(4, "--depth", help="Steps to follow (1-20)."),
    top: int = typer.Option(20, "--top", help="How many paths to list."),
    since: str = SinceOpt,
    until: str = UntilOpt,
    chart: Path = ChartOpt,
    timeout: float = TimeoutOpt,
    identity: str = IdentityOpt,
    data: DataOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """The most frequent paths from or to an event, within its session (Sankey-ready with --json)."""
    from touchpoint.journeys.paths import paths as run

    with warehouse(data, read_only=True) as wh:
        result = run(
            wh,
            anchor,
            direction=direction,  # type: ignore[arg-type]
            depth=depth,
            top=top,
            start=_when(since, "--since"),
            end=_when(until, "--until"),
            timeout_minutes=_timeout(timeout, data),
            identity=identity,
        )
    _chart("sankey", result, chart)

    def show() -> None:
        table(
            f"paths {direction} {anchor} ({result['people']:,} people)",
            ["people", "share", "path"],
            [(f"{p['people']:,}", _pct(p["share"]), p["path"]) for p in result["paths"]],
        )
        if "chart" in result:
            console.print(f"chart: {result['chart']}")

    emit(result, as_json, show)


@journeys_app.command("retention")
def retention(
    period: str = typer.Option("week", "--period", help="week or month."),
    cohort: str = typer.Option("first_seen", "--cohort", help="first_seen or first_order."),
    returning: str = typer.Option("any", "--returning", help="What counts as coming back: any or order."),
    periods: int = typer.Option(12, "--periods", help="How many periods after the cohort's to show."),
    since: str = SinceOpt,
    until: str = UntilOpt,
    chart: Path = ChartOpt,
    identity: str = IdentityOpt,
    data: DataOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Cohort retention: share of each week's (or month's) new people active k periods later."""
    from touchpoint.journeys.retention import retention as run

    with warehouse(data, read_only=True) as wh:
        result = run(
            wh,
            period=period,  # type: ignore[arg-type]
            cohort=cohort,  # type: ignore[arg-type]
            returning=returning,  # type: ignore[arg-type]
            max_periods=periods,
            start=_when(since, "--since"),
            end=_when(until, "--until"),
            identity=identity,
        )
    if result["cohorts"]:
        _chart("retention", result, chart)

    def show() -> None:
        table(
            f"retention by {cohort.replace('_', ' ')} {period}",
            ["cohort", "size", *[str(k) for k in range(periods + 1)]],
            [
                (c["cohort"], f"{c['size']:,}", *[_pct(cell["share"]) for cell in c["periods"]])
                for c in result["cohorts"]
            ],
        )
        if "chart" in result:
            console.print(f"chart: {result['chart']}")

    emit(result, as_json, show)


@journeys_app.command("sessions")
def sessions(
    timeout: float = TimeoutOpt,
    rules: Path = RulesOpt,
    identity: str = IdentityOpt,
    build: bool = typer.Option(False, "--build", help="Also store them as the derived table 'sessions'."),
    data: DataOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Sessions per channel (and, with --build, the rebuildable 'sessions' table)."""
    from touchpoint.journeys.sessions import build_sessions_table, session_table

    minutes = _timeout(timeout, data)
    with warehouse(data, read_only=not build) as wh:
        expr = session_table(wh, timeout_minutes=minutes, rules=_rules(rules, data), identity=identity)
        stored = None
        if build:
            stored = build_sessions_table(wh, timeout_minutes=minutes, rules=_rules(rules, data), identity=identity)
            expr = wh.table("sessions")
        counts = expr.group_by("channel").agg(sessions=expr.count(), people=expr.person.nunique())
        rows = wh.to_arrow(counts.order_by(counts.sessions.desc())).to_pylist()
    result = {"timeout_minutes": minutes, "channels": rows, "stored": stored}

    def show() -> None:
        table(
            "sessions by channel",
            ["channel", "sessions", "people"],
            [(r["channel"], f"{r['sessions']:,}", f"{r['people']:,}") for r in rows],
        )
        if stored is not None:
            console.print(f"stored {stored:,} sessions in the table 'sessions'")

    emit(result, as_json, show)


def attribution(
    model: str = typer.Option(
        "all",
        "--model",
        help="markov, shapley, first, last, last_non_direct, linear, time_decay, position or all.",
    ),
    order: int = typer.Option(1, "--order", help="Markov chain order (1-3)."),
    paths_file: Path = typer.Option(
        None,
        "--paths",
        help="Aggregated path file (CSV/Parquet: path, conversions; optional value, nulls) instead of the warehouse.",
    ),
    mapping: list[str] = MapOpt,
    sep: str = typer.Option(">", "--sep", help="Channel separator inside the path column."),
    lookback: float = typer.Option(30.0, "--lookback", help="Days of touches counted before each conversion."),
    conversion_event: str = typer.Option(ORDER_COMPLETED, "--conversion-event", help="The track event that converts."),
    no_nulls: bool = typer.Option(False, "--no-nulls", help="Ignore non-converting journeys (Markov)."),
    half_life: float = typer.Option(None, "--half-life", help="Time-decay half-life: days (steps for path files)."),
    shapley_value: str = typer.Option("conversions", "--shapley-value", help="Shapley game: conversions or rate."),
    bootstrap: int = typer.Option(0, "--bootstrap", help="Bootstrap resamples for 95% intervals (0 = off)."),
    romi: bool = typer.Option(True, "--romi/--no-romi", help="Join spend for CPA and ROAS (warehouse input)."),
    since: str = SinceOpt,
    until: str = UntilOpt,
    chart: Path = ChartOpt,
    rules: Path = RulesOpt,
    timeout: float = TimeoutOpt,
    identity: str = IdentityOpt,
    data: DataOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Attribute conversions and revenue to channels; compare models; CPA and ROAS per model."""
    from touchpoint.journeys import workflow
    from touchpoint.journeys.attribution import CAVEAT
    from touchpoint.journeys.pathdata import read_path_file

    models = workflow.choose_models(model)
    start, end = _when(since, "--since"), _when(until, "--until")
    options = workflow.AttributionOptions(
        order=order, bootstrap=bootstrap, use_nulls=not no_nulls, half_life=half_life, value_function=shapley_value
    )
    columns = file_mapping(mapping, PATH_FIELDS)
    if paths_file is not None:
        named = {f"{field}_column": columns.get(field, field) for field in PATH_FIELDS}
        result = workflow.attribute_paths(read_path_file(paths_file, sep=sep, **named), models, options)
        result["romi"] = None
    elif columns:
        raise InvalidInput("--map describes the file of --paths", hint="add --paths FILE or drop --map")
    else:
        with warehouse(data, read_only=True) as wh:
            result = workflow.attribute_warehouse(
                wh,
                models,
                options,
                lookback_days=lookback,
                conversion_event=conversion_event,
                timeout_minutes=_timeout(timeout, data),
                rules=_rules(rules, data),
                start=start,
                end=end,
                identity=identity,
                romi=romi,
            )
    romi_out = result["romi"]
    _chart("attribution", result, chart)

    def show() -> None:
        table(
            f"conversions credited per channel ({result['total_conversions']:,.0f} conversions, "
            f"{result['input']['paths']:,} paths)",
            ["channel", *models],
            [(r["channel"], *[f"{r[m]:,.1f}" for m in models]) for r in result["channels"]],
        )
        if romi_out and romi_out["total_spend"] > 0:
            rows = [r for r in romi_out["rows"] if r["spend"] > 0]
            table(
                "cost per acquisition and return on ad spend",
                ["model", "channel", "spend", "conversions", "CPA", "ROAS"],
                [
                    (
                        r["model"],
                        r["channel"],
                        f"{r['spend']:,.0f}",
                        f"{r['conversions']:,.1f}",
                        "" if r["cpa"] is None else f"{r['cpa']:,.2f}",
                        "" if r["roas"] is None else f"{r['roas']:.2f}",
                    )
                    for r in rows
                ],
            )
        console.print(f"[yellow]caveat:[/] {CAVEAT}")
        if "chart" in result:
            console.print(f"chart: {result['chart']}")

    emit(result, as_json, show)
