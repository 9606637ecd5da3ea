"""``touchpoint kpis``: customer equity, satisfaction and relative attractiveness, each with its interval."""

from __future__ import annotations

from typing import Any

import typer

from touchpoint.cli.common import DataOpt, JsonOpt, console, emit, settings_for, table, warehouse


def _money(v: Any) -> str:
    return "-" if v is None else f"{v:,.0f}"


def _num(v: Any, digits: int = 2) -> str:
    return "-" if v is None else f"{v:,.{digits}f}"


def _pct(v: Any) -> str:
    return "-" if v is None else f"{v:.0%}"


def _render(k: dict[str, Any]) -> None:
    ce, sat, ra = k["customer_equity"], k["satisfaction"], k["relative_attractiveness"]
    pct = f"{k['interval']:.0%}"
    rows = [
        [
            "customer equity",
            _money(ce["value"]),
            f"{_money(ce['low'])} .. {_money(ce['high'])}",
            f"{ce['n']:,} customers",
        ],
        [
            f"satisfaction (mean of 0-{sat.get('scale_max', 0):g})" if sat["n"] else "satisfaction",
            _num(sat["value"]),
            f"{_num(sat['low'])} .. {_num(sat['high'])}",
            f"{sat['n']:,} answers",
        ],
    ]
    if sat["n"]:
        tb = sat["top_box"]
        rows.append(["satisfaction: top-box share", _pct(tb["value"]), f"{_pct(tb['low'])} .. {_pct(tb['high'])}", ""])
    rows.append(
        [
            "relative attractiveness (1 = as the alternatives)",
            _num(ra["value"], 3),
            f"{_num(ra['low'], 3)} .. {_num(ra['high'], 3)}",
            f"{ra['n']:,} respondents",
        ]
    )
    if "nps" in k:
        n = k["nps"]
        rows.append(
            [
                "NPS (not a headline KPI)",
                _num(n["value"], 0),
                f"{_num(n['low'], 0)} .. {_num(n['high'], 0)}",
                f"{n['n']:,} answers",
            ]
        )
    title = f"KPIs {k['quarter']}" if k["quarter"] else "KPIs"
    table(title, ["KPI", "value", f"{pct} interval", "n"], rows)
    for name, kpi in (("customer equity", ce), ("satisfaction", sat), ("relative attractiveness", ra)):
        if kpi.get("hint"):
            console.print(f"[yellow]{name}:[/] {kpi['method']}; {kpi['hint']}", highlight=False)
    for w in ra.get("warnings", []):
        console.print(f"[yellow]relative attractiveness:[/] {w}", highlight=False)
    series = ce.get("by_quarter") or []
    if series:
        table(
            "customer equity by quarter: change split into acquisition, retention, spend per customer",
            ["quarter", "equity", "change", "acquisition", "retention", "spend/customer"],
            [
                [
                    r["quarter"],
                    _money(r["value"]),
                    _money(r.get("change", {}).get("total")),
                    *(
                        _money(r.get("change", {}).get(p, {}).get("value"))
                        for p in ("acquisition", "retention", "spend_per_customer")
                    ),
                ]
                for r in series
            ],
        )
    rel = ra.get("relation_to_retention_and_clv")
    if rel and "p_alive" in rel:
        console.print(
            f"does attractiveness predict who stays? P(alive): {rel['p_alive']['verdict']}; "
            f"CLV: {rel['clv']['verdict']}",
            highlight=False,
        )
    if "nps" in k:
        console.print(f"[yellow]NPS:[/] {k['nps']['why_not_a_headline_kpi']}", highlight=False)


def kpis(
    quarter: str = typer.Option(None, "--quarter", help="A quarter, e.g. 2026Q3 (default: all data, equity now)."),
    brand: str = typer.Option(None, "--brand", help="Our brand in attractiveness answers (default: brand_name)."),
    by: str = typer.Option("segment", "--by", help="Survey answer property for satisfaction by segment."),
    nps: bool = typer.Option(False, "--nps", help="Also compute NPS, with why it is not a headline KPI."),
    data: DataOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """The KPIs that matter: customer equity, satisfaction and relative attractiveness, with intervals."""
    from touchpoint.plan.kpis import kpis as compute

    with warehouse(data, read_only=True) as wh:
        result = compute(wh, quarter=quarter, brand=brand or settings_for(data).brand_name, by=by, nps=nps)
    emit(result, as_json, lambda: _render(result))
