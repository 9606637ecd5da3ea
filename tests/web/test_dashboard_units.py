"""The dashboard's parts without a server: users and sessions, the CLI, the rate limit, charts, templates."""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.conftest import run_cli

from touchpoint import users
from touchpoint.errors import AlreadyExists, InvalidInput, NotFound, TooManyAttempts
from touchpoint.warehouse import Warehouse
from touchpoint.web import charts
from touchpoint.web.auth import RateLimit
from touchpoint.web.render import TEMPLATES, environment


def test_passwords_are_slow_salted_hashes(warehouse: Warehouse) -> None:
    user = users.create_user(warehouse, "ada", "a long password", "analyst")
    assert user.role == "analyst" and user.status == "active"
    stored = warehouse.to_arrow(warehouse.table("users")).to_pylist()[0]["password_hash"]
    assert stored.startswith("scrypt$32768$8$1$") and "a long password" not in stored
    assert users.hash_password("same") != users.hash_password("same")  # salted
    assert users.verify_password("same", users.hash_password("same"))
    assert not users.verify_password("same", "garbage") and not users.verify_password("same", "md5$x$y$z$a$b")
    assert users.authenticate(warehouse, "ada", "wrong password") is None
    assert users.authenticate(warehouse, "nobody", "a long password") is None


def test_user_rules_name_the_problem(warehouse: Warehouse) -> None:
    with pytest.raises(InvalidInput, match="at least 10"):
        users.create_user(warehouse, "ada", "short", "viewer")
    with pytest.raises(InvalidInput, match="role 'root'"):
        users.create_user(warehouse, "ada", "a long password", "root")
    with pytest.raises(InvalidInput, match="not allowed"):
        users.create_user(warehouse, "../ada", "a long password", "viewer")
    users.create_user(warehouse, "ada", "a long password", "viewer")
    with pytest.raises(AlreadyExists):
        users.create_user(warehouse, "ada", "another password", "admin")
    with pytest.raises(NotFound, match="users list"):
        users.disable_user(warehouse, "nobody")


def test_sessions_end_on_sign_out_expiry_and_disable(warehouse: Warehouse) -> None:
    users.create_user(warehouse, "ada", "a long password", "admin")
    token, session = users.start_session(warehouse, "ada", "admin", via="password")
    assert users.session_for(warehouse, token) == session
    assert users.session_for(warehouse, token + "x") is None
    users.end_session(warehouse, token)
    assert users.session_for(warehouse, token) is None
    key_token, _ = users.start_session(warehouse, "key:demo-read", "viewer", via="api_key")
    token, _ = users.start_session(warehouse, "ada", "admin", via="password")
    users.disable_user(warehouse, "ada")
    assert users.session_for(warehouse, token) is None
    assert users.session_for(warehouse, key_token) is not None  # a key's session ends with the key's revocation
    stored = warehouse.to_arrow(warehouse.table("web_sessions")).column("token_hash").to_pylist()
    assert token not in stored and users.token_hash(token) in stored


def test_roles_are_ordered() -> None:
    assert users.allows("admin", "analyst") and users.allows("analyst", "analyst")
    assert not users.allows("viewer", "analyst") and not users.allows("unknown", "viewer")
    assert users.ROLE_FOR_SCOPE == {"read": "viewer", "admin": "admin"}


