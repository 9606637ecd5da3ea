"""The data-flow map: complete by construction (a table, job, channel or data-changing route it does not
show fails here), drawn in every format, and showing a small shop's own flows (actions included)."""

from __future__ import annotations

import io
import json
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
from tests.automations.shop import WELCOME, open_shop
from tests.conftest import run_cli

from touchpoint import keys
from touchpoint.automations import workflow as automations
from touchpoint.automations.channels import CHANNELS
from touchpoint.config import Settings
from touchpoint.datamap import DESTINATIONS, MODELS, READ_ONLY_ROUTES, SOURCES, all_tables, build, render
from touchpoint.datamap.build import COLUMNS, EDGE_KINDS, NODE_KINDS, personal_of, retention_of
from touchpoint.datamap.registry import DELETING_JOBS, JOB_PURPOSES
from touchpoint.datamap.render import HEIGHT, mermaid_id
from touchpoint.jobs import JOBS
from touchpoint.warehouse import Warehouse
from touchpoint.warehouse.schema import TableSpec

CODE_MAP = build()
WRITES = {(e.source, e.target) for e in CODE_MAP.edges if e.kind == "writes"}
READS = {(e.source, e.target) for e in CODE_MAP.edges if e.kind == "reads"}
DELETES = {(e.source, e.target) for e in CODE_MAP.edges if e.kind == "deletes"}


# -- complete by construction ------------------------------------------------------------------------
def test_every_table_the_warehouse_creates_is_on_the_map_with_a_writer(warehouse: Warehouse) -> None:
    """Tables from the schema's declarations and from a migrated warehouse (a table a migration creates
    without declaring it is caught too); each has at least one writer: a source, a job or a model."""
    declared = {spec.name for spec in all_tables()}
    created = set(warehouse.tables())
    assert created - declared == set(), "declare these tables in warehouse/schema.py"
    for name in declared | created:
        assert f"table:{name}" in CODE_MAP.ids("table"), f"table {name} is not on the map"
        writers = {a for a, b in WRITES if b == f"table:{name}"}
        assert writers, f"nobody writes table {name} on the map: add its writer to touchpoint/datamap/registry.py"


def test_every_job_is_on_the_map_with_what_it_reads_and_writes() -> None:
    assert JOBS, "the job registry is empty"
    for job in JOBS.values():
        jid = f"job:{job.name}"
        assert jid in CODE_MAP.ids("job")
        assert job.name in JOB_PURPOSES, f"give job {job.name} a purpose in datamap.registry.JOB_PURPOSES"
        assert job.tables or job.models, f"job {job.name} declares no output"
        via = {jid} | {f"model:{m}" for m in job.models}
        for model in job.models:
            assert model in MODELS, f"job {job.name} names model {model!r}, not in datamap.registry.MODELS"
            assert (jid, f"model:{model}") in {(e.source, e.target) for e in CODE_MAP.edges if e.kind == "runs"}
        drawn = DELETES if job.name in DELETING_JOBS else WRITES
        for table in job.tables:
            assert any((v, f"table:{table}") in drawn for v in via), f"{job.name} writes {table}: not drawn"
        for table in job.reads:
            assert any((f"table:{table}", v) in READS for v in via), f"{job.name} reads {table}: not drawn"


def test_a_job_that_only_deletes_is_drawn_as_deleting_and_leaves_raw_tables_raw() -> None:
    from touchpoint.jobs import Job

    retention = Job("retention", lambda ctx: None, every=86400.0, tables=("events", "quarantine"), doc="prune")
    m = build(jobs=[*JOBS.values(), retention])
    kinds = {(e.source, e.target): e.kind for e in m.edges}
    assert kinds[("job:retention", "table:events")] == "deletes"
    assert m.node("table:events").column == CODE_MAP.node("table:events").column == 1
    assert m.node("job:retention").info["purpose"] == JOB_PURPOSES["retention"]


def test_every_channel_and_destination_is_on_the_map() -> None:
    destinations = {n.name: n for n in CODE_MAP.nodes if n.kind == "destination"}
    for channel in CHANNELS:
        matching = [d for d in DESTINATIONS if d.channel == channel]
        assert matching, f"channel {channel!r} has no destination in touchpoint/datamap/registry.py"
        assert matching[0].name in destinations
        senders = {e.source for e in CODE_MAP.edges if e.target == f"destination:{matching[0].name}"}
        assert senders, f"nothing sends through {channel} on the map"
    for d in DESTINATIONS:
        assert d.name in destinations
        assert d.sends and d.purposes, f"say what {d.name} sends and for which purpose"


