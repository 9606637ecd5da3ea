"""Access and portability (GDPR Art. 15 and 20): everything held about one person, machine-readable.

:func:`export` walks the registry of personal tables (:func:`touchpoint.privacy.people.personal_tables`)
and returns, for the person an identifier names, every row of every such table that holds them,
with the logic behind what was derived (prediction runs, score, audience and automation
definitions), where their data came from (sources) and how long each category is kept. The layout
is documented in docs/privacy.md ("Access export") and is stable: ``format`` and ``version`` say
which one a file follows. Rows are sorted, so two exports of the same data differ only in
``exported_at``.

>>> from touchpoint.warehouse import Warehouse
>>> from touchpoint.collect.store import write_messages
>>> wh = Warehouse.open("duckdb://:memory:")
>>> _ = write_messages(wh, [{"type": "track", "userId": "u-1", "event": "Signed Up", "properties": {"plan": "pro"}}])
>>> doc = export(wh, "u-1")
>>> doc["tables"]["events"]["count"], doc["tables"]["events"]["rows"][0]["properties"]
(1, {'plan': 'pro'})
"""

from __future__ import annotations

import contextlib
import io
import json
import zipfile
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

import ibis.expr.datatypes as dt
import ibis.expr.types as ir
import msgspec

from touchpoint.privacy.people import Person, find, personal_tables, rows
from touchpoint.warehouse import Warehouse, schema

FORMAT = "touchpoint-privacy-export"
VERSION = 1
FORMATS = ("json", "zip")
KEPT = "kept until erased"
#: Definitions that explain a derived row: (personal table, its column naming the definition, definitions' table).
EXPLAINED_BY = (
    (schema.SCORE_RESULTS.name, "score", schema.SCORES.name),
    (schema.SCORE_BANDS.name, "score", schema.SCORES.name),
    (schema.AUDIENCE_MEMBERSHIPS.name, "audience", schema.AUDIENCES.name),
    (schema.AUTOMATION_ENTRIES.name, "automation", schema.AUTOMATIONS.name),
    (schema.AUTOMATION_OUTBOX.name, "automation", schema.AUTOMATIONS.name),
)