def test_users_cli_create_list_disable(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    data = str(tmp_path / "data")
    monkeypatch.setattr(sys, "stdin", io.StringIO("a long password\n"))
    code, out, _ = run_cli(
        capsys, "users", "create", "ada", "--role", "admin", "--password-stdin", "--data", data, "--json"
    )
    assert code == 0 and json.loads(out)["role"] == "admin"
    monkeypatch.setattr(sys, "stdin", io.StringIO("\n"))
    code, out, _ = run_cli(capsys, "users", "create", "bob", "--password-stdin", "--data", data, "--json")
    assert code == 1 and json.loads(out)["error"]["code"] == "invalid_input"
    monkeypatch.setattr(sys, "stdin", io.StringIO("a long password\n"))
    code, out, _ = run_cli(capsys, "users", "create", "bob", "--role", "owner", "--password-stdin", "--data", data)
    assert code == 1
    code, out, _ = run_cli(capsys, "users", "list", "--data", data, "--json")
    assert [u["name"] for u in json.loads(out)] == ["ada"] and "password" not in out
    code, out, _ = run_cli(capsys, "users", "disable", "ada", "--data", data, "--json")
    assert code == 0 and json.loads(out)["status"] == "disabled"
    code, out, _ = run_cli(capsys, "users", "disable", "nobody", "--data", data, "--json")
    assert code == 1 and json.loads(out)["error"]["code"] == "not_found"


def test_rate_limit_counts_per_user_and_per_address() -> None:
    limit = RateLimit(per_user=2, per_address=3, window=60)
    limit.failed("ip:a", "user:x")
    limit.failed("ip:a", "user:x")
    with pytest.raises(TooManyAttempts) as caught:
        limit.check("ip:a", "user:x")
    assert 0 < caught.value.retry_after <= 61
    limit.check("ip:a", "user:y")  # another user from the same address
    limit.failed("ip:a", "user:y")
    with pytest.raises(TooManyAttempts):
        limit.check("ip:a", "user:z")  # the address is now over its limit
    assert RateLimit(per_user=1, window=0.0)._limit("user:q") == 1


def test_every_template_compiles_and_ships_in_the_package() -> None:
    env = environment()
    names = sorted(p.name for p in TEMPLATES.glob("*.html"))
    assert {"base.html", "overview.html", "signin.html", "profile.html"} <= set(names)
    for name in names:
        env.get_template(name)
    assert (TEMPLATES.parent / "static" / "style.css").stat().st_size > 1000


numbers = st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=True, width=32), st.integers(-(10**9), 10**9))


@settings(max_examples=60, deadline=None)
@given(
    labels=st.lists(st.text(max_size=30), min_size=0, max_size=30),
    values=st.lists(numbers, min_size=30, max_size=30),
    lows=st.lists(numbers, min_size=30, max_size=30),
)
def test_charts_draw_any_numbers_and_escape_any_label(labels: list[str], values: list, lows: list) -> None:
    svg = charts.bars(labels, values[: len(labels)], lows=lows[: len(labels)], highs=values[: len(labels)], title="<t>")
    assert svg.startswith("<svg") and svg.endswith("</svg>") and "<t>" not in svg and "nan" not in svg.lower()
    line = charts.lines([str(i) for i in range(len(labels))], {"<s>": values[: len(labels)]}, title="x")
    assert "<s>" not in line and "inf" not in line.lower()
    assert charts.spark(values, title="s").count("<svg") <= 1


def _page(template: str, data: dict) -> str:
    from datetime import UTC, datetime

    from touchpoint.web.snapshot import Entry

    entry = Entry(data, None, datetime.now(UTC), 0.1, ())
    ctx = {"title": "t", "entry": entry, "section": "s", "session": None, "nav": [], "path": "/", "csrf": ""}
    return environment().get_template(template).render(can=lambda _role: False, **ctx)


def test_a_model_that_failed_its_diagnostics_shows_why_not_numbers() -> None:
    problems = ["chains disagree: R-hat 1.2 for roi[video] (limit 1.05)", "too few effective draws: ESS 34"]
    html = _page("mmm.html", {"status": "failed", "reliable": False, "problems": problems, "tables": {}})
    assert "The model failed its diagnostics" in html and all(p in html for p in problems)
    assert "ROMI per channel" not in html and "case.pdf" not in html
    weekly = {"columns": ["week", "revenue", "new_customers", "spend"], "rows": [["2026-01-05", 10.0, 1, 5.0]]}
    overview = {
        "customers": 1,
        "weeks": ["2026-01-05"],
        "revenue_total": 10.0,
        "spend_total": 5.0,
        "tables": {"weekly": weekly},
        "predictions": {"failed": "ABNORMAL_TERMINATION_IN_LNSRCH", "runs": []},
        "mmm": {"status": "failed", "reliable": False, "problems": ["too few effective draws"]},
    }
    html = _page("overview.html", overview)
    assert html.count("Model failed:</strong> ABNORMAL_TERMINATION_IN_LNSRCH") == 2  # active customers and equity
    assert "Model failed its diagnostics:</strong> too few effective draws" in html and "ROMI <strong>" not in html


def test_the_journeys_section_of_a_shop_without_page_views(warehouse: Warehouse, tmp_path: Path) -> None:
    from touchpoint.collect.store import write_messages
    from touchpoint.web.sections import journeys

    write_messages(
        warehouse, [{"type": "track", "event": "Order Completed", "userId": "u1", "properties": {"revenue": 5}}]
    )
    funnel = journeys(warehouse, tmp_path)["tables"]["funnel"]
    first = dict(zip(funnel["columns"], funnel["rows"][0], strict=True))
    assert first["people"] == 0 and first["overall_low"] is None and first["overall_high"] is None
