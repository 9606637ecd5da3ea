"""Fit PyMC-Marketing's MMM on a CSV and print its ROMI per channel as JSON (run in the peer venv).

Used by bench/mmm.py through a subprocess: PyMC-Marketing is a benchmark peer, never a dependency.
Usage: python mmm_peer_pymc.py DATA.csv CHANNELS(comma) DRAWS TUNE CHAINS SEED [CONTROLS(comma)]
The controls (columns of the CSV) are given to the model besides the linear trend ``t``.
"""

import json
import sys
import time

import numpy as np
import pandas as pd
import pymc_marketing
from pymc_marketing.mmm import MMM, GeometricAdstock, LogisticSaturation


def main() -> None:
    path, channels, draws, tune, chains, seed = sys.argv[1:7]
    channels = channels.split(",")
    controls = [c for c in sys.argv[7].split(",") if c] if len(sys.argv) > 7 else []
    df = pd.read_csv(path, parse_dates=["date"])
    df["t"] = np.arange(len(df), dtype=float)
    model = MMM(
        date_column="date",
        channel_columns=channels,
        control_columns=["t", *controls],
        adstock=GeometricAdstock(l_max=13),
        saturation=LogisticSaturation(),
        yearly_seasonality=2,
    )
    start = time.perf_counter()
    model.fit(
        df[["date", "t", *controls, *channels]],
        df["revenue"],
        draws=int(draws),
        tune=int(tune),
        chains=int(chains),
        random_seed=int(seed),
        progressbar=False,
    )
    seconds = time.perf_counter() - start
    contrib = model.compute_channel_contribution_original_scale()  # (chain, draw, date, channel)
    total = contrib.sum(dim="date")
    spend = df[channels].sum().to_numpy()
    roi = total / spend
    mean = roi.mean(dim=("chain", "draw")).values
    lo = roi.quantile(0.05, dim=("chain", "draw")).values
    hi = roi.quantile(0.95, dim=("chain", "draw")).values
    import arviz as az

    summ = az.summary(model.idata, var_names=["saturation_beta", "adstock_alpha"])
    divergences = int(model.idata.sample_stats["diverging"].sum())
    print(
        json.dumps(
            {
                "seconds": seconds,
                "version": pymc_marketing.__version__,
                "channels": channels,
                "roi_mean": mean.tolist(),
                "roi_low": lo.tolist(),
                "roi_high": hi.tolist(),
                "max_rhat": float(summ["r_hat"].max()),
                "min_ess": float(summ["ess_bulk"].min()),
                "divergences": divergences,
            }
        )
    )


if __name__ == "__main__":
    main()
