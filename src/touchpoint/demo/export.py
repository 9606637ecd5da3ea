"""Turning a :class:`~touchpoint.demo.simulator.Simulation` into the files a real shop would have.

``events.jsonl`` (web sessions, identifies, emails, experiment exposures, in the Segment spec),
``orders.csv`` (one row per order line) and ``spend.csv`` (weekly spend per channel), plus the
ground truth: ``truth.json``, ``customers.parquet`` and ``identities.parquet``.
"""

from __future__ import annotations

import csv
import hashlib
import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import msgspec
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from touchpoint.demo.simulator import (
    ORGANIC_CHANNELS,
    PAID_CHANNELS,
    REPEAT_CHANNELS,
    Simulation,
    weekly_first_order_revenue,
)
from touchpoint.demo.surveys import survey_answers
from touchpoint.demo.truth import CUSTOMERS_FILE, IDENTITIES_FILE, TRUTH_FILE
from touchpoint.warehouse.private_files import private_dir

EXPERIMENT_KEY = "email-winback-2026"
LENS_SKU = "lens-30"
PRODUCTS = [
    ("tee-basic", 19.0),
    ("hoodie", 49.0),
    ("socks-3", 12.0),
    ("cap", 22.0),
    ("mug", 14.0),
    ("bag", 35.0),
]
JUNK_ID = "anonymous"
SHARED_DEVICE = "shop-tablet-01"

# What each channel looks like on the first page of a session: UTM tags, referrer, click id.
CHANNEL_TAGS: dict[str, dict[str, Any]] = {
    "paid_search": {
        "utm": ("google", "cpc", "brand-and-generic"),
        "referrer": "https://www.google.com/",
        "click": "gclid",
    },
    "paid_social": {
        "utm": ("facebook", "paid_social", "prospecting"),
        "referrer": "https://www.facebook.com/",
        "click": "fbclid",
    },
    "display": {"utm": ("gdn", "display", "awareness"), "referrer": None, "click": None},
    "video": {
        "utm": ("youtube", "video", "brand-film"),
        "referrer": "https://www.youtube.com/",
        "click": None,
    },
    "affiliate": {
        "utm": ("partner-network", "affiliate", "cashback"),
        "referrer": "https://deals.example.net/",
        "click": None,
    },
    "email": {"utm": ("newsletter", "email", "monthly"), "referrer": None, "click": None},
    "organic_search": {"utm": None, "referrer": "https://www.google.com/", "click": None},
    "organic_social": {"utm": None, "referrer": "https://www.instagram.com/", "click": None},
    "referral": {"utm": None, "referrer": "https://blog.example.org/best-tees", "click": None},
    "direct": {"utm": None, "referrer": None, "click": None},
}
SITE = "https://shop.example.com"


class _Writer:
    def __init__(self, path: Path, start: datetime) -> None:
        self.handle = path.open("wb")
        self.start = start
        self.encode = msgspec.json.Encoder().encode
        self.count = 0

    def ts(self, day: float) -> str:
        return (self.start + timedelta(days=float(day))).isoformat(timespec="milliseconds") + "Z"

    def write(self, event: dict[str, Any]) -> None:
        self.handle.write(self.encode(event) + b"\n")
        self.count += 1

    def close(self) -> None:
        self.handle.close()


def consent_context(email: str) -> dict[str, Any]:
    """The consent banner's answer a customer gives when signing up (Segment's consent object): about 60%
    accept marketing email, 30% advertising; all accept analytics. Drawn from the email's hash, not the
    simulation's random stream, so the rest of the shop is the same with or without it."""
    h = int(hashlib.sha256(email.encode()).hexdigest()[:8], 16) % 100
    prefs = {"Analytics": True, "Email": h < 60, "Advertising": h % 10 < 3}
    return {"consent": {"categoryPreferences": prefs}}


def _ids(rng: np.random.Generator, prefix: str, n: int) -> list[str]:
    raw = rng.integers(0, 2**63, size=n, dtype=np.int64)
    return [f"{prefix}{int(v):016x}" for v in raw]


