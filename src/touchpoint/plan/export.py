"""The plan's one-pager for the people who sign it: a quarter's review as self-contained HTML or a PDF.

Both show the same things: the goal and the probability of reaching it (with the interval of the
metric at the deadline), whether the behaviour changes add up to the goal, and per tactic the expected
effect beside the measured one with their intervals, the decision and its reason, and the minimum
viable test proposed where there is no evidence yet. The PDF is drawn with matplotlib (A4 portrait),
as the investment case is; the HTML needs nothing but a browser.

>>> rows = tactic_rows({"tactics": [{"name": "Win-back email", "kind": "experiment", "decision": "scale",
...     "expected": {"effect": 0.03, "low": 0.01, "high": 0.05}, "reason": "measured",
...     "measured": {"available": True, "effect": 0.0375, "low": 0.0269, "high": 0.0481}}]})
>>> rows[0][:4]
['Win-back email', 'experiment', '+0.03 (+0.01 to +0.05)', '+0.0375 (+0.0269 to +0.0481)']
"""

from __future__ import annotations

import html
import textwrap
from pathlib import Path
from typing import Any, BinaryIO

from touchpoint.errors import InvalidInput
from touchpoint.plan import store
from touchpoint.plan.review import review_plan
from touchpoint.warehouse import Warehouse

FORMATS = ("html", "pdf")
TACTIC_HEADER = ["Tactic", "Kind", "Expected (90%)", "Measured (95%)", "Decision"]
CHANGE_HEADER = ["Behaviour change", "Audience", "From", "To", "Adds", "Share of gap", "Tactics cover"]


def review_to_export(wh: Warehouse, plan_id: str, quarter: str) -> dict[str, Any]:
    """The latest stored review of ``quarter``; when there is none, the review computed now (not stored)."""
    stored = [r for r in store.reviews(wh, plan_id) if r["quarter"] == quarter]
    if stored:
        return stored[-1] | {"exported_from": f"the review stored at {stored[-1]['reviewed_at']}"}
    return review_plan(wh, plan_id, quarter=quarter, write=False) | {"exported_from": "a review computed now"}


def _g(v: Any, digits: int = 4) -> str:
    return "-" if v is None else f"{float(v):+.{digits}g}"


def _span(d: dict[str, Any] | None) -> str:
    if not d or d.get("available") is False or d.get("effect") is None:
        return (d or {}).get("reason") or "no evidence"
    return f"{_g(d['effect'])} ({_g(d.get('low'))} to {_g(d.get('high'))})"


def tactic_rows(review: dict[str, Any]) -> list[list[str]]:
    """One row per tactic: name, kind, expected, measured, decision, reason (text)."""
    return [
        [t["name"], t["kind"], _span(t.get("expected")), _span(t.get("measured")), t["decision"], t.get("reason", "")]
        for t in review.get("tactics", [])
    ]


def change_rows(review: dict[str, Any]) -> list[list[str]]:
    out = []
    for c in review.get("arithmetic", {}).get("behaviour_changes", []):
        out.append(
            [
                c["behaviour"],
                c["audience"],
                f"{c['from']:,.4g}",
                f"{c['to']:,.4g}",
                f"{c['contribution']:,.0f}",
                f"{c['share_of_gap']:.0%}",
                f"{c['tactics_cover']:.0%}",
            ]
        )
    return out


def _headline(review: dict[str, Any]) -> tuple[str, str]:
    goal, r = review["goal"], review.get("rollup") or {}
    target = f"{goal['metric'].replace('_', ' ')} from {goal['baseline']:,.0f} to {goal['target']:,.0f}"
    when = f" by {goal['deadline']}" if goal.get("deadline") else ""
    p = r.get("probability_of_attainment")
    chance = (
        f"P(goal) = {p:.0%}: expected {r['expected']:,.0f} (90% interval {r['low']:,.0f} to {r['high']:,.0f})"
        if p is not None
        else "P(goal): not computed"
    )
    return f"Goal: {target}{when}", chance


def to_html(review: dict[str, Any]) -> str:
    """A self-contained one-page HTML (no script, no external resource)."""

    def table(header: list[str], rows: list[list[str]]) -> str:
        head = "<tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in header) + "</tr>"
        return "<table>" + head + "".join(
            "<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in r) + "</tr>" for r in rows
        ) + "</table>"  # fmt: skip

    goal, chance = _headline(review)
    tactics = tactic_rows(review)
    tests = [
        f"{t['name']}: {t['minimum_viable_test'].get('note') or _test_text(t['minimum_viable_test'])}"
        for t in review.get("tactics", [])
        if t.get("minimum_viable_test")
    ]
    proposed = "".join(f"<li>{html.escape(t)}</li>" for t in tests)
    proposed = f"<h2>Minimum viable tests proposed</h2><ul>{proposed}</ul>" if tests else ""
    method = (review.get("rollup") or {}).get("method", "")
    title = f"{review.get('name') or review['plan_id']}: review of {review['quarter']}"
    return f"""<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>body{{font-family:sans-serif;max-width:960px;margin:2em auto;color:#222}}
table{{border-collapse:collapse;margin:.5em 0 1em}}
td,th{{padding:3px 10px;border-bottom:1px solid #ddd;text-align:left}}
.p{{font-size:1.3em;font-weight:bold}}.verdict{{color:#8a4b00}}small{{color:#555}}</style></head><body>
<h1>{html.escape(title)}</h1>
<p>{html.escape(goal)}</p><p class="p">{html.escape(chance)}</p>
<p class="verdict">{html.escape(review.get("arithmetic", {}).get("verdict", ""))}</p>
<h2>Behaviour changes</h2>{table(CHANGE_HEADER, change_rows(review))}
<h2>Tactics: expected and measured effect</h2>{table([*TACTIC_HEADER, "Why"], tactics)}
{proposed}
<p><small>{html.escape(method)}. From {html.escape(review.get("exported_from", "the review"))}, plan version
{review.get("plan_version")}.</small></p></body></html>"""


