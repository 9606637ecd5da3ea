"""Relative attractiveness: how customers rate us against the alternatives they name, and whether
that predicts who stays and what they are worth.

Answers rate one brand each, on a 0..scale_max scale (``{"survey": "attractiveness", "brand": "Acme",
"score": 7, "scale_max": 10}``); our brand is the ``brand_name`` setting (matched ignoring case).
Scores are divided by their ``scale_max`` first, so answers on different scales can be pooled.

The index is mean(our rating) / mean(the alternatives' rating) over the respondents who rated us
and at least one alternative (a respondent's alternatives' rating is the mean over the brands they
rated), so 1.0 means "as attractive as the alternatives". It is a ratio of two correlated means of
the same people: Fieller's interval (see :func:`touchpoint.plan.stats.fieller_ratio`) covers it in
small samples and says "unbounded" instead of inventing precision. Its relation to retention and
CLV is the rank correlation, per respondent, of (our rating - the alternatives') with P(alive) and
CLV from the latest predictions, reported with its interval and a verdict in words, even when weak.

>>> import numpy as np
>>> from touchpoint.plan.surveys import Answers
>>> ids = np.array(["a", "a", "b", "b"], dtype=object)
>>> a = Answers("attractiveness", ids, np.array(["2026-07-01"] * 4, "datetime64[us]"),
...     np.array([8.0, 6.0, 9.0, 6.0]), np.full(4, 10.0), np.array(["Acme", "Globex"] * 2, dtype=object),
...     np.array(["(none)"] * 4, dtype=object))
>>> r = index(a, "acme")
>>> round(r["value"], 3), r["n"]
(1.417, 2)
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import numpy as np

from touchpoint.plan import stats
from touchpoint.plan.surveys import Answers

MIN_RESPONDENTS = 30  # below this, the figure is shown as indicative (the Fieller interval still holds)


def _ratings(a: Answers) -> dict[str, dict[str, float]]:
    """respondent -> brand (lower case) -> mean rating on 0..1."""
    sums: dict[tuple[str, str], list[float]] = defaultdict(lambda: [0.0, 0.0])
    for cust, brand, score, smax in zip(a.customer_id, a.brand, a.score, a.scale_max, strict=True):
        cell = sums[(str(cust), str(brand).lower())]
        cell[0] += float(score) / float(smax)
        cell[1] += 1.0
    out: dict[str, dict[str, float]] = defaultdict(dict)
    for (cust, brand), (total, count) in sums.items():
        out[cust][brand] = total / count
    return out


def paired(a: Answers, brand: str, against: str | None = None) -> tuple[list[str], np.ndarray, np.ndarray]:
    """(respondents, our rating, alternatives' rating) for respondents who rated both; ``against``
    limits the alternatives to one brand."""
    ours = brand.strip().lower()
    ids: list[str] = []
    us: list[float] = []
    them: list[float] = []
    for cust, by_brand in _ratings(a).items():
        if ours not in by_brand:
            continue
        alts = [v for b, v in by_brand.items() if b != ours and (against is None or b == against)]
        if alts:
            ids.append(cust)
            us.append(by_brand[ours])
            them.append(float(np.mean(alts)))
    return ids, np.array(us), np.array(them)


def index(a: Answers, brand: str, *, level: float = 0.9) -> dict[str, Any]:
    """The relative attractiveness index with Fieller's interval, overall and against each alternative."""
    ours = brand.strip().lower()
    _, us, them = paired(a, brand)
    out = stats.fieller_ratio(us, them, level=level)
    brands_seen = sorted({str(b) for b in a.brand if str(b).lower() != ours}, key=str.lower)
    out["brand"] = brand
    out["alternatives"] = brands_seen
    out["our_mean_rating"] = float(us.mean()) if us.size else None
    out["alternatives_mean_rating"] = float(them.mean()) if them.size else None
    out["rating_scale"] = "scores divided by their scale_max (0 = lowest, 1 = highest)"
    out["skipped"] = a.skipped
    warnings = []
    if not any(str(b).lower() == ours for b in a.brand):
        warnings.append(
            f"no answer rates our brand {brand!r}; the brands rated are {brands_seen[:10]}: "
            "check the brand_name setting"
        )
    if 0 < out["n"] < MIN_RESPONDENTS:
        warnings.append(
            f"only {out['n']} respondents rated us and an alternative: the figure is indicative; "
            f"at least {MIN_RESPONDENTS} are needed before reading anything into it"
        )
    if out["n"] and out["low"] is None:
        warnings.append("the interval is unbounded: too few or too scattered ratings of the alternatives")
    out["warnings"] = warnings
    by = []
    for alt in brands_seen:
        _, u, t = paired(a, brand, against=alt.lower())
        r = stats.fieller_ratio(u, t, level=level)
        by.append({"alternative": alt, **{k: r[k] for k in ("value", "low", "high", "n")}})
    out["by_alternative"] = by
    return out


def _mean(x: np.ndarray) -> float | None:
    x = x[np.isfinite(x)]
    return float(x.mean()) if x.size else None


def relation(a: Answers, brand: str, predictions: dict[str, dict[str, float]], *, level: float = 0.9) -> dict[str, Any]:
    """Does relative attractiveness predict who stays (P(alive)) and what they are worth (CLV)?
    ``predictions`` maps customer id -> {"p_alive", "clv"} (the latest CLV run)."""
    ids, us, them = paired(a, brand)
    gap = us - them
    known = [i for i, c in enumerate(ids) if c in predictions]
    if not predictions:
        return {"n": 0, "verdict": "no CLV predictions yet: run `touchpoint predict clv` to relate the two"}
    g = gap[known]
    p_alive = np.array([predictions[ids[i]].get("p_alive", np.nan) for i in known], dtype=np.float64)
    clv = np.array([predictions[ids[i]].get("clv", np.nan) for i in known], dtype=np.float64)
    out: dict[str, Any] = {
        "measure": "per respondent: our rating minus the alternatives' (0..1 scale)",
        "respondents_with_predictions": len(known),
        "p_alive": stats.rank_correlation(g, p_alive, level=level),
        "clv": stats.rank_correlation(g, clv, level=level),
    }
    if len(known) >= 9:
        cuts = np.quantile(g, [1 / 3, 2 / 3])
        band = np.digitize(g, cuts, right=True)
        out["by_tercile"] = [
            {
                "tercile": name,
                "respondents": int((band == k).sum()),
                "mean_p_alive": _mean(p_alive[band == k]),
                "mean_clv": _mean(clv[band == k]),
            }
            for k, name in enumerate(("finds us least attractive", "middle", "finds us most attractive"))
        ]
    out["note"] = (
        "correlation in our own data, not a causal effect: customers who like us more may also have bought "
        "more before they answered"
    )
    return out