def _session(
    w: _Writer, rng: np.random.Generator, day: float, channel: str, ids: dict[str, str], pages: list[str]
) -> None:
    tags = CHANNEL_TAGS[channel]
    for i, path in enumerate(pages):
        url = SITE + path
        context: dict[str, Any] = {"page": {"path": path, "url": url}}
        if i == 0:
            query = []
            if tags["utm"]:
                source, medium, campaign = tags["utm"]
                query += [f"utm_source={source}", f"utm_medium={medium}", f"utm_campaign={campaign}"]
            if tags["click"]:
                query.append(f"{tags['click']}={int(rng.integers(10**9, 10**10))}")
            if query:
                url = f"{url}?{'&'.join(query)}"
                context["page"]["url"] = url
                context["page"]["search"] = "?" + "&".join(query)
            if tags["referrer"]:
                context["page"]["referrer"] = tags["referrer"]
        w.write(
            {
                "type": "page",
                **ids,
                "name": path.strip("/").split("/")[0] or "home",
                "timestamp": w.ts(day + i * 0.0012),
                "properties": {"path": path, "url": url},
                "context": context,
            }
        )


def _pages(rng: np.random.Generator, converting: bool) -> list[str]:
    product = PRODUCTS[int(rng.integers(len(PRODUCTS)))][0]
    pages = ["/", f"/products/{product}"][: int(rng.integers(1, 3))]
    if converting:
        pages += ["/cart", "/checkout"]
    return pages


