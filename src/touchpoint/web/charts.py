"""Charts drawn on the server as inline SVG: no JavaScript, nothing fetched, readable on any screen.

Each chart is small, scales with its container (``viewBox``), carries a ``<title>`` for screen readers,
and is always shown next to a table of its numbers with a CSV download, so the SVG never has to be
read for exact values. Intervals are drawn as whiskers (bars) or a shaded band (lines).

>>> svg = bars(["a", "b"], [1.0, 2.0], lows=[0.5, 1.5], highs=[1.5, 2.5], title="ROMI")
>>> svg.startswith("<svg") and "<title>ROMI</title>" in svg
True
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from html import escape
from typing import Any

from markupsafe import Markup

PALETTE = ("#2563eb", "#16a34a", "#d97706", "#9333ea", "#dc2626", "#0891b2", "#4b5563", "#be185d")
W, H, LEFT, RIGHT, TOP, BOTTOM = 640, 260, 64, 16, 16, 40


def _num(value: float) -> str:
    """A short axis label: 1.2k, 3.4M, 0.25."""
    a = abs(value)
    if a >= 1e6:
        return f"{value / 1e6:.1f}M"
    if a >= 1e3:
        return f"{value / 1e3:.1f}k"
    if a >= 10 or a == 0:
        return f"{value:.0f}"
    return f"{value:.2g}"


def _finite(values: Sequence[float | None]) -> list[float]:
    return [float(v) for v in values if v is not None and math.isfinite(float(v))]


def _scale(lo: float, hi: float) -> tuple[float, float, list[float]]:
    if hi <= lo:
        hi = lo + 1.0
    step = 10 ** math.floor(math.log10((hi - lo) / 4 or 1))
    for m in (1, 2, 5, 10):
        if (hi - lo) / (step * m) <= 5:
            step *= m
            break
    start = math.floor(lo / step) * step
    end = math.ceil(hi / step) * step
    ticks = [start + i * step for i in range(round((end - start) / step) + 1)]
    return start, end, ticks


def _frame(title: str, lo: float, hi: float, ticks: list[float]) -> list[str]:
    def y(v: float) -> float:
        return TOP + (H - TOP - BOTTOM) * (1 - (v - lo) / (hi - lo))

    out = [
        f'<svg class="chart" viewBox="0 0 {W} {H}" role="img" aria-label="{escape(title)}" '
        f'xmlns="http://www.w3.org/2000/svg"><title>{escape(title)}</title>'
    ]
    for t in ticks:
        out.append(f'<line x1="{LEFT}" x2="{W - RIGHT}" y1="{y(t):.1f}" y2="{y(t):.1f}" class="grid"/>')
        out.append(f'<text x="{LEFT - 6}" y="{y(t) + 4:.1f}" text-anchor="end" class="tick">{_num(t)}</text>')
    return out


def bars(
    labels: Sequence[str],
    values: Sequence[float | None],
    *,
    lows: Sequence[float | None] | None = None,
    highs: Sequence[float | None] | None = None,
    title: str,
    reference: float | None = None,
) -> Markup:
    """Vertical bars with optional interval whiskers and a dashed reference line (e.g. ROMI = 1)."""
    every = _finite(values) + _finite(lows or []) + _finite(highs or []) + [0.0]
    if reference is not None:
        every.append(reference)
    lo, hi, ticks = _scale(min(every), max(every))
    out = _frame(title, lo, hi, ticks)

    def y(v: float) -> float:
        return TOP + (H - TOP - BOTTOM) * (1 - (v - lo) / (hi - lo))

    n = max(len(labels), 1)
    slot = (W - LEFT - RIGHT) / n
    for i, label in enumerate(labels):
        v = values[i]
        x = LEFT + i * slot + slot * 0.15
        if v is not None and math.isfinite(float(v)):
            top, base = y(max(float(v), 0.0)), y(min(float(v), 0.0))
            out.append(
                f'<rect x="{x:.1f}" y="{top:.1f}" width="{slot * 0.7:.1f}" height="{max(base - top, 0.5):.1f}" '
                f'fill="{PALETTE[0]}"><title>{escape(str(label))}: {float(v):,.4g}</title></rect>'
            )
        low = lows[i] if lows else None
        high = highs[i] if highs else None
        if low is not None and high is not None and math.isfinite(float(low)) and math.isfinite(float(high)):
            cx = x + slot * 0.35
            y1, y2 = y(float(low)), y(float(high))
            out.append(f'<line x1="{cx:.1f}" x2="{cx:.1f}" y1="{y1:.1f}" y2="{y2:.1f}" class="whisker"/>')
            for end in (low, high):
                out.append(
                    f'<line x1="{cx - 6:.1f}" x2="{cx + 6:.1f}" y1="{y(float(end)):.1f}" y2="{y(float(end)):.1f}" '
                    'class="whisker"/>'
                )
        if n > 12 and i % math.ceil(n / 8):
            continue
        text = escape(str(label)[:18])
        out.append(
            f'<text x="{x + slot * 0.35:.1f}" y="{H - BOTTOM + 16}" text-anchor="middle" class="tick">{text}</text>'
        )
    if reference is not None:
        out.append(f'<line x1="{LEFT}" x2="{W - RIGHT}" y1="{y(reference):.1f}" y2="{y(reference):.1f}" class="ref"/>')
    out.append("</svg>")
    return Markup("".join(out))


def lines(
    x: Sequence[str],
    series: dict[str, Sequence[float | None]],
    *,
    title: str,
    band: tuple[Sequence[float | None], Sequence[float | None]] | None = None,
) -> Markup:
    """One line per series over shared x labels (dates), with an optional interval band for the first."""
    every = [v for s in series.values() for v in _finite(s)]
    if band:
        every += _finite(band[0]) + _finite(band[1])
    lo, hi, ticks = _scale(min([*every, 0.0]), max([*every, 0.0]))
    out = _frame(title, lo, hi, ticks)
    n = max(len(x) - 1, 1)

    def px(i: int) -> float:
        return LEFT + (W - LEFT - RIGHT) * i / n

    def y(v: float) -> float:
        return TOP + (H - TOP - BOTTOM) * (1 - (v - lo) / (hi - lo))

    def drawn(values: Sequence[float | None]) -> list[tuple[int, float]]:
        return [(i, float(v)) for i, v in enumerate(values) if v is not None and math.isfinite(float(v))]

    if band:
        edge = [(px(i), y(v)) for i, v in drawn(band[1])]
        edge += [(px(i), y(v)) for i, v in reversed(drawn(band[0]))]
        out.append('<polygon class="band" points="' + " ".join(f"{a:.1f},{b:.1f}" for a, b in edge) + '"/>')
    for k, (name, values) in enumerate(series.items()):
        pts = [f"{px(i):.1f},{y(v):.1f}" for i, v in drawn(values)]
        colour = PALETTE[k % len(PALETTE)]
        out.append(f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="{" ".join(pts)}">')
        out.append(f"<title>{escape(name)}</title></polyline>")
    for i in sorted({0, len(x) // 2, len(x) - 1}):
        if 0 <= i < len(x):
            out.append(
                f'<text x="{px(i):.1f}" y="{H - BOTTOM + 16}" text-anchor="middle" class="tick">{escape(x[i])}</text>'
            )
    if len(series) > 1:
        for k, name in enumerate(series):
            out.append(
                f'<text x="{LEFT + 8 + 120 * k}" y="{TOP + 10}" fill="{PALETTE[k % len(PALETTE)]}" '
                f'class="legend">{escape(name)[:16]}</text>'
            )
    out.append("</svg>")
    return Markup("".join(out))


def spark(values: Sequence[float | None], *, title: str) -> Markup:
    """A tiny trend line for a headline number."""
    pts = _finite(values)
    if len(pts) < 2:
        return Markup("")
    lo, hi = min(pts), max(pts)
    span = (hi - lo) or 1.0
    n = len(pts) - 1
    coords = " ".join(f"{120 * i / n:.1f},{28 - 24 * (v - lo) / span:.1f}" for i, v in enumerate(pts))
    return Markup(
        f'<svg class="spark" viewBox="0 0 120 30" role="img" aria-label="{escape(title)}" '
        f'xmlns="http://www.w3.org/2000/svg"><title>{escape(title)}</title>'
        f'<polyline fill="none" stroke="{PALETTE[0]}" stroke-width="1.5" points="{coords}"/></svg>'
    )


def heat(share: float | None) -> str:
    """A background colour for a retention cell (white to blue by share)."""
    if share is None:
        return "transparent"
    s = max(0.0, min(1.0, float(share)))
    return f"rgba(37, 99, 235, {0.08 + 0.8 * s:.2f})"


def sankey(nodes: Sequence[str], links: Sequence[dict[str, Any]], *, title: str, backwards: bool = False) -> Markup:
    """A Sankey diagram of :func:`touchpoint.journeys.paths.paths`' ``sankey`` (nodes named ``"<step>. <label>"``).

    One column per step; a node's height is the people through it, a band's width the people who went
    from one node to the next. ``backwards`` (paths *to* an anchor) mirrors the columns so time runs
    left to right and the anchor is the last column.

    >>> svg = sankey(["0. A", "1. B", "1. (end)"], [{"source": 0, "target": 1, "value": 2},
    ...              {"source": 0, "target": 2, "value": 1}], title="Paths from A")
    >>> svg.count('class="flow"'), svg.count('class="node"'), 'aria-label="Paths from A"' in svg
    (2, 3, True)
    """
    width, height, node_w, gap, pad, label_w = 900, 360, 10, 10, 8, 160  # label_w: the last column's labels
    col = {i: _step_of(name) for i, name in enumerate(nodes)}
    labels = sorted({_step_label(name) for name in nodes})
    n_cols = max(col.values(), default=0) + 1
    if backwards:
        col = {i: n_cols - 1 - c for i, c in col.items()}
    drawn = [lk for lk in links if lk["source"] in col and lk["target"] in col and float(lk["value"]) > 0]
    left_of = {id(lk): (lk["target"], lk["source"]) if backwards else (lk["source"], lk["target"]) for lk in drawn}
    into: dict[int, float] = {}
    out_of: dict[int, float] = {}
    for lk in drawn:
        a, b = left_of[id(lk)]
        out_of[a] = out_of.get(a, 0.0) + float(lk["value"])
        into[b] = into.get(b, 0.0) + float(lk["value"])
    size = {k: max(into.get(k, 0.0), out_of.get(k, 0.0)) for k in set(into) | set(out_of)}
    columns: dict[int, list[int]] = {}
    for k in sorted(size, key=lambda k: (-size[k], str(nodes[k]))):
        columns.setdefault(col[k], []).append(k)
    busiest = max((len(v) for v in columns.values()), default=1)
    total = max((sum(size[k] for k in v) for v in columns.values()), default=1.0) or 1.0
    scale = (height - 2 * pad - gap * (busiest - 1)) / total
    step_x = (width - 2 * pad - node_w - label_w) / max(n_cols - 1, 1)
    x = {k: pad + col[k] * step_x for k in size}
    y: dict[int, float] = {}
    for keys in columns.values():
        top = float(pad)
        for k in keys:
            y[k] = top
            top += size[k] * scale + gap
    out = [
        f'<svg class="chart sankey" viewBox="0 0 {width} {height}" role="img" aria-label="{escape(title)}" '
        f'xmlns="http://www.w3.org/2000/svg"><title>{escape(title)}</title>'
    ]
    used_out: dict[int, float] = {}
    starts: dict[int, float] = {}
    for lk in sorted(drawn, key=lambda lk: (left_of[id(lk)][0], y[left_of[id(lk)][1]])):
        a, _ = left_of[id(lk)]
        starts[id(lk)] = y[a] + used_out.get(a, 0.0)
        used_out[a] = used_out.get(a, 0.0) + float(lk["value"]) * scale
    used_in: dict[int, float] = {}
    for lk in sorted(drawn, key=lambda lk: (left_of[id(lk)][1], y[left_of[id(lk)][0]])):
        a, b = left_of[id(lk)]
        w = float(lk["value"]) * scale
        ys, yt = starts[id(lk)], y[b] + used_in.get(b, 0.0)
        used_in[b] = used_in.get(b, 0.0) + w
        xs, xt = x[a] + node_w, x[b]
        mid = (xs + xt) / 2
        colour = PALETTE[labels.index(_step_label(nodes[int(lk["target"])])) % len(PALETTE)]
        text = f"{_step_label(nodes[lk['source']])} → {_step_label(nodes[lk['target']])}: {float(lk['value']):,.0f}"
        out.append(
            f'<path class="flow" fill="{colour}" d="M{xs:.1f},{ys:.1f} C{mid:.1f},{ys:.1f} {mid:.1f},{yt:.1f} '
            f"{xt:.1f},{yt:.1f} L{xt:.1f},{yt + w:.1f} C{mid:.1f},{yt + w:.1f} {mid:.1f},{ys + w:.1f} "
            f'{xs:.1f},{ys + w:.1f} Z"><title>{escape(text)}</title></path>'
        )
    for k in size:
        h = max(size[k] * scale, 1.0)
        room = label_w if col[k] == n_cols - 1 else step_x - node_w - 6  # labels stop before the next column
        label = _fit(f"{_step_label(nodes[k])} ({size[k]:,.0f})", int(room / 5.6))
        out.append(
            f'<rect class="node" x="{x[k]:.1f}" y="{y[k]:.1f}" width="{node_w}" height="{h:.1f}">'
            f"<title>{escape(_step_label(nodes[k]))}: {size[k]:,.0f}</title></rect>"
        )
        out.append(
            f'<text class="node-label" x="{x[k] + node_w + 4:.1f}" y="{y[k] + h / 2 + 4:.1f}">{escape(label)}</text>'
        )
    out.append("</svg>")
    return Markup("".join(out))


def _fit(text: str, chars: int) -> str:
    """``text`` cut to ``chars`` characters with an ellipsis (the node's ``<title>`` and the table say it all)."""
    return text if len(text) <= chars else text[: max(chars - 1, 1)] + "…"


def _step_of(name: str) -> int:
    head = str(name).split(". ", 1)[0]
    return int(head) if head.isdigit() else 0


def _step_label(name: str) -> str:
    """``"2. page:/cart"`` -> ``"page:/cart"`` (the step number is the column)."""
    head, _, rest = str(name).partition(". ")
    return rest if head.isdigit() and rest else str(name)
