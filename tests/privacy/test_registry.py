"""The registry of personal data: every table says how it holds people, and what it names exists."""

from __future__ import annotations

import pytest

from touchpoint.privacy.people import personal_tables
from touchpoint.warehouse import Warehouse, schema


def test_every_declared_table_is_classified() -> None:
    unclassified = [t.name for t in schema.all_tables() if t.personal is None]
    assert unclassified == [], f"classify these tables (TableSpec.personal, docs/privacy.md): {unclassified}"


def test_every_table_in_a_migrated_warehouse_is_declared_and_classified() -> None:
    wh = Warehouse.open("duckdb://:memory:")
    try:
        declared = {t.name: t for t in schema.all_tables()}
        assert sorted(set(wh.tables()) - set(declared)) == []
        assert all(declared[name].personal is not None for name in wh.tables())
    finally:
        wh.close()


@pytest.mark.parametrize("spec", schema.all_tables(), ids=lambda t: t.name)
def test_classified_columns_exist(spec: schema.TableSpec) -> None:
    assert spec.personal is not None
    missing = [c for c in spec.personal.columns() if c not in spec.schema.names]
    assert missing == []
    if spec.personal.none:  # 'identifies nobody' names no column to find a person by
        assert spec.personal.columns() == ()
    else:
        assert spec.personal.columns(), f"{spec.name}: personal, but no column ties a row to a person"


def test_person_tables_are_the_ones_expected() -> None:
    names = {t.name for t in personal_tables()}
    must = {
        "events",
        "quarantine",
        "identity_nodes",
        "event_identities",
        "profiles",
        "profile_traits",
        "predictions",
        "score_results",
        "audience_memberships",
        "automation_outbox",
        "automation_entries",
        "sessions",
    }
    assert must <= names
    assert not names & {"spend", "api_keys", "sources", "prediction_runs", "privacy_suppressions"}