def write_files(sim: Simulation, out: Path) -> dict[str, Any]:
    """Write the shop's files and ground truth into ``out``; return the truth dict."""
    private_dir(out)
    cfg = sim.config
    rng = np.random.default_rng(sim.rng_state)
    start = datetime(cfg.start.year, cfg.start.month, cfg.start.day)
    c = sim.customers
    n = len(c["user_id"])
    o = sim.orders
    horizon = cfg.weeks * 7.0

    device = _ids(rng, "anon-", n)
    second = _ids(rng, "anon-m-", n)
    emails = [f"customer{i + 1}@example.com" for i in range(n)]
    junk_users = set(rng.choice(n, size=max(n // 50, 2), replace=False).tolist())
    tablet_users = set(rng.choice(n, size=max(n // 100, 2), replace=False).tolist())
    identities: list[tuple[str, str | None]] = []

    w = _Writer(out / "events.jsonl", start)
    identified_at = np.full(n, np.inf)
    first_order_time = {int(i): float(t) for i, t, k in zip(o["customer"], o["time"], o["kind"], strict=True) if k == 0}
    # First orders: earlier assist sessions, then the converting session; identify at sign-in or checkout.
    touch_channels = list(PAID_CHANNELS) + list(ORGANIC_CHANNELS)
    for i in range(n):
        uid, anon = c["user_id"][i], device[i]
        identities.append((anon, uid))
        t0 = first_order_time[i]
        anonymous_first = bool(c["anonymous_first"][i])
        ids = {"anonymousId": anon} if anonymous_first else {"anonymousId": anon, "userId": uid}
        if not anonymous_first:
            w.write(
                {
                    "type": "identify",
                    "userId": uid,
                    "anonymousId": anon,
                    "timestamp": w.ts(max(t0 - 3.0, 0.0)),
                    "traits": {"email": emails[i], "created_at": w.ts(max(t0 - 3.0, 0.0))},
                    "context": consent_context(emails[i]),
                }
            )
        for _ in range(int(rng.integers(0, 3))):
            day = max(t0 - float(rng.uniform(0.2, 3.0)), 0.0)
            _session(w, rng, day, str(rng.choice(touch_channels)), ids, _pages(rng, False))
        _session(w, rng, max(t0 - 0.01, 0.0), str(c["channel"][i]), ids, _pages(rng, True))
        if anonymous_first:
            w.write(
                {
                    "type": "identify",
                    "userId": uid,
                    "anonymousId": anon,
                    "timestamp": w.ts(t0 - 0.0005),
                    "traits": {"email": emails[i]},
                    "context": consent_context(emails[i]),
                }
            )
        identified_at[i] = t0
        if i in junk_users:  # a buggy app build sends the literal id "anonymous" alongside the user id
            w.write(
                {
                    "type": "track",
                    "event": "App Opened",
                    "userId": uid,
                    "anonymousId": JUNK_ID,
                    "timestamp": w.ts(t0 + 0.5),
                }
            )

    # Repeat and campaign orders: a session before each, sometimes on a second device or the shop tablet.
    for cust, t, kind in zip(o["customer"], o["time"], o["kind"], strict=True):
        if kind == 0:
            continue
        i = int(cust)
        uid = c["user_id"][i]
        anon = device[i]
        if c["second_device"][i] and rng.random() < 0.5:
            anon = second[i]
            if (anon, uid) not in identities:
                identities.append((anon, uid))
                w.write(
                    {
                        "type": "identify",
                        "userId": uid,
                        "anonymousId": anon,
                        "timestamp": w.ts(t - 0.02),
                        "traits": {"email": emails[i]},
                    }
                )
        elif i in tablet_users and rng.random() < 0.5:
            anon = SHARED_DEVICE
            w.write(
                {
                    "type": "identify",
                    "userId": uid,
                    "anonymousId": anon,
                    "timestamp": w.ts(t - 0.02),
                    "traits": {"email": emails[i]},
                }
            )
        channel = "email" if kind == 2 else str(rng.choice(list(REPEAT_CHANNELS), p=list(REPEAT_CHANNELS.values())))
        _session(w, rng, t - 0.01, channel, {"anonymousId": anon, "userId": uid}, _pages(rng, True))

    # Anonymous visitors who never identify (the non-converting paths).
    visitors = int(n * cfg.visitors_per_customer)
    visitor_ids = _ids(rng, "anon-v-", visitors)
    spend_share = np.array([sim.spend[ch].sum() for ch in PAID_CHANNELS])
    weights = np.concatenate([spend_share / spend_share.sum() * 0.5, np.array(list(ORGANIC_CHANNELS.values())) * 0.5])
    for vid in visitor_ids:
        identities.append((vid, None))
        for _ in range(int(rng.integers(1, 4))):
            _session(
                w,
                rng,
                float(rng.uniform(0, horizon)),
                str(rng.choice(touch_channels, p=weights)),
                {"anonymousId": vid},
                _pages(rng, False),
            )

    # Monthly newsletter to subscribers after they join: sent, some opened, few clicked.
    for month_day in np.arange(14.0, horizon, 30.0):
        subscribers = np.nonzero(c["newsletter"] & (c["acquired"] < month_day))[0]
        for subscriber in subscribers:
            uid = c["user_id"][subscriber]
            campaign = f"newsletter-{int(month_day // 30) + 1:02d}"
            w.write(
                {
                    "type": "track",
                    "event": "Email Sent",
                    "userId": uid,
                    "timestamp": w.ts(month_day),
                    "properties": {"campaign": campaign},
                }
            )
            if rng.random() < 0.25:
                w.write(
                    {
                        "type": "track",
                        "event": "Email Opened",
                        "userId": uid,
                        "timestamp": w.ts(month_day + rng.uniform(0.01, 2)),
                        "properties": {"campaign": campaign},
                    }
                )

    # The randomized campaign: an exposure for every unit, the email for the treatment group.
    exp = sim.experiment
    for i, is_treated in zip(exp["eligible"], exp["treated"], strict=True):
        uid = c["user_id"][int(i)]
        variant = "treatment" if is_treated else "control"
        w.write(
            {
                "type": "track",
                "event": "Experiment Viewed",
                "userId": uid,
                "timestamp": w.ts(exp["start_day"]),
                "properties": {"experiment_id": EXPERIMENT_KEY, "variation_id": variant},
            }
        )
        if is_treated:
            w.write(
                {
                    "type": "track",
                    "event": "Email Sent",
                    "userId": uid,
                    "timestamp": w.ts(exp["start_day"] + 0.001),
                    "properties": {"campaign": EXPERIMENT_KEY},
                }
            )
    # Survey answers (satisfaction, relative attractiveness, NPS) from their own generator.
    answers, survey_truth = survey_answers(sim)
    for a in answers:
        w.write(
            {
                "type": "track",
                "event": "Survey Responded",
                "userId": c["user_id"][a["user"]],
                "timestamp": w.ts(a["day"]),
                "properties": a["properties"],
            }
        )
    w.close()

    order_rows = _write_orders(sim, out / "orders.csv", start, emails, rng)
    _write_spend(sim, out / "spend.csv", start)
    truth = _truth(sim, order_rows, visitors, junk_users, tablet_users, w.count)
    truth["surveys"] = survey_truth
    (out / TRUTH_FILE).write_text(json.dumps(truth, indent=2))
    _write_customers(sim, out / CUSTOMERS_FILE, emails, order_rows)
    pq.write_table(
        pa.table({"anonymous_id": [a for a, _ in identities], "user_id": [u for _, u in identities]}),
        out / IDENTITIES_FILE,
    )
    return truth


def _write_orders(
    sim: Simulation, path: Path, start: datetime, emails: list[str], rng: np.random.Generator
) -> dict[str, np.ndarray]:
    c, o = sim.customers, sim.orders
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(
            [
                "customer_id",
                "order_id",
                "timestamp",
                "revenue",
                "currency",
                "email",
                "sku",
                "quantity",
                "price",
            ]
        )
        for k, (cust, t, value) in enumerate(zip(o["customer"], o["time"], o["value"], strict=True)):
            i = int(cust)
            ts = (start + timedelta(days=float(t))).isoformat(timespec="seconds") + "Z"
            order_id = f"ord-{k + 1:08d}"
            lines: list[tuple[str, float, float]] = []
            remaining = float(value)
            if c["lens"][i] and remaining > 20:
                boxes = max(1, min(3, int(remaining // 25)))
                lines.append((LENS_SKU, boxes, round(remaining / boxes, 2) if remaining < 60 else 19.0))
                remaining -= lines[-1][1] * lines[-1][2]
            if remaining > 0.005 or not lines:
                sku = PRODUCTS[int(rng.integers(len(PRODUCTS)))][0]
                lines.append((sku, 1, round(remaining, 2)))
            for sku, qty, price in lines:
                writer.writerow(
                    [
                        c["user_id"][i],
                        order_id,
                        ts,
                        f"{qty * price:.2f}",
                        sim.config.currency,
                        emails[i],
                        sku,
                        qty,
                        f"{price:.2f}",
                    ]
                )
    return o


def _write_spend(sim: Simulation, path: Path, start: datetime) -> None:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["date", "channel", "campaign", "amount", "currency", "impressions", "clicks"])
        for channel, weekly in sim.spend.items():
            for week, amount in enumerate(weekly):
                day = (start + timedelta(weeks=week)).date().isoformat()
                impressions = int(amount * 180)
                writer.writerow(
                    [
                        day,
                        channel,
                        "",
                        f"{amount:.2f}",
                        sim.config.currency,
                        impressions,
                        int(impressions * 0.012),
                    ]
                )


def _truth(
    sim: Simulation,
    orders: dict[str, np.ndarray],
    visitors: int,
    junk_users: set[int],
    tablet_users: set[int],
    events: int,
) -> dict[str, Any]:
    cfg, c = sim.config, sim.customers
    weeks = cfg.weeks
    cust, times, kind, value = orders["customer"], orders["time"], orders["kind"], orders["value"]
    week = np.minimum((times // 7).astype(int), weeks - 1)
    weekly_revenue = np.bincount(week, weights=value, minlength=weeks)
    first = kind == 0
    channels: dict[str, Any] = {}
    media_weekly = np.zeros(weeks)
    by_channel = weekly_first_order_revenue(orders, c["channel"], weeks, list(sim.media))
    for ch, info in sim.media.items():
        acquired_by = c["channel"][cust] == ch
        first_rev = by_channel[ch]
        media_weekly += first_rev
        spend_total = float(sim.spend[ch].sum())
        channels[ch] = {
            **info,
            "spend": spend_total,
            "orders": int((first & acquired_by).sum()),
            "revenue": float(first_rev.sum()),
            "romi": float(first_rev.sum() / spend_total) if spend_total else None,
            "repeat_revenue": float(value[(kind == 1) & acquired_by].sum()),
            "weekly_revenue": first_rev.round(2).tolist(),
            "weekly_spend": sim.spend[ch].tolist(),
        }
    exp = sim.experiment
    start = datetime(cfg.start.year, cfg.start.month, cfg.start.day)
    end = start + timedelta(weeks=weeks)
    conv = exp["true_conversion"]
    return {
        "config": cfg.to_dict(),
        "period": {"start": start.date().isoformat(), "end": end.date().isoformat(), "weeks": weeks},
        "events_written": events,
        "clv": {
            "time_unit": "days",
            "bg_nbd": cfg.bg_nbd,
            "gamma_gamma": cfg.gamma_gamma,
            "calibration_end": (start + timedelta(weeks=int(weeks * 0.75))).date().isoformat(),
            "customers": len(c["user_id"]),
            "orders": len(times),
            "alive_at_end_share": float(c["alive_at_end"].mean()),
        },
        "acquisition": {
            "organic_share": float(np.isin(c["channel"], list(ORGANIC_CHANNELS)).mean()),
            "by_channel": {
                str(k): int(v) for k, v in zip(*np.unique(c["channel"].astype(str), return_counts=True), strict=True)
            },
        },
        "channels": channels,
        "mmm": {
            "kpi": "revenue",
            "weekly_revenue": weekly_revenue.round(2).tolist(),
            "weekly_baseline": (weekly_revenue - media_weekly).round(2).tolist(),
        },
        "identity": {
            "customers": len(c["user_id"]),
            "anonymous_visitors": visitors,
            "anonymous_then_identified": int(c["anonymous_first"].sum()),
            "second_device_customers": int(c["second_device"].sum()),
            "junk_anonymous_ids": [JUNK_ID],
            "junk_id_users": len(junk_users),
            "shared_device_id": SHARED_DEVICE,
            "shared_device_users": len(tablet_users),
        },
        "experiment": {
            "key": EXPERIMENT_KEY,
            "variants": ["control", "treatment"],
            "start": (start + timedelta(days=exp["start_day"])).isoformat() + "Z",
            "window_days": exp["window_days"],
            "metric": f"ordered within {int(exp['window_days'])} days of the exposure",
            "units": exp["units"],
            "true_conversion": conv,
            "true_lift_absolute": exp["true_lift_absolute"],
            "true_lift_relative": exp["true_lift_absolute"] / exp["potential_control"]
            if exp["potential_control"]
            else None,
            "extra_revenue": exp["extra_revenue"],
        },
        "replenishment": {
            "product": LENS_SKU,
            "box_days": 30,
            "customers": int(c["lens"].sum()),
            "note": "lens lines ride on ordinary orders, whose timing follows the BG/NBD process: a box is meant "
            "to last 30 days, but no purchase cycle was simulated, so there is no true cycle to recover",
        },
    }


def _write_customers(sim: Simulation, path: Path, emails: list[str], orders: dict[str, np.ndarray]) -> None:
    c = sim.customers
    cfg = sim.config
    start = datetime(cfg.start.year, cfg.start.month, cfg.start.day)
    n = len(c["user_id"])
    counts = np.bincount(orders["customer"], minlength=n)
    revenue = np.bincount(orders["customer"], weights=orders["value"], minlength=n)
    table = pa.table(
        {
            "user_id": c["user_id"].astype(str),
            "email": emails,
            "acquired_at": [start + timedelta(days=float(d)) for d in c["acquired"]],
            "acquisition_channel": c["channel"].astype(str),
            "lam": c["lam"],
            "p": c["p"],
            "alive_at_end": c["alive_at_end"],
            "orders": counts,
            "revenue": revenue,
            "arm": [a if a is None else str(a) for a in c["arm"]],
            "lens": c["lens"],
            "anonymous_first": c["anonymous_first"],
        }
    )
    pq.write_table(table, path)
