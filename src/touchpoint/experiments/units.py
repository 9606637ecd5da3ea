"""Analysing a file with one row per unit (e.g. a randomized email campaign exported from another tool).

The file (CSV or Parquet) has an arm column, one numeric column per metric (0/1 columns are treated
as conversions, others as means) and optionally a pre-period covariate column for CUPED. Sums are
taken in Arrow, then analysed exactly as warehouse experiments are.

>>> import pyarrow as pa
>>> t = pa.table({"arm": ["a", "b"] * 500, "clicked": [0, 1, 0, 0] * 250})
>>> stats, units = stats_from_table(t, arm_column="arm", metrics=["clicked"])
>>> stats[0].kind, units
('binomial', {'a': 500.0, 'b': 500.0})
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from touchpoint.errors import InvalidInput, NotFound
from touchpoint.experiments.analysis import AnalysisOptions, ExperimentResult, analyze
from touchpoint.experiments.statistics import MetricStats, stats_from_units


def read_units(path: str | Path) -> pa.Table:
    """Read a CSV or Parquet file of units."""
    p = Path(path)
    if not p.exists():
        raise NotFound(f"no file {str(p)!r}", hint="check the path")
    try:
        if p.suffix.lower() in (".parquet", ".pq"):
            import pyarrow.parquet as pq

            return pq.read_table(p)
        import pyarrow.csv as pcsv

        return pcsv.read_csv(p)
    except (pa.ArrowInvalid, OSError) as exc:
        raise InvalidInput(f"cannot read {str(p)!r}: {exc}", hint="give a CSV with a header row, or Parquet") from None


def _numeric(t: pa.Table, column: str, role: str) -> np.ndarray:
    if column not in t.column_names:
        raise InvalidInput(f"the file has no column {column!r} ({role})", hint=f"columns: {', '.join(t.column_names)}")
    col = t.column(column)
    if pa.types.is_boolean(col.type):
        col = pc.cast(col, pa.float64())
    if not (pa.types.is_integer(col.type) or pa.types.is_floating(col.type) or pa.types.is_decimal(col.type)):
        raise InvalidInput(
            f"column {column!r} ({role}) is {col.type}, not numeric",
            hint="metric and covariate columns hold numbers",
        )
    values = np.asarray(pc.cast(col, pa.float64()).to_numpy(zero_copy_only=False), dtype=float)
    if np.isnan(values).any():
        bad = int(np.isnan(values).sum())
        raise InvalidInput(
            f"column {column!r} ({role}) has {bad} empty value(s)", hint="fill them (e.g. 0) or drop the rows"
        )
    return values


def stats_from_table(
    t: pa.Table, *, arm_column: str, metrics: list[str], covariate: str | None = None
) -> tuple[list[MetricStats], dict[str, float]]:
    """Per-arm sums of each metric column (and the covariate) of a per-unit table."""
    if arm_column not in t.column_names:
        raise InvalidInput(f"the file has no arm column {arm_column!r}", hint=f"columns: {', '.join(t.column_names)}")
    if not metrics:
        raise InvalidInput("no metric column given", hint="pass --metric COLUMN (repeatable)")
    arms = np.asarray(pc.cast(t.column(arm_column), pa.string()).to_pylist(), dtype=object)
    if any(a is None for a in arms):
        raise InvalidInput(f"arm column {arm_column!r} has empty values", hint="every unit needs its arm")
    names = sorted(set(arms.tolist()))
    x = _numeric(t, covariate, "covariate") if covariate else None
    out = []
    for m in metrics:
        y = _numeric(t, m, "metric")
        kind = "binomial" if np.isin(y, (0.0, 1.0)).all() else "mean"
        arm_stats = [stats_from_units(a, y[arms == a], covariate=None if x is None else x[arms == a]) for a in names]
        out.append(MetricStats(m, kind, arm_stats, has_covariate=x is not None))  # type: ignore[arg-type]
    units = {a: float((arms == a).sum()) for a in names}
    return out, units


def analyze_file(
    path: str | Path,
    *,
    arm_column: str,
    control: str,
    metrics: list[str],
    covariate: str | None = None,
    weights: dict[str, float] | None = None,
    options: AnalysisOptions | None = None,
) -> ExperimentResult:
    """Analyse a per-unit file; ``covariate`` turns CUPED on unless ``options`` says otherwise."""
    table = read_units(path)
    stats, units = stats_from_table(table, arm_column=arm_column, metrics=metrics, covariate=covariate)
    opts = options or AnalysisOptions(cuped=covariate is not None)
    result = analyze(stats, control=control, weights=weights, units=units, options=opts, key=Path(path).name)
    result.extra = {"file": str(path), "units": units}
    return result
