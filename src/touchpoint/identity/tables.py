"""The identity tables: derived from ``events`` (rebuildable), except the manual overrides.

=========================  ===================================================================
``identity_nodes``         one row per identifier: ``node_id, id_type, id_value, rank,
                           first_seen, last_seen, events, component, cluster, profile_id``
``identity_links``         one row per pair of identifiers seen on one event: ``src, dst``
                           (node ids, ``src < dst``), the first ``message_id`` that linked them,
                           ``first_seen, last_seen, events``, ``status`` (accepted | refused),
                           ``reason`` for a refusal
``identity_recent``        the events of the last hour before the watermark already resolved
                           (``message_id, received_at``), so none is resolved twice
``identity_overrides``     manual splits and merges (kept across rebuilds; the only source data)
``identity_merge_log``     every merge and split: which profiles, which link, which event, when
``identity_state``         the watermark, the rules' fingerprint, when it was built
=========================  ===================================================================
"""

from __future__ import annotations

import ibis
import ibis.expr.datatypes as dt

from touchpoint.warehouse.schema import TableSpec

S, TS, I64, I32 = dt.String(), dt.Timestamp(), dt.Int64(), dt.Int32()

NODES = "identity_nodes"
LINKS = "identity_links"
RECENT = "identity_recent"
OVERRIDES = "identity_overrides"
MERGE_LOG = "identity_merge_log"
STATE = "identity_state"

NODES_SCHEMA = ibis.schema(
    [
        ("node_id", I64),
        ("id_type", S),
        ("id_value", S),
        ("rank", I32),
        ("first_seen", TS),
        ("last_seen", TS),
        ("events", I64),
        ("component", I64),
        ("cluster", I64),
        ("profile_id", S),
    ]
)
LINKS_SCHEMA = ibis.schema(
    [
        ("src", I64),
        ("dst", I64),
        ("message_id", S),
        ("first_seen", TS),
        ("last_seen", TS),
        ("events", I64),
        ("status", S),
        ("reason", S),
    ]
)
RECENT_SCHEMA = ibis.schema([("message_id", S), ("received_at", TS)])
OVERRIDES_SPEC = TableSpec(
    name=OVERRIDES,
    doc="Manual identity decisions: 'split' (the identifier links to nothing) or 'merge' (force a link).",
    schema=ibis.schema(
        [
            ("kind", S),
            ("id_type", S),
            ("id_value", S),
            ("other_type", S),
            ("other_value", S),
            ("created_at", TS),
            ("note", S),
        ]
    ),
)
MERGE_LOG_SCHEMA = ibis.schema(
    [
        ("logged_at", TS),
        ("kind", S),  # auto_merge | manual_merge | manual_split | unsplit
        ("profile_id", S),
        ("merged_profile_ids", S),  # comma-separated, sorted
        ("src_type", S),
        ("src_value", S),
        ("dst_type", S),
        ("dst_value", S),
        ("message_id", S),
        ("event_timestamp", TS),
        ("note", S),
    ]
)
STATE_SCHEMA = ibis.schema([("key", S), ("value", S)])
