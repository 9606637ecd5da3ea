"""``touchpoint demo``: simulate the shop, load it through the import path users use, show the results.

The files land in ``<data_dir>/demo/`` and are imported with the same functions as
``touchpoint import events|orders|spend``. Each step of the registry
(:data:`touchpoint.demo.steps.STEPS`) then runs on the loaded warehouse, and its summary,
including how well it recovers the ground truth, is collected into ``demo/summary.json``.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from touchpoint import keys
from touchpoint.collect.files import import_events
from touchpoint.collect.orders import import_orders
from touchpoint.collect.spend import import_spend
from touchpoint.config import Settings
from touchpoint.demo.export import write_files
from touchpoint.demo.simulator import DemoConfig, simulate
from touchpoint.demo.steps import BY_NAME, STEPS
from touchpoint.demo.truth import demo_dir
from touchpoint.errors import AlreadyExists
from touchpoint.warehouse import Warehouse, open_warehouse
from touchpoint.warehouse.private_files import write_private
from touchpoint.warehouse.urls import redact

log = logging.getLogger(__name__)

# The steps' names, in the order they run.
DEMO_STEPS = tuple(step.name for step in STEPS)
SOURCE = "demo-shop"
KEYS_FILE = "keys.json"

Say = Callable[[str], None]


def _demo_keys(wh: Warehouse, folder: Path) -> dict[str, str]:
    """The demo's write key and API keys, kept in ``demo/keys.json`` so re-runs can show them again."""
    path = folder / KEYS_FILE
    saved: dict[str, str] = json.loads(path.read_text()) if path.exists() else {}
    if "write_key" not in saved:
        try:
            saved["write_key"] = keys.create_source(wh, SOURCE)
        except AlreadyExists:
            saved["write_key"] = keys.create_source(wh, f"{SOURCE}-{int(time.time())}")
    for scope in ("read", "admin"):
        if f"{scope}_key" not in saved:
            try:
                saved[f"{scope}_key"] = keys.create_api_key(wh, f"demo-{scope}", scope)
            except AlreadyExists:
                saved[f"{scope}_key"] = keys.create_api_key(wh, f"demo-{scope}-{int(time.time())}", scope)
    write_private(path, json.dumps(saved, indent=2))
    return saved


def run_steps(
    wh: Warehouse, truth: dict[str, Any], folder: Path, say: Say, steps: tuple[str, ...] = DEMO_STEPS
) -> dict[str, Any]:
    """Run each named demo step; a failure is reported, not hidden, and does not stop the others."""
    unknown = [name for name in steps if name not in BY_NAME]
    if unknown:
        raise ValueError(f"unknown demo steps {unknown}; the steps are {list(DEMO_STEPS)}")
    results: dict[str, Any] = {}
    for area in steps:
        step = BY_NAME[area]
        started = time.perf_counter()
        say(f"running {area} ...")
        try:
            summary = step.run(wh, truth, folder)
        except Exception as exc:  # one broken step must not hide the others' results
            log.exception("demo step %s failed", area)
            results[area] = {"status": "failed", "error": f"{type(exc).__name__}: {exc}"}
            say(f"  {area} failed: {exc}")
            continue
        results[area] = {"status": "ok", "seconds": round(time.perf_counter() - started, 2), **summary}
        results[area].setdefault("headline", headline(area, results[area]))
    return results


def headline(area: str, s: dict[str, Any]) -> str:
    """The step's one line for the demo's printout (the full summary is in summary.json); "" if it has none."""
    step = BY_NAME.get(area)
    if step is None:
        return ""
    try:
        return step.headline(s)
    except (KeyError, TypeError, ValueError):
        return ""


def run_demo(
    settings: Settings, config: DemoConfig, say: Say = print, steps: tuple[str, ...] = DEMO_STEPS
) -> dict[str, Any]:
    """Simulate, write files, import them, run the capability demos; return the summary."""
    folder = demo_dir(settings.data_dir)
    started = time.perf_counter()
    say(f"simulating a shop with {config.customers:,} customers over {config.weeks} weeks (seed {config.seed}) ...")
    truth = write_files(simulate(config), folder)
    say(f"  wrote {truth['events_written']:,} events, {truth['clv']['orders']:,} orders and weekly spend to {folder}")
    summary: dict[str, Any] = {"data_dir": str(settings.data_dir), "files": str(folder), "imports": {}}
    wh = open_warehouse(settings)
    try:
        demo_keys = _demo_keys(wh, folder)
        for kind, fn, name in (
            ("events", import_events, "events.jsonl"),
            ("orders", import_orders, "orders.csv"),
            ("spend", import_spend, "spend.csv"),
        ):
            say(f"importing {name} ...")
            kwargs: dict[str, Any] = {"source": SOURCE}
            if kind == "events":
                kwargs["chunk_events"] = settings.import_chunk_events
            report = fn(wh, folder / name, **kwargs)
            summary["imports"][kind] = report.to_dict()
            r = report.to_dict()
            say(f"  {r['stored']:,} stored, {r['duplicates']:,} already there, {r['quarantined']:,} quarantined")
        summary["warehouse"] = {
            "url": redact(settings.resolved_warehouse_url()),
            "events": wh.count("events"),
            "spend_rows": wh.count("spend"),
            "quarantined": wh.count("quarantine"),
        }
        summary["steps"] = run_steps(wh, truth, folder, say, steps)
    finally:
        wh.close()
    summary["keys"] = {
        "write_key": demo_keys["write_key"],
        "read_key": demo_keys["read_key"],
        "admin_key": demo_keys["admin_key"],
        "stored_in": str(folder / KEYS_FILE),
    }
    summary["seconds"] = round(time.perf_counter() - started, 1)
    write_private(folder / "summary.json", json.dumps(summary, indent=2, default=str))  # it holds the keys
    return summary