def _json_value(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return msgspec.json.decode(value)
        except msgspec.DecodeError:
            return value
    return value


def _records(wh: Warehouse, spec: schema.TableSpec, expr: ir.Table) -> list[dict[str, Any]]:
    """The rows of ``expr`` as dicts, JSON columns decoded, in a stable order (every column, in the engine)."""
    json_columns = [n for n, t in spec.schema.items() if isinstance(t, dt.JSON) and n in expr.columns]
    order = [expr[c].cast("string") if c in json_columns else expr[c] for c in expr.columns]
    got = wh.to_arrow(expr.order_by(order)).to_pylist()
    for row in got:
        for c in json_columns:
            row[c] = _json_value(row[c])
    return got


def _linked_by(spec: schema.TableSpec) -> dict[str, Any]:
    p = spec.personal
    assert p is not None
    fields = {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(p).items() if v and k != "none"}
    return fields


def _retention(settings: Any) -> dict[str, str]:
    """Retention per table: the settings' rule when one exists (``retention``), else :data:`KEPT`."""
    rules = getattr(settings, "retention", None) or {}
    if not isinstance(rules, dict):
        rules = getattr(rules, "model_dump", lambda: {})() or {}
    out = {}
    for spec in personal_tables():
        rule = rules.get(spec.name)
        out[spec.name] = str(rule) if rule not in (None, "") else KEPT
    return out


def _logic(wh: Warehouse, tables: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """What explains the derived rows: the prediction runs and the definitions they came from."""
    present = set(wh.tables())
    out: dict[str, Any] = {}
    runs = {(r.get("model"), r.get("run_at")) for r in tables.get(schema.PREDICTIONS.name, {}).get("rows", [])}
    if runs and schema.PREDICTION_RUNS.name in present:
        t = wh.table(schema.PREDICTION_RUNS.name)
        models = sorted({m for m, _ in runs if m})
        got = _records(wh, schema.PREDICTION_RUNS, t.filter(t.model.isin(models)))
        out["prediction_runs"] = [r for r in got if (r.get("model"), r.get("run_at")) in runs]
    for table, column, definitions in EXPLAINED_BY:
        names = sorted({r[column] for r in tables.get(table, {}).get("rows", []) if r.get(column)})
        if not names or definitions not in present:
            continue
        spec = next(s for s in schema.all_tables() if s.name == definitions)
        d = wh.table(definitions)
        got = _records(wh, spec, d.filter(d.name.isin(names)))
        for r in got:
            if isinstance(r.get("definition"), str):
                with contextlib.suppress(ValueError):
                    r["definition"] = json.loads(r["definition"])
        known = {json.dumps(r, sort_keys=True, default=str) for r in out.get(definitions, [])}
        out[definitions] = out.get(definitions, []) + [
            r for r in got if json.dumps(r, sort_keys=True, default=str) not in known
        ]
    return out


def _sources(wh: Warehouse, tables: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """Where the data came from: per source, the person's events and quarantined inputs, first and last."""
    seen: dict[str, dict[str, Any]] = {}
    for table in (schema.EVENTS.name, schema.QUARANTINE.name):
        for r in tables.get(table, {}).get("rows", []):
            name = r.get("source") or "(none)"
            s = seen.setdefault(name, {"source": name, "events": 0, "quarantined": 0, "first": None, "last": None})
            s["events" if table == schema.EVENTS.name else "quarantined"] += 1
            at = r.get("received_at")
            if at:
                s["first"] = min(s["first"] or at, at)
                s["last"] = max(s["last"] or at, at)
    return [seen[k] for k in sorted(seen)]


def collect(wh: Warehouse, person: Person) -> dict[str, dict[str, Any]]:
    """``{table: {"description", "linked_by", "present", "count", "rows"}}`` for every personal table."""
    present = set(wh.tables())
    out: dict[str, dict[str, Any]] = {}
    for spec in personal_tables():
        entry: dict[str, Any] = {"description": spec.doc, "linked_by": _linked_by(spec), "present": False}
        found: list[dict[str, Any]] = []
        if spec.name in present:
            entry["present"] = True
            found = _records(wh, spec, rows(wh, spec, person))
        entry["count"] = len(found)
        entry["rows"] = found
        out[spec.name] = entry
    return out


def export(wh: Warehouse, identifier: str, *, settings: Any = None) -> dict[str, Any]:
    """Everything held about the person ``identifier`` names (layout: docs/privacy.md, "Access export").

    Raises :class:`~touchpoint.errors.NotFound` when nothing holds the identifier.
    """
    person = find(wh, identifier)
    tables = collect(wh, person)
    return {
        "format": FORMAT,
        "version": VERSION,
        "exported_at": datetime.now(UTC).replace(microsecond=0).isoformat(),
        "subject": person.to_dict(),
        "tables": tables,
        "logic": _logic(wh, tables),
        "sources": _sources(wh, tables),
        "retention": _retention(settings),
    }


def to_json(doc: dict[str, Any]) -> bytes:
    """The export as one JSON document (UTF-8, sorted keys, indented; times in ISO 8601)."""
    return msgspec.json.format(msgspec.json.encode(doc, order="sorted", enc_hook=str), indent=2) + b"\n"


def to_zip(doc: dict[str, Any]) -> bytes:
    """The export as a ZIP: ``manifest.json`` (everything but the rows, with each table's count) and
    ``tables/<name>.json`` (that table's rows), for files too large to open as one document."""
    manifest = {k: v for k, v in doc.items() if k != "tables"}
    manifest["tables"] = {name: {k: v for k, v in t.items() if k != "rows"} for name, t in doc["tables"].items()}
    buffer = io.BytesIO()
    stamp = (1980, 1, 1, 0, 0, 0)  # fixed member times: the same data gives the same bytes
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(zipfile.ZipInfo("manifest.json", stamp), to_json(manifest), zipfile.ZIP_DEFLATED)
        for name, table in sorted(doc["tables"].items()):
            archive.writestr(
                zipfile.ZipInfo(f"tables/{name}.json", stamp), to_json({"rows": table["rows"]}), zipfile.ZIP_DEFLATED
            )
    return buffer.getvalue()


def render(doc: dict[str, Any], fmt: str) -> bytes:
    """The export in ``fmt`` (:data:`FORMATS`)."""
    from touchpoint.errors import InvalidInput

    if fmt not in FORMATS:
        raise InvalidInput(f"export format {fmt!r} is not known", hint="use --format json or --format zip")
    return to_json(doc) if fmt == "json" else to_zip(doc)
