"""Satisfaction (CSAT) and, only when asked, the Net Promoter Score, from survey answers.

Satisfaction is the mean score and the top-box share (answers at the top of their scale), each with
its interval, overall, by segment (an answer property, ``--by``) and by quarter. Answers on
different scales are put on the most common one (score x S / scale_max) and the method says so.

NPS is not a headline KPI: Keiningham, Cooil, Andreassen and Aksoy (2007) could not replicate the
claimed link between NPS and firm growth, and found it no better a predictor than satisfaction. It is
computed when asked, with that reason beside it.

>>> import numpy as np
>>> from touchpoint.plan.surveys import Answers
>>> a = Answers("csat", np.array(["a", "b", "c"], dtype=object), np.array(["2026-07-01"] * 3, "datetime64[us]"),
...     np.array([5.0, 4.0, 5.0]), np.array([5.0, 5.0, 5.0]), np.array([""] * 3, dtype=object),
...     np.array(["(none)"] * 3, dtype=object))
>>> s = summarise(a, level=0.9)
>>> round(s["value"], 3), round(s["top_box"]["value"], 3), s["scale_max"]
(4.667, 0.667, 5.0)
"""

from __future__ import annotations

from typing import Any

import numpy as np

from touchpoint.plan import stats
from touchpoint.plan.surveys import Answers, quarter_of

NPS_CAVEAT = (
    "NPS is not a headline KPI here: Keiningham, Cooil, Andreassen and Aksoy (2007, 'A Longitudinal "
    "Examination of Net Promoter and Firm Revenue Growth', Journal of Marketing 71(3)) could not replicate "
    "its claimed link to revenue growth and found it no better a predictor than customer satisfaction. "
    "It also throws information away (scores 0-6 all count the same) and is noisier than a mean score."
)


def _common_scale(a: Answers) -> float:
    values, counts = np.unique(a.scale_max, return_counts=True)
    return float(values[np.argmax(counts)])


def _one(a: Answers, scale: float, level: float) -> dict[str, Any]:
    y = a.score * scale / a.scale_max
    out = stats.mean_interval(y, a.customer_id, level=level)
    out["top_box"] = stats.share_interval(a.score >= a.scale_max, a.customer_id, level=level)
    return out


def summarise(a: Answers, *, level: float = 0.9, by_quarter: bool = True) -> dict[str, Any]:
    """Mean and top-box share with intervals; by group and by quarter when there are answers."""
    if len(a) == 0:
        return {
            "value": None,
            "low": None,
            "high": None,
            "n": 0,
            "method": "no usable satisfaction answers",
            "hint": 'send track("Survey Responded", {"survey": "csat", "score": 4, "scale_max": 5})',
            "skipped": a.skipped,
        }
    scale = _common_scale(a)
    out = _one(a, scale, level)
    mixed = bool(np.any(a.scale_max != scale))
    out["scale_max"] = scale
    out["method"] = (
        f"mean score on a 0-{scale:g} scale"
        + (f" (answers on other scales rescaled to 0-{scale:g})" if mixed else "")
        + f"; {out['method']}"
    )
    out["top_box"]["definition"] = "share of answers at the top of their scale (e.g. 5 of 5)"
    out["skipped"] = a.skipped
    groups = sorted(set(a.group.tolist()))
    if groups != ["(none)"]:
        out["by_segment"] = [{"segment": g, **_strip(_one(a.subset(a.group == g), scale, level))} for g in groups]
    if by_quarter:
        q = quarter_of(a.ts)
        out["by_quarter"] = [
            {"quarter": k, **_strip(_one(a.subset(q == k), scale, level))} for k in sorted(set(q.tolist()))
        ]
    return out


def _strip(d: dict[str, Any]) -> dict[str, Any]:
    """A group's figures without the repeated method text."""
    d = {k: v for k, v in d.items() if k != "method"}
    d["top_box"] = {k: v for k, v in d["top_box"].items() if k not in ("method",)}
    return d


def nps(a: Answers, *, level: float = 0.9) -> dict[str, Any]:
    """NPS of the answers on a 0-10 scale (others are skipped and counted), with :data:`NPS_CAVEAT`."""
    ten = a.scale_max == 10
    out = stats.nps_interval(a.score[ten], level=level)
    out["skipped"] = dict(a.skipped)
    if (~ten).any():
        out["skipped"]["scale_max is not 10 (NPS is defined on 0-10)"] = int((~ten).sum())
    out["why_not_a_headline_kpi"] = NPS_CAVEAT
    return out
