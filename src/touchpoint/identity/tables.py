"""The identity tables (declared in :mod:`touchpoint.warehouse.schema`): derived from ``events``
(rebuildable), except the manual overrides.

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
``event_identities``       one row per resolved event: ``message_id, node_id``, its most trusted
                           identifier (the event belongs to that node's profile)
=========================  ===================================================================
"""

from __future__ import annotations

from touchpoint.warehouse import schema

NODES = schema.IDENTITY_NODES.name
LINKS = schema.IDENTITY_LINKS.name
RECENT = schema.IDENTITY_RECENT.name
OVERRIDES = schema.IDENTITY_OVERRIDES.name
MERGE_LOG = schema.IDENTITY_MERGE_LOG.name
STATE = schema.IDENTITY_STATE.name
EVENTS = schema.EVENT_IDENTITIES.name

NODES_SCHEMA = schema.IDENTITY_NODES.schema
LINKS_SCHEMA = schema.IDENTITY_LINKS.schema
RECENT_SCHEMA = schema.IDENTITY_RECENT.schema
OVERRIDES_SPEC = schema.IDENTITY_OVERRIDES
MERGE_LOG_SCHEMA = schema.IDENTITY_MERGE_LOG.schema
STATE_SCHEMA = schema.IDENTITY_STATE.schema
EVENTS_SCHEMA = schema.EVENT_IDENTITIES.schema
