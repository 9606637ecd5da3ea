"""Charts for journeys: funnel bars, a Sankey diagram of paths, a retention heatmap and an
attribution comparison. Each takes the dict the library returns and writes a PNG or SVG (by the
file's suffix). matplotlib is imported lazily with the Agg backend, so no display is needed.

>>> import tempfile, pathlib
>>> out = pathlib.Path(tempfile.mkdtemp()) / "funnel.svg"
>>> funnel_chart({"steps": [{"label": "a", "people": 10, "overall": 1.0},
...                         {"label": "b", "people": 4, "overall": 0.4}]}, out).exists()
True
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from touchpoint.errors import InvalidInput

FORMATS = (".png", ".svg")


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _save(fig: Any, path: str | Path) -> Path:
    p = Path(path)
    if p.suffix.lower() not in FORMATS:
        raise InvalidInput(f"cannot write a chart to {str(p)!r}", hint="name a .png or .svg file")
    p.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(p, dpi=120, bbox_inches="tight")
    _plt().close(fig)
    return p


def funnel_chart(result: dict[str, Any], path: str | Path, title: str = "Funnel") -> Path:
    """Horizontal bars: people per step, labelled with the share of step 1."""
    plt = _plt()
    steps = result["steps"]
    fig, ax = plt.subplots(figsize=(8, 0.6 * len(steps) + 1.2))
    labels = [f"{s.get('step', i + 1)}. {s['label']}" for i, s in enumerate(steps)]
    people = [s["people"] for s in steps]
    ax.barh(labels[::-1], people[::-1], color="#3b7dd8")
    top = max(people) if people and max(people) > 0 else 1
    for y, s in enumerate(steps[::-1]):
        share = s.get("overall")
        text = f"{s['people']:,}" + (f"  ({share:.1%})" if share is not None else "")
        ax.text(s["people"] + top * 0.01, y, text, va="center", fontsize=9)
    ax.set_xlim(0, top * 1.25)
    ax.set_xlabel("people")
    ax.set_title(title)
    return _save(fig, path)


def sankey_chart(result: dict[str, Any], path: str | Path, title: str | None = None, max_nodes: int = 40) -> Path:
    """An alluvial Sankey of ``paths()`` output: one column per step, bands sized by people."""
    plt = _plt()
    from matplotlib.patches import PathPatch
    from matplotlib.path import Path as MPath

    sk = result["sankey"]
    nodes: list[str] = sk["nodes"][:max_nodes]
    links = [lk for lk in sk["links"] if lk["source"] < len(nodes) and lk["target"] < len(nodes)]
    column = {i: int(name.split(".", 1)[0]) for i, name in enumerate(nodes)}
    out_sum: dict[int, float] = {}
    in_sum: dict[int, float] = {}
    for lk in links:
        out_sum[lk["source"]] = out_sum.get(lk["source"], 0.0) + lk["value"]
        in_sum[lk["target"]] = in_sum.get(lk["target"], 0.0) + lk["value"]
    size = {k: max(out_sum.get(k, 0.0), in_sum.get(k, 0.0)) for k in set(out_sum) | set(in_sum)}
    n_cols = max(column.values(), default=0) + 1
    backwards = result.get("direction") == "to"  # draw time left to right: the anchor goes last
    if backwards:
        column = {k: n_cols - 1 - c for k, c in column.items()}
    total = max((sum(v for k, v in size.items() if column[k] == c) for c in range(n_cols)), default=1.0) or 1.0
    gap = total * 0.04
    y0: dict[int, float] = {}
    for c in range(n_cols):
        y = 0.0
        for k in sorted((k for k in size if column[k] == c), key=lambda k: -size[k]):
            y0[k] = y
            y += size[k] + gap
    fig, ax = plt.subplots(figsize=(3 + 2.6 * n_cols, 6))
    width = 0.12
    out_used: dict[int, float] = {}
    in_used: dict[int, float] = {}
    cmap = plt.get_cmap("tab20")
    # stack each node's outgoing bands in the order of their targets (and incoming by source): no crossings
    out_at: dict[int, float] = {}
    for lk in sorted(links, key=lambda x: (x["source"], y0[x["target"]])):
        out_at[id(lk)] = y0[lk["source"]] + out_used.get(lk["source"], 0.0)
        out_used[lk["source"]] = out_used.get(lk["source"], 0.0) + lk["value"]
    for lk in sorted(links, key=lambda x: (x["target"], y0[x["source"]])):
        s, t, v = lk["source"], lk["target"], lk["value"]
        ys = out_at[id(lk)]
        yt = y0[t] + in_used.get(t, 0.0)
        in_used[t] = in_used.get(t, 0.0) + v
        xs, xt = (column[s], column[t] + width) if backwards else (column[s] + width, column[t])
        mid = (xs + xt) / 2
        verts = [
            (xs, ys),
            (mid, ys),
            (mid, yt),
            (xt, yt),
            (xt, yt + v),
            (mid, yt + v),
            (mid, ys + v),
            (xs, ys + v),
            (xs, ys),
        ]
        codes = [
            MPath.MOVETO,
            MPath.CURVE4,
            MPath.CURVE4,
            MPath.CURVE4,
            MPath.LINETO,
            MPath.CURVE4,
            MPath.CURVE4,
            MPath.CURVE4,
            MPath.CLOSEPOLY,
        ]
        ax.add_patch(PathPatch(MPath(verts, codes), facecolor=cmap(t % 20), alpha=0.45, lw=0))
    for k, h in size.items():
        ax.add_patch(plt.Rectangle((column[k], y0[k]), width, h, color="#333333"))
        label = nodes[k].split(". ", 1)[-1]
        ax.text(column[k] + width + 0.02, y0[k] + h / 2, f"{label} ({h:,.0f})", va="center", fontsize=8)
    ax.set_xlim(-0.1, n_cols + 0.3)
    ax.set_ylim(0, max((y0[k] + size[k] for k in size), default=1.0) * 1.02)
    ax.invert_yaxis()
    ax.axis("off")
    direction = result.get("direction", "from")
    ax.set_title(title or f"Paths {direction} {result.get('anchor', '')}")
    return _save(fig, path)


def retention_chart(result: dict[str, Any], path: str | Path, title: str | None = None) -> Path:
    """A heatmap: cohorts down, periods across, share retained in each cell."""
    plt = _plt()
    import numpy as np

    cohorts = result["cohorts"]
    if not cohorts:
        raise InvalidInput("there are no cohorts to draw", hint="check the period and that events exist")
    n = len(cohorts[0]["periods"])
    grid = np.full((len(cohorts), n), np.nan)
    for i, c in enumerate(cohorts):
        for cell in c["periods"]:
            if cell["share"] is not None:
                grid[i, cell["k"]] = cell["share"]
    fig, ax = plt.subplots(figsize=(1 + 0.7 * n, 1 + 0.4 * len(cohorts)))
    im = ax.imshow(grid, cmap="Blues", vmin=0, vmax=1, aspect="auto")
    for i in range(grid.shape[0]):
        for j in range(grid.shape[1]):
            if not np.isnan(grid[i, j]):
                ax.text(
                    j,
                    i,
                    f"{grid[i, j]:.0%}",
                    ha="center",
                    va="center",
                    fontsize=7,
                    color="white" if grid[i, j] > 0.6 else "black",
                )
    ax.set_xticks(range(n))
    ax.set_xticklabels([str(k) for k in range(n)])
    ax.set_yticks(range(len(cohorts)))
    ax.set_yticklabels([f"{c['cohort']} (n={c['size']:,})" for c in cohorts], fontsize=8)
    ax.set_xlabel(f"{result['period']}s since cohort start")
    ax.set_title(title or f"Retention by {result['cohort'].replace('_', ' ')} {result['period']}")
    fig.colorbar(im, ax=ax, fraction=0.03)
    return _save(fig, path)


def attribution_chart(
    comparison: dict[str, Any],
    path: str | Path,
    title: str = "Attribution by model",
    truth: dict[str, float] | None = None,
) -> Path:
    """Grouped bars: credited conversions per channel for each model (and the truth, when known)."""
    plt = _plt()
    import numpy as np

    models = list(comparison["models"])
    rows = comparison["channels"]
    channels = [r["channel"] for r in rows]
    series = {m: [r[m] for r in rows] for m in models}
    if truth is not None:
        series["truth"] = [truth.get(c, 0.0) for c in channels]
    x = np.arange(len(channels))
    width = 0.8 / max(len(series), 1)
    fig, ax = plt.subplots(figsize=(max(8, 1.2 * len(channels)), 4.5))
    cmap = plt.get_cmap("tab10")
    for i, (name, values) in enumerate(series.items()):
        ax.bar(
            x + i * width - 0.4 + width / 2,
            values,
            width,
            label=name,
            color="black" if name == "truth" else cmap(i % 10),
        )
    ax.set_xticks(x)
    ax.set_xticklabels(channels, rotation=30, ha="right")
    ax.set_ylabel("credited conversions")
    ax.set_title(title)
    ax.legend(fontsize=8, ncols=2)
    return _save(fig, path)