def test_the_registry_names_only_what_the_code_declares() -> None:
    assert CODE_MAP.notes == []  # a name the schema, the jobs or the channels lack would be noted
    assert {n.kind for n in CODE_MAP.nodes} <= set(NODE_KINDS)
    assert {e.kind for e in CODE_MAP.edges} <= set(EDGE_KINDS)
    ids = CODE_MAP.ids()
    assert len(ids) == len(CODE_MAP.nodes), "node ids are unique"
    assert all(e.source in ids and e.target in ids for e in CODE_MAP.edges)


def _routes(routes: Any) -> Any:
    for r in routes:
        if hasattr(r, "path") and hasattr(r, "methods"):
            yield r
        sub = getattr(r, "original_router", None) or getattr(r, "router", None)
        if sub is not None:
            yield from _routes(sub.routes)


def test_every_route_that_changes_data_is_a_source_or_declared_read_only(settings: Settings) -> None:
    """Walk the real app: a POST/PUT/PATCH/DELETE route is a source's, a destination's or read-only, and every
    route the registry names exists (a renamed route fails here instead of leaving the map stale)."""
    from touchpoint.api.app import create_app

    app = create_app(settings, run_jobs=False)
    served = {f"{m} {r.path}" for r in _routes(app.routes) for m in (r.methods or ())}
    changing = {route for route in served if route.split()[0] in {"POST", "PUT", "PATCH", "DELETE"}}
    declared = {r for s in SOURCES for r in s.routes} | {r for d in DESTINATIONS for r in d.routes}
    missing = changing - declared - set(READ_ONLY_ROUTES)
    assert missing == set(), "add these routes to a source (or READ_ONLY_ROUTES) in touchpoint/datamap/registry.py"
    stale = (declared | set(READ_ONLY_ROUTES)) - served
    assert stale == set(), "the registry names routes the app does not serve"


def test_every_command_the_registry_names_exists() -> None:
    import typer.main

    from touchpoint.cli.main import app

    root = typer.main.get_command(app)

    def exists(line: str) -> bool:
        words = line.split()[1:]
        command: Any = root
        for word in words:
            if word.startswith("-"):
                break
            command = getattr(command, "commands", {}).get(word)
            if command is None:
                return False
        return True

    named = [c for s in SOURCES for c in s.commands] + [c for d in DESTINATIONS for c in d.commands]
    assert named
    assert [c for c in named if not exists(c)] == []


# -- what the map says about tables ------------------------------------------------------------------
@dataclass(frozen=True)
class _Personal:  # the shape of the classification the schema's TableSpec may carry (read by attribute)
    profile: tuple[str, ...] = ()
    identifiers: tuple[str, ...] = ()
    none: bool = False
    note: str = ""

    def columns(self) -> tuple[str, ...]:
        return (*self.profile, *self.identifiers)


def test_personal_data_is_read_from_the_schema_and_never_guessed() -> None:
    import ibis

    schema = ibis.schema([("profile_id", "string"), ("email", "string")])
    unclassified = TableSpec(name="x", schema=schema)
    assert personal_of(unclassified)["status"] == "unknown"
    spec: Any = SimpleNamespace(
        name="x", schema=schema, personal=_Personal(profile=("profile_id",), identifiers=("email",))
    )
    assert personal_of(spec) == {"status": "personal", "columns": ["profile_id", "email"], "note": ""}
    spec = SimpleNamespace(name="x", schema=schema, personal=_Personal(none=True, note="aggregates"))
    assert personal_of(spec) == {"status": "none", "columns": [], "note": "aggregates"}
    for spec in all_tables():  # whatever the schema says today is what the map shows
        node = CODE_MAP.node(f"table:{spec.name}")
        assert node.info["personal"] == personal_of(spec)


def test_retention_is_shown_when_the_settings_have_it() -> None:
    assert retention_of(Settings(), "events") is None or isinstance(retention_of(Settings(), "events"), str)
    rules: Any = SimpleNamespace(retention={"events": "25 months", "quarantine": {"days": 30}})
    assert retention_of(rules, "events") == "25 months"
    assert retention_of(rules, "quarantine") == "days 30"
    assert retention_of(rules, "profiles") is None
    m = build(rules)
    assert m.node("table:events").info["retention"] == "25 months"
    assert "kept 25 months" in render(m, "svg")


