"""The demo shop's survey answers, with known truth: satisfaction (csat, 1-5), relative attractiveness
(us and named alternatives, 0-10) and NPS (0-10), sent as ``track("Survey Responded", {...})``.

The answers come from their own seeded generator, so adding them leaves every other simulated number
as it was. Satisfaction differs by segment (after a first order, after a repeat order). How
attractive a customer finds the shop follows their loyalty: the lower their simulated drop-out
probability ``p``, the higher they rate us, so attractiveness does predict who stays in this shop
(``truth["surveys"]["attractiveness"]["correlation_with_loyalty"]``).

>>> from touchpoint.demo.simulator import DemoConfig, simulate
>>> answers, truth = survey_answers(simulate(DemoConfig(customers=300, weeks=20, seed=1)))
>>> truth["brand"], sorted(truth["csat"]["segments"])
('Acme', ['new', 'repeat'])
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.special import logit

from touchpoint.demo.simulator import Simulation

BRAND = "Acme"
ALTERNATIVES = {"Globex": -0.6, "Initech": -1.2, "Umbrella": 0.2}  # mean rating relative to ours, 0-10 scale
CSAT = {  # P(score = 1..5) per segment
    "new": [0.05, 0.10, 0.20, 0.35, 0.30],
    "repeat": [0.02, 0.05, 0.13, 0.40, 0.40],
}
CSAT_RATE = {"new": 0.25, "repeat": 0.10}  # share of orders followed by a csat answer
ATTRACTIVENESS_RATE = 0.2  # share of customers asked to rate us and alternatives, two weeks after joining
NPS_RATE = 0.1
OUR_MEAN, LOYALTY_WEIGHT, NOISE = 6.8, 0.9, 1.6
SEED_OFFSET = 7919


def _ratings(rng: np.random.Generator, loyalty: np.ndarray) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    ours = np.clip(np.round(OUR_MEAN + LOYALTY_WEIGHT * loyalty + rng.normal(0, NOISE, loyalty.size)), 0, 10)
    alts = {
        b: np.clip(np.round(OUR_MEAN + shift + rng.normal(0, NOISE, loyalty.size)), 0, 10)
        for b, shift in ALTERNATIVES.items()
    }
    return ours, alts


def _loyalty(p: np.ndarray, centre: float, spread: float) -> np.ndarray:
    return (-logit(np.clip(p, 1e-6, 1 - 1e-6)) - centre) / spread


def _true_index(sim: Simulation, centre: float, spread: float, rng: np.random.Generator) -> float:
    """The population index by Monte Carlo on 400,000 respondents of the same process (each rates us
    and one or two alternatives; their alternatives' rating is the mean of those)."""
    m = 400_000
    bg = sim.config.bg_nbd
    loyalty = _loyalty(rng.beta(bg["a"], bg["b"], m), centre, spread)
    ours, alts = _ratings(rng, loyalty)
    names = list(ALTERNATIVES)
    first = rng.integers(0, len(names), m)
    second = (first + rng.integers(1, len(names), m)) % len(names)
    both = rng.random(m) < 0.5
    a1 = np.choose(first, [alts[b] for b in names])
    a2 = np.choose(second, [alts[b] for b in names])
    them = np.where(both, (a1 + a2) / 2, a1)
    return float(ours.mean() / them.mean())


def survey_answers(sim: Simulation) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """(events as (day, user index, properties) dicts, truth) for the shop ``sim``."""
    rng = np.random.default_rng(sim.config.seed + SEED_OFFSET)
    c, o = sim.customers, sim.orders
    horizon = sim.config.weeks * 7.0
    events: list[dict[str, Any]] = []
    counts = {"new": 0, "repeat": 0}
    for cust, t, kind in zip(o["customer"], o["time"], o["kind"], strict=True):
        segment = "new" if kind == 0 else "repeat"
        day = float(t) + float(rng.uniform(1.0, 5.0))
        if day < horizon and rng.random() < CSAT_RATE[segment]:
            score = int(rng.choice(5, p=CSAT[segment])) + 1
            counts[segment] += 1
            events.append(
                {
                    "day": day,
                    "user": int(cust),
                    "properties": {"survey": "csat", "score": score, "scale_max": 5, "segment": segment},
                }
            )
    p = c["p"]
    score_all = -logit(np.clip(p, 1e-6, 1 - 1e-6))
    centre, spread = float(score_all.mean()), float(score_all.std() or 1.0)
    asked = np.nonzero((rng.random(p.size) < ATTRACTIVENESS_RATE) & (c["acquired"] + 14.0 < horizon))[0]
    loyalty = _loyalty(p[asked], centre, spread)
    ours, alts = _ratings(rng, loyalty)
    names = list(ALTERNATIVES)
    for k, i in enumerate(asked):
        day = float(c["acquired"][i]) + 14.0
        first = int(rng.integers(0, len(names)))
        rated = [names[first]]
        if rng.random() < 0.5:
            rated.append(names[(first + int(rng.integers(1, len(names)))) % len(names)])
        for brand, value in [(BRAND, ours[k]), *((b, alts[b][k]) for b in rated)]:
            events.append(
                {
                    "day": day,
                    "user": int(i),
                    "properties": {"survey": "attractiveness", "brand": brand, "score": int(value), "scale_max": 10},
                }
            )
    nps_asked = np.nonzero((rng.random(p.size) < NPS_RATE) & (c["acquired"] + 30.0 < horizon))[0]
    nps_scores = np.clip(
        np.round(7.0 + 1.5 * _loyalty(p[nps_asked], centre, spread) + rng.normal(0, 2.0, nps_asked.size)), 0, 10
    )
    for i, s in zip(nps_asked, nps_scores, strict=True):
        events.append(
            {
                "day": float(c["acquired"][i]) + 30.0,
                "user": int(i),
                "properties": {"survey": "nps", "score": int(s), "scale_max": 10},
            }
        )
    seg_mean = {s: float(np.dot(np.arange(1, 6), q)) for s, q in CSAT.items()}
    total = max(sum(counts.values()), 1)
    truth = {
        "brand": BRAND,
        "alternatives": list(ALTERNATIVES),
        "csat": {
            "scale_max": 5,
            "segments": {
                s: {"mean": seg_mean[s], "top_box": CSAT[s][-1], "answers": counts[s], "answer_rate": CSAT_RATE[s]}
                for s in CSAT
            },
            "mean": sum(seg_mean[s] * counts[s] for s in CSAT) / total,
            "top_box": sum(CSAT[s][-1] * counts[s] for s in CSAT) / total,
            "note": "expected values given the number of answers per segment",
        },
        "attractiveness": {
            "respondents": int(asked.size),
            "index": _true_index(sim, centre, spread, np.random.default_rng(sim.config.seed + 2 * SEED_OFFSET)),
            "correlation_with_loyalty": "positive: loyal customers (low drop-out p) rate us higher",
            "note": "index = E[our rating] / E[alternatives' rating] over respondents, by Monte Carlo",
        },
        "nps": {"respondents": int(nps_asked.size)},
    }
    return events, truth
