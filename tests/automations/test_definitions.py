"""Definitions: the issue's minimal one works as written; hostile ones get errors naming the field."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.conftest import run_cli

from touchpoint.automations.definition import parse
from touchpoint.automations.template import render
from touchpoint.automations.workflow import load_definition
from touchpoint.errors import InvalidDefinition, InvalidInput

from .shop import WELCOME

MINIMAL = """{"name": "welcome", "trigger": {"event": "Signed Up"}, "holdout": 0.1,
 "goal": {"event": "Order Completed", "within_days": 14},
 "steps": [{"send_email": {"subject": "Welcome {{ traits.first_name }}", "text": "Hello!",
                           "purpose": "marketing_email"}}]}"""


def _step(**email: Any) -> dict[str, Any]:
    return {**WELCOME, "steps": [{"send_email": {"subject": "s", "text": "t", "purpose": "marketing_email", **email}}]}


@pytest.mark.parametrize(
    ("definition", "path", "words"),
    [
        (_step(subject="{{ ''.__class__ }}"), "$.steps[0].send_email.subject", "'__class__'"),
        (_step(text="{{ traits['__dict__'] }}"), "$.steps[0].send_email.text", "'__dict__'"),
        (_step(html="{% for x in %}"), "$.steps[0].send_email.html", "does not parse"),
        (_step(purpose="a b"), "$.steps[0].send_email.purpose", "purpose"),
        ({**WELCOME, "holdout": 0}, "$.holdout", "allow_no_holdout"),
        ({**WELCOME, "holdout": 1.5}, "$.holdout", "share"),
        ({**WELCOME, "trigger": {"event": "A", "where": {"x": {"like": 1}}}}, "$.trigger.where.x.like", "operator"),
        ({**WELCOME, "trigger": {"audience": "vip", "on": "stay"}}, "$.trigger.on", "enter"),
        ({**WELCOME, "steps": [{"webhook": {"url": "ftp://x", "purpose": "p"}}]}, "$.steps[0].webhook.url", "http"),
        ({**WELCOME, "steps": [{"wait": {"days": 2}}]}, "$.steps", "only wait"),
        ({**WELCOME, "steps": [{"sms": {}}]}, "$.steps[0]", "unknown step"),
        ({**WELCOME, "reentry": "twice"}, "$.reentry", "once_per_days"),
        ({**WELCOME, "goal": {"event": "Order Completed", "within_days": 0}}, "$.goal.within_days", "from 1"),
        ({**WELCOME, "name": "Bad Name"}, "$.name", "lower-case"),
        ({**WELCOME, "colour": "red"}, "$.colour", "unknown key"),
    ],
)
def test_a_bad_definition_names_the_field(definition: dict[str, Any], path: str, words: str) -> None:
    with pytest.raises(InvalidDefinition) as info:
        parse(definition)
    assert info.value.path == path
    assert words in info.value.message + (info.value.hint or "")


def test_deep_nesting_is_refused_before_it_is_read() -> None:
    deep: Any = "x"
    for _ in range(5000):
        deep = {"a": deep}
    with pytest.raises(InvalidDefinition, match="nested deeper"):
        parse({**WELCOME, "trigger": {"event": "A", "where": deep}})
    with pytest.raises(InvalidInput, match=r"nested too deeply|not valid JSON"):
        load_definition("[" * 100_000 + "]" * 100_000)


def test_the_sandbox_holds_at_render_time_too() -> None:
    with pytest.raises(InvalidInput, match="sandbox"):
        render(
            "{{ traits.name.__class__.__base__ }}", {"traits": {"name": "Ada"}}
        )  # not saved through check(): still stopped


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=30,
)


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(trigger=json_values, steps=json_values, extra=json_values)
def test_any_json_is_accepted_or_refused_with_a_clear_error(trigger: Any, steps: Any, extra: Any) -> None:
    for candidate in ({"name": "x", "trigger": trigger, "steps": steps}, extra, {**WELCOME, "goal": extra}):
        try:
            parse(candidate)
        except InvalidDefinition as exc:
            assert exc.path and exc.path.startswith("$") and exc.message.startswith(exc.path)


def test_the_minimal_definition_works_as_written_from_the_cli(tmp_path: Path, capsys: Any) -> None:
    path = tmp_path / "welcome.json"
    path.write_text(MINIMAL)
    data = str(tmp_path / "data")
    code, out, err = run_cli(capsys, "automations", "create", "--definition", str(path), "--data", data, "--json")
    assert code == 0, err
    assert json.loads(out)["automation"]["definition"]["holdout"] == 0.1
    code, out, _ = run_cli(capsys, "automations", "list", "--data", data, "--json")
    assert [a["name"] for a in json.loads(out)["automations"]] == ["welcome"]
    bad = tmp_path / "bad.json"
    bad.write_text('{"name": "x",')
    code, out, _ = run_cli(capsys, "automations", "create", "--definition", str(bad), "--data", data, "--json")
    err = json.loads(out)
    assert code != 0 and err["error"]["code"] == "invalid_input" and "not valid JSON" in err["error"]["message"]
    code, out, _ = run_cli(capsys, "automations", "create", "--definition", str(path), "--data", data, "--json")
    assert code != 0 and json.loads(out)["error"]["code"] == "already_exists"
    injected = tmp_path / "injected.json"
    injected.write_text(
        MINIMAL.replace("Hello!", "{{ ''.__class__.__mro__[1].__subclasses__() }}").replace("welcome", "w2")
    )
    code, out, _ = run_cli(capsys, "automations", "create", "--definition", str(injected), "--data", data, "--json")
    err = json.loads(out)["error"]
    assert code != 0 and err["code"] == "invalid_definition" and err["message"].startswith("$.steps[0].send_email.text")
