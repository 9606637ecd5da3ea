"""Privacy by construction: access and portability exports, erasure that leaves no trace, the
suppression list of erased people (docs/privacy.md).

Every table declares how its rows tie to a person (:class:`touchpoint.warehouse.schema.Personal`);
:mod:`touchpoint.privacy.people` finds a person and their rows from that one registry,
:mod:`touchpoint.privacy.export` gathers them, :mod:`touchpoint.privacy.erase` deletes them down to the bytes.
"""
