"""Candidate identification flags, judged on the coverage study's fits: would they have flagged the misses?

The coverage study (bench/mmm_coverage.py) found intervals that miss the true ROMI without any diagnostic
flagging them (docs/mmm.md, "What it finds"). A flag is worth adding when it marks most of the misses and few
of the intervals that cover the truth. This script evaluates two candidates offline, without refitting: every
fit of ours in the study's JSONL is joined with its data set (the scenario and seed simulate it again) and
each candidate is computed per channel.

* ``spend follows sales``: a Granger-style test. Media act forwards in time, so last week's sales cannot be
  caused by this week's spend; if they still predict it beyond the channel's own last two weeks of spend and
  the model's baseline (intercept, trend, seasonality, controls), the budget follows demand, which a hidden
  confounder drives. Flag at two-sided p < 0.01 (and 0.001) of the lagged-sales coefficient.
* ``interval against the prior``: the posterior standard deviation of log ROI (from the 90% interval's ends)
  above a share of the prior's (LogNormal(0, 1): sd 1). The gate today flags a variance contraction under
  10% (sd above 0.95).

    .venv/bin/python bench/mmm_flags.py bench/results/mmm_coverage.jsonl bench/results/mmm_coverage_ci.jsonl

Prints a table per candidate and writes bench/results/mmm_flags.json.
"""

from __future__ import annotations

import json
import math
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats

from touchpoint.mmm import model
from touchpoint.mmm.config import MMMConfig
from touchpoint.mmm.simulate import SCENARIOS, scenario

HOLDOUT = 8
Z90 = float(stats.norm.ppf(0.95))
OUT = Path(__file__).with_name("results") / "mmm_flags.json"


def lagged_sales_p(spend: np.ndarray, target: np.ndarray, baseline: np.ndarray, lags: int = 2) -> list[float]:
    """Per channel: the p-value of last week's sales in a regression of this week's spend on the baseline
    columns, the channel's own spend ``lags`` weeks back and last week's sales (all in units of their mean)."""
    n, k = spend.shape
    scaled = spend / np.where(spend.mean(axis=0) > 0, spend.mean(axis=0), 1.0)
    sales = target / target.mean()
    out = []
    for j in range(k):
        x = scaled[:, j]
        own = [x[lags - i : n - i] for i in range(1, lags + 1)]
        design = np.column_stack([np.ones(n - lags), baseline[lags:], *own, sales[lags - 1 : n - 1]])
        coef, *_ = np.linalg.lstsq(design, x[lags:], rcond=None)
        resid = x[lags:] - design @ coef
        dof = design.shape[0] - design.shape[1]
        se = math.sqrt(float(resid @ resid) / dof * float(np.linalg.pinv(design.T @ design)[-1, -1]))
        out.append(float(2 * stats.t.sf(abs(coef[-1] / se), dof)) if se > 0 else 1.0)
    return out


def channels(paths: list[str]) -> list[dict[str, Any]]:
    seen: set[tuple[str, int]] = set()
    out = []
    for path in paths:
        for line in Path(path).read_text().splitlines():
            fit = json.loads(line)
            key = (fit["scenario"], fit["seed"])
            if fit.get("engine") != "touchpoint" or "channels" not in fit or key in seen:
                continue
            seen.add(key)
            data, _, settings = scenario(fit["scenario"], fit["seed"], holdout_weeks=HOLDOUT)
            config = MMMConfig(holdout_weeks=HOLDOUT, **settings)
            n = data.n_weeks - HOLDOUT
            baseline = model._design(data, config).baseline(config, data)[:n]
            p = lagged_sales_p(data.spend[:n], data.target[:n], baseline)
            for c, p_c in zip(fit["channels"], p, strict=True):
                sd = (math.log(c["high"]) - math.log(c["low"])) / (2 * Z90) if c["low"] > 0 else math.inf
                out.append({"scenario": fit["scenario"], "seed": fit["seed"], **c, "lagged_sales_p": p_c, "sd_log": sd})
    return out


def judge(rows: list[dict[str, Any]], name: str, flag: Any) -> list[dict[str, Any]]:
    by: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        by[r["scenario"]].append(r)
    table = []
    for scen in sorted(by, key=list(SCENARIOS).index):
        missed = [r for r in by[scen] if not r["covered"]]
        covered = [r for r in by[scen] if r["covered"]]
        table.append(
            {
                "candidate": name,
                "scenario": scen,
                "channels": len(by[scen]),
                "missed": len(missed),
                "missed_flagged": sum(map(flag, missed)),
                "covered": len(covered),
                "covered_flagged": sum(map(flag, covered)),
            }
        )
    return table


def main() -> None:
    paths = sys.argv[1:] or [str(Path(__file__).with_name("results") / "mmm_coverage.jsonl")]
    rows = channels(paths)
    candidates = {
        "spend follows sales, p < 0.01": lambda r: r["lagged_sales_p"] < 0.01,
        "spend follows sales, p < 0.001": lambda r: r["lagged_sales_p"] < 0.001,
        "gate today (sd of log ROI > 0.95)": lambda r: r["sd_log"] > 0.95,
        "sd of log ROI > 0.8": lambda r: r["sd_log"] > 0.8,
        "sd of log ROI > 0.6": lambda r: r["sd_log"] > 0.6,
    }
    results = []
    for name, flag in candidates.items():
        print(f"\n{name}\n{'scenario':<20}{'channels':>9}{'missed':>8}{'flagged':>9}{'covered':>9}{'flagged':>9}")
        for row in judge(rows, name, flag):
            results.append(row)
            share = row["covered_flagged"] / row["covered"] if row["covered"] else 0.0
            print(
                f"{row['scenario']:<20}{row['channels']:>9}{row['missed']:>8}{row['missed_flagged']:>9}"
                f"{row['covered']:>9}{row['covered_flagged']:>5} ({share:.0%})"
            )
    OUT.write_text(json.dumps({"fits": len({(r["scenario"], r["seed"]) for r in rows}), "rows": results}, indent=1))
    print(f"\nwrote {OUT}")


if __name__ == "__main__":
    main()
