"""The map drawn: JSON, Mermaid, SVG and PNG, all offline.

SVG is drawn here with a layered layout (one column per stage: sources, raw tables, jobs and models,
derived tables, actions, destinations; nodes ordered within a column to keep edges short), so it needs
no Graphviz; PNG draws the same layout with matplotlib (a dependency already). Tables holding personal
data have a red border, tables nobody has classified a dashed one.

>>> from touchpoint.datamap.build import build
>>> text = render(build(), "mermaid")
>>> text.splitlines()[0], 'table_events[("events' in text
('flowchart LR', True)
>>> render(build(), "svg").startswith("<svg")
True
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from html import escape
from typing import Any

from touchpoint.datamap.build import COLUMNS, DataMap, Node
from touchpoint.errors import InvalidInput

WIDTH, HEIGHT, GAP_X, GAP_Y, MARGIN, HEADER = 250, 46, 110, 12, 20, 34
FILL = {
    "source": "#e8f0fe",
    "table": "#ffffff",
    "job": "#fef7e0",
    "model": "#fde7d9",
    "action": "#e6f4ea",
    "destination": "#f3e8fd",
}
PERSONAL, UNKNOWN, PLAIN = "#c5221f", "#9aa0a6", "#5f6368"


def subtitle(node: Node) -> str:
    """The second line of a node's box: personal data and retention of a table, cadence of a job, ..."""
    info = node.info
    if node.kind == "table":
        p = info.get("personal") or {}
        status = p.get("status")
        if status == "personal":
            cols = p.get("columns") or []
            text = "personal: " + (", ".join(cols[:3]) + (", ..." if len(cols) > 3 else "") if cols else "yes")
        elif status == "none":
            text = "no personal data"
        else:
            text = "personal data: unclassified"
        # retention first: the box clips its subtitle, and a table's personal columns can be many
        return f"kept {info['retention']} · {text}" if info.get("retention") else text
    if node.kind == "job":
        return f"{info.get('cadence', '')} · {info.get('purpose', '')}"
    if node.kind == "model":
        return f"model · {info.get('purpose', '')}"
    if node.kind == "source":
        return f"{info.get('source_kind', '')}" + (" · personal data" if info.get("personal") else "")
    if node.kind == "destination":
        return f"purpose: {str(info.get('purposes', '')).split(' (')[0]}"
    if node.kind == "action":
        return ", ".join(f"{s['channel']}:{s['purpose']}" for s in info.get("steps", [])) or "no steps"
    return ""


def _border(node: Node) -> tuple[str, float, str]:
    """Stroke colour, width and dash pattern."""
    if node.kind != "table":
        return PLAIN, 1.0, ""
    status = (node.info.get("personal") or {}).get("status")
    if status == "personal":
        return PERSONAL, 2.5, ""
    if status == "unknown":
        return UNKNOWN, 1.5, "5,3"
    return PLAIN, 1.0, ""


# -- layout --------------------------------------------------------------------------------------------
@dataclass
class Box:
    node: Node
    x: float
    y: float


def layout(m: DataMap) -> tuple[dict[str, Box], float, float]:
    """Boxes by node id, and the picture's width and height. Columns left to right; within a column,
    nodes are ordered by the mean position of their neighbours (two sweeps), so edges stay short."""
    columns: list[list[Node]] = [[] for _ in COLUMNS]
    for n in m.nodes:
        columns[n.column].append(n)
    neighbours: dict[str, list[str]] = {}
    for e in m.edges:
        neighbours.setdefault(e.source, []).append(e.target)
        neighbours.setdefault(e.target, []).append(e.source)
    rank = {n.id: float(i) for col in columns for i, n in enumerate(col)}
    for _ in range(2):
        for col in (*columns[1:], *reversed(columns[:-1])):

            def key(n: Node) -> float:
                near = [rank[o] for o in neighbours.get(n.id, []) if o in rank]
                return sum(near) / len(near) if near else rank[n.id]

            col.sort(key=key)
            for i, n in enumerate(col):
                rank[n.id] = float(i)
    tallest = max((len(c) for c in columns), default=1)
    height = MARGIN * 2 + HEADER + tallest * (HEIGHT + GAP_Y)
    boxes: dict[str, Box] = {}
    for c, col in enumerate(columns):
        x = MARGIN + c * (WIDTH + GAP_X)
        top = MARGIN + HEADER + (tallest - len(col)) * (HEIGHT + GAP_Y) / 2
        for i, n in enumerate(col):
            boxes[n.id] = Box(n, x, top + i * (HEIGHT + GAP_Y))
    width = MARGIN * 2 + len(COLUMNS) * WIDTH + (len(COLUMNS) - 1) * GAP_X
    return boxes, width, height


