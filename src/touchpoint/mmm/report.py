"""Charts (PNG, matplotlib's Agg backend, no display needed) and the one-page investment-case HTML.

>>> import tempfile, pathlib
>>> p = plot_romi({"romi": {"tv": {"romi": {"mean": 2, "low": 1, "high": 3}, "identified": True}},
...                "status": "ok"}, pathlib.Path(tempfile.mkdtemp()) / "romi.png")
>>> p.exists()
True
"""

from __future__ import annotations

import base64
import html
from pathlib import Path
from typing import Any

import numpy as np


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _stamp(ax: Any, status: str) -> None:
    if status == "failed":
        ax.text(
            0.5,
            0.5,
            "MODEL FAILED ITS DIAGNOSTICS",
            transform=ax.transAxes,
            ha="center",
            va="center",
            fontsize=16,
            color="red",
            alpha=0.35,
            rotation=20,
        )


def plot_romi(summary: dict[str, Any], path: Path) -> Path:
    """ROMI per channel with its credible interval; channels that are not identified are grey.

    After a refit (``diagnostics.refit``), each channel's interval in the previous fit is drawn below
    it in light grey, so a calibration's narrowing (or a drift) shows; calibrated channels are marked."""
    plt = _plt()
    items = list(summary["romi"].items())
    refit = (summary.get("diagnostics") or {}).get("refit") or {}
    before = refit.get("channels", {})
    fig, ax = plt.subplots(figsize=(7, 0.5 * len(items) + 1.5))
    for i, (ch, v) in enumerate(items):
        r = v["romi"]
        color = "tab:blue" if v.get("identified", True) else "grey"
        ax.errorbar(
            r["mean"],
            i,
            xerr=[[r["mean"] - r["low"]], [r["high"] - r["mean"]]],
            fmt="o",
            color=color,
            capsize=4,
            label="this fit" if i == 0 else None,
        )
        if ch in before:
            b = before[ch]["before"]
            ax.errorbar(
                b["mean"],
                i - 0.25,
                xerr=[[b["mean"] - b["low"]], [b["high"] - b["mean"]]],
                fmt="o",
                color="lightgrey",
                capsize=3,
                label="previous fit" if not any(c in before for c, _ in items[:i]) else None,
            )
    ax.axvline(1.0, color="black", lw=0.8, ls="--")
    labels = []
    for ch, v in items:
        label = ch + (" (calibrated)" if v.get("calibrated_by") else "")
        if ch in before and before[ch]["width_before"] > 0:
            label += f"\nwidth {before[ch]['width_before']:.2f} → {before[ch]['width_after']:.2f}"
        labels.append(label)
    ax.set_yticks(range(len(items)), labels)
    ax.set_xlabel("ROMI (revenue per unit of spend), with credible interval")
    ax.set_title("Return on marketing investment per channel")
    if before:
        ax.legend(fontsize=7, loc="best")
    _stamp(ax, summary["status"])
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_contributions(contrib: dict[str, Any], path: Path, status: str = "ok") -> Path:
    """Stacked weekly contribution of the baseline and each channel against the actual KPI."""
    plt = _plt()
    dates = np.array(contrib["dates"], dtype="datetime64[D]")
    fig, ax = plt.subplots(figsize=(10, 4.5))
    layers = [np.array(contrib["baseline"])] + [np.array(v) for v in contrib["channels"].values()]
    ax.stackplot(dates, *layers, labels=["baseline", *contrib["channels"]], alpha=0.8)
    ax.plot(dates, contrib["actual"], color="black", lw=1, label="actual")
    if contrib.get("holdout_from"):
        ax.axvline(np.datetime64(contrib["holdout_from"]), color="red", ls="--", lw=1, label="held out")
    ax.legend(loc="upper left", fontsize=7, ncol=4)
    ax.set_title("Weekly contribution by channel")
    _stamp(ax, status)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_response_curves(curves: dict[str, Any], path: Path, status: str = "ok") -> Path:
    """Weekly revenue against weekly spend per channel, with the current spend marked."""
    plt = _plt()
    n = len(curves)
    cols = min(n, 3)
    rows = int(np.ceil(n / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(4 * cols, 3 * rows), squeeze=False)
    for ax, (ch, c) in zip(axes.flat, curves.items(), strict=False):
        x = np.array(c["weekly_spend"])
        ax.fill_between(x, c["low"], c["high"], alpha=0.3)
        ax.plot(x, c["mean"])
        ax.axvline(c["current_weekly_spend"], color="grey", ls="--", lw=0.8)
        ax.set_title(ch)
        ax.set_xlabel("weekly spend")
        _stamp(ax, status)
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    fig.suptitle("Response curves (steady state)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def _draw_cash_flows(ax: Any, case: dict[str, Any]) -> None:
    """Monthly cash flow (bars) and cumulative cash flow with its interval (line and band)."""
    months = [m["month"] for m in case["months"]]
    flow = np.array([m["cash_flow"]["mean"] for m in case["months"]])
    ax.bar(months, flow, color=np.where(flow >= 0, "tab:green", "tab:red"), alpha=0.6, label="monthly cash flow")
    ax.plot(months, [m["cumulative_cash_flow"]["mean"] for m in case["months"]], color="black", label="cumulative")
    ax.fill_between(
        months,
        [m["cumulative_cash_flow"]["low"] for m in case["months"]],
        [m["cumulative_cash_flow"]["high"] for m in case["months"]],
        color="grey",
        alpha=0.25,
        label="cumulative, 90% interval",
    )
    ax.axhline(0, color="black", lw=0.6)
    ax.set_xlabel("month")
    ax.legend(fontsize=8)
    _stamp(ax, case["model_status"])


def plot_case(case: dict[str, Any], path: Path) -> Path:
    """The investment case's cash flows including carry-over, as a PNG."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(9, 4))
    _draw_cash_flows(ax, case)
    ax.set_title("Investment case: cash flows including carry-over")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _case_tables(case: dict[str, Any], plan: dict[str, Any]) -> tuple[list[list[str]], list[list[str]]]:
    """The report's two tables as text: measures (expected, 90% low, 90% high) and the plan per channel."""

    def f(x: float) -> str:
        return f"{x:,.0f}"

    npv, rev, romi = case["npv"], case["expected_revenue"], case["romi"]
    measures = [
        ["Spend", f(case["total_spend"]), "", ""],
        ["Revenue", f(rev["mean"]), f(rev["low"]), f(rev["high"])],
        ["NPV", f(npv["mean"]), f(npv["low"]), f(npv["high"])],
        ["ROMI", f"{romi['mean']:.2f}", f"{romi['low']:.2f}", f"{romi['high']:.2f}"],
        ["P(pays back)", f"{case['probability_pays_back']:.0%}", "", ""],
    ]
    channels = [[ch, f(v["total"]), f"{v['share']:.0%}", f(v["current_total"])] for ch, v in plan["channels"].items()]
    return measures, channels


MEASURE_HEADER = ["Measure", "Expected", "90% low", "90% high"]
PLAN_HEADER = ["Channel", "Plan", "Share", "Current mix"]


def _failed_text(case: dict[str, Any]) -> str:
    return "The model failed its diagnostics: " + "; ".join(case["model_problems"]) if not case["reliable"] else ""


def _calibration_text(case: dict[str, Any]) -> str:
    """One sentence on the lift tests behind the numbers, with each channel's interval before and after."""
    parts = []
    for c in case.get("calibration") or []:
        text = f"{c['channel']} by {c['source'] or 'a lift test'} ({c['period'][0]} to {c['period'][1]})"
        if c.get("width_before") is not None:
            text += f", ROMI interval width {c['width_before']:.2f} before, {c['width_after']:.2f} after"
        parts.append(text)
    return "Calibrated with lift tests: " + "; ".join(parts) + "." if parts else ""


def case_html(case: dict[str, Any], plan: dict[str, Any], png: Path) -> str:
    """A self-contained one-page HTML report (the chart embedded as a data URL)."""
    img = base64.b64encode(png.read_bytes()).decode()
    measures, channels = _case_tables(case, plan)

    def rows(header: list[str], body: list[list[str]]) -> str:
        head = "<tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in header) + "</tr>"
        return head + "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>" for r in body)

    failed = _failed_text(case)
    warn = f"<p class='warn'>{html.escape(failed)}</p>" if failed else ""
    calibrated = _calibration_text(case)
    warn += f"<p>{html.escape(calibrated)}</p>" if calibrated else ""
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>Investment case</title>
<style>body{{font-family:sans-serif;max-width:900px;margin:2em auto;color:#222}}
table{{border-collapse:collapse}}td,th{{padding:2px 10px;border-bottom:1px solid #ddd;text-align:right}}
td:first-child,th:first-child{{text-align:left}}.warn{{color:#b00;font-weight:bold}}</style></head><body>
<h1>Investment case</h1>{warn}<p>{html.escape(case["summary"])}</p>
<table>{rows(MEASURE_HEADER, measures)}</table>
<img src="data:image/png;base64,{img}" style="width:100%">
<h2>Plan</h2><table>{rows(PLAN_HEADER, channels)}</table>
<p><small>{html.escape(case["method"])}</small></p></body></html>"""


def case_pdf(case: dict[str, Any], plan: dict[str, Any], path: Path) -> Path:
    """The same one-page report as a PDF (A4 portrait, drawn with matplotlib; no other dependency)."""
    import textwrap

    plt = _plt()
    measures, channels = _case_tables(case, plan)
    fig = plt.figure(figsize=(8.27, 11.69))
    fig.text(0.07, 0.955, "Investment case", fontsize=20, weight="bold")
    y = 0.93
    failed = _failed_text(case)
    if failed:
        for line in textwrap.wrap(failed, 95):
            fig.text(0.07, y, line, fontsize=9, color="#b00", weight="bold")
            y -= 0.016
        y -= 0.006
    for line in textwrap.wrap(case["summary"], 100) + textwrap.wrap(_calibration_text(case), 100):
        fig.text(0.07, y, line, fontsize=9.5)
        y -= 0.017
    ax = fig.add_axes((0.07, y - 0.13, 0.86, 0.12))
    ax.axis("off")
    ax.table(cellText=measures, colLabels=MEASURE_HEADER, loc="upper left", cellLoc="right", colLoc="right")
    chart = fig.add_axes((0.1, y - 0.47, 0.83, 0.28))
    _draw_cash_flows(chart, case)
    chart.set_title("Cash flows including carry-over", fontsize=10)
    plan_ax = fig.add_axes((0.07, 0.08, 0.86, max(0.03 * (len(channels) + 1), 0.06)))
    plan_ax.axis("off")
    plan_ax.set_title("Plan", loc="left", fontsize=11, weight="bold")
    plan_ax.table(cellText=channels, colLabels=PLAN_HEADER, loc="upper left", cellLoc="right", colLoc="right")
    for i, line in enumerate(textwrap.wrap(case["method"], 120)[:3]):
        fig.text(0.07, 0.05 - 0.013 * i, line, fontsize=6.5, color="#555")
    fig.savefig(path, format="pdf", metadata={"CreationDate": None, "Creator": "touchpoint"})
    plt.close(fig)
    return path
