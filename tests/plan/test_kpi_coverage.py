"""The KPI intervals cover the truth at their nominal rate over repeated simulations (not one draw).

Each test simulates a few hundred survey samples with a known population value and counts how often
the 90% interval covers it. With 400 repetitions the coverage's standard error is 1.5 points, so
the accepted band 0.85-0.95 fails a method that is off by about three standard errors. The data are
made the way real survey data are awkward: discrete scores, respondents who answer several times
(correlated answers), small samples and ratios of correlated means.
"""

from __future__ import annotations

import numpy as np
import pytest

from touchpoint.plan import stats

REPS = 400
LEVEL = 0.9
BAND = (0.85, 0.95)
CSAT = np.array([0.05, 0.10, 0.20, 0.35, 0.30])  # P(score = 1..5)


def _clustered_scores(rng: np.random.Generator, respondents: int) -> tuple[np.ndarray, np.ndarray]:
    """Each respondent answers 1-4 times; their answers share a personal shift (so they correlate)."""
    times = rng.integers(1, 5, respondents)
    who = np.repeat(np.arange(respondents), times)
    shift = rng.normal(0, 0.8, respondents)[who]
    base = rng.choice(5, size=who.size, p=CSAT)
    scores = np.clip(base + np.round(shift), 0, 4) + 1
    return scores.astype(float), who


def _truth_by_monte_carlo(seed: int = 99) -> tuple[float, float]:
    """The population mean and top-box share of the answer process (answer-weighted), from a huge sample."""
    scores, _ = _clustered_scores(np.random.default_rng(seed), 400_000)
    return float(scores.mean()), float((scores == 5).mean())


def _coverage(hits: list[bool]) -> float:
    return float(np.mean(hits))


def test_mean_and_top_box_intervals_cover_the_truth_with_repeated_answers() -> None:
    true_mean, true_top = _truth_by_monte_carlo()
    rng = np.random.default_rng(1)
    mean_hits, top_hits, naive_hits = [], [], []
    for _ in range(REPS):
        scores, who = _clustered_scores(rng, 60)
        m = stats.mean_interval(scores, who, level=LEVEL)
        t = stats.share_interval(scores == 5, who, level=LEVEL)
        naive = stats.mean_interval(scores, None, level=LEVEL)  # treats every answer as independent
        mean_hits.append(m["low"] <= true_mean <= m["high"])
        top_hits.append(t["low"] <= true_top <= t["high"])
        naive_hits.append(naive["low"] <= true_mean <= naive["high"])
    assert BAND[0] <= _coverage(mean_hits) <= BAND[1], _coverage(mean_hits)
    assert BAND[0] <= _coverage(top_hits) <= BAND[1], _coverage(top_hits)
    # the test can fail: ignoring that one person's answers correlate under-covers
    assert _coverage(naive_hits) < BAND[0], _coverage(naive_hits)


@pytest.mark.parametrize("respondents", [12, 40, 300])
def test_attractiveness_index_interval_covers_the_true_ratio(respondents: int) -> None:
    """Ratings 0-10 of us and of the alternatives by the same people, correlated through each
    respondent's general generosity; the true index is E[ours] / E[theirs] of the rounded,
    clipped ratings (Monte Carlo). Small samples included: Fieller's interval keeps its level."""

    def draw(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
        generous = rng.normal(0, 1.2, n)
        ours = np.clip(np.round(6.5 + generous + rng.normal(0, 1.5, n)), 0, 10)
        theirs = np.clip(np.round(5.8 + generous + rng.normal(0, 1.5, n)), 0, 10)
        return ours, theirs

    big_o, big_t = draw(np.random.default_rng(5), 1_000_000)
    truth = big_o.mean() / big_t.mean()
    rng = np.random.default_rng(respondents)
    hits = []
    for _ in range(REPS):
        o, t = draw(rng, respondents)
        r = stats.fieller_ratio(o, t, level=LEVEL)
        hits.append(r["low"] is not None and r["low"] <= truth <= r["high"])
    assert BAND[0] <= _coverage(hits) <= BAND[1], (respondents, _coverage(hits))


def test_fieller_interval_is_unbounded_when_the_denominator_is_not_clearly_positive() -> None:
    rng = np.random.default_rng(3)
    theirs = rng.normal(0.05, 1.0, 8)  # a mean indistinguishable from zero
    r = stats.fieller_ratio(rng.normal(1.0, 0.3, 8), theirs, level=LEVEL)
    assert r["value"] is not None and r["low"] is None and r["high"] is None
    assert "unbounded" in r["method"]


def test_nps_interval_covers_the_true_score() -> None:
    p = np.array([0.02] * 7 + [0.06, 0.14, 0.38, 0.32])
    p = p / p.sum()
    truth = 100 * (p[9:].sum() - p[:7].sum())
    rng = np.random.default_rng(8)
    hits = []
    for _ in range(REPS):
        r = stats.nps_interval(rng.choice(11, size=150, p=p).astype(float), level=LEVEL)
        hits.append(r["low"] <= truth <= r["high"])
    assert BAND[0] <= _coverage(hits) <= BAND[1], _coverage(hits)


def test_rank_correlation_interval_covers_the_population_spearman() -> None:
    """Bivariate normal with correlation 0.3: Spearman's population value is (6/pi) asin(0.3/2)."""
    true_rho = 6 / np.pi * np.arcsin(0.3 / 2)
    cov = [[1, 0.3], [0.3, 1]]
    rng = np.random.default_rng(4)
    hits = []
    for _ in range(REPS):
        x, y = rng.multivariate_normal([0, 0], cov, size=80).T
        r = stats.rank_correlation(x, y, level=LEVEL)
        hits.append(r["low"] <= true_rho <= r["high"])
    assert BAND[0] <= _coverage(hits) <= BAND[1], _coverage(hits)