def _curve(a: Box, b: Box) -> tuple[float, float, float, float, float, float, float, float]:
    """A cubic Bézier from ``a`` to ``b``: left to right between columns; right to left when ``b`` is in an
    earlier column (a derived table read by a job); a bulge on the right within one column (job -> model)."""
    y1, y2 = a.y + HEIGHT / 2, b.y + HEIGHT / 2
    if b.x > a.x:
        x1, x2 = a.x + WIDTH, b.x
        mid = (x2 - x1) / 2
        return x1, y1, x1 + mid, y1, x2 - mid, y2, x2, y2
    if b.x < a.x:
        x1, x2 = a.x, b.x + WIDTH
        mid = (x1 - x2) / 2
        return x1, y1, x1 - mid, y1, x2 + mid, y2, x2, y2
    x1 = x2 = a.x + WIDTH
    bulge = 30 + min(abs(y2 - y1) / 4, 40)
    return x1, y1, x1 + bulge, y1, x2 + bulge, y2, x2, y2


# -- formats -------------------------------------------------------------------------------------------
def to_svg(m: DataMap) -> str:
    boxes, width, height = layout(m)
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height:.0f}" '
        f'viewBox="0 0 {width:.0f} {height:.0f}" font-family="sans-serif" role="img" class="datamap" '
        'aria-label="touchpoint data-flow map: sources, tables, jobs, models and destinations">',
        "<title>touchpoint data-flow map</title>",
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" '
        'orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z" fill="#80868b"/></marker></defs>',
    ]
    for c, title in enumerate(COLUMNS):
        x = MARGIN + c * (WIDTH + GAP_X) + WIDTH / 2
        out.append(
            f'<text x="{x:.0f}" y="{MARGIN + 14}" text-anchor="middle" font-size="14" font-weight="bold">{title}</text>'
        )
    for e in m.edges:
        if e.source not in boxes or e.target not in boxes:
            continue
        x1, y1, c1x, c1y, c2x, c2y, x2, y2 = _curve(boxes[e.source], boxes[e.target])
        colour = PERSONAL if e.kind == "sends" else "#9aa0a6"
        tip = escape(f"{e.source} {e.kind} {e.target}" + (f" ({e.label})" if e.label else ""))
        out.append(
            f'<path class="edge edge-{e.kind}" data-from="{escape(e.source)}" data-to="{escape(e.target)}" '
            f'd="M{x1:.1f},{y1:.1f} C{c1x:.1f},{c1y:.1f} {c2x:.1f},{c2y:.1f} {x2:.1f},{y2:.1f}" fill="none" '
            f'stroke="{colour}" stroke-width="1" opacity="0.7" marker-end="url(#arrow)"><title>{tip}</title></path>'
        )
    for box in boxes.values():
        n = box.node
        stroke, sw, dash = _border(n)
        details = escape(json.dumps({k: v for k, v in n.to_dict().items() if k not in ("id", "column")}, default=str))
        out.append(
            f'<g class="node node-{n.kind}" id="{escape(n.id)}" data-id="{escape(n.id)}">'
            f"<title>{escape(n.label)}: {escape(n.doc)}\n{details}</title>"
            f'<rect x="{box.x:.1f}" y="{box.y:.1f}" width="{WIDTH}" height="{HEIGHT}" rx="6" '
            f'fill="{FILL.get(n.kind, "#fff")}" stroke="{stroke}" stroke-width="{sw}"'
            + (f' stroke-dasharray="{dash}"' if dash else "")
            + "/>"
            f'<text x="{box.x + 8:.1f}" y="{box.y + 18:.1f}" font-size="13" font-weight="bold">'
            f"{escape(_clip(n.label, 32))}</text>"
            f'<text x="{box.x + 8:.1f}" y="{box.y + 36:.1f}" font-size="10.5" fill="#3c4043">'
            f"{escape(_clip(subtitle(n), 44))}</text>"
            "</g>"
        )
    out.append("</svg>")
    return "\n".join(out)


def _clip(text: str, size: int) -> str:
    return text if len(text) <= size else text[: size - 1] + "…"


def mermaid_id(node_id: str) -> str:
    """A Mermaid-safe node id: ``table:events`` -> ``table_events``."""
    return re.sub(r"[^A-Za-z0-9_]", "_", node_id)


