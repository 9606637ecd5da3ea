"""Sample-ratio mismatch: is the observed split of units across arms the one that was designed?

A split that is off (say 55/45 where 50/50 was planned) means assignment or tracking is broken, and
no lift computed from it can be trusted. We use Pearson's chi-square goodness-of-fit test, as
GrowthBook, Eppo and Statsig do, and refuse a verdict when its p-value is below ``threshold``
(0.001 by default, so a healthy experiment is flagged only once in a thousand analyses).

>>> check_srm([5000, 5000], [0.5, 0.5]).ok
True
>>> check_srm([5500, 4500], [0.5, 0.5]).ok
False
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from touchpoint.errors import InvalidInput

DEFAULT_SRM_THRESHOLD = 0.001


@dataclass(frozen=True)
class SrmResult:
    """The chi-square statistic, its p-value, and observed versus expected units per arm."""

    p_value: float
    chi2: float
    observed: list[float]
    expected: list[float]
    threshold: float

    @property
    def ok(self) -> bool:
        return self.p_value >= self.threshold

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "p_value": self.p_value,
            "chi2": self.chi2,
            "observed": self.observed,
            "expected": self.expected,
            "threshold": self.threshold,
        }

    def describe(self) -> str:
        shares = ", ".join(
            f"{o / max(sum(self.observed), 1):.1%} (expected {e / max(sum(self.expected), 1):.1%})"
            for o, e in zip(self.observed, self.expected, strict=True)
        )
        verdict = "passed" if self.ok else "FAILED"
        return f"sample-ratio check {verdict}: p = {self.p_value:.3g}; split {shares}"


def check_srm(
    units: Sequence[float], weights: Sequence[float], *, threshold: float = DEFAULT_SRM_THRESHOLD
) -> SrmResult:
    """Chi-square test of ``units`` per arm against the designed ``weights`` (any scale).

    Arms with weight 0 are left out of the statistic (as in gbstats); the degrees of freedom are
    the number of arms minus one. With no units at all the p-value is 1.
    """
    obs = np.asarray(units, dtype=float)
    w = np.asarray(weights, dtype=float)
    if obs.shape != w.shape or obs.ndim != 1:
        raise InvalidInput(
            f"SRM check: {len(obs)} unit counts but {len(w)} weights",
            hint="give one weight per arm, in the same order",
        )
    if (w < 0).any() or w.sum() <= 0:
        raise InvalidInput(f"SRM check: weights {list(w)} must be >= 0 and not all 0", hint="e.g. [0.5, 0.5]")
    total = obs.sum()
    expected = w / w.sum() * total
    if total <= 0:
        return SrmResult(1.0, 0.0, obs.tolist(), expected.tolist(), threshold)
    live = w > 0
    chi2 = float((((obs - expected) ** 2)[live] / expected[live]).sum())
    from scipy import stats as st  # at first use: scipy.stats takes about 0.7 s to import

    p = float(st.chi2.sf(chi2, len(obs) - 1))
    return SrmResult(p, chi2, obs.tolist(), expected.tolist(), threshold)
