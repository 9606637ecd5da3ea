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
    """ROMI per channel with its credible interval; channels that are not identified are grey."""
    plt = _plt()
    items = list(summary["romi"].items())
    fig, ax = plt.subplots(figsize=(7, 0.5 * len(items) + 1.5))
    for i, (_ch, v) in enumerate(items):
        r = v["romi"]
        color = "tab:blue" if v.get("identified", True) else "grey"
        ax.errorbar(
            r["mean"],
            i,
            xerr=[[r["mean"] - r["low"]], [r["high"] - r["mean"]]],
            fmt="o",
            color=color,
            capsize=4,
        )
    ax.axvline(1.0, color="black", lw=0.8, ls="--")
    ax.set_yticks(range(len(items)), [ch for ch, _ in items])
    ax.set_xlabel("ROMI (revenue per unit of spend), with credible interval")
    ax.set_title("Return on marketing investment per channel")
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


def plot_case(case: dict[str, Any], path: Path) -> Path:
    """Monthly cash flow (bars) and cumulative cash flow with its interval (line and band)."""
    plt = _plt()
    months = np.array([m["month"] for m in case["months"]])
    flow = np.array([m["cash_flow"]["mean"] for m in case["months"]])
    cum = case["months"]
    fig, ax = plt.subplots(figsize=(9, 4))
    ax.bar(months, flow, color=np.where(flow >= 0, "tab:green", "tab:red"), alpha=0.6, label="monthly cash flow")
    ax.plot(months, [m["cumulative_cash_flow"]["mean"] for m in cum], color="black", label="cumulative")
    ax.fill_between(
        months,
        [m["cumulative_cash_flow"]["low"] for m in cum],
        [m["cumulative_cash_flow"]["high"] for m in cum],
        color="grey",
        alpha=0.25,
        label="cumulative, 90% interval",
    )
    ax.axhline(0, color="black", lw=0.6)
    ax.set_xlabel("month")
    ax.set_title("Investment case: cash flows including carry-over")
    ax.legend(fontsize=8)
    _stamp(ax, case["model_status"])
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def case_html(case: dict[str, Any], plan: dict[str, Any], png: Path) -> str:
    """A self-contained one-page HTML report (the chart embedded as a data URL)."""
    img = base64.b64encode(png.read_bytes()).decode()

    def f(x: float) -> str:
        return f"{x:,.0f}"

    rows = "".join(
        f"<tr><td>{html.escape(ch)}</td><td>{f(v['total'])}</td><td>{v['share']:.0%}</td>"
        f"<td>{f(v['current_total'])}</td></tr>"
        for ch, v in plan["channels"].items()
    )
    warn = (
        ("<p class='warn'>The model failed its diagnostics: " + html.escape("; ".join(case["model_problems"])) + "</p>")
        if not case["reliable"]
        else ""
    )
    npv, rev = case["npv"], case["expected_revenue"]
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>Investment case</title>
<style>body{{font-family:sans-serif;max-width:900px;margin:2em auto;color:#222}}
table{{border-collapse:collapse}}td,th{{padding:2px 10px;border-bottom:1px solid #ddd;text-align:right}}
td:first-child,th:first-child{{text-align:left}}.warn{{color:#b00;font-weight:bold}}</style></head><body>
<h1>Investment case</h1>{warn}<p>{html.escape(case["summary"])}</p>
<table><tr><th>Measure</th><th>Expected</th><th>90% low</th><th>90% high</th></tr>
<tr><td>Spend</td><td>{f(case["total_spend"])}</td><td></td><td></td></tr>
<tr><td>Revenue</td><td>{f(rev["mean"])}</td><td>{f(rev["low"])}</td><td>{f(rev["high"])}</td></tr>
<tr><td>NPV</td><td>{f(npv["mean"])}</td><td>{f(npv["low"])}</td><td>{f(npv["high"])}</td></tr>
<tr><td>ROMI</td><td>{case["romi"]["mean"]:.2f}</td><td>{case["romi"]["low"]:.2f}</td><td>{case["romi"]["high"]:.2f}</td></tr>
<tr><td>P(pays back)</td><td>{case["probability_pays_back"]:.0%}</td><td></td><td></td></tr></table>
<img src="data:image/png;base64,{img}" style="width:100%">
<h2>Plan</h2><table><tr><th>Channel</th><th>Plan</th><th>Share</th><th>Current mix</th></tr>{rows}</table>
<p><small>{html.escape(case["method"])}</small></p></body></html>"""
