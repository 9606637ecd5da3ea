"""Privacy by construction (docs/privacy.md): consent per purpose (:mod:`~touchpoint.privacy.consent`,
:mod:`~touchpoint.privacy.purposes`), access and portability exports, erasure that leaves no trace, and the
suppression list of erased people, the audit log (:mod:`~touchpoint.privacy.audit`) and retention
(:mod:`~touchpoint.privacy.retention`).

Every table declares how its rows tie to a person (:class:`touchpoint.warehouse.schema.Personal`);
:mod:`touchpoint.privacy.people` finds a person and their rows from that one registry,
:mod:`touchpoint.privacy.export` gathers them, :mod:`touchpoint.privacy.erase` deletes them down to the bytes.
Callers import the module they need::

    from touchpoint.privacy import consent
    consent.with_consent(wh, people, "marketing_email")   # people + a boolean column, one query
"""
