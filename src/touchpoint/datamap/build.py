"""The data-flow map as a graph: nodes (sources, tables, jobs, models, actions, destinations) and edges.

Everything comes from the code's own registries: the tables of :mod:`touchpoint.warehouse.schema`,
the jobs of :data:`touchpoint.jobs.JOBS` (what each reads and writes), the channels of the automations,
and :mod:`touchpoint.datamap.registry` (sources, models, destinations). With a warehouse, the saved
automations are drawn too, as the actions that send what where. The personal-data classification of a
table is read from its ``TableSpec.personal`` when the schema has one (``"unknown"`` otherwise: the map
never guesses), retention from the ``retention`` setting when there is one.

>>> m = build()
>>> m.node("table:events").column, m.node("job:profiles").kind
(1, 'job')
>>> ("table:events", "job:profiles", "reads") in {(e.source, e.target, e.kind) for e in m.edges}
True
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from touchpoint.automations.channels import CHANNELS
from touchpoint.datamap.registry import DELETING_JOBS, DESTINATIONS, JOB_PURPOSES, MODELS, SOURCE_KINDS, SOURCES
from touchpoint.errors import NotFound
from touchpoint.warehouse import schema
from touchpoint.warehouse.schema import all_tables

if TYPE_CHECKING:
    from touchpoint.config import Settings
    from touchpoint.jobs import Job
    from touchpoint.warehouse import Warehouse

#: The map's columns, left to right (``Node.column`` indexes this).
COLUMNS = ("sources", "raw tables", "jobs and models", "derived tables", "actions", "destinations")
#: The kinds of node and of edge (docs/privacy.md, "Data-flow map").
NODE_KINDS = ("source", "table", "job", "model", "action", "destination")
EDGE_KINDS = ("writes", "reads", "runs", "triggers", "sends", "deletes")
VERSION = 1


@dataclass
class Node:
    id: str  # "<kind>:<name>"
    kind: str
    name: str
    label: str
    doc: str
    column: int
    info: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "name": self.name,
            "label": self.label,
            "doc": self.doc,
            "column": self.column,
            **self.info,
        }


@dataclass(frozen=True)
class Edge:
    source: str
    target: str
    kind: str
    label: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"from": self.source, "to": self.target, "kind": self.kind, "label": self.label}


@dataclass
class DataMap:
    nodes: list[Node]
    edges: list[Edge]
    notes: list[str] = field(default_factory=list)

    def node(self, node_id: str) -> Node:
        for n in self.nodes:
            if n.id == node_id:
                return n
        raise NotFound(f"the data-flow map has no node {node_id!r}", hint="node ids are '<kind>:<name>'")

    def ids(self, kind: str | None = None) -> set[str]:
        return {n.id for n in self.nodes if kind is None or n.kind == kind}

    def to_dict(self) -> dict[str, Any]:
        counts = {k: sum(n.kind == k for n in self.nodes) for k in NODE_KINDS}
        return {
            "version": VERSION,
            "columns": list(COLUMNS),
            "counts": counts,
            "nodes": [n.to_dict() for n in self.nodes],
            "edges": [e.to_dict() for e in self.edges],
            "notes": list(self.notes),
        }


def personal_of(spec: schema.TableSpec) -> dict[str, Any]:
    """``{"status": "personal"|"none"|"unknown", "columns": [...], "note": ...}`` from the spec's classification.

    Read by attribute, so the map works before and after the schema carries one; a table without a
    classification is ``"unknown"``, never guessed.
    """
    p = getattr(spec, "personal", None)
    if p is None:
        return {"status": "unknown", "columns": [], "note": "not classified yet"}
    note = str(getattr(p, "note", "") or "")
    if getattr(p, "none", False) or getattr(p, "is_personal", True) is False:
        return {"status": "none", "columns": [], "note": note}
    columns = p.columns() if callable(getattr(p, "columns", None)) else ()
    return {"status": "personal", "columns": [str(c) for c in columns], "note": note}


def retention_of(settings: Settings | None, table: str) -> str | None:
    """The retention rule for ``table`` in the settings (a ``retention`` mapping or model), as text; None if none.

    >>> from types import SimpleNamespace
    >>> retention_of(SimpleNamespace(retention={"events": 761, "audit_log": "never"}), "events")
    '761 days'
    >>> retention_of(SimpleNamespace(retention={"events": 761}), "profiles") is None
    True
    """
    rules = getattr(settings, "retention", None) if settings is not None else None
    if rules is None:
        return None
    if hasattr(rules, "model_dump"):
        rules = rules.model_dump()
    value = rules.get(table) if isinstance(rules, Mapping) else getattr(rules, table, None)
    if value is None or value == "" or value == {}:
        return None
    if isinstance(value, Mapping):
        return ", ".join(f"{k} {v}" for k, v in value.items() if v is not None)
    if isinstance(value, int | float) and not isinstance(value, bool):  # the `retention` setting's days
        return f"{value:g} days"
    return str(value)


def _registered_jobs(jobs: Iterable[Job] | None) -> list[Job]:
    if jobs is not None:
        return list(jobs)
    from touchpoint.jobs import JOBS

    return list(JOBS.values())


def build(
    settings: Settings | None = None, *, jobs: Iterable[Job] | None = None, warehouse: Warehouse | None = None
) -> DataMap:
    """The map of how data flows (``warehouse``: also the saved automations, as actions)."""
    job_list = _registered_jobs(jobs)
    specs = all_tables()
    nodes: dict[str, Node] = {}
    edges: list[Edge] = []
    notes: list[str] = []

    def edge(a: str, b: str, kind: str, label: str = "") -> None:
        e = Edge(a, b, kind, label)
        if e not in edges:
            edges.append(e)

    # Who writes each table decides its column: written by a job or a model -> derived.
    derived = {t for j in job_list if j.name not in DELETING_JOBS for t in j.tables}
    derived |= {t for m in MODELS.values() for t in m.writes}
    readers: dict[str, set[str]] = {}
    for j in job_list:
        for t in j.reads:
            readers.setdefault(t, set()).add(JOB_PURPOSES.get(j.name, "unknown"))
    for m in MODELS.values():
        for t in m.reads:
            readers.setdefault(t, set()).add(m.purpose)
    for d in DESTINATIONS:
        for t in d.reads:
            readers.setdefault(t, set()).add(d.purposes.split(" (")[0])

    for s in sorted(SOURCES, key=lambda s: SOURCE_KINDS.index(s.kind)):
        nodes[f"source:{s.name}"] = Node(
            f"source:{s.name}",
            "source",
            s.name,
            s.name.replace("_", " "),
            s.doc,
            0,
            {
                "source_kind": s.kind,
                "routes": list(s.routes),
                "commands": list(s.commands),
                "personal": s.personal,
            },
        )
    for spec in specs:
        personal = personal_of(spec)
        nodes[f"table:{spec.name}"] = Node(
            f"table:{spec.name}",
            "table",
            spec.name,
            spec.name,
            spec.doc,
            3 if spec.name in derived else 1,
            {
                "personal": personal,
                "purposes": sorted(readers.get(spec.name, set())),
                "retention": retention_of(settings, spec.name),
                "columns": list(spec.schema.names),
            },
        )
    for j in job_list:
        nodes[f"job:{j.name}"] = Node(
            f"job:{j.name}",
            "job",
            j.name,
            f"job {j.name}",
            j.doc,
            2,
            {"cadence": j.describe_cadence(), "purpose": JOB_PURPOSES.get(j.name, "unknown"), "models": list(j.models)},
        )
    for m in MODELS.values():
        nodes[f"model:{m.name}"] = Node(
            f"model:{m.name}", "model", m.name, m.label, m.doc, 2, {"purpose": m.purpose, "files": m.files}
        )
    for d in DESTINATIONS:
        nodes[f"destination:{d.name}"] = Node(
            f"destination:{d.name}",
            "destination",
            d.name,
            d.label,
            d.doc,
            5,
            {
                "sends": d.sends,
                "purposes": d.purposes,
                "reads": list(d.reads),
                "channel": d.channel,
                "routes": list(d.routes),
                "commands": list(d.commands),
            },
        )
    for name, what in CHANNELS.items():  # a channel without its destination still shows, flagged
        if not any(d.channel == name for d in DESTINATIONS):
            nodes[f"destination:{name}"] = Node(
                f"destination:{name}", "destination", name, name, what, 5, {"sends": what, "purposes": "unknown"}
            )
            notes.append(f"channel {name!r} has no destination in touchpoint.datamap.registry: add one")

    def known(node_id: str) -> str:
        if node_id not in nodes:  # a registry naming a table the schema lacks: shown, and flagged
            kind, name = node_id.split(":", 1)
            nodes[node_id] = Node(node_id, kind, name, name, "not declared", 3 if kind == "table" else 2)
            notes.append(f"{node_id} is named by the registry but not declared in the code")
        return node_id

    for s in SOURCES:
        for t in s.writes:
            edge(f"source:{s.name}", known(f"table:{t}"), "writes")
        for r in s.runs:
            target = f"job:{r}" if f"job:{r}" in nodes else f"model:{r}"
            edge(f"source:{s.name}", known(target), "runs", "by hand")
    for j in job_list:
        jid = f"job:{j.name}"
        modelled_reads = {t for m in j.models if m in MODELS for t in MODELS[m].reads}
        modelled_writes = {t for m in j.models if m in MODELS for t in MODELS[m].writes}
        for model in j.models:
            edge(jid, known(f"model:{model}"), "runs")
        for t in j.reads:
            if t not in modelled_reads:
                edge(known(f"table:{t}"), jid, "reads")
        for t in j.tables:
            if t not in modelled_writes:
                edge(jid, known(f"table:{t}"), "deletes" if j.name in DELETING_JOBS else "writes")
    for m in MODELS.values():
        for t in m.reads:
            edge(known(f"table:{t}"), f"model:{m.name}", "reads")
        for t in m.writes:
            edge(f"model:{m.name}", known(f"table:{t}"), "writes")
    for d in DESTINATIONS:
        did = f"destination:{d.name}"
        for sender in d.sent_by:
            edge(known(f"job:{sender}"), did, "sends")
        if not d.sent_by:
            for t in d.reads:
                edge(known(f"table:{t}"), did, "reads")

    if warehouse is not None:
        _actions(warehouse, nodes, edge)
    ordered = sorted(nodes.values(), key=lambda n: n.column)
    return DataMap(ordered, edges, notes)


def _actions(wh: Warehouse, nodes: dict[str, Node], edge: Any) -> None:
    """The saved automations: what triggers each, and what each step sends where, for which purpose."""
    from touchpoint.automations import store
    from touchpoint.automations.definition import parse

    for row in store.list_all(wh):
        try:
            auto = parse(row["definition"])
        except Exception:  # a definition of an older version: shown by name, without its steps
            auto = None
        aid = f"action:{row['name']}"
        steps = []
        if auto is not None:
            for index, step, _ in auto.actions():
                channel = "email" if step.kind == "send_email" else "webhook"
                to = urlsplit(str(step.options.get("url", ""))).hostname if channel == "webhook" else "the profile"
                steps.append({"step": index, "channel": channel, "purpose": step.purpose, "to": to})
        nodes[aid] = Node(
            aid,
            "action",
            row["name"],
            f"automation {row['name']}",
            str(row.get("description") or (auto.description if auto else "") or ""),
            4,
            {"status": row.get("status"), "steps": steps},
        )
        if auto is not None:
            if auto.trigger.audience:
                edge("table:audience_memberships", aid, "triggers", f"audience {auto.trigger.audience}")
            else:
                edge("table:events", aid, "triggers", f"event {auto.trigger.event}")
        edge("job:automations", aid, "runs")
        for s in steps:
            target = f"destination:{s['channel']}"
            if target in nodes:
                label = f"{s['purpose'] or 'no purpose'}" + (f" to {s['to']}" if s["channel"] == "webhook" else "")
                edge(aid, target, "sends", label)
