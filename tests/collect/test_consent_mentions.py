"""One rule for "may this event carry consent": :func:`touchpoint.collect.consent.mentions` (one row in Python,
the collector log's barrier for the sender) and ``candidate_rows`` (a table in Arrow, the consent extraction)
pick the same events."""

from __future__ import annotations

import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from touchpoint.collect.consent import CONSENT_EVENT, candidate_rows, mentions

TEXT = st.one_of(st.none(), st.text(max_size=12), st.sampled_from(['{"consent_email": true}', "Consent", "consent"]))
EVENT = st.one_of(st.none(), st.sampled_from([CONSENT_EVENT, "Signed Up", "consent updated"]), st.text(max_size=8))
ROW = st.tuples(EVENT, TEXT, TEXT, TEXT)


@settings(deadline=None)  # the first example loads Arrow's compute functions
@given(st.lists(ROW, max_size=20))
def test_the_row_rule_and_the_table_rule_pick_the_same_events(rows: list[tuple[str | None, ...]]) -> None:
    columns = ("event", "traits", "context", "properties")
    table = pa.table({c: pa.array([r[i] for r in rows], pa.string()) for i, c in enumerate(columns)})
    picked = candidate_rows(table).to_pylist()
    assert picked == [i for i, r in enumerate(rows) if mentions(*r)]
