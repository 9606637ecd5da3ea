"""Customer journeys: sessions, channels, funnels, paths, retention and attribution.

Everything that touches events is an Ibis expression that runs in the warehouse; attribution
models fit on one row per journey (or per distinct path) pulled from it.

>>> from touchpoint.journeys import PathData, attribute
>>> data = PathData.from_lists([["email", "paid_search"], ["paid_search"]], conversions=[1, 0], nulls=[0, 1])
>>> attribute(data, "markov").to_dict()["diagnostics"]["p_conversion"]
0.5
"""

from touchpoint.collect.channels import DEFAULT_RULES, ChannelRule, channel_expr, classify, rules_from
from touchpoint.journeys.attribution import CAVEAT, MODELS, AttributionResult, attribute, compare
from touchpoint.journeys.funnels import funnel
from touchpoint.journeys.markov import markov
from touchpoint.journeys.pathdata import PathData, read_path_file
from touchpoint.journeys.paths import paths
from touchpoint.journeys.retention import retention
from touchpoint.journeys.romi import romi, romi_table
from touchpoint.journeys.sessions import session_table, sessionize, sessions
from touchpoint.journeys.shapley import shapley
from touchpoint.journeys.touches import journeys

__all__ = [
    "CAVEAT",
    "DEFAULT_RULES",
    "MODELS",
    "AttributionResult",
    "ChannelRule",
    "PathData",
    "attribute",
    "channel_expr",
    "classify",
    "compare",
    "funnel",
    "journeys",
    "markov",
    "paths",
    "read_path_file",
    "retention",
    "romi",
    "romi_table",
    "rules_from",
    "session_table",
    "sessionize",
    "sessions",
    "shapley",
]
