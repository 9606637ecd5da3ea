"""An instant with no UTC date (the year 1 or 9999 at a day's edge, with an offset) is refused naming its
field, on every route that takes one: it once reached ``astimezone`` and answered 500 (the privacy fuzz test
found it for the consent's ``valid_from``)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from tests.api.live import LiveApp, live_app

BEFORE_YEAR_1 = "0001-01-01T00:00:00+05:00"
AFTER_YEAR_9999 = "9999-12-31T23:00:00-05:00"


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveApp]:
    with live_app(tmp_path_factory.mktemp("edge") / "data") as served:
        yield served


@pytest.mark.parametrize("instant", [BEFORE_YEAR_1, AFTER_YEAR_9999])
@pytest.mark.parametrize(
    ("method", "path", "field", "who"),
    [
        ("GET", "/v1/journeys/funnel?steps=A&steps=B&since={t}", "since", "read"),
        ("GET", "/v1/journeys/paths?anchor=A&until={t}", "until", "read"),
        ("GET", "/v1/journeys/retention?since={t}", "since", "read"),
        ("GET", "/v1/attribution?since={t}", "since", "read"),
        ("GET", "/v1/scores/entries?since={t}", "since", "read"),
        ("GET", "/v1/audit?since={t}", "since", "admin"),
        ("POST", "/v1/consent", "valid_from", "admin"),
    ],
)
def test_an_instant_out_of_range_in_utc_is_refused_naming_its_field(
    live: LiveApp, method: str, path: str, field: str, who: str, instant: str
) -> None:
    body = None
    if method == "POST":
        body = {"identifier": "u-1", "purposes": ["marketing_email"], "granted": True, "valid_from": instant}
    response = live.http.request(method, path.format(t=instant.replace("+", "%2B")), headers=live.auth(who), json=body)
    assert response.status_code == 400, response.text[:300]
    error = response.json()["error"]
    assert error["message"].startswith(f"{field}: ") and "out of range in UTC" in error["message"], error
