"""Hostile input against the consent and privacy endpoints (issue 21, part 7).

``POST /v1/consent``, ``GET|POST /v1/privacy/export``, ``POST /v1/privacy/erase`` and
``GET /v1/privacy/erasures`` on a real server get valid requests with one field made hostile (invalid
UTF-8, lone surrogates, nesting thousands deep, 1e400 and 20-digit integers, odd dates, strings of
100,000 characters, wrong types, unknown fields) and whole bodies that are not JSON objects. Never a
5xx; a refusal is the one error shape and, when the input is at fault (400/422), its message names the
field; and nothing acknowledged is lost: every consent answered 200 is in the person's history at the
end, and every erasure answered 200 leaves the person unknown.

Budget: about ten seconds (``TP_FUZZ_EXAMPLES`` scales it, as in tests/collect/test_fuzz_hostile.py).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import hypothesis.strategies as st
import pytest
from hypothesis import HealthCheck, event, given, settings
from tests.api.live import LiveApp, live_app
from tests.collect.hostile import Verbatim, dump

EXAMPLES = int(os.environ.get("TP_FUZZ_EXAMPLES", "0"))
PEOPLE = [f"fuzz-user-{i}" for i in range(6)]


def budget(default: int) -> Any:
    return settings(
        max_examples=max(default, EXAMPLES * default // 50) if EXAMPLES else default,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )


# -- hostile values -------------------------------------------------------------------------------------
bad_text = st.sampled_from(
    [
        Verbatim(b'"a\xffz"'),
        Verbatim(b'"\xc3"'),
        Verbatim(b'"\xed\xa0\x80"'),
        Verbatim(b'"\\ud800"'),
        Verbatim(b'"x\\udfff"'),
        "a\x00b",
        "\u202eevil",
        "",
    ]
)
deep = st.sampled_from([100, 1000, 5000]).map(lambda n: Verbatim(b"[" * n + b"]" * n))
numbers = st.sampled_from(
    [Verbatim(b"1e400"), Verbatim(b"-1e400"), Verbatim(b"1" + b"0" * 30), 2**64, -(2**63) - 1, 1e308, float("-0")]
)
odd_dates = st.sampled_from(
    [
        "0001-01-01T00:00:00Z",
        "9999-12-31T23:59:59-05:00",
        "2026-02-30T00:00:00Z",
        "2026-13-01",
        "1969-12-31T23:59:59Z",
        "now",
        "",
        "2026-01-01T00:00:00+25:00",
        1e20,
        -1,
        "20261201",
    ]
)
huge = st.sampled_from([1001, 100_000]).map(lambda n: "h" * n)
wrong_types = st.sampled_from([[1, 2], {"a": 1}, True, None, 3.5, "text", [], {}])
hostile = st.one_of(bad_text, deep, numbers, odd_dates, huge, wrong_types)

CONSENT_FIELDS = ["identifier", "type", "purposes", "purpose", "granted", "valid_from", "valid_until", "proof"]


@st.composite
def consent_requests(draw: st.DrawFn) -> tuple[bytes, str | None]:
    body: dict[str, Any] = {
        "identifier": draw(st.sampled_from(PEOPLE)),
        "purposes": draw(st.lists(st.sampled_from(["analytics", "marketing_email", "advertising"]), min_size=1)),
        "granted": draw(st.booleans()),
    }
    if draw(st.booleans()):
        body["valid_from"] = "2026-06-01T00:00:00Z"
    field = draw(st.sampled_from([*CONSENT_FIELDS, "unknown", None]))
    event(f"consent field: {field}")
    if field == "unknown":
        body["surprise_field"] = draw(hostile)
    elif field is not None:
        body[field] = draw(hostile)
    return dump(body), field


whole_bodies = st.sampled_from(
    [b"", b"not json", b"[]", b"null", b'"text"', b"1e400", b"{" * 3000, b"[" * 5000 + b"]" * 5000, b'{"a":\xff}']
)


# -- the server --------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveApp]:
    with live_app(tmp_path_factory.mktemp("privacy-fuzz") / "data") as served:
        batch = [
            {"type": "identify", "userId": user, "traits": {"email": f"{user}@example.test"}, "messageId": f"id-{user}"}
            for user in PEOPLE
        ]
        assert served.http.post("/v1/batch", headers=served.auth("write"), json={"batch": batch}).status_code == 200
        assert served.http.post("/v1/profiles/update", headers=served.auth("admin")).status_code == 200
        served.accepted: list[dict[str, Any]] = []  # type: ignore[attr-defined]
        yield served


def _judge(response: Any, field: str | None) -> None:
    assert response.status_code < 500, response.text[:500]
    if response.status_code < 400:
        return
    body = response.json()
    assert body["success"] is False and set(body["error"]) == {"code", "message", "hint"}
    if response.status_code in (400, 422) and field is not None:
        said = f"{body['error']['message']} {body['error']['hint']}"
        assert field in said or field.replace("_", " ") in said or "body" in said, f"{field}: {said[:300]}"


@budget(80)
@given(request=consent_requests())
def test_consent_never_fails_and_names_the_field(live: LiveApp, request: tuple[bytes, str | None]) -> None:
    content, field = request
    headers = {**live.auth("admin"), "Content-Type": "application/json"}
    answer = live.http.post("/v1/consent", headers=headers, content=content)
    _judge(answer, None if field == "unknown" else field)
    if field == "unknown":
        assert answer.status_code in (400, 413, 422) and "surprise_field" in answer.text
    if answer.status_code == 200:
        live.accepted.extend(answer.json()["recorded"])  # type: ignore[attr-defined]


@budget(40)
@given(content=whole_bodies, path=st.sampled_from(["/v1/consent", "/v1/privacy/export", "/v1/privacy/erase"]))
def test_bodies_that_are_not_json_objects_are_refused(live: LiveApp, content: bytes, path: str) -> None:
    headers = {**live.auth("admin"), "Content-Type": "application/json"}
    answer = live.http.post(path, headers=headers, content=content)
    assert 400 <= answer.status_code < 500, answer.text[:300]
    _judge(answer, None)


@budget(40)
@given(
    value=hostile,
    route=st.sampled_from(["GET export", "POST export", "POST erase", "GET erasures", "format"]),
)
def test_privacy_requests_never_fail(live: LiveApp, value: Any, route: str) -> None:
    admin = live.auth("admin")
    event(route)
    if route == "GET erasures":
        raw = dump(value).decode("utf-8", "replace")[:3000]
        answer = live.http.get("/v1/privacy/erasures", headers=admin, params={"limit": raw})
        field = "limit"
    elif route == "GET export":
        raw = dump(value).decode("utf-8", "replace")[:3000].strip('"')
        answer = live.http.get("/v1/privacy/export", headers=admin, params={"identifier": raw})
        field = "identifier"
    elif route == "format":
        body = dump({"identifier": PEOPLE[0], "format": value})
        answer = live.http.post(
            "/v1/privacy/export", headers={**admin, "Content-Type": "application/json"}, content=body
        )
        field = "format"
    else:
        path = "/v1/privacy/export" if route == "POST export" else "/v1/privacy/erase"
        body = dump({"identifier": value})
        answer = live.http.post(path, headers={**admin, "Content-Type": "application/json"}, content=body)
        field = "identifier"
    _judge(answer, field)
    if route == "POST erase" and answer.status_code == 200:  # an odd identifier that named somebody
        assert live.http.get("/v1/privacy/export", headers=admin, params={"identifier": value}).status_code == 404


def test_every_acknowledged_consent_is_kept_and_the_people_are_whole(live: LiveApp) -> None:
    accepted: list[dict[str, Any]] = live.accepted  # type: ignore[attr-defined]
    assert accepted, "no consent was accepted: the fuzz did not reach the happy path"
    rows = live.warehouse.query("SELECT identifier, purpose, granted, proof FROM consent_history").to_pylist()
    kept = {(r["identifier"], r["purpose"], r["granted"], r["proof"]) for r in rows}
    for entry in accepted:
        assert (entry["identifier"], entry["purpose"], entry["granted"], entry["proof"]) in kept, entry
    for user in PEOPLE:
        found = live.http.get(f"/v1/profiles/{user}/consent", headers=live.auth("read"))
        assert found.status_code == 200, found.text
