"""Experiments: assignment, sufficient statistics, stats engines, SRM, corrections and a planner.

>>> from touchpoint.experiments import ArmStats, MetricStats, analyze
>>> stats = [MetricStats("purchase", "binomial", [ArmStats("control", 5000, 500, 500),
...                                               ArmStats("treatment", 5000, 600, 600)])]
>>> analyze(stats, control="control").status
'win'
"""

from touchpoint.experiments.analysis import AnalysisOptions, ExperimentResult, analyze, analyze_table
from touchpoint.experiments.engines import Prior
from touchpoint.experiments.srm import check_srm
from touchpoint.experiments.statistics import ArmStats, MetricStats

__all__ = [
    "AnalysisOptions",
    "ArmStats",
    "ExperimentResult",
    "MetricStats",
    "Prior",
    "analyze",
    "analyze_table",
    "check_srm",
]
