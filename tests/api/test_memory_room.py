"""A memory ceiling too close to what the server holds at rest is named at start, with the value that leaves room."""

from __future__ import annotations

import logging

import pytest

from touchpoint.api.memory import MB, MemoryCeiling


@pytest.mark.parametrize(
    ("ceiling_mb", "at_rest_mb", "warned"), [(300, 274, True), (420, 274, False), (4000, 3560, True)]
)
def test_a_ceiling_without_room_for_requests_is_named_at_start(
    caplog: pytest.LogCaptureFixture, ceiling_mb: int, at_rest_mb: int, warned: bool
) -> None:
    with caplog.at_level(logging.WARNING, logger="touchpoint.api"):
        MemoryCeiling(ceiling_mb * MB, rss=lambda: at_rest_mb * MB)
    said = [r.getMessage() for r in caplog.records if "almost no room" in r.getMessage()]
    assert bool(said) == warned
    if warned:
        enough = int(said[0].rsplit(" ", 1)[1])
        assert f"memory_ceiling_mb={ceiling_mb}" in said[0] and f"{at_rest_mb} MB at rest" in said[0]
        MemoryCeiling(enough * MB, rss=lambda: at_rest_mb * MB)  # the advice is enough: no second warning
        assert len([r for r in caplog.records if "almost no room" in r.getMessage()]) == 1