def _mermaid_text(text: str) -> str:
    return text.replace('"', "#quot;").replace("<", "#lt;").replace(">", "#gt;")


_SHAPES = {
    "source": ('["', '"]'),
    "table": ('[("', '")]'),
    "job": ('("', '")'),
    "model": ('{{"', '"}}'),
    "action": ('[/"', '"/]'),
    "destination": ('>"', '"]'),
}


def to_mermaid(m: DataMap) -> str:
    lines = ["flowchart LR"]
    for c, title in enumerate(COLUMNS):
        members = [n for n in m.nodes if n.column == c]
        if not members:
            continue
        lines.append(f'  subgraph col{c}["{title}"]')
        for n in members:
            left, right = _SHAPES[n.kind]
            label = _mermaid_text(n.label) + "<br/><small>" + _mermaid_text(subtitle(n)) + "</small>"
            lines.append(f"    {mermaid_id(n.id)}{left}{label}{right}")
        lines.append("  end")
    for e in m.edges:
        label = e.kind + (f": {e.label}" if e.label else "")
        lines.append(f'  {mermaid_id(e.source)} -->|"{_mermaid_text(label)}"| {mermaid_id(e.target)}')
    lines.append(f"  classDef personal stroke:{PERSONAL},stroke-width:3px")
    lines.append(f"  classDef unclassified stroke:{UNKNOWN},stroke-dasharray:5 3")
    for cls, status in (("personal", "personal"), ("unclassified", "unknown")):
        ids = [
            mermaid_id(n.id)
            for n in m.nodes
            if n.kind == "table" and (n.info.get("personal") or {}).get("status") == status
        ]
        if ids:
            lines.append(f"  class {','.join(ids)} {cls}")
    return "\n".join(lines) + "\n"


def to_png(m: DataMap, dpi: int = 100) -> bytes:
    """The SVG's layout drawn with matplotlib's Agg canvas (no display, no download)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.patches import FancyArrowPatch, FancyBboxPatch
    from matplotlib.path import Path as MPath

    boxes, width, height = layout(m)
    fig = Figure(figsize=(width / dpi, height / dpi), dpi=dpi)
    FigureCanvasAgg(fig)
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(0, width)
    ax.set_ylim(height, 0)
    ax.axis("off")
    for c, title in enumerate(COLUMNS):
        x = MARGIN + c * (WIDTH + GAP_X) + WIDTH / 2
        ax.text(x, MARGIN + 14, title, ha="center", va="center", fontsize=11, fontweight="bold")
    for e in m.edges:
        if e.source in boxes and e.target in boxes:
            x1, y1, c1x, c1y, c2x, c2y, x2, y2 = _curve(boxes[e.source], boxes[e.target])
            path = MPath(
                [(x1, y1), (c1x, c1y), (c2x, c2y), (x2, y2)], [MPath.MOVETO, MPath.CURVE4, MPath.CURVE4, MPath.CURVE4]
            )
            colour = PERSONAL if e.kind == "sends" else "#9aa0a6"
            ax.add_patch(
                FancyArrowPatch(path=path, arrowstyle="-|>", mutation_scale=8, color=colour, linewidth=0.8, alpha=0.7)
            )
    for box in boxes.values():
        n = box.node
        stroke, sw, dash = _border(n)
        ax.add_patch(
            FancyBboxPatch(
                (box.x, box.y),
                WIDTH,
                HEIGHT,
                boxstyle="round,pad=0,rounding_size=6",
                facecolor=FILL.get(n.kind, "#fff"),
                edgecolor=stroke,
                linewidth=sw,
                linestyle="--" if dash else "-",
            )
        )
        ax.text(box.x + 8, box.y + 15, _clip(n.label, 32), fontsize=9, fontweight="bold", va="center")
        ax.text(box.x + 8, box.y + 33, _clip(subtitle(n), 44), fontsize=7.5, color="#3c4043", va="center")
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()


#: The formats ``touchpoint map --format`` takes, each with its renderer.
RENDERERS: dict[str, Callable[[DataMap], Any]] = {
    "json": DataMap.to_dict,
    "mermaid": to_mermaid,
    "svg": to_svg,
    "png": to_png,
}


def render(m: DataMap, fmt: str) -> Any:
    """The map in ``fmt``: a dict (json), text (mermaid, svg) or bytes (png)."""
    if fmt not in RENDERERS:
        raise InvalidInput(f"map format {fmt!r} is not known", hint=f"use one of {', '.join(FORMATS)}")
    return RENDERERS[fmt](m)


FORMATS = tuple(RENDERERS)
