"""One error contract: one class per code, all in one table, one shape from the API and the CLI."""

from __future__ import annotations

import importlib
import json
import pkgutil
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

import touchpoint
from touchpoint.api.errors import install
from touchpoint.cli.main import main
from touchpoint.errors import ERRORS, TouchpointError, _table, error_body, http_status


def _every_error_class() -> set[type[TouchpointError]]:
    for module in pkgutil.walk_packages(touchpoint.__path__, "touchpoint."):
        importlib.import_module(module.name)
    found: set[type[TouchpointError]] = set()
    todo: list[type[TouchpointError]] = [TouchpointError]
    while todo:
        cls = todo.pop()
        found.add(cls)
        todo.extend(cls.__subclasses__())
    return found


def test_every_error_class_is_in_the_table_under_its_own_code() -> None:
    classes = _every_error_class()
    assert {cls for cls in classes if ERRORS.get(cls.code) is not cls} == set()
    assert set(ERRORS.values()) == classes
    assert all(code == cls.code for code, cls in ERRORS.items())


def test_a_code_cannot_have_two_classes() -> None:
    class Twin(TouchpointError):
        code = "not_found"

    with pytest.raises(TypeError, match="'not_found' is used by"):
        _table(*ERRORS.values(), Twin)
    assert http_status(Twin("unregistered")) == 500  # the table decides, not the class


@pytest.mark.parametrize("code", sorted(ERRORS))
def test_the_api_answers_every_error_with_its_status_and_the_one_shape(code: str) -> None:
    app = FastAPI()
    install(app)
    cls = ERRORS[code]

    @app.get("/boom")
    def boom() -> None:
        raise cls("what went wrong", hint="what to do")

    with TestClient(app, raise_server_exceptions=False) as client:
        answer = client.get("/boom")
    assert answer.status_code == cls.http_status
    expected = error_body(code, "what went wrong", "what to do")
    if cls.http_status >= 500:  # a server's failure names the log line that has the details
        expected["request_id"] = answer.headers["x-request-id"]
    assert answer.json() == expected


def test_cli_errors_under_json_are_the_api_shape(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    data = str(tmp_path)
    with pytest.raises(SystemExit) as exit_info:
        main(["quarantine", "show", "nope", "--data", data, "--json"])
    out, err = capsys.readouterr()
    assert exit_info.value.code == 1 and err == ""
    assert json.loads(out) == error_body(
        "not_found", "no quarantine record 'nope'", "`touchpoint quarantine list` shows the ids"
    )
    with pytest.raises(SystemExit) as exit_info:  # a usage error stops the parser before --json is read
        main(["quarantine", "show", "--no-such-option", "--json"])
    out, _ = capsys.readouterr()
    assert exit_info.value.code == 2 and json.loads(out)["error"]["code"] == "invalid_input"
    with pytest.raises(SystemExit) as exit_info:  # without --json: red text on stderr, nothing on stdout
        main(["quarantine", "show", "nope", "--data", data])
    out, err = capsys.readouterr()
    assert exit_info.value.code == 1 and out == "" and "no quarantine record 'nope'" in err


def test_every_error_code_is_documented_with_its_status() -> None:
    text = (Path(__file__).resolve().parents[1] / "docs" / "cli.md").read_text()
    missing = [code for code, cls in ERRORS.items() if f"| `{code}` | {cls.http_status} |" not in text]
    assert missing == [], f"add these codes to the error table in docs/cli.md: {missing}"
