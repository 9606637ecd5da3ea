"""Rule-based attribution models and the model dispatcher."""

from __future__ import annotations

import numpy as np
import pytest

from touchpoint.errors import InvalidInput
from touchpoint.journeys.attribution import MODELS, attribute, compare
from touchpoint.journeys.pathdata import PathData

DATA = PathData.from_lists(
    [["email", "paid_search", "direct"], ["direct"], ["organic_search", "direct", "direct", "email"]],
    conversions=[1, 2, 1],
    value=[100, 20, 50],
)


def credited(model: str, **kw: object) -> dict[str, float]:
    res = attribute(DATA, model, **kw)  # type: ignore[arg-type]
    return {c: round(float(x), 9) for c, x in zip(res.channels, res.conversions, strict=True)}


def test_first_last_and_last_non_direct() -> None:
    assert credited("first") == {"direct": 2, "email": 1, "organic_search": 1, "paid_search": 0}
    assert credited("last") == {"direct": 3, "email": 1, "organic_search": 0, "paid_search": 0}
    # path 1 -> paid_search; path 2 is all direct -> direct; path 3 -> email
    assert credited("last_non_direct") == {"direct": 2, "email": 1, "organic_search": 0, "paid_search": 1}


def test_linear_and_position() -> None:
    lin = credited("linear")
    assert lin["email"] == pytest.approx(1 / 3 + 1 / 4)
    assert lin["direct"] == pytest.approx(1 / 3 + 2 + 2 / 4)
    pos = credited("position")
    assert pos["email"] == pytest.approx(0.4 + 0.4)
    assert pos["paid_search"] == pytest.approx(0.2)
    assert pos["direct"] == pytest.approx(0.4 + 2 + 0.2)  # last of path 1, path 2, two middles of path 3
    two = attribute(PathData.from_lists([["a", "b"]]), "position")
    assert list(two.conversions) == [0.5, 0.5]


def test_time_decay_by_steps_and_by_days() -> None:
    steps = attribute(PathData.from_lists([["a", "b"]]), "time_decay", half_life=1)
    np.testing.assert_allclose(steps.conversions, [1 / 3, 2 / 3])
    days = PathData.from_lists([["a", "b"]], ages=[[14.0, 0.0]])
    res = attribute(days, "time_decay", half_life=7)
    np.testing.assert_allclose(res.conversions, [0.2, 0.8])
    assert res.params["half_life_unit"] == "days"


@pytest.mark.parametrize("model", MODELS)
def test_every_model_credits_exactly_the_conversions_and_value(model: str) -> None:
    data = PathData.from_lists(
        [["email", "paid_search", "direct"], ["direct"], ["email"]],
        conversions=[1, 2, 1],
        value=[100, 20, 50],
        nulls=[3, 1, 2],
    )
    res = attribute(data, model)
    assert res.conversions.sum() == pytest.approx(4.0)
    assert res.value.sum() == pytest.approx(170.0)
    out = res.to_dict()
    assert out["caveat"].startswith("Attribution divides")
    assert {r["channel"] for r in out["channels"]} == {"direct", "email", "paid_search"}


def test_compare_and_errors() -> None:
    table = compare(DATA, ["first", "last", "markov"])
    assert [r["channel"] for r in table["channels"]] == DATA.channels
    assert sum(r["markov"] for r in table["channels"]) == pytest.approx(4)
    with pytest.raises(InvalidInput, match="not known"):
        attribute(DATA, "magic")
    with pytest.raises(InvalidInput, match="half-life"):
        attribute(DATA, "time_decay", half_life=0)
    with pytest.raises(InvalidInput, match="bootstrap"):
        attribute(DATA, "last", bootstrap=-1)
