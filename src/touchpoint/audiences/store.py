"""Saved audience definitions: create, change (a new version each time), read, delete.

>>> from touchpoint.warehouse import Warehouse
>>> wh = Warehouse.open("duckdb://:memory:")
>>> save(wh, "swedes", {"trait": "country", "eq": "SE"})["version"]
1
>>> save(wh, "swedes", {"trait": "country", "in": ["SE", "FI"]}, replace=True)["version"]
2
>>> [a["name"] for a in list_all(wh)]
['swedes']
>>> try:
...     save(wh, "loop", {"audience": "loop"})
... except InvalidInput as exc:
...     print(exc.message)
$.audience: audiences refer to each other in a cycle: loop -> loop
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

import pyarrow as pa

from touchpoint.audiences import definition as d
from touchpoint.errors import AlreadyExists, InvalidInput, NotFound
from touchpoint.warehouse import Warehouse, schema
from touchpoint.warehouse.clock import utcnow

TABLE = schema.AUDIENCES.name
VERSIONS = schema.AUDIENCE_VERSIONS.name
NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")


now = utcnow  # the warehouse's clock (touchpoint.warehouse.clock)


def check_name(name: str) -> str:
    if not isinstance(name, str) or not NAME.match(name):
        raise InvalidInput(
            f"audience name {name!r} is not allowed",
            hint="use 1-64 lower-case letters, digits, '-' or '_', starting with a letter or digit",
        )
    return name


def _row(wh: Warehouse, name: str) -> dict[str, Any] | None:
    t = wh.table(TABLE)
    rows = wh.to_arrow(t.filter(t.name == name)).to_pylist()
    return rows[0] if rows else None


def get(wh: Warehouse, name: str) -> dict[str, Any]:
    """One saved audience: name, description, definition (parsed JSON), version, created/updated."""
    row = _row(wh, name)
    if row is None:
        raise NotFound(f"no audience named {name!r}", hint="list them with `touchpoint audiences list`")
    return {**row, "definition": json.loads(row["definition"])}


def list_all(wh: Warehouse) -> list[dict[str, Any]]:
    t = wh.table(TABLE)
    return [{**r, "definition": json.loads(r["definition"])} for r in wh.to_arrow(t.order_by("name")).to_pylist()]


def lookup(wh: Warehouse, override: dict[str, d.Node] | None = None) -> Any:
    """A function from an audience name to its parsed definition (None when unknown); ``override``
    replaces stored definitions (a definition being saved is checked against itself)."""
    cache: dict[str, d.Node | None] = dict(override or {})

    def find(name: str) -> d.Node | None:
        if name not in cache:
            row = _row(wh, name)
            cache[name] = None if row is None else d.parse(json.loads(row["definition"]))
        return cache[name]

    return find


def fingerprint(wh: Warehouse, name: str, node: d.Node) -> str:
    """A hash of the definition and of every audience it names, transitively (a change in any of
    them makes the next refresh a full one)."""
    find = lookup(wh, {name: node})
    seen: dict[str, Any] = {}
    todo = [name]
    while todo:
        current = todo.pop()
        if current in seen:
            continue
        target = find(current)
        seen[current] = None if target is None else d.to_dict(target)
        if target is not None:
            todo.extend(d.audiences_named(target))
    return hashlib.sha256(json.dumps(seen, sort_keys=True).encode()).hexdigest()[:16]


def validate(wh: Warehouse, name: str, definition: Any) -> d.Node:
    """Parse ``definition`` and compile it (names, types, cycles) without running it."""
    from touchpoint.audiences.compile import compile_members

    node = d.parse(definition)
    compile_members(wh, node, now=now(), lookup=lookup(wh, {name: node}), name=name)
    return node


def save(
    wh: Warehouse, name: str, definition: Any, *, description: str | None = None, replace: bool = False
) -> dict[str, Any]:
    """Save a definition under ``name``; with ``replace`` an existing one gets a new version."""
    check_name(name)
    node = validate(wh, name, definition)
    text = json.dumps(d.to_dict(node), sort_keys=True)
    at = now()
    with wh.write() as tx:
        old = _row(wh, name)
        if old is not None and not replace:
            raise AlreadyExists(
                f"an audience named {name!r} exists (version {old['version']})",
                hint="change it with `touchpoint audiences create NAME --definition FILE --replace`",
            )
        version = 1 if old is None else int(old["version"]) + 1
        created = at if old is None else old["created_at"]
        desc = description if description is not None or old is None else old["description"]
        if old is not None:
            tx.delete(TABLE, "name", [name])
        tx.append(
            TABLE,
            pa.Table.from_pylist(
                [
                    {
                        "name": name,
                        "description": desc,
                        "definition": text,
                        "version": version,
                        "created_at": created,
                        "updated_at": at,
                    }
                ],
                schema=schema.AUDIENCES.schema.to_pyarrow(),
            ),
        )
        tx.append(
            VERSIONS,
            pa.Table.from_pylist(
                [{"name": name, "version": version, "definition": text, "created_at": at, "deleted_at": None}],
                schema=schema.AUDIENCE_VERSIONS.schema.to_pyarrow(),
            ),
        )
    return get(wh, name)


def referrers(wh: Warehouse, name: str) -> list[str]:
    """The saved audiences whose definitions name ``name``."""
    return [
        a["name"] for a in list_all(wh) if name in d.audiences_named(d.parse(a["definition"])) and a["name"] != name
    ]


def delete(wh: Warehouse, name: str) -> dict[str, Any]:
    """Delete an audience, its memberships and state (its versions stay, marked deleted)."""
    get(wh, name)
    users = referrers(wh, name)
    if users:
        raise InvalidInput(
            f"audience {name!r} is used by {', '.join(users)}", hint="change or delete those audiences first"
        )
    at = now()
    with wh.write() as tx:
        tx.delete(TABLE, "name", [name])
        tx.delete(schema.AUDIENCE_STATE.name, "audience", [name])
        tx.delete(schema.AUDIENCE_MEMBERSHIPS.name, "audience", [name])
        tx.update(VERSIONS, {"deleted_at": at}, key="name", value=name)
    return {"deleted": name, "at": at}


def versions(wh: Warehouse, name: str) -> list[dict[str, Any]]:
    t = wh.table(VERSIONS)
    rows = wh.to_arrow(t.filter(t.name == name).order_by("version")).to_pylist()
    return [{**r, "definition": json.loads(r["definition"])} for r in rows]
