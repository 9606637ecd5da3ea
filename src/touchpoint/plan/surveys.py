"""Survey answers from the event log: ``track("Survey Responded", {...})`` with ``survey``, ``score``,
``scale_max`` and, for attractiveness, ``brand``.

Each answer belongs to a customer by THE customer rule (:func:`touchpoint.identity.people.customer_events`),
so a respondent here is the same customer the CLV model scores. An answer that cannot be used (no
numeric score, no positive ``scale_max``, a score outside 0..scale_max) is skipped and counted, with
its reason, never silently.

>>> from touchpoint.warehouse import Warehouse
>>> from touchpoint.collect.store import write_messages
>>> wh = Warehouse.open("duckdb://:memory:")
>>> _ = write_messages(wh, [{"type": "track", "event": "Survey Responded", "userId": "u1",
...     "properties": {"survey": "csat", "score": 4, "scale_max": 5}}])
>>> a = answers(wh, "csat")
>>> a.customer_id.tolist(), a.score.tolist(), a.skipped
(['u1'], [4.0], {})
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import numpy as np

from touchpoint.errors import InvalidInput
from touchpoint.experiments.metrics import json_is, json_text
from touchpoint.privacy.analytics import customer_events
from touchpoint.privacy.analytics import events as analytics_events
from touchpoint.warehouse import Warehouse
from touchpoint.warehouse.jsonpath import check_json_key

SURVEY_EVENT = "Survey Responded"


@dataclass
class Answers:
    """Usable answers of one survey, as arrays of equal length."""

    survey: str
    customer_id: np.ndarray
    ts: np.ndarray  # datetime64[us], naive UTC
    score: np.ndarray
    scale_max: np.ndarray
    brand: np.ndarray
    group: np.ndarray  # the ``by`` property's value, or "(none)"
    skipped: dict[str, int] = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.score.size)

    def subset(self, keep: np.ndarray) -> Answers:
        return Answers(
            self.survey,
            self.customer_id[keep],
            self.ts[keep],
            self.score[keep],
            self.scale_max[keep],
            self.brand[keep],
            self.group[keep],
            dict(self.skipped),
        )


def quarter_bounds(quarter: str) -> tuple[dt.date, dt.date]:
    """``"2026Q3"`` -> (2026-07-01, 2026-10-01): the first day and the day after the quarter."""
    text = quarter.strip().upper()
    try:
        year, q = text.split("Q")
        y, n = int(year), int(q)
        if not 1 <= n <= 4 or not 1900 <= y <= 9999:
            raise ValueError
    except ValueError:
        raise InvalidInput(f"--quarter {quarter!r} is not a quarter", hint="write it as YEARQn, e.g. 2026Q3") from None
    start = dt.date(y, 3 * n - 2, 1)
    end = dt.date(y + 1, 1, 1) if n == 4 else dt.date(y, 3 * n + 1, 1)
    return start, end


def quarter_of(ts: np.ndarray) -> np.ndarray:
    """Labels like ``2026Q3`` for datetime64 values."""
    months = ts.astype("datetime64[M]").astype(np.int64)
    return np.array([f"{1970 + m // 12}Q{(m % 12) // 3 + 1}" for m in months], dtype=object)


def answers(wh: Warehouse, survey: str, *, by: str | None = None) -> Answers:
    """Every usable answer of ``survey`` (``csat``, ``attractiveness``, ``nps``, ...); ``by`` names an
    answer property to group by (e.g. ``segment``)."""
    if by is not None:
        check_json_key(by, "--by")
    events = analytics_events(wh)
    t = events.filter((events.type == "track") & (events.event == SURVEY_EVENT))
    t = t.filter(json_is(t.properties["survey"], survey))
    t = customer_events(wh, t)
    cols = {
        "customer_id": t.customer_id,
        "ts": t.timestamp,
        "score": json_text(t.properties["score"]).try_cast("float64"),
        "scale_max": json_text(t.properties["scale_max"]).try_cast("float64"),
        "brand": json_text(t.properties["brand"]),
    }
    if by is not None:
        cols["grp"] = json_text(t.properties[by])
    rows = wh.to_arrow(t.select(**cols)).to_pydict()
    n = len(rows["customer_id"])
    score = np.array([np.nan if v is None else v for v in rows["score"]], dtype=np.float64)
    smax = np.array([np.nan if v is None else v for v in rows["scale_max"]], dtype=np.float64)
    cust = np.array(rows["customer_id"], dtype=object)
    reasons = {
        "no customer (neither userId nor anonymousId)": np.array([c is None for c in cust], dtype=bool),
        "score is missing or not a number": ~np.isfinite(score),
        "scale_max is missing or not a positive number": ~(np.isfinite(smax) & (smax > 0)),
    }
    ok = np.ones(n, dtype=bool)
    skipped: dict[str, int] = {}
    for reason, bad in reasons.items():
        count = int((bad & ok).sum())
        if count:
            skipped[reason] = count
        ok &= ~bad
    with np.errstate(invalid="ignore"):
        out_of_range = ok & ((score < 0) | (score > smax))
    if out_of_range.any():
        skipped["score outside 0..scale_max"] = int(out_of_range.sum())
        ok &= ~out_of_range
    brands = np.array(rows["brand"], dtype=object)
    if survey == "attractiveness":
        no_brand = ok & np.array([not b for b in brands], dtype=bool)
        if no_brand.any():
            skipped["no brand named"] = int(no_brand.sum())
            ok &= ~no_brand
    group = np.array(["(none)" if v in (None, "") else str(v) for v in rows.get("grp", [None] * n)], dtype=object)
    ts = np.array(rows["ts"], dtype="datetime64[us]") if n else np.array([], dtype="datetime64[us]")
    return Answers(
        survey,
        cust[ok],
        ts[ok],
        score[ok],
        smax[ok],
        np.array([str(b).strip() if b else "" for b in brands[ok]], dtype=object),
        group[ok],
        skipped,
    )


def in_period(a: Answers, start: dt.date | None, end: dt.date | None) -> Answers:
    """The answers with ``start <= timestamp < end`` (either bound may be None)."""
    keep = np.ones(len(a), dtype=bool)
    if start is not None:
        keep &= a.ts >= np.datetime64(start, "us")
    if end is not None:
        keep &= a.ts < np.datetime64(end, "us")
    return a.subset(keep)
