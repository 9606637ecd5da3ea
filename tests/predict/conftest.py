"""Fixtures for the predict tests: the CDNOW sample (see data/README.md for its source and licence)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="session")
def cdnow_published() -> dict[str, np.ndarray]:
    """The published 39-week calibration summary (x, t_x, T, zbar) of the 2,357 CDNOW customers."""
    ref = np.genfromtxt(DATA / "cdnow_customers_summary_with_transactions.csv", delimiter=",", names=True)
    return {"id": ref["ID"], "x": ref["x"], "t_x": ref["t_x"], "T": ref["T"], "zbar": ref["zbar"]}


@pytest.fixture(scope="session")
def cdnow_orders() -> pa.Table:
    """The raw CDNOW transactions: customer_id (sample id), ts, revenue."""
    rows = [line.split() for line in (DATA / "CDNOW_sample.txt").read_text().splitlines() if line.strip()]
    return pa.table(
        {
            "customer_id": [r[1].lstrip("0") for r in rows],
            "ts": [dt.datetime.strptime(r[2], "%Y%m%d") for r in rows],
            "revenue": [float(r[4]) for r in rows],
        }
    )
