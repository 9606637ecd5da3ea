"""No endpoint takes a file path or SQL from an HTTP client (issue 21, part 7).

Every parameter and every request-body field of the OpenAPI spec (nested models and lists included), and
the parameters of the routes the spec hides, are read by name: a name that says path, file, directory,
output, SQL, query, URL, command or template fails the test unless ``ALLOWED`` lists it with the reason it
is safe. (The CLI relay, ``POST /v1/cli/run``, runs command lines with paths, and is no HTTP client's: it
answers only on loopback to the holder of the data directory's 0600 token file; tests/cli cover it.)
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from tests.api.live import api_routes

from touchpoint.api.app import create_app
from touchpoint.config import Settings

SUSPICIOUS = re.compile(
    r"(^|_)(path|paths|file|files|filename|dir|directory|folder|out|output|sql|query|statement|url|uri|"
    r"location|dest|destination|template|command|cmd|exec|script)($|_)"
)
#: (method, path, field) -> why it is not a file path or SQL run as given.
ALLOWED = {
    ("POST", "/v1/attribution/paths", "body.rows[].path"): "a customer path of channel names, e.g. "
    "'Email > Search'; it is parsed into steps, never opened",
    ("POST", "/v1/query", "body.sql"): "the documented SQL sandbox: parsed, refused unless one read of the "
    "warehouse's own tables (no files, URLs, extensions, writes, credential tables), rolled back, timed out "
    "(touchpoint.warehouse.sandbox, tests/cli/test_query_sandbox.py)",
}


def words(name: str) -> str:
    """``outputDir`` -> ``output_dir``; ``X-File-Name`` -> ``x_file_name``."""
    return re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name).replace("-", "_").lower()


def _fields(schema: Any, where: str, components: dict[str, Any], seen: frozenset[str]) -> list[tuple[str, str]]:
    if not isinstance(schema, dict):
        return []
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        return [] if name in seen else _fields(components[name], where, components, seen | {name})
    found: list[tuple[str, str]] = []
    for key in ("allOf", "anyOf", "oneOf"):
        for part in schema.get(key, []):
            found += _fields(part, where, components, seen)
    if "items" in schema:
        found += _fields(schema["items"], f"{where}[]", components, seen)
    if isinstance(schema.get("additionalProperties"), dict):
        found += _fields(schema["additionalProperties"], f"{where}{{}}", components, seen)
    for name, sub in (schema.get("properties") or {}).items():
        found.append((f"{where}.{name}", name))
        found += _fields(sub, f"{where}.{name}", components, seen)
    return found


def spec_fields(spec: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    """(method, path, where, name) of every parameter and body field in the spec."""
    components = spec.get("components", {}).get("schemas", {})
    out = []
    for path, operations in spec["paths"].items():
        for method, op in operations.items():
            named = [(f"{p['in']}.{p['name']}", p["name"]) for p in op.get("parameters", [])]
            for content in op.get("requestBody", {}).get("content", {}).values():
                named += _fields(content.get("schema", {}), "body", components, frozenset())
            out += [(method.upper(), path, where, name) for where, name in named]
    return out


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Any:
    return create_app(Settings(data_dir=tmp_path_factory.mktemp("spec") / "data"))


def test_no_parameter_or_body_field_is_a_path_or_sql(app: Any) -> None:
    fields = spec_fields(app.openapi())
    assert len(fields) > 100  # the walk reaches nested bodies, not only top-level parameters
    flagged = {(m, p, where) for m, p, where, name in fields if SUSPICIOUS.search(words(name))}
    unexplained = sorted(flagged - set(ALLOWED))
    assert not unexplained, f"an endpoint takes what looks like a file path or SQL: {unexplained}"
    assert set(ALLOWED) <= flagged, "an allowed field no longer exists: remove it from ALLOWED"


def test_the_routes_the_spec_hides_take_no_path_or_sql_either(app: Any) -> None:
    hidden = [r for r in api_routes(app.routes) if not r.include_in_schema]
    assert hidden, "the collector's short paths and the dashboard are hidden routes"
    flagged = []
    for route in hidden:
        dependant = route.dependant
        params = [*dependant.path_params, *dependant.query_params, *dependant.header_params, *dependant.body_params]
        for sub in dependant.dependencies:
            params += [*sub.query_params, *sub.body_params, *sub.header_params]
        flagged += [f"{route.path} {p.name}" for p in params if SUSPICIOUS.search(words(p.alias or p.name))]
    assert not flagged


def test_the_name_check_catches_what_it_is_for() -> None:
    for name in ("path", "file", "outputDir", "out", "sql", "query", "X-File-Name", "template_path", "dest"):
        assert SUSPICIOUS.search(words(name)), name
    for name in ("identifier", "profile", "outbox_ids", "format", "purposes", "since", "name"):
        assert not SUSPICIOUS.search(words(name)), name
