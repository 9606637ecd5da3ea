"""Results of a stored experiment: sums computed in the warehouse, then analysed.

>>> from datetime import datetime
>>> from touchpoint.warehouse import Warehouse
>>> from touchpoint.experiments.definitions import Experiment, create_experiment
>>> from touchpoint.experiments.assignment import record_exposures
>>> from touchpoint.experiments.metrics import Metric
>>> wh = Warehouse.open("duckdb://:memory:")
>>> _ = create_experiment(wh, Experiment("cta", metrics=[Metric("signup", event="Signed Up")],
...                                       start_at=datetime(2026, 1, 1)))
>>> _ = record_exposures(wh, "cta", [(f"u{i}", ["control", "treatment"][i % 2], datetime(2026, 1, 1))
...                                  for i in range(100)])
>>> analyze_experiment(wh, "cta").srm.ok
True
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from touchpoint.errors import InvalidInput
from touchpoint.experiments.analysis import AnalysisOptions, ExperimentResult, analyze
from touchpoint.experiments.definitions import get_experiment
from touchpoint.experiments.metrics import Metric, compute_stats
from touchpoint.warehouse import Warehouse


def analyze_experiment(
    wh: Warehouse,
    key: str,
    *,
    options: AnalysisOptions | None = None,
    metrics: list[Metric] | None = None,
    end: datetime | None = None,
    dimension: str | None = None,
) -> ExperimentResult:
    """Analyse experiment ``key`` from the event log (its own metrics unless ``metrics`` is given).

    Exposures count from the experiment's start to ``end`` (default: its end, or now). With CUPED
    on, each metric's pre-exposure value is the covariate.
    """
    opts = options or AnalysisOptions()
    exp = get_experiment(wh, key)
    chosen = metrics or exp.metrics
    if not chosen:
        raise InvalidInput(
            f"experiment {key!r} has no metrics",
            hint="define metrics at create time (--metric 'purchase:binomial:Order Completed')",
        )
    stop = end or exp.end_at
    stats, summary = compute_stats(
        wh,
        exp.key,
        chosen,
        unit=exp.unit,
        start=exp.start_at,
        end=stop,
        covariates=opts.cuped,
        dimension=dimension,
    )
    present = set(summary["units"])
    unknown = sorted(present - set(exp.variants))
    weights = exp.weight_map
    if exp.control not in present:
        raise InvalidInput(
            f"experiment {key!r}: the control arm {exp.control!r} has no exposures",
            hint=f"arms seen in the events: {sorted(present)}",
        )
    for ms in stats:  # arms in the design order; arms never seen get zero sums
        from touchpoint.experiments.statistics import ArmStats

        have = {a.variant: a for a in ms.arms if a.variant in weights}
        ms.arms = [have.get(v, ArmStats(v, 0.0, 0.0)) for v in exp.variants]
    units = {v: float(summary["units"].get(v, 0)) for v in exp.variants}
    result = analyze(
        stats,
        control=exp.control or exp.variants[0],
        weights=weights,
        units=units,
        options=replace(opts),
        key=exp.key,
    )
    if unknown:
        result.notes.append(f"exposures to arms not in the design were ignored: {unknown}")
    if summary["multiple_exposures"]:
        result.notes.append(f"{summary['multiple_exposures']} unit(s) saw more than one arm and were left out")
    result.extra = {
        "experiment": {
            "key": exp.key,
            "name": exp.name,
            "kind": exp.kind,
            "start_at": exp.start_at,
            "end_at": stop,
            "weights": weights,
        },
        "exposures": summary,
    }
    return result