# -- formats -------------------------------------------------------------------------------------------
_NODE = re.compile(r"^    (\w+)(\[\(|\[/|\[|\(|\{\{|>)\"")
_EDGE = re.compile(r'^  (\w+) -->\|"[^"|]*"\| (\w+)$')


def test_mermaid_is_a_graph_with_every_node_and_edge() -> None:
    text = render(CODE_MAP, "mermaid")
    lines = text.splitlines()
    assert lines[0] == "flowchart LR"
    defined = [m.group(1) for line in lines if (m := _NODE.match(line))]
    edges = [(m.group(1), m.group(2)) for line in lines if (m := _EDGE.match(line))]
    assert sorted(defined) == sorted(mermaid_id(n.id) for n in CODE_MAP.nodes)
    assert len(edges) == len(CODE_MAP.edges)
    assert {a for a, _ in edges} | {b for _, b in edges} <= set(defined)
    assert lines.count("  end") == sum(any(n.column == c for n in CODE_MAP.nodes) for c in range(len(COLUMNS)))
    personal = [n for n in CODE_MAP.nodes if n.kind == "table" and n.info["personal"]["status"] == "personal"]
    if personal:
        assert any(line.startswith("  class ") and line.endswith(" personal") for line in lines)


def test_svg_is_well_formed_and_draws_every_node_and_edge() -> None:
    svg = render(CODE_MAP, "svg")
    root = ET.fromstring(svg)
    ns = "{http://www.w3.org/2000/svg}"
    groups = {g.get("data-id") for g in root.iter(f"{ns}g") if g.get("data-id")}
    assert groups == CODE_MAP.ids()
    edges = [p for p in root.iter(f"{ns}path") if "edge" in (p.get("class") or "")]
    assert len(edges) == len(CODE_MAP.edges)
    for title in COLUMNS:
        assert f">{title}</text>" in svg


def test_png_renders_offline_with_the_svg_layout() -> None:
    from PIL import Image

    data = render(CODE_MAP, "png")
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    image = Image.open(io.BytesIO(data))
    tallest = max(sum(n.column == c for n in CODE_MAP.nodes) for c in range(len(COLUMNS)))
    assert image.height > tallest * HEIGHT
    assert len(np.unique(np.asarray(image.convert("L")))) > 10  # something is drawn, not a blank canvas


def test_json_has_the_documented_layout() -> None:
    d = json.loads(json.dumps(render(CODE_MAP, "json")))
    assert set(d) == {"version", "columns", "counts", "nodes", "edges", "notes"}
    assert d["columns"] == list(COLUMNS)
    for node in d["nodes"]:
        assert {"id", "kind", "name", "label", "doc", "column"} <= set(node)
        if node["kind"] == "table":
            assert {"personal", "purposes", "retention", "columns"} <= set(node)
            assert node["personal"]["status"] in ("personal", "none", "unknown")
    assert all(set(e) == {"from", "to", "kind", "label"} for e in d["edges"])
    assert d["counts"]["table"] == len(all_tables())