def _test_text(t: dict[str, Any]) -> str:
    if not t.get("possible", True):
        return "no test can detect the expected effect"
    return f"{t.get('units_total', 0):,} units over about {t.get('days', 0):,.0f} days"


def to_pdf(review: dict[str, Any], path: Path | BinaryIO) -> Path | BinaryIO:
    """The same one-pager as a PDF: A4 portrait, the tactics' effects as a chart with their intervals."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    goal, chance = _headline(review)
    fig = plt.figure(figsize=(8.27, 11.69))
    title = f"{review.get('name') or review['plan_id']}: review of {review['quarter']}"
    fig.text(0.07, 0.955, textwrap.shorten(title, 70), fontsize=16, weight="bold")
    y = 0.925
    for text, size, colour in ((goal, 10, "#222"), (chance, 11, "#222")):
        fig.text(0.07, y, textwrap.shorten(text, 110), fontsize=size, color=colour, weight="bold")
        y -= 0.022
    for line in textwrap.wrap(review.get("arithmetic", {}).get("verdict", ""), 105):
        fig.text(0.07, y, line, fontsize=9, color="#8a4b00")
        y -= 0.016
    changes = [[textwrap.shorten(c, 22) for c in r] for r in change_rows(review)]
    if changes:
        ax = fig.add_axes((0.07, y - 0.03 * (len(changes) + 1) - 0.01, 0.86, 0.03 * (len(changes) + 1)))
        ax.axis("off")
        _table(ax, changes, CHANGE_HEADER)
        y -= 0.03 * (len(changes) + 1) + 0.04
    tactics = review.get("tactics", [])
    fig.text(0.07, y - 0.005, "Effect per tactic, in its behaviour's units: expected (grey, 90%), measured (blue, 95%)",
             fontsize=9, weight="bold")  # fmt: skip
    height = min(0.06, 0.3 / max(len(tactics), 1))
    for i, t in enumerate(tactics):  # one axis per tactic: their behaviours have different units
        ax = fig.add_axes((0.38, y - 0.03 - (i + 1) * height, 0.55, height * 0.7))
        for row, key, colour in ((1, "expected", "#9aa5b1"), (0, "measured", "#2563eb")):
            d = t.get(key) or {}
            if d.get("effect") is None or d.get("available") is False:
                continue
            lo, hi = d.get("low"), d.get("high")
            err = [[d["effect"] - lo], [hi - d["effect"]]] if lo is not None and hi is not None else None
            ax.errorbar(d["effect"], row, xerr=err, fmt="o", color=colour, capsize=3, markersize=4)
        ax.axvline(0, color="#b00", linestyle="--", linewidth=0.8)
        ax.set_ylim(-0.7, 1.7)
        ax.set_yticks([])
        ax.tick_params(axis="x", labelsize=7)
        fig.text(0.07, y - 0.03 - (i + 1) * height + height * 0.3, textwrap.shorten(t["name"], 40), fontsize=8)
    y -= 0.06 + len(tactics) * height
    rows = [[textwrap.shorten(c, 26) for c in r[:5]] for r in tactic_rows(review)]
    ax = fig.add_axes((0.07, max(y - 0.03 * (len(rows) + 1), 0.1), 0.86, 0.03 * (len(rows) + 1)))
    ax.axis("off")
    _table(ax, rows, TACTIC_HEADER)
    method = (review.get("rollup") or {}).get("method", "") + f". From {review.get('exported_from', 'the review')}."
    for i, line in enumerate(textwrap.wrap(method, 120)[:4]):
        fig.text(0.07, 0.06 - 0.013 * i, line, fontsize=6.5, color="#555")
    fig.savefig(path, format="pdf", metadata={"CreationDate": None, "Creator": "touchpoint"})
    plt.close(fig)
    return path


def render(wh: Warehouse, plan_id: str, quarter: str, fmt: str) -> tuple[bytes, dict[str, Any]]:
    """The one-pager as bytes in ``fmt`` (``html`` or ``pdf``), and the review it shows."""
    import io

    if fmt not in FORMATS:
        raise InvalidInput(f"format {fmt!r} is not known", hint="use html or pdf")
    review = review_to_export(wh, plan_id, quarter)
    if fmt == "html":
        return to_html(review).encode("utf-8"), review
    buffer = io.BytesIO()
    to_pdf(review, buffer)
    return buffer.getvalue(), review


def _table(ax: Any, rows: list[list[str]], header: list[str]) -> None:
    drawn = ax.table(cellText=rows, colLabels=header, loc="upper left", cellLoc="left", colLoc="left")
    drawn.auto_set_font_size(False)
    drawn.set_fontsize(7)


def export(wh: Warehouse, plan_id: str, quarter: str, out: Path) -> dict[str, Any]:
    """Write the one-pager of ``plan_id``'s review of ``quarter`` to ``out`` (``.html`` or ``.pdf``)."""
    fmt = out.suffix.lower().lstrip(".")
    if fmt not in FORMATS:
        raise InvalidInput(f"cannot export to {out.name!r}", hint="name a .html or .pdf file")
    content, review = render(wh, plan_id, quarter, fmt)
    out.write_bytes(content)
    return {"plan_id": plan_id, "quarter": quarter, "file": str(out), "format": fmt, "from": review["exported_from"]}
