"""A chart of lift intervals: one row per metric and treatment, the point estimate and its interval.

matplotlib is imported here only, lazily, with the Agg backend (no screen needed). The format follows
the file name: ``.png`` or ``.svg`` (or ``.pdf``).

>>> from touchpoint.experiments import ArmStats, MetricStats, analyze
>>> r = analyze([MetricStats("m", "binomial", [ArmStats("a", 900, 90, 90), ArmStats("b", 900, 120, 120)])],
...             control="a")
>>> import tempfile, pathlib
>>> path = plot_lifts(r, pathlib.Path(tempfile.mkdtemp()) / "lift.svg")
>>> path.read_text()[:5]
'<?xml'
"""

from __future__ import annotations

from pathlib import Path

from touchpoint.errors import InvalidInput
from touchpoint.experiments.analysis import ExperimentResult

FORMATS = (".png", ".svg", ".pdf")
COLORS = {"better": "#1a7f37", "worse": "#cf222e", "none": "#57606a"}


def plot_lifts(result: ExperimentResult, path: str | Path, *, title: str | None = None) -> Path:
    """Draw every overall metric's lift interval per treatment into ``path``; return the path."""
    out = Path(path)
    if out.suffix.lower() not in FORMATS:
        raise InvalidInput(f"cannot draw {out.name!r}: unknown format", hint=f"end the file name in {FORMATS}")
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    rows = [(m, c) for m in result.metrics if m.dimension is None for c in m.comparisons]
    relative = result.options.relative
    scale = 100.0 if relative else 1.0
    fig, ax = plt.subplots(figsize=(8, 1.0 + 0.55 * max(len(rows), 1)), dpi=120)
    try:
        labels = []
        for i, (m, c) in enumerate(reversed(rows)):
            labels.append(f"{m.metric}\n{c.variant}" + (" (CUPED)" if m.cuped else ""))
            if c.estimate is None or c.ci_low is None or c.ci_high is None:
                ax.text(0, i, f"no estimate: {c.error}", va="center", ha="center", fontsize=8, color="#57606a")
                continue
            color = COLORS.get(c.direction, COLORS["none"])
            ax.plot([c.ci_low * scale, c.ci_high * scale], [i, i], color=color, linewidth=3, solid_capstyle="butt")
            ax.plot([c.estimate * scale], [i], "o", color=color, markersize=7)
            ax.annotate(
                f"{c.estimate * scale:+.1f}{'%' if relative else ''}",
                (c.estimate * scale, i),
                textcoords="offset points",
                xytext=(0, 7),
                ha="center",
                fontsize=8,
            )
        ax.axvline(0, color="#8c959f", linewidth=1, linestyle="--")
        ax.set_yticks(range(len(labels)), labels, fontsize=8)
        ax.set_ylim(-0.7, len(labels) - 0.3)
        level = f"{1 - result.options.alpha:.0%}"
        kind = "credible" if result.options.engine == "bayesian" else "confidence"
        ax.set_xlabel(
            f"{'relative lift (%)' if relative else 'absolute lift'} vs {result.control}, "
            f"{level} {kind} interval ({result.options.engine})"
        )
        srm = "" if result.srm.ok else "  [SRM FAILED: do not trust]"
        ax.set_title(title or f"{result.key or 'experiment'}: {result.status}{srm}", fontsize=10)
        ax.grid(axis="x", color="#eaeef2")
        fig.tight_layout()
        out.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(out)
    finally:
        plt.close(fig)
    return out
