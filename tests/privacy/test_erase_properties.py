"""Property: erasing one person removes every row of theirs and changes nobody else's data or export."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from touchpoint.collect.store import write_messages
from touchpoint.privacy.erase import erase
from touchpoint.privacy.export import export, to_json
from touchpoint.privacy.people import personal_tables
from touchpoint.warehouse import Warehouse

EVENT = st.sampled_from(["page", "track", "identify", "alias"])


def _messages(person: int, kinds: list[str], values: list[str]) -> list[dict[str, Any]]:
    user, anon, email = f"user-{person}-q7x", f"anon-{person}-k2m", f"person{person}@mail.test"
    out: list[dict[str, Any]] = []
    for n, (kind, value) in enumerate(zip(kinds, values, strict=False)):
        m: dict[str, Any] = {"type": kind, "messageId": f"p{person}-{n}", "properties": {"note": value}}
        if kind == "page":
            m["anonymousId"] = anon
        elif kind == "identify":
            m.update(userId=user, anonymousId=anon, traits={"email": email})
        elif kind == "alias":
            m.update(userId=user, previousId=f"old-{person}-z9")
        else:
            m.update(userId=user, event="Seen")
        out.append(m)
    return out


def _without_stamp(doc: dict[str, Any]) -> bytes:
    return to_json({k: v for k, v in doc.items() if k != "exported_at"})


@settings(max_examples=4, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    people=st.lists(
        st.tuples(st.lists(EVENT, min_size=1, max_size=6), st.lists(st.text("abcdefxyz", min_size=6, max_size=8))),
        min_size=2,
        max_size=3,
    ),
    victim_index=st.integers(0, 2),
)
def test_erasing_one_person_leaves_the_others_untouched(people: list[Any], victim_index: int) -> None:
    victim = victim_index % len(people)
    wh = Warehouse.open("duckdb://:memory:")
    try:
        for i, (kinds, values) in enumerate(people):
            kinds = ["identify", *kinds]  # the identify links the person's anonymous id, user id and email
            people[i] = (kinds, values)
            write_messages(wh, _messages(i, kinds, [f"{v}-{i}" for v in values] + [f"v-{i}"] * len(kinds)))
        others = [i for i in range(len(people)) if i != victim]
        first = {i: _first_id(wh, i) for i in range(len(people))}
        before = {i: _without_stamp(export(wh, first[i])) for i in others}
        counts = {i: json.loads(before[i])["tables"]["events"]["count"] for i in others}
        result = erase(wh, first[victim], actor="property")
        assert result["deleted"]["events"] == len(people[victim][0])
        for spec in personal_tables(wh):  # nothing of the victim in any column of any personal table
            text = json.dumps(wh.to_arrow(wh.table(spec.name)).to_pylist(), default=str)
            assert f"-{victim}-" not in text and f"person{victim}@" not in text
        for i in others:
            assert _without_stamp(export(wh, first[i])) == before[i]
        assert wh.count("events") == sum(counts.values())
    finally:
        wh.close()


def _first_id(wh: Warehouse, person: int) -> str:
    """An identifier the person's events carry (their anonymous id when they only browsed)."""
    e = wh.table("events")
    got = wh.to_arrow(e.filter(e.message_id == f"p{person}-0").select("user_id", "anonymous_id")).to_pylist()[0]
    return str(got["user_id"] or got["anonymous_id"])