# -- a small shop's flows, through the CLI and the API ---------------------------------------------------
WEBHOOK: dict[str, Any] = {
    "name": "lead-handoff",
    "trigger": {"audience": "engaged", "on": "enter"},
    "holdout": 0.1,
    "steps": [{"webhook": {"url": "https://crm.example/hooks/lead", "purpose": "sharing"}}],
}


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A stopped shop: people with emails, a saved audience, an email automation and a webhook one."""
    from touchpoint.audiences import workflow as audiences

    data = tmp_path_factory.mktemp("map") / "data"
    data.mkdir()
    wh = open_shop(data, 5)
    try:
        audiences.create(wh, "engaged", {"trait": "email", "exists": True})
        automations.create(wh, WELCOME)
        automations.create(wh, WEBHOOK)
        keys.create_source(wh, "web")
    finally:
        wh.close()
    return data


def test_the_shop_flows_from_sources_to_destinations(shop: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli(capsys, "map", "--data", str(shop), "--json")
    assert code == 0, err
    d = json.loads(out)
    edges = {(e["from"], e["to"], e["kind"]): e["label"] for e in d["edges"]}
    assert ("source:collector", "table:events", "writes") in edges
    assert ("table:events", "job:profiles", "reads") in edges
    assert ("job:profiles", "table:profiles", "writes") in edges
    assert ("table:profiles", "job:audiences", "reads") in edges
    assert ("job:predictions", "model:clv", "runs") in edges
    assert ("model:clv", "table:predictions", "writes") in edges
    actions = {n["name"]: n for n in d["nodes"] if n["kind"] == "action"}
    assert set(actions) == {"welcome", "lead-handoff"}
    assert edges[("table:events", "action:welcome", "triggers")] == "event Signed Up"
    assert edges[("table:audience_memberships", "action:lead-handoff", "triggers")] == "audience engaged"
    assert edges[("action:welcome", "destination:email", "sends")] == "marketing_email"
    assert edges[("action:lead-handoff", "destination:webhook", "sends")] == "sharing to crm.example"
    assert actions["lead-handoff"]["steps"] == [
        {"step": 0, "channel": "webhook", "purpose": "sharing", "to": "crm.example"}
    ]


def test_the_cli_writes_each_format_and_refuses_what_it_cannot(
    shop: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run_cli(capsys, "map", "--data", str(shop), "--format", "mermaid")
    assert code == 0 and out.startswith("flowchart LR") and "action_lead_handoff" in out
    for fmt in ("svg", "png", "json"):
        target = tmp_path / f"map.{fmt}"
        code, _, err = run_cli(capsys, "map", "--data", str(shop), "--format", fmt, "--out", str(target))
        assert code == 0, err
        assert target.stat().st_size > 1000
    code, out, _ = run_cli(capsys, "map", "--data", str(shop), "--format", "png", "--json")  # --json wins
    assert code == 0 and json.loads(out)["version"] == 1
    code, _, err = run_cli(capsys, "map", "--data", str(shop), "--format", "png")
    assert code != 0 and "--out" in err
    code, _, err = run_cli(capsys, "map", "--data", str(shop), "--format", "dot")
    assert code != 0 and "json, mermaid, svg, png" in err
    code, out, _ = run_cli(capsys, "map", "--data", str(tmp_path / "nothing"), "--json")
    d = json.loads(out)
    assert code == 0 and d["counts"]["action"] == 0 and "saved automations not shown" in d["notes"][0]


def test_the_api_serves_the_map_to_a_read_key(shop: Path, tmp_path: Path) -> None:
    import shutil

    from fastapi.testclient import TestClient

    from touchpoint.api.app import create_app

    data = tmp_path / "served"
    shutil.copytree(shop, data)
    wh = Warehouse.open(f"duckdb://{data / 'warehouse.duckdb'}")
    try:
        read = keys.create_api_key(wh, "reader", "read")
    finally:
        wh.close()
    with TestClient(create_app(Settings(data_dir=data), run_jobs=False)) as client:
        headers = {"Authorization": f"Bearer {read}"}
        r = client.get("/v1/map", headers=headers)
        assert r.status_code == 200, r.text
        assert {n["name"] for n in r.json()["nodes"] if n["kind"] == "action"} == {"welcome", "lead-handoff"}
        r = client.get("/v1/map", params={"format": "mermaid"}, headers=headers)
        assert r.status_code == 200 and r.text.startswith("flowchart LR")
        r = client.get("/v1/map", params={"format": "svg"}, headers=headers)
        assert r.headers["content-type"].startswith("image/svg+xml") and "<svg" in r.text
        assert client.get("/v1/map").status_code == 401
        bad = client.get("/v1/map", params={"format": "dot"}, headers=headers)
        assert bad.status_code in (400, 422) and bad.json()["success"] is False


def test_the_layout_keeps_boxes_apart_and_inside_the_picture() -> None:
    from itertools import pairwise

    from touchpoint.datamap.render import WIDTH, layout

    boxes, width, height = layout(CODE_MAP)
    assert set(boxes) == CODE_MAP.ids()
    assert {k: (b.x, b.y) for k, b in layout(CODE_MAP)[0].items()} == {k: (b.x, b.y) for k, b in boxes.items()}
    for box in boxes.values():
        assert box.x >= 0 and box.x + WIDTH <= width and box.y >= 0 and box.y + HEIGHT <= height
    for c in range(len(COLUMNS)):
        column = sorted((b for b in boxes.values() if b.node.column == c), key=lambda b: b.y)
        assert all(b.y - a.y >= HEIGHT for a, b in pairwise(column))
